/**
 * Whole PPO-with-critic runs on a tiny GPT-2 (cpu backend): learning a trivially learnable
 * reward with the critic saved beside the policy, a resumed run reproducing the uninterrupted
 * one bit for bit (policy, critic trunk, value head, metrics), no leaked tensors, the critic
 * warm-up leaving the policy untouched, and a checkpoint missing its value head refused.
 * (A reward function returning NaN is the shared combiner's case, tested in
 * test/rewards/combine.test.ts; the trainers see a counted error, as for GRPO.)
 */
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { arithmeticTokenizer } from '../../src/trainers/from-scratch.ts';
import { completionTexts, type RewardBatch, type RewardSpec } from '../../rewards/types.ts';
import { Rng } from '../../src/core/rng.ts';
import { loadCausalLM, saveCausalLM } from '../../src/lm/checkpoint.ts';
import { tinyGpt2Config } from '../../src/lm/config.ts';
import { CausalLM } from '../../src/lm/model.ts';
import { ValueHead } from '../../src/lm/value-head.ts';
import { readMetrics } from '../../src/report/metrics.ts';
import { readPpoTrainerState, trainPpo } from '../../src/trainers/ppo.ts';
import { type PpoConfig, parsePpoConfig } from '../../src/trainers/ppo-config.ts';
import { useCpu } from '../lm/lm-helpers.ts';

let dir: string;
let initDir: string;
let trainFile: string;
const HIDDEN = 32;

