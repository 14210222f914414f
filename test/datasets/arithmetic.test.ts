import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import {
  arithmeticProblemCount,
  generateArithmetic,
  makeArithmeticSplits,
  saveArithmeticSplits,
  type ArithmeticExample,
} from '../../datasets/arithmetic/generate.ts';
import { ARITHMETIC_ALPHABET, arithmeticTokenizer } from '../../src/trainers/from-scratch.ts';
import { loadJsonl } from '../../datasets/jsonl.ts';
import { register } from '../../scripts/commands/data.ts';

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'rlvr-arith-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** Schoolbook arithmetic on decimal strings: an independent check of the answers. */
function addStrings(x: string, y: string): string {
  let out = '';
  let carry = 0;
  for (let i = x.length - 1, j = y.length - 1; i >= 0 || j >= 0 || carry; i--, j--) {
    const s = (i >= 0 ? +x[i]! : 0) + (j >= 0 ? +y[j]! : 0) + carry;
    out = String(s % 10) + out;
    carry = s >= 10 ? 1 : 0;
  }
  return out.replace(/^0+(?=\d)/, '');
}
function geq(x: string, y: string): boolean {
  return x.length !== y.length ? x.length > y.length : x >= y;
}
function subStrings(x: string, y: string): string {
  if (!geq(x, y)) return '-' + subStrings(y, x);
  let out = '';
  let borrow = 0;
  for (let i = x.length - 1, j = y.length - 1; i >= 0; i--, j--) {
    let d = +x[i]! - (j >= 0 ? +y[j]! : 0) - borrow;
    borrow = d < 0 ? 1 : 0;
    if (d < 0) d += 10;
    out = String(d) + out;
  }
  return out.replace(/^0+(?=\d)/, '');
}
function mulStrings(x: string, y: string): string {
  let total = '0';
  for (let j = y.length - 1, shift = ''; j >= 0; j--, shift += '0') {
    let row = '0';
    for (let k = 0; k < +y[j]!; k++) row = addStrings(row, x);
    total = addStrings(total, row + shift);
  }
  return total.replace(/^0+(?=\d)/, '');
}
function checkAnswer(e: ArithmeticExample): void {
  const m = /^(\d+)([+\-*])(\d+)=$/.exec(e.prompt);
  expect(m, e.prompt).not.toBeNull();
  const [, x, op, y] = m!;
  expect(op).toBe(e.op);
  expect(Number(x)).toBe(e.a);
  expect(Number(y)).toBe(e.b);
  const expected = op === '+' ? addStrings(x!, y!) : op === '-' ? subStrings(x!, y!) : mulStrings(x!, y!);
  expect(e.answer, e.prompt).toBe(expected === '-0' ? '0' : expected);
}

