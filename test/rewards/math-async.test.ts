/**
 * The worker pool behind verifyMathAsync: hard time limits, replacement of stuck and
 * crashed workers, concurrency, shutdown, and not keeping the process alive.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { closeMathWorkers, mathReward, verifyMath, verifyMathAsync } from '../../rewards/math/index.ts';
import { WorkerPool } from '../../rewards/math/pool.ts';
import { plainDecimal } from '../../rewards/math/reward.ts';

const FIXTURE = new URL('./fixtures/math-pool-worker.ts', import.meta.url);

describe('WorkerPool', () => {
  it('times out a stuck job, replaces its worker, and keeps serving other jobs meanwhile', async () => {
    const pool = new WorkerPool({ entry: FIXTURE, size: 2, name: 'test pool' });
    try {
      const stuck = pool.run({ op: 'spin' }, 1500);
      const echoed = await pool.run<number>({ op: 'echo', value: 7 }, 10_000);
      // The echo finished while the other worker was still spinning.
      expect(echoed).toEqual({ status: 'ok', value: 7 });
      expect(await stuck).toEqual({ status: 'timeout' });
      expect(pool.workerCount).toBeLessThanOrEqual(1);
      // The stuck worker was terminated; a new one serves the next jobs.
      const again = await Promise.all([pool.run({ op: 'echo', value: 'a' }, 10_000), pool.run({ op: 'echo', value: 'b' }, 10_000)]);
      expect(again).toEqual([{ status: 'ok', value: 'a' }, { status: 'ok', value: 'b' }]);
      expect(pool.workerCount).toBe(2);
    } finally {
      await pool.close();
    }
  });

  it('reports a crash and an exception without losing the pool', async () => {
    const pool = new WorkerPool({ entry: FIXTURE, size: 1, name: 'test pool' });
    try {
      const crashed = await pool.run({ op: 'exit' }, 10_000);
      expect(crashed.status).toBe('crashed');
      expect(await pool.run({ op: 'throw' }, 10_000)).toEqual({ status: 'error', error: 'Error: deliberate failure' });
      expect(await pool.run({ op: 'echo', value: 1 }, 10_000)).toEqual({ status: 'ok', value: 1 });
    } finally {
      await pool.close();
    }
  });

  it('rejects pending jobs on close and starts fresh workers afterwards', async () => {
    const pool = new WorkerPool({ entry: FIXTURE, size: 1, name: 'test pool' });
    const running = pool.run({ op: 'spin' }, 60_000);
    const queued = pool.run({ op: 'echo', value: 1 }, 60_000);
    const rejections = Promise.allSettled([running, queued]);
    await new Promise((r) => setTimeout(r, 50));
    await pool.close();
    const settled = await rejections;
    expect(settled.map((s) => s.status)).toEqual(['rejected', 'rejected']);
    expect(String((settled[1] as PromiseRejectedResult).reason)).toMatch(/closed/);
    expect(pool.workerCount).toBe(0);
    expect(await pool.run({ op: 'echo', value: 2 }, 10_000)).toEqual({ status: 'ok', value: 2 });
    await pool.close();
  });

  it('rejects bad sizes and time limits with the field named', () => {
    expect(() => new WorkerPool({ entry: FIXTURE, size: 0, name: 'p' })).toThrow(/poolSize must be an integer in \[1, 64\]/);
    const pool = new WorkerPool({ entry: FIXTURE, size: 1, name: 'p' });
    expect(() => pool.run({}, -1)).toThrow(/timeoutMs must be a positive number/);
  });
});

afterAll(async () => {
  await closeMathWorkers();
});

describe('verifyMathAsync', () => {
  it('agrees with verifyMath', async () => {
    const pairs: [string, string][] = [
      ['\\frac{1}{3}', 'so the answer is $\\boxed{\\frac{2}{6}}$'],
      ['\\frac{1}{3}', 'so the answer is $\\boxed{0.33}$'],
      ['(1, 2)', '<answer>(1,2)</answer>'],
      ['[1, 2)', '<answer>(1,2)</answer>'],
    ];
    const got = await Promise.all(pairs.map(([g, p]) => verifyMathAsync(g, p)));
    expect(got).toEqual(pairs.map(([g, p]) => verifyMath(g, p)));
    expect(got).toEqual([true, false, true, false]);
  });

  it('returns false for pathological inputs while a concurrent check still completes', async () => {
    const nested = '('.repeat(10_000) + '1' + ')'.repeat(10_000);
    const results = await Promise.all([
      verifyMathAsync('9^9^9^9^9', '9^9^9^9^9', { timeoutMs: 2000 }),
      verifyMathAsync('1', nested, { timeoutMs: 2000 }),
      verifyMathAsync('1', `$${'\\frac{'.repeat(5000)}1${'}{1}'.repeat(5000)}$`, { timeoutMs: 2000 }),
      verifyMathAsync('42', `${'x '.repeat(200_000)} the answer is 42`, { timeoutMs: 2000 }),
      verifyMathAsync('\\sqrt{2}', '\\boxed{\\frac{2}{\\sqrt{2}}}', { timeoutMs: 2000 }),
    ]);
    expect(results).toEqual([false, false, false, true, true]);
  });

  it('rejects invalid arguments with the field named', async () => {
    await expect(verifyMathAsync('1', '1', { timeoutMs: 0 })).rejects.toThrow(/options\.timeoutMs must be/);
    await expect(verifyMathAsync('1', '1', { relTol: 2 })).rejects.toThrow(/options\.relTol must be a number in \(0, 0\.1\]/);
    await expect(verifyMathAsync(1 as unknown as string, '1')).rejects.toThrow(/gold must be a string, got number/);
  });

  it('does not keep the process alive once idle', () => {
    const script = fileURLToPath(new URL('./fixtures/math-async-exit.ts', import.meta.url));
    const root = fileURLToPath(new URL('../../', import.meta.url));
    const run = spawnSync(process.execPath, ['--import', 'tsx', script], { cwd: root, encoding: 'utf8', timeout: 60_000 });
    expect(run.error).toBeUndefined();
    expect(run.status).toBe(0);
    expect(run.stdout).toBe('verified\n');
  });
});

describe('mathReward', () => {
  const batch = {
    prompts: ['p1', 'p1', 'p2', 'p3'],
    completions: ['The answer is \\boxed{4}.', 'The answer is \\boxed{5}.', 'It is 0.5', 'whatever'],
    completionIds: [[1], [2], [3], [4]],
    answer: ['4', 4, '\\frac{1}{2}', null],
  };

  it('scores 1 / 0 per completion and null where the reference answer is missing', async () => {
    const reward = mathReward();
    expect(reward.rewardName).toBe('math');
    expect(await reward(batch)).toEqual([1, 0, 1, null]);
  });

  it('reads numeric reference answers without exponent notation', async () => {
    expect([1e-7, -1.5e-7, 1e21, 1.25e22, 0.1, 42, -3.5].map(plainDecimal)).toEqual([
      '0.0000001', '-0.00000015', '1000000000000000000000', '12500000000000000000000', '0.1', '42', '-3.5',
    ]);
    const b = { prompts: ['p', 'p'], completions: ['\\boxed{10^{-7}}', '\\boxed{10^{21}}'], answer: [1e-7, 1e21] };
    expect(await mathReward()(b)).toEqual([1, 1]);
    await expect(mathReward()({ ...b, answer: [Number.NaN, 1] })).rejects.toThrow(/row 0 of column 'answer' is NaN; expected a finite number/);
  });

  it('reads a configurable column', async () => {
    const reward = mathReward({ column: 'solution' });
    const b = { prompts: ['p'], completions: ['\\boxed{x+1}'], solution: ['The result is $\\boxed{1+x}$.'] };
    expect(await reward(b)).toEqual([1]);
  });

  it('names the problem in its errors', async () => {
    await expect(mathReward({ column: 'gold' })(batch)).rejects.toThrow(/no column 'gold' \(columns: prompts, completions, completionIds, answer\)/);
    await expect(mathReward()({ ...batch, answer: ['1'] })).rejects.toThrow(/column 'answer' must have one entry per completion \(4\), got 1/);
    await expect(mathReward()({ ...batch, answer: ['1', {}, '2', '3'] })).rejects.toThrow(/row 1 of column 'answer' is a object/);
    expect(() => mathReward({ relTol: 0 })).toThrow(/mathReward: options\.relTol must be/);
    expect(() => mathReward({ column: '' })).toThrow(/options\.column must be a non-empty string/);
  });

  it('stops waiting when its signal aborts', async () => {
    const controller = new AbortController();
    controller.abort(new Error('combiner gave up'));
    await expect(mathReward()(batch, { signal: controller.signal })).rejects.toThrow(/combiner gave up/);
  });
});
