import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  closeMathWorkers,
  configureMathWorkers,
  loadRewardFunction,
  rewardMetrics,
  scoreCompletions,
  type RewardBatch,
  type RewardFunction,
  type RewardValue,
} from '../../rewards/index.ts';

const batch: RewardBatch = {
  prompts: ['a', 'a', 'b', 'b'],
  completions: ['c0', 'c1', 'c2', 'c3'],
  completionIds: [[1], [1, 2], [1, 2, 3], []],
  answer: ['x', 'x', 'y', 'y'],
};

const constant = (values: RewardValue[]): RewardFunction => () => values;

describe('scoreCompletions', () => {
  it('sums weighted values, skipping nulls, and marks completions no function scored', async () => {
    const f = [0.5, null, 1, null];
    const g = [2, 3, null, null];
    const r = await scoreCompletions(batch, [
      { name: 'f', fn: constant(f), weight: 2 },
      { name: 'g', fn: async () => g, weight: -0.5 },
    ]);
    // independent formula: sum over functions of w * v where v is not null
    const expected = f.map((v, i) => (v === null ? 0 : 2 * v) + (g[i] === null ? 0 : -0.5 * (g[i] as number)));
    expect(Array.from(r.rewards)).toEqual(expected);
    expect(Array.from(r.missing)).toEqual([0, 0, 0, 1]);
    expect(r.perFunction).toEqual({ f, g });
    expect(r.errors).toEqual([]);
    const nan = await scoreCompletions(batch, [{ name: 'f', fn: constant(f) }], { allNull: 'nan' });
    expect(Number.isNaN(nan.rewards[1])).toBe(true);
    expect(nan.rewards[0]).toBe(0.5);
  });

  it('passes every column through and gives one entry per completion', async () => {
    const seen: RewardBatch[] = [];
    await scoreCompletions(batch, [{ name: 'spy', fn: (b) => (seen.push(b), b.completions.map(() => 0)) }]);
    expect(seen[0]?.answer).toEqual(['x', 'x', 'y', 'y']);
    expect(seen[0]?.completionIds[2]).toEqual([1, 2, 3]);
  });

  it('reports throws, rejections, timeouts, wrong lengths and bad values by name and keeps going', async () => {
    const r = await scoreCompletions(
      batch,
      [
        { name: 'ok', fn: constant([1, 1, 1, 1]) },
        { name: 'throws', fn: () => { throw new Error('boom'); } },
        { name: 'rejects', fn: async () => { throw new Error('async boom'); } },
        { name: 'slow', fn: () => new Promise<RewardValue[]>((res) => setTimeout(() => res([1, 1, 1, 1]), 5000)) },
        { name: 'short', fn: constant([1, 1]) },
        { name: 'nan', fn: constant([1, Number.NaN, Number.POSITIVE_INFINITY, 0]) },
        { name: 'string', fn: () => ['1', 1, 1, 1] as unknown as RewardValue[] },
        { name: 'scalar', fn: () => 1 as unknown as RewardValue[] },
      ],
      { timeoutMs: 200 },
    );
    expect(Array.from(r.rewards)).toEqual([1, 1, 1, 1]);
    const byName = Object.fromEntries(r.errors.map((e) => [e.name, e]));
    expect(byName.throws).toEqual({ name: 'throws', message: 'boom', count: 1, stack: expect.stringMatching(/^at .*combine\.test\.ts:\d+:\d+/) });
    expect(byName.rejects).toEqual({ name: 'rejects', message: 'async boom', count: 1, stack: expect.stringMatching(/^at .*combine\.test\.ts:\d+:\d+/) });
    expect(byName.throws!.stack!.split('\n').length).toBeLessThanOrEqual(4); // the head of the stack
    expect(byName.slow).toEqual({ name: 'slow', message: 'timed out after 200 ms', count: 1 }); // no stack: the combiner's own timer
    expect(byName.short?.message).toBe('returned 2 values for 4 completions');
    expect(byName.nan).toEqual({ name: 'nan', message: 'value 1 is NaN; expected a finite number or null', count: 2 });
    expect(byName.string?.message).toMatch(/value 0 is a string \("1"\)/);
    expect(byName.scalar?.message).toMatch(/returned 1 instead of an array/);
    expect(r.errors.length).toBe(7);
    expect(r.perFunction.nan).toEqual([null, null, null, null]);
    const m = rewardMetrics(r);
    expect(m['reward/ok/mean']).toBe(1);
    expect(m['reward/nan/errors']).toBe(2);
    expect(m['reward/ok/errors']).toBe(0);
    expect(Number.isNaN(m['reward/throws/mean'])).toBe(true);
  });

  it('aborts the signal of a function that timed out', async () => {
    let aborted = false;
    await scoreCompletions(
      batch,
      [{ name: 'slow', fn: (_b, ctx) => new Promise<RewardValue[]>(() => ctx?.signal?.addEventListener('abort', () => { aborted = true; })) }],
      { timeoutMs: 50 },
    );
    expect(aborted).toBe(true);
  });

  it('runs async functions concurrently, at most `concurrency` at a time', async () => {
    let running = 0;
    let peak = 0;
    const slow: RewardFunction = async (b) => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, 30));
      running--;
      return b.completions.map(() => 1);
    };
    const fns = Array.from({ length: 6 }, (_, i) => ({ name: `f${i}`, fn: slow }));
    const r = await scoreCompletions(batch, fns, { concurrency: 2 });
    expect(peak).toBe(2);
    expect(Array.from(r.rewards)).toEqual([6, 6, 6, 6]);
    peak = 0;
    await scoreCompletions(batch, fns, { concurrency: 6 });
    expect(peak).toBe(6);
  });

  it('rejects a malformed batch or function list with the problem named', async () => {
    const fn = constant([0, 0, 0, 0]);
    await expect(scoreCompletions({ ...batch, answer: ['x'] }, [{ name: 'f', fn }])).rejects.toThrow(
      /column 'answer' has 1 entries but there are 4 completions/,
    );
    await expect(scoreCompletions(batch, [{ name: 'f', fn }, { name: 'f', fn }])).rejects.toThrow(/duplicate reward name 'f'/);
    await expect(scoreCompletions(batch, [{ name: 'f', fn, weight: Number.NaN }])).rejects.toThrow(/weight must be a finite number/);
    await expect(scoreCompletions(batch, [])).rejects.toThrow(/non-empty array/);
    await expect(scoreCompletions(batch, [{ name: 'f', fn }], { concurrency: 0 })).rejects.toThrow(/concurrency must be an integer/);
  });
});

