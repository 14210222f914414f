/**
 * `engine`: the same short GRPO run on tfjs and on onnxruntime (sampling, which follows the
 * policy's weights after every update, and the updates' forward and backward passes, the
 * reference's log-probs included) draws the same completions and gives the same metrics to
 * float rounding; the run header says which engine sampled and which updated; a PPO run
 * (policy, reference and critic on onnxruntime) matches its tfjs run the same way; a GRPO
 * run checkpointed on tfjs resumes on onnxruntime and lands where the tfjs run lands.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readMetrics, readSamples } from '../../src/report/metrics.ts';
import { trainGrpo } from '../../src/trainers/grpo.ts';
import { parseGrpoConfig } from '../../src/trainers/grpo-config.ts';
import { trainPpo } from '../../src/trainers/ppo.ts';
import { parsePpoConfig } from '../../src/trainers/ppo-config.ts';
import { useCpu } from '../lm/lm-helpers.ts';
import { type TinyRlFixture, makeTinyRlFixture, sevens } from './tiny-rl-fixture.ts';

let fx: TinyRlFixture;
beforeAll(async () => {
  await useCpu();
  fx = await makeTinyRlFixture('rlvr-engine-');
});
afterAll(() => rmSync(fx.dir, { recursive: true, force: true }));

function capture(): { stream: Writable; text: () => string } {
  let out = '';
  return {
    stream: new Writable({
      write(chunk, _enc, cb) {
        out += String(chunk);
        cb();
      },
    }),
    text: () => out,
  };
}

const base = (engine: string, outDir: string) => ({
  model: { modelDir: fx.initDir },
  data: { trainFile: fx.trainFile, testFile: fx.testFile },
  promptsPerStep: 4,
  numGenerations: 8,
  maxCompletionLength: 4,
  learningRate: 2e-2,
  warmupSteps: 0,
  steps: 4,
  evalEvery: 2,
  logSamples: 6,
  saveEvery: 0,
  report: false,
  engine,
  outDir: join(fx.dir, outDir),
});

describe('engine', () => {
  it('GRPO on onnxruntime draws what tfjs draws and updates as tfjs does, step after step, and the header names the engine', async () => {
    const runs: Record<string, { metrics: Record<string, unknown>[]; samples: unknown[]; header: string }> = {};
    for (const engine of ['tfjs', 'onnxruntime']) {
      const out = capture();
      const r = await trainGrpo(parseGrpoConfig({ ...base(engine, `grpo-${engine}`), beta: 0.05 }), { rewards: [{ name: 'sevens', fn: sevens }], handleSigint: false, stream: out.stream });
      runs[engine] = { metrics: readMetrics(join(r.outDir, 'metrics.jsonl')), samples: readSamples(join(r.outDir, 'samples.jsonl')), header: out.text() };
    }
    expect(runs['tfjs']!.header).toMatch(/sampling: tfjs/);
    expect(runs['onnxruntime']!.header).toMatch(/sampling: onnxruntime, \d+ threads?/);
    expect(runs['tfjs']!.header).toMatch(/updates: tfjs/);
    expect(runs['onnxruntime']!.header).toMatch(/updates: onnxruntime forward \+ backward \(policy and reference\)/);
    // The same completions at every evaluation (greedy) ...
    expect(runs['onnxruntime']!.samples).toEqual(runs['tfjs']!.samples);
    // ... and in every training rollout (sampled): same rewards, lengths and losses.
    const a = runs['tfjs']!.metrics.filter((m) => typeof m['reward/mean'] === 'number');
    const b = runs['onnxruntime']!.metrics.filter((m) => typeof m['reward/mean'] === 'number');
    expect(b.length).toBe(4);
    a.forEach((m, i) => {
      for (const k of ['reward/mean', 'reward/std', 'rollout/completion_length/mean']) expect(b[i]![k], `${k} at step ${i + 1}`).toBe(m[k]);
      for (const k of ['train/loss', 'train/kl', 'train/grad_norm']) expect(b[i]![k] as number, `${k} at step ${i + 1}`).toBeCloseTo(m[k] as number, 5);
    });
    // The policy moved, so later rollouts needed the synced weights to match.
    expect(a[3]!['train/kl']).toBeGreaterThan(0);
  });

  it('PPO on onnxruntime (policy, reference and critic) gives the tfjs run\'s metrics, and says so', async () => {
    const runs: Record<string, { metrics: Record<string, unknown>[]; header: string }> = {};
    for (const engine of ['tfjs', 'onnxruntime']) {
      const out = capture();
      const r = await trainPpo(parsePpoConfig({ ...base(engine, `ppo-${engine}`), steps: 3, evalEvery: 0, criticWarmupSteps: 1, miniBatchSize: 16, klCoef: 0.05 }), { rewards: [{ name: 'sevens', fn: sevens }], handleSigint: false, stream: out.stream });
      expect(r.step).toBe(3);
      runs[engine] = { metrics: readMetrics(join(r.outDir, 'metrics.jsonl')).filter((m) => typeof m['reward/mean'] === 'number'), header: out.text() };
    }
    expect(runs['onnxruntime']!.header).toMatch(/sampling: onnxruntime/);
    expect(runs['onnxruntime']!.header).toMatch(/updates: onnxruntime forward \+ backward \(policy, reference and critic\)/);
    const [a, b] = [runs['tfjs']!.metrics, runs['onnxruntime']!.metrics];
    expect(b.length).toBe(3);
    const keys = ['train/loss', 'critic/value_loss', 'critic/explained_variance', 'train/kl'];
    for (const k of keys) expect(typeof a[2]![k], k).toBe('number');
    a.forEach((m, i) => {
      expect(b[i]!['reward/mean'], `reward/mean at step ${i + 1}`).toBe(m['reward/mean']);
      for (const k of keys) {
        if (typeof m[k] !== 'number') expect(b[i]![k], `${k} at step ${i + 1} (the critic warm-up has no policy loss)`).toBe(m[k]);
        else expect(b[i]![k] as number, `${k} at step ${i + 1}`).toBeCloseTo(m[k] as number, 4);
      }
    });
  });

  it('a GRPO run checkpointed on tfjs resumes on onnxruntime and lands where the tfjs run lands', async () => {
    const run = (engine: string, dir: string) => parseGrpoConfig({ ...base(engine, dir), evalEvery: 0, saveEvery: 2, beta: 0.05 });
    const quiet = { rewards: [{ name: 'sevens', fn: sevens }], handleSigint: false, stream: capture().stream };
    const full = await trainGrpo(run('tfjs', 'resume-tfjs'), quiet);
    const resumed = await trainGrpo(run('onnxruntime', 'resume-ort'), { ...quiet, resumeFrom: join(full.outDir, 'checkpoint-2') });
    expect(resumed.step).toBe(4);
    const a = readMetrics(join(full.outDir, 'metrics.jsonl')).filter((m) => m.step > 2 && typeof m['reward/mean'] === 'number');
    const b = readMetrics(join(resumed.outDir, 'metrics.jsonl')).filter((m) => typeof m['reward/mean'] === 'number');
    expect(b.map((m) => m.step)).toEqual([3, 4]);
    a.forEach((m, i) => {
      expect(b[i]!['reward/mean']).toBe(m['reward/mean']);
      for (const k of ['train/loss', 'train/kl', 'train/grad_norm']) expect(b[i]![k] as number, `${k} at step ${m.step}`).toBeCloseTo(m[k] as number, 4);
    });
  });
});
