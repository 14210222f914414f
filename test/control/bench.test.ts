import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../../src/engine/backend.ts';
import { benchJobs, benchTable, resampleCurve, runControlBench, summarizeRuns, type BenchRun } from '../../src/control/bench.ts';

const dirs: string[] = [];
beforeAll(async () => {
  await initEngine({ backend: 'wasm', quiet: true });
});
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const run = (algo: 'ppo' | 'a2c', seed: number, evalMean: number, solved: number | null): BenchRun => ({
  algo,
  env: 'CartPole-v1',
  seed,
  envSteps: 1000,
  trainSeconds: 2 + seed,
  evalMean,
  evalStd: 0,
  solvedAtSteps: solved,
  curve: [],
});

describe('bench helpers', () => {
  it('resampleCurve averages each bucket, carries the last value and is NaN before the first episode', () => {
    const c = resampleCurve([[150, 10], [180, 20], [420, 40]], 400, 4);
    expect(c.map(([x]) => x)).toEqual([100, 200, 300, 400]);
    expect(Number.isNaN(c[0]![1])).toBe(true);
    expect(c[1]![1]).toBe(15);
    expect(c[2]![1]).toBe(15);
    expect(c[3]![1]).toBe(15); // 420 is past the grid's end
  });

  it('summarizeRuns gives the mean and population std of the final returns across seeds', () => {
    const cells = summarizeRuns([run('ppo', 0, 500, 3000), run('ppo', 1, 300, null), run('a2c', 0, 100, null)]);
    expect(cells).toHaveLength(2);
    expect(cells[0]).toMatchObject({ algo: 'ppo', seeds: 2, evalMean: 400, evalStdAcrossSeeds: 100, evalMin: 300, evalMax: 500, solved: 1, trainSecondsMean: 2.5 });
    const table = benchTable(cells);
    expect(table).toContain('| CartPole-v1 | ppo | 2 | 1000 | 400.0 ± 100.0 | 300.0 / 500.0 | 1/2 | 2.5 s |');
  });

  it('benchJobs uses the preset budgets unless steps is given, and checks its inputs', () => {
    const jobs = benchJobs({ algos: ['ppo', 'a2c'], envs: ['CartPole-v1'], seeds: 2, out: '/x' });
    expect(jobs.map((j) => `${j.algo}:${j.seed}:${j.steps}`)).toEqual(['ppo:0:100000', 'ppo:1:100000', 'a2c:0:500000', 'a2c:1:500000']);
    expect(jobs[1]!.out).toBe(join('/x', 'CartPole-v1', 'ppo', 'seed1'));
    expect(() => benchJobs({ algos: ['ppo'], envs: ['CartPole-v1'], seeds: 0, out: '/x' })).toThrow(/seeds must be a positive integer/);
  });
});

describe('runControlBench', () => {
  it('trains every seed and writes the table, the JSON and the learning-curve chart', async () => {
    const out = mkdtempSync(join(tmpdir(), 'rlvr-bench-'));
    dirs.push(out);
    const lines: string[] = [];
    const r = await runControlBench({ algos: ['a2c'], envs: ['CartPole-v1'], seeds: 2, steps: 400, out, log: (l) => lines.push(l) });
    expect(r.runs).toHaveLength(2);
    expect(r.runs.every((x) => x.curve.length > 0 && x.envSteps === 400)).toBe(true);
    expect(lines.filter((l) => /CartPole-v1 a2c seed \d: [\d.]+ s/.test(l))).toHaveLength(2);
    const md = readFileSync(join(out, 'results.md'), 'utf8');
    expect(md).toMatch(/\| CartPole-v1 \| a2c \| 2 \| 400 \|/);
    const json = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
    expect(json.cells[0].seeds).toBe(2);
    const svg = readFileSync(join(out, 'curves-CartPole-v1.svg'), 'utf8');
    expect(svg).toContain('a2c (2 seeds)');
    // The PNG needs a system font; without one the SVG stands alone and a warning is logged.
    expect(existsSync(join(out, 'curves-CartPole-v1.png')) || lines.some((l) => l.startsWith('warning: no PNG'))).toBe(true);
  });
});
