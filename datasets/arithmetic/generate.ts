/**
 * Seeded generator of integer arithmetic problems (`12+34=` -> `46`) for supervised
 * warm-starts and GRPO with an exact-match verifier. See README.md in this folder.
 *
 * Sampling of one problem: the operation is uniform over `operations`; each operand first
 * draws its number of digits uniformly from its digit range, then a value uniform over the
 * numbers with that many digits (1 digit: 0-9; k > 1 digits: 10^(k-1) .. 10^k - 1). Short
 * operands are therefore over-represented compared with a uniform draw over the whole
 * range, on purpose: a curriculum over lengths, and every length is seen. Without
 * `allowNegative`, a subtraction whose result would be negative is drawn again (operands
 * are never negative). Results are computed exactly (BigInt), so products never round.
 */
import { writeJsonAtomic } from '../../src/core/atomic.ts';
import { Rng } from '../../src/core/rng.ts';
import { writeJsonl } from '../jsonl.ts';
import { splitTrainTest } from '../split.ts';
import { join } from 'node:path';

export type ArithmeticOp = '+' | '-' | '*';
export type ArithmeticFormat = 'plain' | 'answer-tag';
/** Inclusive range of the number of decimal digits of an operand, within [1, MAX_DIGITS]. */
export type DigitRange = readonly [min: number, max: number];

export const ARITHMETIC_OPS: readonly ArithmeticOp[] = ['+', '-', '*'];
/** Operands stay below 10^15, so they are exact doubles. */
export const MAX_DIGITS = 15;
/** Tags around the answer in the `answer-tag` format. */
export const ANSWER_OPEN = '<answer>';
export const ANSWER_CLOSE = '</answer>';

export interface ArithmeticConfig {
  /** Number of problems to generate (>= 1). */
  count: number;
  /** Seed of the problem stream: the same config gives the same problems. */
  seed: number;
  /** Operations to draw from, uniformly. Default `['+']`. */
  operations?: readonly ArithmeticOp[];
  /** Digits per operand: one range for both, or one per operand. Default `[1, 2]`. */
  digits?: DigitRange | { a: DigitRange; b: DigitRange };
  /** Allow subtraction results below zero. Default false (a - b is drawn with a >= b). */
  allowNegative?: boolean;
  /** `plain`: completion `46`; `answer-tag`: completion `<answer>46</answer>`. Default `plain`. */
  format?: ArithmeticFormat;
  /** No two problems with the same prompt. Default false (independent draws). */
  unique?: boolean;
}

export interface ArithmeticExample {
  /** The question, e.g. `12+34=`. */
  prompt: string;
  /** The reference answer in decimal, e.g. `46` or `-7`; what a verifier compares against. */
  answer: string;
  /** Target text for SFT after the prompt, ending before EOS: `46` or `<answer>46</answer>`. */
  completion: string;
  a: number;
  b: number;
  op: ArithmeticOp;
}

interface Resolved {
  count: number;
  seed: number;
  operations: ArithmeticOp[];
  digitsA: DigitRange;
  digitsB: DigitRange;
  allowNegative: boolean;
  format: ArithmeticFormat;
  unique: boolean;
}

function checkDigitRange(r: unknown, name: string, where: string): DigitRange {
  if (!Array.isArray(r) || r.length !== 2) throw new Error(`${where}: ${name} must be a [min, max] pair of digit counts, got ${JSON.stringify(r)}`);
  const [lo, hi] = r as [unknown, unknown];
  for (const [v, label] of [
    [lo, 'min'],
    [hi, 'max'],
  ] as const) {
    if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > MAX_DIGITS) {
      throw new Error(`${where}: ${name} ${label} must be an integer in [1, ${MAX_DIGITS}], got ${JSON.stringify(v)}`);
    }
  }
  if ((lo as number) > (hi as number)) throw new Error(`${where}: ${name} min (${lo}) must not exceed max (${hi})`);
  return [lo as number, hi as number];
}