describe('loadRewardFunction', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rlvr-reward-mod-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('loads built-ins by name, with config checked', async () => {
    const fmt = await loadRewardFunction('format');
    expect(fmt.rewardName).toBe('format');
    expect(await fmt({ ...batch, completions: ['<think>a</think><answer>b</answer>', 'x', 'y', 'z'] })).toEqual([1, 0, 0, 0]);
    const over = await loadRewardFunction('overlong', { config: { maxCompletionLength: 3, cacheLength: 2 } });
    expect(await over(batch)).toEqual([0, -0.5, -1, 0]);
    await expect(loadRewardFunction('overlong')).rejects.toThrow(/needs config \{ maxCompletionLength, cacheLength \}/);
    await expect(loadRewardFunction('numeric', { config: { tolerence: 1 } })).rejects.toThrow(/unknown config key 'tolerence' \(allowed: column, tolerance, tag\)/);
    await expect(loadRewardFunction('nope')).rejects.toThrow(/unknown reward 'nope': built-ins are exact_match, numeric, format, code, math, overlong/);
  });

  it('loads the math verifier as `math`', async () => {
    configureMathWorkers({ poolSize: 1 });
    const math = await loadRewardFunction('math', { config: { column: 'gold' } });
    const b: RewardBatch = {
      prompts: ['', '', ''],
      completions: ['so \\boxed{0.5}', '\\boxed{3}', 'x'],
      completionIds: [[], [], []],
      gold: ['\\frac{1}{2}', '2', null],
    };
    try {
      expect(await math(b)).toEqual([1, 0, null]);
    } finally {
      await closeMathWorkers();
    }
  });

  it('loads a default or `reward` export from a module file', async () => {
    writeFileSync(join(dir, 'default.mjs'), 'export default (b) => b.completions.map((c) => c.length);\n');
    writeFileSync(join(dir, 'named.mjs'), 'export const reward = (b) => b.completions.map(() => 0.5);\n');
    const d = await loadRewardFunction('./default.mjs', { baseDir: dir });
    expect(d.rewardName).toBe('default');
    expect(await d(batch)).toEqual([2, 2, 2, 2]);
    const n = await loadRewardFunction(join(dir, 'named.mjs'));
    expect(await n(batch)).toEqual([0.5, 0.5, 0.5, 0.5]);
  });

  it('says clearly when the file is missing or exports no function', async () => {
    writeFileSync(join(dir, 'nofn.mjs'), 'export const weight = 2;\n');
    writeFileSync(join(dir, 'broken.mjs'), 'export default (\n');
    await expect(loadRewardFunction('./missing.ts', { baseDir: dir })).rejects.toThrow(/reward module not found: .*missing\.ts/);
    await expect(loadRewardFunction('./nofn.mjs', { baseDir: dir })).rejects.toThrow(
      /exports no reward function: expected a default export or a named export 'reward' that is a function \(exports: weight\)/,
    );
    await expect(loadRewardFunction('./broken.mjs', { baseDir: dir })).rejects.toThrow(/broken\.mjs failed to load/);
    await expect(loadRewardFunction('./default.mjs', { baseDir: dir, config: { a: 1 } })).rejects.toThrow(/config is only for built-in rewards/);
  });
});
