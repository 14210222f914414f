/**
 * Whole training runs leave no tensor behind: `tf.memory().numTensors` is the same before
 * and after a full GRPO run (reference model and recomputed old log-probs on, evaluation
 * and checkpoints included) and a full SFT run, and after an SFT run stopped by a
 * non-finite gradient. That last run also checks that SFT stops on it through the shared
 * loop (the message names step 1 and says the update was not applied; no optimizer update
 * ran).
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { arithmeticTokenizer } from '../../src/trainers/from-scratch.ts';
import type { RewardBatch } from '../../rewards/types.ts';
import { AdamW } from '../../src/engine/tfjs/optim.ts';
import { Rng } from '../../src/core/rng.ts';
import { saveCausalLM } from '../../src/lm/checkpoint.ts';
import { tinyGpt2Config } from '../../src/lm/config.ts';
import { CausalLM } from '../../src/lm/model.ts';
import { readMetrics } from '../../src/report/metrics.ts';
import { trainGrpo } from '../../src/trainers/grpo.ts';
import { parseGrpoConfig } from '../../src/trainers/grpo-config.ts';
import { trainSft } from '../../src/trainers/sft.ts';
import { parseSftConfig } from '../../src/trainers/sft-config.ts';
import { useCpu } from '../lm/lm-helpers.ts';

let dir: string;
let initDir: string;
let overflowDir: string;
let trainFile: string;
let testFile: string;

const modelConfig = tinyGpt2Config({ vocab_size: 22, n_positions: 16, n_embd: 32, n_layer: 2, n_head: 2 });

beforeAll(async () => {
  await useCpu();
  dir = mkdtempSync(join(tmpdir(), 'rlvr-leaks-'));
  const tok = arithmeticTokenizer();
  initDir = join(dir, 'init');
  const model = CausalLM.create(modelConfig, new Rng(1));
  await saveCausalLM(model, tok, initDir);
  // The same model with one weight matrix finite (NaN weights are refused when a model
  // loads) but so large that the backward pass overflows: every gradient on it is infinite.
  overflowDir = join(dir, 'overflow-init');
  const first = model.variables[0]!;
  first.assign(tf.fill(first.shape, 3e38));
  await saveCausalLM(model, tok, overflowDir);
  model.dispose();
  trainFile = join(dir, 'train.jsonl');
  testFile = join(dir, 'test.jsonl');
  writeFileSync(trainFile, Array.from({ length: 12 }, (_, i) => JSON.stringify({ prompt: `${i}+1=`, answer: String(i + 1) })).join('\n') + '\n');
  writeFileSync(testFile, Array.from({ length: 4 }, (_, i) => JSON.stringify({ prompt: `${i}+2=`, answer: String(i + 2) })).join('\n') + '\n');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Fraction of the completion's characters that are '7' (0 for an empty completion). */
function sevens(batch: RewardBatch): number[] {
  return batch.completions.map((c) => (c.length === 0 ? 0 : [...c].filter((x) => x === '7').length / c.length));
}

const quiet = { quiet: true, handleSigint: false } as const;

describe('no tensor outlives a training run', () => {
  it.each(['tfjs', 'onnxruntime'])('GRPO on %s with a reference model (beta > 0), two updates per step, evaluation and checkpoints: zero leaked tensors', async (engine) => {
    const config = parseGrpoConfig({
      engine,
      model: { modelDir: initDir },
      data: { trainFile, testFile },
      steps: 3,
      promptsPerStep: 2,
      numGenerations: 4,
      maxCompletionLength: 4,
      learningRate: 1e-2,
      warmupSteps: 0,
      beta: 0.1,
      numIterations: 2,
      miniBatchSize: 4, // two minibatches per pass
      saveEvery: 2,
      evalEvery: 2,
      report: false,
      outDir: join(dir, `grpo-${engine}`),
    });
    const before = tf.memory().numTensors;
    const result = await trainGrpo(config, { ...quiet, rewards: [{ name: 'sevens', fn: sevens }] });
    expect(tf.memory().numTensors).toBe(before);
    // The run did what the test claims: every step trained with a KL term, and it evaluated and saved.
    expect(result.step).toBe(3);
    expect(result.evals.map((e) => e.step)).toEqual([0, 2, 3]);
    expect(existsSync(join(result.outDir, 'checkpoint-2'))).toBe(true);
    const steps = readMetrics(join(result.outDir, 'metrics.jsonl')).filter((m) => typeof m['train/loss'] === 'number');
    expect(steps.map((m) => m.step)).toEqual([1, 2, 3]);
    expect(steps.every((m) => Number.isFinite(m['train/kl']))).toBe(true);
    expect((steps[2]!['train/kl'] as number) > 0).toBe(true); // the policy moved away from the reference
  });

  it('SFT with evaluation and checkpoints: zero leaked tensors', async () => {
    const config = parseSftConfig({
      model: { init: { architecture: 'llama', hiddenSize: 16, layers: 1, heads: 2, kvHeads: 1, contextLength: 12 } },
      data: { generate: { trainSize: 20, testSize: 6, digits: [1, 1] } },
      steps: 4,
      batchSize: 4,
      learningRate: 1e-2,
      warmupSteps: 1,
      evalEvery: 2,
      evalSize: 6,
      evalBatchSize: 4,
      saveEvery: 2,
      logEvery: 1,
      outDir: join(dir, 'sft'),
    });
    const before = tf.memory().numTensors;
    const result = await trainSft(config, quiet);
    expect(tf.memory().numTensors).toBe(before);
    expect(result.step).toBe(4);
    expect(result.evals.map((e) => e.step)).toEqual([2, 4]);
    expect(existsSync(join(result.outDir, 'checkpoint-2'))).toBe(true);
  });

  it('SFT on a model whose gradient overflows stops at step 1 without updating, and leaks nothing', async () => {
    const applied = vi.spyOn(AdamW.prototype, 'applyGradients');
    const outDir = join(dir, 'sft-overflow');
    const config = parseSftConfig({
      model: { modelDir: overflowDir },
      data: { generate: { trainSize: 20, testSize: 6, digits: [1, 1] } },
      steps: 5,
      batchSize: 4,
      learningRate: 1e-2,
      warmupSteps: 0,
      evalEvery: 0,
      evalSize: 6,
      saveEvery: 1,
      outDir,
    });
    const before = tf.memory().numTensors;
    await expect(trainSft(config, quiet)).rejects.toThrow(
      /^training stopped at step 1: the loss is \S+ and the gradient norm (NaN|Infinity), so this update was not applied; no checkpoint had been written yet\./,
    );
    expect(applied).not.toHaveBeenCalled();
    applied.mockRestore();
    expect(tf.memory().numTensors).toBe(before);
    // Nothing was saved: no checkpoint-1, no final/ (only the run's logs).
    expect(readdirSync(outDir).sort()).toEqual(['config.json', 'metrics.jsonl', 'samples.jsonl']);
    expect(readMetrics(join(outDir, 'metrics.jsonl'))).toEqual([]);
  });
});