beforeAll(async () => {
  await useCpu();
  dir = mkdtempSync(join(tmpdir(), 'rlvr-ppo-run-'));
  initDir = join(dir, 'init');
  const model = CausalLM.create(tinyGpt2Config({ vocab_size: 22, n_positions: 16, n_embd: HIDDEN, n_layer: 2, n_head: 2 }), new Rng(1));
  await saveCausalLM(model, arithmeticTokenizer(), initDir);
  model.dispose();
  trainFile = join(dir, 'train.jsonl');
  writeFileSync(trainFile, Array.from({ length: 16 }, (_, i) => JSON.stringify({ prompt: `${i}+1=`, answer: String(i + 1) })).join('\n') + '\n');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** 1 when the completion starts with '7', else 0: one decision at the first token. */
function startsWithSeven(batch: RewardBatch): number[] {
  return completionTexts(batch).map((c) => (c.startsWith('7') ? 1 : 0));
}
const rewards: RewardSpec[] = [{ name: 'seven', fn: startsWithSeven }];

function config(outDir: string, overrides: Record<string, unknown> = {}): PpoConfig {
  return parsePpoConfig({
    model: { modelDir: initDir },
    data: { trainFile },
    promptsPerStep: 4,
    numGenerations: 4,
    maxCompletionLength: 3,
    learningRate: 2e-2,
    criticLearningRate: 1e-2,
    warmupSteps: 0,
    criticWarmupSteps: 0,
    miniBatchSize: 8,
    ppoEpochs: 2,
    saveEvery: 0,
    evalEvery: 0,
    report: false,
    outDir: join(dir, outDir),
    ...overrides,
  });
}

const quiet = { quiet: true, handleSigint: false, rewards } as const;

async function weights(path: string): Promise<Map<string, Float32Array>> {
  const { model } = await loadCausalLM(path);
  const out = new Map<string, Float32Array>();
  for (const [name, t] of model.getWeights()) out.set(name, t.dataSync() as Float32Array);
  model.dispose();
  return out;
}

async function headValues(criticDir: string): Promise<Float32Array[]> {
  const head = await ValueHead.load(join(criticDir, 'value_head.safetensors'), HIDDEN);
  const out = head.variables.map((v) => v.dataSync() as Float32Array);
  head.dispose();
  return out;
}

/** How many tensors of `a` differ anywhere from the same-named tensor of `b`. */
function changedTensors(a: Map<string, Float32Array>, b: Map<string, Float32Array>): number {
  let n = 0;
  for (const [name, w] of a) if (w.some((v, i) => v !== b.get(name)![i])) n++;
  return n;
}

/** A metrics line without its wall-clock, throughput and memory readings (which differ run to run). */
function withoutTimes(rec: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(rec).filter(([k]) => k !== 'time' && !k.startsWith('time/') && !k.startsWith('throughput/') && !k.startsWith('memory/')));
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

describe('PPO with a critic on a tiny model', () => {
  it('learns a trivially learnable reward; the critic is saved in final/critic and the policy folder loads', async () => {
    const steps = 15;
    const tensorsBefore = tf.memory().numTensors;
    const result = await trainPpo(config('learn', { steps, ppoEpochs: 1, miniBatchSize: 0 }), quiet);
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    expect(result.step).toBe(steps);
    const rows = readMetrics(join(result.outDir, 'metrics.jsonl'));
    expect(rows.map((m) => m.step)).toEqual(Array.from({ length: steps }, (_, i) => i + 1));
    const early = mean(rows.slice(0, 4).map((m) => m['reward/mean'] as number));
    const late = mean(rows.slice(-4).map((m) => m['reward/mean'] as number));
    expect(late).toBeGreaterThan(early + 0.3);
    for (const m of rows) {
      for (const k of ['critic/explained_variance', 'critic/value_loss', 'critic/grad_norm', 'train/loss', 'train/grad_norm', 'train/kl']) expect(Number.isFinite(m[k]), `${k} at step ${m.step}`).toBe(true);
      expect(m['train/learning_rate']).toBe(2e-2);
      expect(m['critic/learning_rate']).toBe(1e-2);
    }
    const final = join(result.outDir, 'final');
    for (const f of ['config.json', 'model.safetensors', 'value_head.safetensors', 'optimizer.safetensors']) expect(existsSync(join(final, 'critic', f)), f).toBe(true);
    const before = await weights(initDir);
    const policy = await weights(final);
    const trunk = await weights(join(final, 'critic'));
    expect(changedTensors(before, policy)).toBe(before.size);
    expect(changedTensors(before, trunk)).toBeGreaterThan(0);
    expect(changedTensors(policy, trunk)).toBe(before.size); // two separate models
    expect(result.parameters.critic).toBe(result.parameters.policy + HIDDEN + 1);
  });

  it('a resumed run reproduces the uninterrupted one bit for bit (policy, critic trunk, value head, optimizers, metrics), and neither leaks a tensor', async () => {
    // Critic warm-up, a reference (KL in the reward and in the loss), two epochs of two
    // minibatches, a decaying schedule: everything the checkpoint must carry.
    const overrides = { steps: 4, saveEvery: 2, criticWarmupSteps: 1, klCoef: 0.05, beta: 0.05, lrSchedule: 'linear', minLrRatio: 0.2, learningRate: 1e-2 };
    const t0 = tf.memory().numTensors;
    const full = await trainPpo(config('full', overrides), quiet);
    expect(tf.memory().numTensors).toBe(t0);
    const ckpt = join(full.outDir, 'checkpoint-2');
    const state = await readPpoTrainerState(ckpt);
    expect(state.step).toBe(2);
    expect(state.format).toBe('rlvr-ppo-trainer-state');
    expect(state.initialModel.dir).toBe(initDir);
    const resumed = await trainPpo(config('resumed', overrides), { ...quiet, resumeFrom: ckpt });
    expect(tf.memory().numTensors).toBe(t0);
    expect(resumed.step).toBe(4);

    const a = join(full.outDir, 'final');
    const b = join(resumed.outDir, 'final');
    const [pa, pb] = [await weights(a), await weights(b)];
    for (const [name, w] of pa) expect(pb.get(name), `policy ${name}`).toEqual(w);
    const [ca, cb] = [await weights(join(a, 'critic')), await weights(join(b, 'critic'))];
    for (const [name, w] of ca) expect(cb.get(name), `critic ${name}`).toEqual(w);
    expect(await headValues(join(b, 'critic'))).toEqual(await headValues(join(a, 'critic')));
    for (const f of ['optimizer.safetensors', 'critic/optimizer.safetensors']) expect(readFileSync(join(b, f)).equals(readFileSync(join(a, f))), f).toBe(true);
    // The run moved: the weights compared are not still the starting ones.
    expect(changedTensors(await weights(initDir), pa)).toBeGreaterThan(0);

    const ma = readMetrics(join(full.outDir, 'metrics.jsonl')).filter((m) => m.step > 2).map(withoutTimes);
    const mb = readMetrics(join(resumed.outDir, 'metrics.jsonl')).map(withoutTimes);
    expect(ma.map((m) => m['step'])).toEqual([3, 4]);
    expect(mb).toEqual(ma);
    expect(ma[1]!['train/kl'] as number).toBeGreaterThan(0);
  });

  it('during the critic warm-up the policy does not move and its schedule starts after it; the critic does move', async () => {
    const learningRate = 1e-2;
    const result = await trainPpo(config('warmup', { steps: 4, criticWarmupSteps: 2, saveEvery: 1, lrSchedule: 'linear', minLrRatio: 0, learningRate }), quiet);
    const rows = readMetrics(join(result.outDir, 'metrics.jsonl'));
    expect(rows.map((m) => m['train/learning_rate'])).toEqual([0, 0, learningRate, learningRate / 2]); // the policy's 2 steps: linear from the peak to 0 at its end
    for (const m of rows.slice(0, 2)) {
      expect(m['train/loss'] ?? null).toBeNull();
      expect(Number.isFinite(m['critic/value_loss'])).toBe(true);
    }
    for (const m of rows.slice(2)) expect(Number.isFinite(m['train/loss'])).toBe(true);
    const start = await weights(initDir);
    for (const step of [1, 2]) {
      const policy = await weights(join(result.outDir, `checkpoint-${step}`));
      expect(changedTensors(start, policy), `policy at step ${step}`).toBe(0);
    }
    expect(changedTensors(start, await weights(join(result.outDir, 'checkpoint-2', 'critic')))).toBeGreaterThan(0);
    expect(changedTensors(start, await weights(join(result.outDir, 'checkpoint-3')))).toBe(start.size);
  });

  it('resuming is refused when the checkpoint lacks its value head, or has already reached the steps asked for', async () => {
    const source = join(dir, 'warmup', 'checkpoint-2');
    const broken = join(dir, 'broken-checkpoint');
    cpSync(source, broken, { recursive: true });
    rmSync(join(broken, 'critic', 'value_head.safetensors'));
    await expect(trainPpo(config('broken', { steps: 4 }), { ...quiet, resumeFrom: broken })).rejects.toThrow(`cannot resume from ${broken}: the critic's critic/value_head.safetensors is missing`);
    await expect(trainPpo(config('done', { steps: 2 }), { ...quiet, resumeFrom: source })).rejects.toThrow(/"steps" \(2\) must be greater than the checkpoint's step \(2\)/);
  });
});
