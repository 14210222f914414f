/**
 * Throughput of the verifiers:
 * - math checks per second on a mixed set of (reference, answer) pairs, with the
 *   synchronous `verifyMath` (one thread) and through the `math` reward (worker pool);
 * - sandboxed code runs per second for a trivial stdin-to-stdout program in each
 *   language at concurrency 2 and 4 (goal: at least 20 per second on 2 cores);
 * - the sandbox's start-up overhead: bubblewrap running `true` against a plain spawn of
 *   `true`, both with their output captured.
 *
 * All figures are wall-clock (the code runner's work happens in child processes). The
 * machine is shared and the numbers are noisy; each cell is the best of three runs
 * (highest rate, lowest time).
 *
 *   npx tsx scripts/bench-rewards.ts [--quick]
 */
import { spawn } from 'node:child_process';
import {
  loadRewardFunction,
  probeSandbox,
  runCode,
  runSandboxed,
  verifyMath,
  type Language,
  type RewardBatch,
} from '../rewards/index.ts';
import { findExecutable } from '../rewards/code/sandbox.ts';

const quick = process.argv.includes('--quick');
const REPEATS = 3;
const CODE_RUNS = quick ? 12 : 40;
const SPAWNS = quick ? 10 : 40;
const MATH_SECONDS = quick ? 0.3 : 1;

// (reference, answer, equal?) — numbers, fractions, LaTeX, expressions, sets, wrong answers.
const MATH_PAIRS: Array<[string, string]> = [
  ['42', 'The answer is $42$.'],
  ['\\frac{1}{2}', '0.5'],
  ['1/3', '\\boxed{\\frac{2}{6}}'],
  ['\\sqrt{2}', '\\boxed{\\frac{2}{\\sqrt{2}}}'],
  ['(x+1)^2', '\\boxed{x^2 + 2x + 1}'],
  ['3', '\\boxed{4}'],
  ['\\{1, 2, 3\\}', '\\boxed{\\{3, 2, 1\\}}'],
  ['2\\pi', '\\boxed{6.283185307}'],
  ['-7', 'so x = -7'],
  ['10\\%', '\\boxed{0.1}'],
  ['(1, 2]', '\\boxed{(1, 2]}'],
  ['x^2 - 1', '\\boxed{(x-1)(x+1)}'],
];

const PROGRAMS: Record<Language, string> = {
  python: 'print(input())\n',
  javascript: "process.stdout.write(require('fs').readFileSync(0, 'utf8'));\n",
};

function bestOf(run: () => Promise<number>): Promise<number> {
  return (async () => {
    let best = 0;
    for (let r = 0; r < REPEATS; r++) best = Math.max(best, await run());
    return best;
  })();
}

async function minOf(run: () => Promise<number>): Promise<number> {
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < REPEATS; r++) best = Math.min(best, await run());
  return best;
}

function table(rows: string[][]): string {
  const widths = (rows[0] ?? []).map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  const line = (r: string[]) => `| ${r.map((x, c) => x.padEnd(widths[c] ?? 0)).join(' | ')} |`;
  return [line(rows[0] ?? []), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.slice(1).map(line)].join('\n');
}

async function mathSyncPerSecond(): Promise<number> {
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < MATH_SECONDS * 1000) {
    for (const [gold, answer] of MATH_PAIRS) {
      verifyMath(gold, answer);
      n++;
    }
  }
  return n / ((performance.now() - t0) / 1000);
}

async function mathRewardPerSecond(): Promise<number> {
  const fn = await loadRewardFunction('math');
  const copies = quick ? 4 : 16;
  const pairs = Array.from({ length: copies }, () => MATH_PAIRS).flat();
  const batch: RewardBatch = {
    prompts: pairs.map(() => ''),
    completions: pairs.map((p) => p[1]),
    completionIds: pairs.map(() => []),
    answer: pairs.map((p) => p[0]),
  };
  await fn(batch); // start the workers
  const t0 = performance.now();
  await fn(batch);
  return pairs.length / ((performance.now() - t0) / 1000);
}

async function codeRunsPerSecond(language: Language, concurrency: number): Promise<number> {
  const tests = Array.from({ length: CODE_RUNS }, (_, i) => ({ input: `line ${i}`, expectedOutput: `line ${i}` }));
  const t0 = performance.now();
  const r = await runCode({ language, code: PROGRAMS[language], tests, concurrency });
  const seconds = (performance.now() - t0) / 1000;
  if (r.passed !== r.total) throw new Error(`bench: ${language} runs failed: ${JSON.stringify(r.cases.find((c) => c.status !== 'passed'))}`);
  return r.total / seconds;
}

function plainSpawn(command: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, [], { stdio: ['pipe', 'pipe', 'pipe'], env: {} });
    child.stdout.resume();
    child.stderr.resume();
    child.stdin.end();
    child.on('error', reject);
    child.on('close', () => resolve());
  });
}

async function meanMs(run: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < SPAWNS; i++) await run();
  return (performance.now() - t0) / SPAWNS;
}

const rows: string[][] = [['measure', 'value', 'notes']];
const fmt = (x: number, digits = 1) => x.toFixed(digits);

rows.push(['math checks/s, verifyMath (sync)', fmt(await bestOf(mathSyncPerSecond), 0), `${MATH_PAIRS.length} mixed pairs, one thread`]);
try {
  rows.push(['math checks/s, math reward (workers)', fmt(await bestOf(mathRewardPerSecond), 0), 'one batch, worker pool']);
} catch (err) {
  rows.push(['math checks/s, math reward (workers)', 'n/a', (err as Error).message.split('\n')[0] ?? '']);
}

const status = await probeSandbox();
if (!status.available) {
  rows.push(['sandbox', 'unavailable', status.reason ?? '']);
} else {
  for (const language of ['python', 'javascript'] as const) {
    for (const concurrency of [2, 4]) {
      rows.push([
        `code runs/s, ${language}, concurrency ${concurrency}`,
        fmt(await bestOf(() => codeRunsPerSecond(language, concurrency))),
        `${CODE_RUNS} runs of a trivial program, sandboxed`,
      ]);
    }
  }
  const trueBin = findExecutable('true') ?? '/bin/true';
  const req = { argv: [trueBin], timeoutMs: 10_000, dataMb: 64, addressSpaceMb: 256, outputLimitBytes: 65536 };
  const plain = await minOf(() => meanMs(() => plainSpawn(trueBin)));
  const boxed = await minOf(() => meanMs(() => runSandboxed(req)));
  rows.push(['spawn `true`, plain (ms)', fmt(plain, 2), `mean of ${SPAWNS}, node spawn, output captured`]);
  rows.push(['spawn `true`, sandboxed (ms)', fmt(boxed, 2), `mean of ${SPAWNS}, bwrap + prlimit + seccomp, teardown included`]);
  rows.push(['sandbox start overhead (ms)', fmt(boxed - plain, 2), 'difference of the two rows above']);
}

console.log(table(rows));
process.exit(0); // the math worker pool keeps the event loop alive
