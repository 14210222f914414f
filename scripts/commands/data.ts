/**
 * `rlvr data <task>`: generate task data sets as JSONL.
 *
 *   rlvr data arithmetic --out data/add2 --count 5000 --test-size 500 --digits 1,2 --ops + --format answer-tag
 */
import { Command, InvalidArgumentError } from 'commander';
import { ARITHMETIC_OPS, MAX_DIGITS, saveArithmeticSplits, type ArithmeticFormat, type ArithmeticOp, type DigitRange } from '../../datasets/arithmetic/generate.ts';

function nonNegativeInt(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError(`expected a non-negative integer, got "${value}"`);
  return Number(value);
}

function positiveInt(value: string): number {
  const n = nonNegativeInt(value);
  if (n < 1) throw new InvalidArgumentError(`expected a positive integer, got "${value}"`);
  return n;
}

function seedArg(value: string): number {
  if (!/^-?\d+$/.test(value)) throw new InvalidArgumentError(`expected an integer seed, got "${value}"`);
  return Number(value);
}

function digitsArg(value: string): DigitRange {
  const parts = value.split(',').map((s) => s.trim());
  if (parts.length < 1 || parts.length > 2 || parts.some((p) => !/^\d+$/.test(p))) {
    throw new InvalidArgumentError(`expected "N" or "MIN,MAX" digit counts, got "${value}"`);
  }
  const [lo, hi] = [Number(parts[0]), Number(parts[parts.length - 1])];
  if (lo < 1 || hi > MAX_DIGITS || lo > hi) throw new InvalidArgumentError(`digit counts must satisfy 1 <= MIN <= MAX <= ${MAX_DIGITS}, got "${value}"`);
  return [lo, hi];
}

function opsArg(value: string): ArithmeticOp[] {
  const ops = value.split(',').map((s) => s.trim());
  for (const op of ops) {
    if (!ARITHMETIC_OPS.includes(op as ArithmeticOp)) throw new InvalidArgumentError(`unknown operation "${op}" in "${value}"; use a comma-separated list of + - *`);
  }
  if (new Set(ops).size !== ops.length) throw new InvalidArgumentError(`an operation is listed twice in "${value}"`);
  return ops as ArithmeticOp[];
}

function formatArg(value: string): ArithmeticFormat {
  if (value !== 'plain' && value !== 'answer-tag') throw new InvalidArgumentError(`expected plain or answer-tag, got "${value}"`);
  return value;
}

interface ArithmeticOptions {
  out: string;
  count: number;
  testSize: number;
  digits: DigitRange;
  ops: ArithmeticOp[];
  seed: number;
  format: ArithmeticFormat;
  allowNegative: boolean;
}

export function register(program: Command): void {
  const data = program.command('data').description('generate task data sets (JSONL)');
  data
    .command('arithmetic')
    .description('integer arithmetic problems ("12+34=" -> "46"): disjoint train.jsonl and test.jsonl')
    .requiredOption('--out <dir>', 'output folder for train.jsonl, test.jsonl and generation.json')
    .option('--count <n>', 'number of training problems', positiveInt, 5000)
    .option('--test-size <n>', 'number of held-out problems (no prompt shared with training)', nonNegativeInt, 500)
    .option('--digits <min,max>', `digits per operand, "N" or "MIN,MAX" within 1..${MAX_DIGITS}`, digitsArg, [1, 2] as DigitRange)
    .option('--ops <list>', 'operations, comma-separated from + - *', opsArg, ['+'] as ArithmeticOp[])
    .option('--seed <n>', 'random seed', seedArg, 0)
    .option('--format <format>', 'plain (completion "46") or answer-tag (completion "<answer>46</answer>")', formatArg, 'plain' as ArithmeticFormat)
    .option('--allow-negative', 'allow subtraction results below zero', false)
    .action(async (opts: ArithmeticOptions, cmd: Command) => {
      let result: Awaited<ReturnType<typeof saveArithmeticSplits>>;
      try {
        result = await saveArithmeticSplits(opts.out, {
          trainSize: opts.count,
          testSize: opts.testSize,
          seed: opts.seed,
          operations: opts.ops,
          digits: opts.digits,
          allowNegative: opts.allowNegative,
          format: opts.format,
        });
      } catch (e) {
        cmd.error(`error: ${(e as Error).message}`);
      }
      process.stdout.write(`wrote ${result.train} training problems to ${result.trainPath}\nwrote ${result.test} test problems to ${result.testPath}\n`);
    });
}