describe('generateArithmetic', () => {
  it('gives correct answers for every operation, including 15-digit products', () => {
    const small = generateArithmetic({ count: 600, seed: 1, operations: ['+', '-', '*'], digits: [1, 3], allowNegative: true });
    const big = generateArithmetic({ count: 60, seed: 2, operations: ['*', '+', '-'], digits: [15, 15], allowNegative: true });
    for (const e of [...small, ...big]) checkAnswer(e);
    expect(big.some((e) => e.op === '*' && e.answer.length >= 29)).toBe(true); // beyond 2^53: exact, not rounded
  });

  it('builds prompt, answer and completion in both formats', () => {
    const [plain] = generateArithmetic({ count: 1, seed: 5 });
    const [tagged] = generateArithmetic({ count: 1, seed: 5, format: 'answer-tag' });
    expect(plain!.prompt).toBe(`${plain!.a}+${plain!.b}=`);
    expect(plain!.completion).toBe(plain!.answer);
    expect(tagged!.prompt).toBe(plain!.prompt);
    expect(tagged!.completion).toBe(`<answer>${plain!.answer}</answer>`);
  });

  it('is deterministic per seed', () => {
    const cfg = { count: 50, operations: ['+', '*'] as const, digits: [1, 4] as const };
    expect(generateArithmetic({ ...cfg, seed: 3 })).toEqual(generateArithmetic({ ...cfg, seed: 3 }));
    expect(generateArithmetic({ ...cfg, seed: 4 })).not.toEqual(generateArithmetic({ ...cfg, seed: 3 }));
  });

  it('draws the digit count uniformly, then the value uniformly within it', () => {
    const n = 6000;
    const ex = generateArithmetic({ count: n, seed: 9, digits: [1, 3] });
    const byLen = [0, 0, 0, 0];
    const firstDigit = new Array<number>(10).fill(0);
    for (const e of ex) {
      for (const v of [e.a, e.b]) {
        const s = String(v);
        byLen[s.length]!++;
        if (s.length === 3) firstDigit[+s[0]!]!++;
      }
    }
    // 2n operands, a third per length: 4000 each, sd ~37
    for (const len of [1, 2, 3]) expect(Math.abs(byLen[len]! - (2 * n) / 3)).toBeLessThan(200);
    expect(firstDigit[0]).toBe(0); // a 3-digit number never starts with 0
    for (let d = 1; d <= 9; d++) expect(Math.abs(firstDigit[d]! - byLen[3]! / 9)).toBeLessThan(100);
  });

  it('keeps each operand in its own digit range', () => {
    const ex = generateArithmetic({ count: 500, seed: 2, operations: ['+', '-'], digits: { a: [3, 4], b: [1, 1] } });
    for (const e of ex) {
      expect(String(e.a).length).toBeGreaterThanOrEqual(3);
      expect(String(e.a).length).toBeLessThanOrEqual(4);
      expect(String(e.b)).toHaveLength(1);
    }
  });

  it('keeps subtraction results non-negative unless allowNegative', () => {
    const cfg = { count: 400, seed: 11, operations: ['-'] as const, digits: [1, 2] as const };
    const nonNeg = generateArithmetic(cfg);
    expect(nonNeg.every((e) => e.a >= e.b && !e.answer.startsWith('-'))).toBe(true);
    const neg = generateArithmetic({ ...cfg, allowNegative: true });
    expect(neg.filter((e) => e.answer.startsWith('-')).length).toBeGreaterThan(100);
    for (const e of neg) checkAnswer(e);
  });

  it('counts the distinct problems exactly (checked by enumeration)', () => {
    const enumerate = (aLo: number, aHi: number, bLo: number, bHi: number, ops: string[], neg: boolean) => {
      let n = 0;
      for (const op of ops) for (let a = aLo; a <= aHi; a++) for (let b = bLo; b <= bHi; b++) if (op !== '-' || neg || a >= b) n++;
      return n;
    };
    expect(arithmeticProblemCount({ digits: [1, 2] })).toBe(10_000);
    expect(arithmeticProblemCount({ digits: [1, 2], operations: ['-'] })).toBe(enumerate(0, 99, 0, 99, ['-'], false)); // 5050
    expect(arithmeticProblemCount({ digits: { a: [2, 3], b: [1, 2] }, operations: ['-', '+'] })).toBe(enumerate(10, 999, 0, 99, ['-', '+'], false));
    expect(arithmeticProblemCount({ digits: { a: [1, 2], b: [2, 3] }, operations: ['-'] })).toBe(enumerate(0, 99, 10, 999, ['-'], false));
    expect(arithmeticProblemCount({ digits: { a: [1, 2], b: [2, 3] }, operations: ['-'], allowNegative: true })).toBe(enumerate(0, 99, 10, 999, ['-'], true));
  });

  it('with unique, gives distinct prompts, up to the whole problem space', () => {
    // 10 x 10 sums, 10 x 11 / 2 differences with a >= b, 10 x 10 products
    expect(arithmeticProblemCount({ operations: ['+', '-', '*'], digits: [1, 1] })).toBe(255);
    const all = generateArithmetic({ count: 255, seed: 4, operations: ['+', '-', '*'], digits: [1, 1], unique: true });
    expect(new Set(all.map((e) => e.prompt)).size).toBe(255);
    for (const e of all) checkAnswer(e);
  });

  it('rejects bad configs, naming the field and the allowed values', () => {
    const ok = { count: 5, seed: 0 };
    expect(() => generateArithmetic({ ...ok, count: 0 })).toThrow('count must be a positive integer, got 0');
    expect(() => generateArithmetic({ ...ok, seed: Number.NaN })).toThrow('seed must be a finite number');
    expect(() => generateArithmetic({ ...ok, digits: [0, 2] })).toThrow('digits min must be an integer in [1, 15], got 0');
    expect(() => generateArithmetic({ ...ok, digits: [1, 16] })).toThrow('digits max must be an integer in [1, 15], got 16');
    expect(() => generateArithmetic({ ...ok, digits: [3, 2] })).toThrow('digits min (3) must not exceed max (2)');
    expect(() => generateArithmetic({ ...ok, digits: { a: [1, 2] } as never })).toThrow('digits.b must be a [min, max] pair');
    expect(() => generateArithmetic({ ...ok, operations: [] })).toThrow('operations must be a non-empty list');
    expect(() => generateArithmetic({ ...ok, operations: ['+', '/' as never] })).toThrow(`operations[1] = "/" is not one of '+', '-', '*'`);
    expect(() => generateArithmetic({ ...ok, operations: ['+', '+'] })).toThrow(`operation '+' is listed twice`);
    expect(() => generateArithmetic({ ...ok, format: 'json' as never })).toThrow(`format must be 'plain' or 'answer-tag', got "json"`);
    expect(() => generateArithmetic({ ...ok, operations: ['-'], digits: { a: [1, 1], b: [2, 2] } })).toThrow('a - b >= 0 is impossible');
    expect(() => generateArithmetic({ ...ok, count: 101, digits: [1, 1], unique: true })).toThrow('count 101 exceeds the 100 distinct problems');
  });
});

