/**
 * SFT steps on onnxruntime leave nothing behind: 100 steps of `sftTrainStepOrt` keep the
 * tfjs tensor count and bytes flat after the first (which creates AdamW's moments), and the
 * loss goes down.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.ts';
import { OrtTrainer } from '../../src/engine/onnx/trainer.ts';
import { tinyGpt2Config } from '../../src/lm/config.ts';
import { CausalLM } from '../../src/lm/model.ts';
import { createAdamW } from '../../src/trainers/run.ts';
import { sftTrainStepOrt } from '../../src/trainers/sft.ts';
import type { SftBatch } from '../../src/trainers/token-batch.ts';
import { useCpu } from '../lm/lm-helpers.ts';

beforeAll(useCpu);

describe('SFT on onnxruntime: memory', () => {
  it('100 steps keep the tensor count and bytes flat, and learn', async () => {
    const model = CausalLM.create(tinyGpt2Config({ vocab_size: 16, n_positions: 8, n_embd: 16, n_layer: 2, n_head: 2 }), new Rng(1));
    const trainer = await OrtTrainer.create(model.config);
    const optimizer = createAdamW(model.variables, { learningRate: 1e-2, weightDecay: 0, beta1: 0.9, beta2: 0.99, adamEpsilon: 1e-8 });
    const rng = new Rng(2);
    const B = 4;
    const T = 6;
    const ids = Int32Array.from({ length: B * T }, () => rng.int(16));
    const targets = Int32Array.from({ length: B * T }, (_, i) => ids[(i + 1) % (B * T)]!);
    const batch: SftBatch = { size: B, length: T, inputIds: ids, targets, lossMask: new Float32Array(B * T).fill(1), numTokens: B * T, numTargets: B * T };
    const first = await sftTrainStepOrt(model, trainer, optimizer, batch, { learningRate: 1e-2, gradClip: 1 });
    const after1 = tf.memory();
    let last = first;
    for (let i = 0; i < 99; i++) last = await sftTrainStepOrt(model, trainer, optimizer, batch, { learningRate: 1e-2, gradClip: 1 });
    expect(tf.memory().numTensors).toBe(after1.numTensors);
    expect(tf.memory().numBytes).toBe(after1.numBytes);
    expect(last.loss).toBeLessThan(first.loss * 0.5);
    await trainer.dispose();
    optimizer.dispose();
    model.dispose();
  });
});
