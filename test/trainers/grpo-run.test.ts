/**
 * Whole GRPO runs on a tiny model (cpu backend): learning on a trivially learnable reward,
 * resume reproducing the uninterrupted run, a throwing reward counted but not fatal, no
 * reference model when beta = 0, a diverging loss stopping the run with the last good
 * checkpoint kept, and Ctrl-C saving a checkpoint.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { RewardBatch, RewardSpec } from '../../rewards/types.ts';
import { loadCausalLM } from '../../src/lm/checkpoint.ts';
import { CausalLM } from '../../src/lm/model.ts';
import { readMetrics, readSamples } from '../../src/report/metrics.ts';
import { readGrpoTrainerState, trainGrpo } from '../../src/trainers/grpo.ts';
import { latestCheckpoint as latestGrpoCheckpoint } from '../../src/trainers/trainer-state.ts';
import { type GrpoConfig, parseGrpoConfig } from '../../src/trainers/grpo-config.ts';
import { useCpu } from '../lm/lm-helpers.ts';
import { makeTinyRlFixture, sevens } from './tiny-rl-fixture.ts';

let dir: string;
let initDir: string;
let trainFile: string;
let testFile: string;

beforeAll(async () => {
  await useCpu();
  ({ dir, initDir, trainFile, testFile } = await makeTinyRlFixture('rlvr-grpo-run-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function config(outDir: string, overrides: Record<string, unknown> = {}): GrpoConfig {
  return parseGrpoConfig({
    model: { modelDir: initDir },
    data: { trainFile },
    promptsPerStep: 4,
    numGenerations: 8,
    maxCompletionLength: 4,
    learningRate: 2e-2,
    warmupSteps: 0,
    beta: 0,
    saveEvery: 0,
    evalEvery: 0,
    report: false,
    outDir: join(dir, outDir),
    ...overrides,
  });
}

const quiet = { quiet: true, handleSigint: false } as const;

async function weights(path: string): Promise<Map<string, Float32Array>> {
  const { model } = await loadCausalLM(path);
  const out = new Map<string, Float32Array>();
  for (const [name, t] of model.getWeights()) out.set(name, t.dataSync() as Float32Array);
  model.dispose();
  return out;
}

function withoutTimes(rec: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(rec).filter(([k]) => k !== 'time' && !k.startsWith('time/') && !k.startsWith('throughput/') && !k.startsWith('memory/')));
}

describe('GRPO on a tiny model', () => {
  it('learns a trivially learnable reward: parameters change and the mean reward rises; beta = 0 builds no reference model', async () => {
    const clone = vi.spyOn(CausalLM.prototype, 'clone');
    const result = await trainGrpo(config('learn', { steps: 14, data: { trainFile, testFile }, evalEvery: 7, logSamples: 2, report: true }), {
      ...quiet,
      rewards: [{ name: 'sevens', fn: sevens }],
    });
    expect(clone).not.toHaveBeenCalled();
    clone.mockRestore();
    const rows = readMetrics(join(result.outDir, 'metrics.jsonl')).filter((m) => typeof m['reward/mean'] === 'number');
    expect(rows.map((m) => m.step)).toEqual(Array.from({ length: 14 }, (_, i) => i + 1));
    const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
    const early = mean(rows.slice(0, 3).map((m) => m['reward/mean'] as number));
    const late = mean(rows.slice(-3).map((m) => m['reward/mean'] as number));
    expect(late).toBeGreaterThan(early + 0.3);
    for (const m of rows) {
      expect(m['train/kl']).toBe(0); // no KL term without a reference
      expect(m['reward/sevens/errors']).toBe(0);
      for (const k of ['train/loss', 'train/entropy', 'train/grad_norm', 'rollout/completion_length/mean', 'time/generate_s', 'throughput/tokens_per_s']) {
        expect(Number.isFinite(m[k]), k).toBe(true);
      }
    }
    const before = await weights(initDir);
    const after = await weights(join(result.outDir, 'final'));
    let changed = 0;
    for (const [name, w] of before) if (w.some((v, i) => v !== after.get(name)![i])) changed++;
    expect(changed).toBe(before.size);
    // Evaluations at steps 0, 7, 14 with samples, and the report.
    expect(result.evals.map((e) => e.step)).toEqual([0, 7, 14]);
    const samples = readSamples(join(result.outDir, 'samples.jsonl'));
    expect(samples.map((s) => s.step)).toEqual([0, 0, 7, 7, 14, 14]);
    expect(Object.keys(samples[0]!.rewards)).toEqual(['sevens']);
    const html = readFileSync(join(result.outDir, 'report.html'), 'utf8');
    expect(html).toContain('eval/accuracy');
    expect(html).toContain('reward/mean');
  });

  it('a resumed run reproduces the uninterrupted one (weights and metrics), with a reference model and several updates per step', async () => {
    const overrides = { steps: 4, saveEvery: 2, beta: 0.1, numIterations: 2, miniBatchSize: 16, learningRate: 1e-2 };
    const rewards: RewardSpec[] = [{ name: 'sevens', fn: sevens }];
    const full = await trainGrpo(config('full', overrides), { ...quiet, rewards });
    expect(existsSync(join(full.outDir, 'checkpoint-2'))).toBe(true);
    const state = await readGrpoTrainerState(join(full.outDir, 'checkpoint-2'));
    expect(state.step).toBe(2);
    expect(state.initialModel.dir).toBe(initDir);
    const resumed = await trainGrpo(config('resumed', overrides), { ...quiet, rewards, resumeFrom: join(full.outDir, 'checkpoint-2') });
    expect(resumed.step).toBe(4);
    const a = await weights(join(full.outDir, 'final'));
    const b = await weights(join(resumed.outDir, 'final'));
    for (const [name, w] of a) expect(b.get(name), name).toEqual(w);
    const ma = readMetrics(join(full.outDir, 'metrics.jsonl')).filter((m) => m.step > 2).map(withoutTimes);
    const mb = readMetrics(join(resumed.outDir, 'metrics.jsonl')).map(withoutTimes);
    expect(mb).toEqual(ma);
    expect(ma.length).toBe(2);
    expect((ma[1]!['train/kl'] as number) > 0).toBe(true);
  });

  it('a reward function that throws is counted in reward/<fn>/errors and training goes on; no tensors leak', async () => {
    const thrower = (): number[] => {
      throw new Error('verifier crashed');
    };
    const tensorsBefore = tf.memory().numTensors;
    const result = await trainGrpo(config('throws', { steps: 3, beta: 0.05, numIterations: 2 }), {
      ...quiet,
      rewards: [
        { name: 'sevens', fn: sevens },
        { name: 'broken', fn: thrower },
      ],
    });
    expect(result.step).toBe(3);
    const rows = readMetrics(join(result.outDir, 'metrics.jsonl'));
    expect(rows.map((m) => m['reward/broken/errors'])).toEqual([1, 1, 1]);
    expect(rows.every((m) => m['reward/broken/mean'] === null && typeof m['reward/sevens/mean'] === 'number')).toBe(true);
    // The failing reward leaves no tensor behind: the run ends with exactly as many as it started with.
    expect(tf.memory().numTensors).toBe(tensorsBefore);
  });

  it('a diverging loss stops the run with a clear message and keeps the last good checkpoint', async () => {
    let calls = 0;
    // From the second step on, rewards of +-3e38: with no std scaling the per-sequence loss overflows.
    const exploding = (batch: RewardBatch): number[] => {
      if (batch.completions.length > 1) calls++; // not the one-row column check before training
      return batch.completions.map((_, i) => (calls <= 1 ? i % 3 : i % 2 === 0 ? 3e38 : -3e38));
    };
    const cfg = config('nan', { steps: 5, saveEvery: 1, scaleRewards: 'none', gradClip: 0 });
    await expect(trainGrpo(cfg, { ...quiet, rewards: [{ name: 'explode', fn: exploding }] })).rejects.toThrow(
      new RegExp(`training stopped at step 2: the loss is (NaN|-?Infinity).*not applied; the last good checkpoint is ${join(dir, 'nan', 'checkpoint-1')}`),
    );
    expect(existsSync(join(dir, 'nan', 'checkpoint-2'))).toBe(false);
    expect(latestGrpoCheckpoint(join(dir, 'nan'))).toBe(join(dir, 'nan', 'checkpoint-1'));
    const w = await weights(join(dir, 'nan', 'checkpoint-1'));
    for (const values of w.values()) expect(values.every(Number.isFinite)).toBe(true);
  });

  it('Ctrl-C finishes the step, saves a checkpoint and returns; --resume finds it', async () => {
    let calls = 0;
    const interrupting = (batch: RewardBatch): number[] => {
      if (batch.completions.length > 1 && ++calls === 2) process.emit('SIGINT'); // not the one-row column check
      return sevens(batch);
    };
    const result = await trainGrpo(config('sigint', { steps: 6 }), { quiet: true, rewards: [{ name: 'sevens', fn: interrupting }] });
    expect(result.interrupted).toBe(true);
    expect(result.step).toBe(2);
    expect(result.checkpointDir).toBe(join(dir, 'sigint', 'checkpoint-2'));
    expect(latestGrpoCheckpoint(join(dir, 'sigint'))).toBe(join(dir, 'sigint', 'checkpoint-2'));
    expect(process.listenerCount('SIGINT')).toBe(0);
  });

  it('bad data is an error naming the line and column before training starts', async () => {
    const ragged = join(dir, 'ragged.jsonl');
    writeFileSync(ragged, '{"prompt": "1+1=", "answer": "2"}\n{"prompt": "2+2=", "answer": "4"}\n{"prompt": "3+3="}\n');
    await expect(trainGrpo(config('ragged', { data: { trainFile: ragged } }), quiet)).rejects.toThrow(`${ragged}:3: missing column "answer"`);
    const noAnswer = join(dir, 'no-answer.jsonl');
    writeFileSync(noAnswer, '{"prompt": "1+1=", "result": "2"}\n');
    await expect(trainGrpo(config('no-answer', { data: { trainFile: noAnswer } }), quiet)).rejects.toThrow(`${noAnswer}:1: no column "answer", which reward "exact_match" reads`);
  });
});
