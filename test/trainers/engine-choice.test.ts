/**
 * `engine`: the same short GRPO run sampled by tfjs and by onnxruntime (which follows the
 * policy's weights after every update) draws the same completions and gives the same
 * metrics to float rounding; the run header says which engine sampled; a PPO and an SFT
 * run work with onnxruntime sampling too.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RewardBatch } from '../../rewards/types.ts';
import { Rng } from '../../src/core/rng.ts';
import { saveCausalLM } from '../../src/lm/checkpoint.ts';
import { tinyGpt2Config } from '../../src/lm/config.ts';
import { CausalLM } from '../../src/lm/model.ts';
import { readMetrics, readSamples } from '../../src/report/metrics.ts';
import { arithmeticTokenizer } from '../../src/trainers/from-scratch.ts';
import { trainGrpo } from '../../src/trainers/grpo.ts';
import { parseGrpoConfig } from '../../src/trainers/grpo-config.ts';
import { trainPpo } from '../../src/trainers/ppo.ts';
import { parsePpoConfig } from '../../src/trainers/ppo-config.ts';
import { useCpu } from '../lm/lm-helpers.ts';

let dir: string;
let initDir: string;
let trainFile: string;
let testFile: string;

beforeAll(async () => {
  await useCpu();
  dir = mkdtempSync(join(tmpdir(), 'rlvr-engine-'));
  initDir = join(dir, 'init');
  const model = CausalLM.create(tinyGpt2Config({ vocab_size: 22, n_positions: 16, n_embd: 32, n_layer: 2, n_head: 2 }), new Rng(1));
  await saveCausalLM(model, arithmeticTokenizer(), initDir);
  model.dispose();
  trainFile = join(dir, 'train.jsonl');
  testFile = join(dir, 'test.jsonl');
  writeFileSync(trainFile, Array.from({ length: 24 }, (_, i) => JSON.stringify({ prompt: `${i}+1=`, answer: String(i + 1) })).join('\n') + '\n');
  writeFileSync(testFile, Array.from({ length: 6 }, (_, i) => JSON.stringify({ prompt: `${i}+2=`, answer: String(i + 2) })).join('\n') + '\n');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sevens = (batch: RewardBatch): number[] => batch.completions.map((c) => (c.length === 0 ? 0 : [...c].filter((x) => x === '7').length / c.length));

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
  model: { modelDir: initDir },
  data: { trainFile, testFile },
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
  outDir: join(dir, outDir),
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