function resolveConfig(config: ArithmeticConfig, where: string): Resolved {
  if (typeof config !== 'object' || config === null) throw new Error(`${where}: config must be an object`);
  const { count, seed, operations = ['+'], digits = [1, 2], allowNegative = false, format = 'plain', unique = false } = config;
  if (!Number.isInteger(count) || count < 1) throw new Error(`${where}: count must be a positive integer, got ${JSON.stringify(count)}`);
  if (!Number.isFinite(seed)) throw new Error(`${where}: seed must be a finite number, got ${JSON.stringify(seed)}`);
  if (!Array.isArray(operations) || operations.length === 0) throw new Error(`${where}: operations must be a non-empty list of '+', '-', '*'`);
  operations.forEach((op, i) => {
    if (!ARITHMETIC_OPS.includes(op)) throw new Error(`${where}: operations[${i}] = ${JSON.stringify(op)} is not one of '+', '-', '*'`);
    if (operations.indexOf(op) !== i) throw new Error(`${where}: operation '${op}' is listed twice`);
  });
  let digitsA: DigitRange;
  let digitsB: DigitRange;
  if (Array.isArray(digits)) {
    digitsA = digitsB = checkDigitRange(digits, 'digits', where);
  } else if (typeof digits === 'object' && digits !== null) {
    const d = digits as { a?: unknown; b?: unknown };
    digitsA = checkDigitRange(d.a, 'digits.a', where);
    digitsB = checkDigitRange(d.b, 'digits.b', where);
  } else {
    throw new Error(`${where}: digits must be [min, max] or { a: [min, max], b: [min, max] }, got ${JSON.stringify(digits)}`);
  }
  if (typeof allowNegative !== 'boolean') throw new Error(`${where}: allowNegative must be a boolean`);
  if (format !== 'plain' && format !== 'answer-tag') throw new Error(`${where}: format must be 'plain' or 'answer-tag', got ${JSON.stringify(format)}`);
  if (typeof unique !== 'boolean') throw new Error(`${where}: unique must be a boolean`);
  const r: Resolved = { count, seed, operations: [...operations], digitsA, digitsB, allowNegative, format, unique };
  if (!allowNegative && operations.includes('-') && valueRange(digitsA)[1] < valueRange(digitsB)[0]) {
    throw new Error(`${where}: with digits.a ${JSON.stringify(digitsA)} every a is smaller than every b, so a - b >= 0 is impossible; set allowNegative or widen digits.a`);
  }
  return r;
}

/** Smallest and largest operand with a digit count in `range`. */
function valueRange(range: DigitRange): [number, number] {
  return [range[0] === 1 ? 0 : 10 ** (range[0] - 1), 10 ** range[1] - 1];
}

/** Number of distinct prompts the config can produce. */
export function arithmeticProblemCount(config: Omit<ArithmeticConfig, 'count' | 'seed'>): number {
  const r = resolveConfig({ ...config, count: 1, seed: 0 }, 'arithmeticProblemCount');
  const [a0, a1] = valueRange(r.digitsA);
  const [b0, b1] = valueRange(r.digitsB);
  const nA = a1 - a0 + 1;
  const nB = b1 - b0 + 1;
  let total = 0;
  for (const op of r.operations) {
    if (op !== '-' || r.allowNegative) {
      total += nA * nB;
      continue;
    }
    // pairs with a >= b: for a in [max(a0, b0), a1], min(a - b0 + 1, nB) choices of b
    const lo = Math.max(a0, b0);
    if (lo > a1) continue;
    const rampEnd = Math.min(a1, b1); // a - b0 + 1 grows until a = b1
    if (lo <= rampEnd) total += ((lo - b0 + 1 + (rampEnd - b0 + 1)) * (rampEnd - lo + 1)) / 2;
    const flatStart = Math.max(lo, b1 + 1);
    if (flatStart <= a1) total += (a1 - flatStart + 1) * nB;
  }
  return total;
}

function drawOperand(rng: Rng, range: DigitRange): number {
  const k = rng.intRange(range[0], range[1]);
  if (k === 1) return rng.int(10);
  let v = rng.intRange(1, 9);
  for (let i = 1; i < k; i++) v = v * 10 + rng.int(10);
  return v;
}

const MAX_REDRAWS = 100_000;

function drawProblem(rng: Rng, r: Resolved): { a: number; b: number; op: ArithmeticOp } {
  const op = r.operations[rng.int(r.operations.length)]!;
  for (let tries = 0; tries < MAX_REDRAWS; tries++) {
    const a = drawOperand(rng, r.digitsA);
    const b = drawOperand(rng, r.digitsB);
    if (op !== '-' || r.allowNegative || a >= b) return { a, b, op };
  }
  throw new Error(`generateArithmetic: no a >= b in ${MAX_REDRAWS} draws with digits.a ${JSON.stringify(r.digitsA)} and digits.b ${JSON.stringify(r.digitsB)}; set allowNegative or widen digits.a`);
}

