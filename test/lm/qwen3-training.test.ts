/**
 * The trainers on a tiny random Qwen3 (q/k norm, head_dim 16 != hidden 32 / 4 heads, GQA),
 * loaded from a Hugging Face folder as a user's model would be: SFT, GRPO and PPO each run a
 * couple of steps, every parameter (the q/k norm gains included) gets a finite update, and
 * the final checkpoint is a Qwen3 folder again.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RewardBatch } from '../../rewards/types.ts';
import { Rng } from '../../src/core/rng.ts';
import { loadCausalLM, saveCausalLM } from '../../src/lm/checkpoint.ts';
import { tinyQwen3Config } from '../../src/lm/config.ts';
import { CausalLM } from '../../src/lm/model.ts';
import { readMetrics } from '../../src/report/metrics.ts';
import { arithmeticTokenizer } from '../../src/trainers/from-scratch.ts';
import { trainGrpo } from '../../src/trainers/grpo.ts';
import { parseGrpoConfig } from '../../src/trainers/grpo-config.ts';
import { trainPpo } from '../../src/trainers/ppo.ts';
import { parsePpoConfig } from '../../src/trainers/ppo-config.ts';
import { trainSft } from '../../src/trainers/sft.ts';
import { parseSftConfig } from '../../src/trainers/sft-config.ts';
import { useCpu } from './lm-helpers.ts';

let dir: string;
let initDir: string;
let trainFile: string;

beforeAll(async () => {
  await useCpu();
  dir = mkdtempSync(join(tmpdir(), 'rlvr-qwen3-train-'));
  initDir = join(dir, 'init');
  const tok = arithmeticTokenizer();
  const config = tinyQwen3Config({ vocab_size: tok.vocabSize, max_position_embeddings: 24, eos_token_id: tok.eosTokenId });
  const model = CausalLM.create(config, new Rng(3));
  await saveCausalLM(model, tok, initDir);
  model.dispose();
  trainFile = join(dir, 'train.jsonl');
  writeFileSync(trainFile, Array.from({ length: 8 }, (_, i) => JSON.stringify({ prompt: `${i}+1=`, answer: String(i + 1) })).join('\n') + '\n');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function weights(path: string): Promise<Map<string, Float32Array>> {
  const { model } = await loadCausalLM(path);
  const out = new Map<string, Float32Array>();
  for (const [name, t] of model.getWeights()) out.set(name, t.dataSync() as Float32Array);
  model.dispose();
  return out;
}

/** Checks the run's final/ is a Qwen3 folder whose every parameter moved and stayed finite. */
async function expectTrainedQwen3(outDir: string): Promise<void> {
  const final = join(outDir, 'final');
  const saved = JSON.parse(readFileSync(join(final, 'config.json'), 'utf8')) as Record<string, unknown>;
  expect(saved).toMatchObject({ model_type: 'qwen3', architectures: ['Qwen3ForCausalLM'], head_dim: 16, hidden_size: 32 });
  const before = await weights(initDir);
  const after = await weights(final);
  expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
  expect(before.has('model.layers.1.self_attn.k_norm.weight')).toBe(true);
  for (const [name, w] of before) {
    const a = after.get(name)!;
    expect(a.every(Number.isFinite), name).toBe(true);
    expect(a.some((v, i) => v !== w[i]), `${name} changed`).toBe(true);
  }
}

/** Fraction of the completion's characters that are '7'. */
function sevens(batch: RewardBatch): number[] {
  return batch.completions.map((c) => (c.length === 0 ? 0 : [...c].filter((x) => x === '7').length / c.length));
}

const quiet = { quiet: true, handleSigint: false } as const;
const finiteSteps = (outDir: string, key: string): number[] =>
  readMetrics(join(outDir, 'metrics.jsonl'))
    .filter((m) => typeof m[key] === 'number')
    .map((m) => m[key] as number);

describe('training a tiny random Qwen3 from a Hugging Face folder', () => {
  it('SFT runs two steps', async () => {
    const config = parseSftConfig({
      model: { modelDir: initDir },
      data: { generate: { trainSize: 16, testSize: 4, digits: [1, 1] } },
      steps: 2,
      batchSize: 4,
      learningRate: 1e-2,
      warmupSteps: 0,
      evalEvery: 0,
      evalSize: 4,
      saveEvery: 0,
      logEvery: 1,
      outDir: join(dir, 'sft'),
    });
    const result = await trainSft(config, quiet);
    expect(result.step).toBe(2);
    const losses = finiteSteps(result.outDir, 'train/loss');
    expect(losses).toHaveLength(2);
    expect(losses.every(Number.isFinite)).toBe(true);
    await expectTrainedQwen3(result.outDir);
  });

  it('GRPO runs two steps with a reference model', async () => {
    const config = parseGrpoConfig({
      model: { modelDir: initDir },
      data: { trainFile },
      steps: 2,
      promptsPerStep: 2,
      numGenerations: 4,
      maxCompletionLength: 4,
      learningRate: 1e-2,
      warmupSteps: 0,
      beta: 0.1,
      saveEvery: 0,
      evalEvery: 0,
      report: false,
      outDir: join(dir, 'grpo'),
    });
    const result = await trainGrpo(config, { ...quiet, rewards: [{ name: 'sevens', fn: sevens }] });
    expect(result.step).toBe(2);
    const kl = finiteSteps(result.outDir, 'train/kl');
    expect(kl).toHaveLength(2);
    expect(kl.every(Number.isFinite)).toBe(true);
    await expectTrainedQwen3(result.outDir);
  });

  it('PPO runs two steps with a Qwen3-trunk critic', async () => {
    const config = parsePpoConfig({
      model: { modelDir: initDir },
      data: { trainFile },
      steps: 2,
      promptsPerStep: 2,
      numGenerations: 2,
      maxCompletionLength: 3,
      learningRate: 1e-2,
      criticLearningRate: 1e-2,
      warmupSteps: 0,
      criticWarmupSteps: 0,
      miniBatchSize: 4,
      ppoEpochs: 1,
      saveEvery: 0,
      evalEvery: 0,
      report: false,
      outDir: join(dir, 'ppo'),
    });
    const result = await trainPpo(config, { ...quiet, rewards: [{ name: 'sevens', fn: sevens }] });
    expect(result.step).toBe(2);
    expect(finiteSteps(result.outDir, 'train/loss').every(Number.isFinite)).toBe(true);
    await expectTrainedQwen3(result.outDir);
  });
});
