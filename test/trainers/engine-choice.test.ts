/**
 * `engine`: the same short GRPO run sampled by tfjs and by onnxruntime (which follows the
 * policy's weights after every update) draws the same completions and gives the same
 * metrics to float rounding; the run header says which engine sampled; a PPO and an SFT
 * run work with onnxruntime sampling too.
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

describe('sampling engine', () => {
  it('GRPO sampled by onnxruntime draws what tfjs draws, step after step, and the header names the engine', async () => {
    const runs: Record<string, { metrics: Record<string, unknown>[]; samples: unknown[]; header: string }> = {};
    for (const engine of ['tfjs', 'onnxruntime']) {
      const out = capture();
      const r = await trainGrpo(parseGrpoConfig({ ...base(engine, `grpo-${engine}`), beta: 0.05 }), { rewards: [{ name: 'sevens', fn: sevens }], handleSigint: false, stream: out.stream });
      runs[engine] = { metrics: readMetrics(join(r.outDir, 'metrics.jsonl')), samples: readSamples(join(r.outDir, 'samples.jsonl')), header: out.text() };
    }
    expect(runs['tfjs']!.header).toMatch(/sampling: tfjs/);
    expect(runs['onnxruntime']!.header).toMatch(/sampling: onnxruntime, \d+ threads?/);
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

  it('PPO runs with onnxruntime sampling and says so', async () => {
    const out = capture();
    const r = await trainPpo(parsePpoConfig({ ...base('onnxruntime', 'ppo-ort'), steps: 2, criticWarmupSteps: 0, miniBatchSize: 16 }), { rewards: [{ name: 'sevens', fn: sevens }], handleSigint: false, stream: out.stream });
    expect(r.step).toBe(2);
    expect(out.text()).toMatch(/sampling: onnxruntime/);
  });
});