describe('makeArithmeticSplits', () => {
  it('gives disjoint train and test sets of the requested sizes, deterministically', () => {
    const cfg = { trainSize: 800, testSize: 200, seed: 5, operations: ['+', '-'] as const, digits: [1, 2] as const, format: 'answer-tag' as const };
    const { train, test } = makeArithmeticSplits(cfg);
    expect(train).toHaveLength(800);
    expect(test).toHaveLength(200);
    const trainPrompts = new Set(train.map((e) => e.prompt));
    expect(trainPrompts.size).toBe(800);
    expect(test.some((e) => trainPrompts.has(e.prompt))).toBe(false);
    expect(new Set(test.map((e) => e.prompt)).size).toBe(200);
    expect(makeArithmeticSplits(cfg)).toEqual({ train, test });
    for (const e of [...train, ...test]) checkAnswer(e);
  });

  it('rejects sizes larger than the problem space', () => {
    expect(() => makeArithmeticSplits({ trainSize: 95, testSize: 10, seed: 0, digits: [1, 1] })).toThrow('trainSize + testSize = 105 exceeds the 100 distinct problems');
    expect(() => makeArithmeticSplits({ trainSize: 0, testSize: 10, seed: 0 })).toThrow('trainSize must be a positive integer, got 0');
  });
});

describe('arithmeticTokenizer', () => {
  it('has the documented ids', () => {
    const tok = arithmeticTokenizer();
    expect(tok.vocabSize).toBe(22);
    expect(tok.encode('10+2=<answer>12</answer>')).toEqual([3, 5, 4, 14, 6, 17, 20, 5, 6, 21]);
    expect(tok.encode('9-8*7 \n', { addSpecialTokens: false })).toEqual([13, 15, 12, 16, 11, 18, 19]);
    expect(tok.alphabet).toBe(ARITHMETIC_ALPHABET);
  });

  it('encodes every generated prompt and completion without <unk>, and decodes them back', () => {
    const tok = arithmeticTokenizer();
    const ex = generateArithmetic({ count: 300, seed: 8, operations: ['+', '-', '*'], digits: [1, 4], allowNegative: true, format: 'answer-tag' });
    for (const e of ex) {
      const ids = tok.encode(e.prompt + e.completion);
      expect(ids.includes(tok.unkTokenId), e.prompt).toBe(false);
      expect(tok.decode(ids, { skipSpecialTokens: true })).toBe(e.prompt + e.completion);
    }
  });
});

describe('saving splits and the `rlvr data arithmetic` command', () => {
  it('saveArithmeticSplits writes JSONL that loads back as the same examples', async () => {
    const dir = join(work, 'saved');
    const cfg = { trainSize: 40, testSize: 10, seed: 2, digits: [1, 2] as const };
    const result = await saveArithmeticSplits(dir, cfg);
    expect(result).toEqual({ trainPath: join(dir, 'train.jsonl'), testPath: join(dir, 'test.jsonl'), train: 40, test: 10 });
    const required = { prompt: 'string', answer: 'string', completion: 'string' } as const;
    const expected = makeArithmeticSplits(cfg);
    expect(await loadJsonl(result.trainPath, { requiredColumns: required })).toEqual(expected.train);
    expect(await loadJsonl(result.testPath, { requiredColumns: required })).toEqual(expected.test);
    const meta = JSON.parse(await readFile(join(dir, 'generation.json'), 'utf8')) as Record<string, unknown>;
    expect(meta).toMatchObject({ task: 'arithmetic', trainSize: 40, testSize: 10, seed: 2 });
  });

  function cli(): Command {
    const program = new Command().exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
    register(program);
    for (const c of program.commands) {
      c.exitOverride();
      for (const s of c.commands) s.exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
    }
    return program;
  }

  it('writes the splits the options describe', async () => {
    const dir = join(work, 'cli');
    await cli().parseAsync(['data', 'arithmetic', '--out', dir, '--count', '30', '--test-size', '7', '--digits', '2', '--ops', '-,*', '--seed', '12', '--format', 'answer-tag', '--allow-negative'], { from: 'user' });
    const expected = makeArithmeticSplits({ trainSize: 30, testSize: 7, seed: 12, digits: [2, 2], operations: ['-', '*'], format: 'answer-tag', allowNegative: true });
    expect(await loadJsonl(join(dir, 'train.jsonl'))).toEqual(expected.train);
    expect(await loadJsonl(join(dir, 'test.jsonl'))).toEqual(expected.test);
  });

  it('rejects malformed options with the reason', async () => {
    const run = (args: string[]) => cli().parseAsync(['data', 'arithmetic', '--out', join(work, 'x'), ...args], { from: 'user' });
    await expect(run(['--digits', '1,x'])).rejects.toThrow(/expected "N" or "MIN,MAX" digit counts, got "1,x"/);
    await expect(run(['--digits', '3,2'])).rejects.toThrow(/1 <= MIN <= MAX <= 15/);
    await expect(run(['--ops', '+,/'])).rejects.toThrow(/unknown operation "\/"/);
    await expect(run(['--count', '-3'])).rejects.toThrow(/expected a non-negative integer, got "-3"/);
    await expect(run(['--format', 'xml'])).rejects.toThrow(/expected plain or answer-tag, got "xml"/);
    await expect(run(['--digits', '1', '--count', '99', '--test-size', '2'])).rejects.toThrow(/exceeds the 100 distinct problems/);
  });
});