function makeExample(a: number, b: number, op: ArithmeticOp, format: ArithmeticFormat): ArithmeticExample {
  const x = BigInt(a);
  const y = BigInt(b);
  const answer = (op === '+' ? x + y : op === '-' ? x - y : x * y).toString();
  return {
    prompt: `${a}${op}${b}=`,
    answer,
    completion: format === 'answer-tag' ? `${ANSWER_OPEN}${answer}${ANSWER_CLOSE}` : answer,
    a,
    b,
    op,
  };
}

/** `config.count` problems, deterministic in `config.seed` (see the file header for the distribution). */
export function generateArithmetic(config: ArithmeticConfig): ArithmeticExample[] {
  const r = resolveConfig(config, 'generateArithmetic');
  const rng = new Rng(r.seed);
  const out: ArithmeticExample[] = [];
  if (!r.unique) {
    for (let i = 0; i < r.count; i++) {
      const { a, b, op } = drawProblem(rng, r);
      out.push(makeExample(a, b, op, r.format));
    }
    return out;
  }
  const space = arithmeticProblemCount(config);
  if (r.count > space) {
    throw new Error(`generateArithmetic: count ${r.count} exceeds the ${space} distinct problems of these operations and digits; lower count or widen digits`);
  }
  // Collecting nearly all of a small space takes many draws (short operands are frequent).
  const maxDraws = Math.max(1_000_000, 200 * r.count);
  const seen = new Set<string>();
  for (let draws = 0; out.length < r.count; draws++) {
    if (draws >= maxDraws) {
      throw new Error(`generateArithmetic: found only ${out.length} distinct problems of ${r.count} in ${maxDraws} draws (the space holds ${space}); lower count or widen digits`);
    }
    const { a, b, op } = drawProblem(rng, r);
    const ex = makeExample(a, b, op, r.format);
    if (seen.has(ex.prompt)) continue;
    seen.add(ex.prompt);
    out.push(ex);
  }
  return out;
}

export interface ArithmeticSplitConfig extends Omit<ArithmeticConfig, 'count' | 'unique'> {
  /** Number of training problems (>= 1). */
  trainSize: number;
  /** Number of held-out problems (>= 0); none of their prompts occurs in the training set. */
  testSize: number;
}

/**
 * Disjoint train and test sets: `trainSize + testSize` distinct problems, then a random
 * test subset chosen with seed `seed + 1` (a random subset rather than the last ones,
 * because distinct draws made late are biased towards rare, long problems).
 */
export function makeArithmeticSplits(config: ArithmeticSplitConfig): { train: ArithmeticExample[]; test: ArithmeticExample[] } {
  const where = 'makeArithmeticSplits';
  const { trainSize, testSize, ...rest } = config;
  if (!Number.isInteger(trainSize) || trainSize < 1) throw new Error(`${where}: trainSize must be a positive integer, got ${JSON.stringify(trainSize)}`);
  if (!Number.isInteger(testSize) || testSize < 0) throw new Error(`${where}: testSize must be a non-negative integer, got ${JSON.stringify(testSize)}`);
  const space = arithmeticProblemCount(rest);
  if (trainSize + testSize > space) {
    throw new Error(`${where}: trainSize + testSize = ${trainSize + testSize} exceeds the ${space} distinct problems of these operations and digits; lower the sizes or widen digits`);
  }
  const all = generateArithmetic({ ...rest, count: trainSize + testSize, unique: true });
  const { train, test } = splitTrainTest(all, { testSize, seed: config.seed + 1 });
  return { train, test };
}

/**
 * Writes `train.jsonl`, `test.jsonl` and `generation.json` (the config, for provenance)
 * into `dir`; each file is written whole or not at all.
 */
export async function saveArithmeticSplits(
  dir: string,
  config: ArithmeticSplitConfig,
): Promise<{ trainPath: string; testPath: string; train: number; test: number }> {
  const { train, test } = makeArithmeticSplits(config);
  const trainPath = join(dir, 'train.jsonl');
  const testPath = join(dir, 'test.jsonl');
  await writeJsonl(trainPath, train);
  await writeJsonl(testPath, test);
  writeJsonAtomic(join(dir, 'generation.json'), { task: 'arithmetic', ...config });
  return { trainPath, testPath, train: train.length, test: test.length };
}
