/**
 * Gradient checkpointing of the transformer blocks: the same loss and gradients as the plain
 * backward pass (cpu and wasm), fewer tensors held after the forward pass, no leaks, other
 * variables in the same loss still get their gradients, and inference is unchanged.
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { initEngine } from '../../src/engine/tfjs/backend.ts';
import { Rng } from '../../src/core/rng.ts';
import { type CausalLMConfig, modelDims, tinyGpt2Config, tinyLlamaConfig, tinyQwen3Config } from '../../src/lm/config.ts';
import { blockActivationBytes, CausalLM, CHECKPOINT_AUTO_BYTES } from '../../src/lm/model.ts';
import { leftPad, maxAbsDiff } from './lm-helpers.ts';

const CONFIGS: Array<[string, CausalLMConfig]> = [
  ['gpt2', tinyGpt2Config()],
  ['llama (GQA, RoPE)', tinyLlamaConfig()],
  ['qwen2-style (q/k/v bias, untied)', tinyLlamaConfig({ model_type: 'qwen2', tie_word_embeddings: false })],
  ['qwen3 (q/k norm, head_dim 16)', tinyQwen3Config()],
];

afterAll(async () => {
  await initEngine({ backend: 'cpu', quiet: true });
});

interface StepResult {
  loss: number;
  grads: Map<string, Float32Array>;
  headGrad: Float32Array;
  /** Tensors alive when the forward pass ends, i.e. what the tape keeps for the backward pass (a count, not a time). */
  liveTensorsForBackward: number;
}

/**
 * Masked next-token loss on a left-padded batch plus a value-head term on the hidden states
 * (a variable outside the model), with checkpointing set to `mode`.
 */
function step(model: CausalLM, head: tf.Variable, mode: 'auto' | boolean): StepResult {
  model.gradientCheckpointing = mode;
  const rng = new Rng(7);
  const V = model.dims.vocabSize;
  const { ids, mask } = leftPad([9, 5, 7].map((n) => Array.from({ length: n }, () => 1 + rng.int(V - 1))));
  let liveTensorsForBackward = 0;
  const { value, grads } = tf.variableGrads(() => {
    const hidden = model.hiddenStates(ids, { attentionMask: mask }); // [B, T, D]
    liveTensorsForBackward = tf.memory().numTensors;
    const logits = model.logits(hidden);
    const targets = tf.oneHot(tf.slice(ids, [0, 1], [-1, -1]), V);
    const ce = tf.losses.softmaxCrossEntropy(targets, tf.slice(logits, [0, 0, 0], [-1, 8, -1]), tf.slice(mask, [0, 1], [-1, -1]));
    const values = tf.matMul(tf.reshape(hidden, [-1, model.dims.hiddenSize]), head); // [B*T, 1]
    return tf.add(ce, tf.mean(tf.square(values))) as tf.Scalar;
  }, [...model.variables, head]);
  const out: StepResult = {
    loss: value.dataSync()[0]!,
    grads: new Map(model.variables.map((v, i) => [model.variableNames[i]!, grads[v.name]!.dataSync() as Float32Array])),
    headGrad: grads[head.name]!.dataSync() as Float32Array,
    liveTensorsForBackward,
  };
  tf.dispose([value, ...Object.values(grads), ids, mask]);
  return out;
}

function relErr(a: Float32Array, b: Float32Array): number {
  let scale = 1e-6;
  for (const x of b) scale = Math.max(scale, Math.abs(x));
  return maxAbsDiff(a, b) / scale;
}

describe.each(['cpu', 'wasm'] as const)('checkpointed blocks on %s', (backend) => {
  it.each(CONFIGS)('give the plain loss and gradients, and hold fewer tensors after the forward pass (%s)', async (_name, config) => {
    await initEngine({ backend, quiet: true });
    const model = CausalLM.create(config, new Rng(3));
    const head = tf.variable(tf.tensor2d(new Rng(4).fillNormal(new Float32Array(model.dims.hiddenSize), 0, 0.1) as Float32Array, [model.dims.hiddenSize, 1]));
    const plain = step(model, head, false);
    const ckpt = step(model, head, true);
    const auto = step(model, head, 'auto'); // a tiny batch: auto leaves it off
    expect(Math.abs(ckpt.loss - plain.loss)).toBeLessThan(1e-6 * Math.max(1, Math.abs(plain.loss)));
    for (const [name, g] of plain.grads) {
      let norm = 0;
      for (const x of g) norm += x * x;
      expect(norm, `${name} has a gradient`).toBeGreaterThan(0);
      expect(relErr(ckpt.grads.get(name)!, g), name).toBeLessThan(1e-5);
    }
    expect(relErr(ckpt.headGrad, plain.headGrad)).toBeLessThan(1e-5);
    // Only each block's input (and the shared constants) survive the checkpointed forward.
    expect(ckpt.liveTensorsForBackward).toBeLessThan(plain.liveTensorsForBackward - 10 * model.dims.numLayers);
    expect(auto.liveTensorsForBackward).toBe(plain.liveTensorsForBackward);
    head.dispose();
    model.dispose();
  });
});

describe('checkpointing lifecycle', () => {
  it('leaks no tensors over training steps, and leaves inference and cached decoding unchanged', async () => {
    await initEngine({ backend: 'wasm', quiet: true });
    const model = CausalLM.create(tinyLlamaConfig(), new Rng(5));
    model.gradientCheckpointing = true;
    const rng = new Rng(6);
    const { ids, mask } = leftPad([6, 4].map((n) => Array.from({ length: n }, () => 1 + rng.int(model.dims.vocabSize - 1))));
    const opt = tf.train.sgd(0.1);
    const train = (): number =>
      tf.tidy(() => {
        const { value, grads } = tf.variableGrads(() => tf.mean(tf.square(model.forward(ids, { attentionMask: mask }))) as tf.Scalar, model.variables);
        opt.applyGradients(grads);
        return value.dataSync()[0]!;
      });
    const first = train();
    const before = tf.memory().numTensors;
    let last = first;
    for (let i = 0; i < 4; i++) last = train();
    expect(tf.memory().numTensors).toBe(before);
    expect(last).toBeLessThan(first); // it trained

    const withCkpt = model.forward(ids, { attentionMask: mask });
    model.gradientCheckpointing = false;
    const without = model.forward(ids, { attentionMask: mask });
    expect(maxAbsDiff(withCkpt, without)).toBe(0);
    model.gradientCheckpointing = true;
    const cache = model.createCache(2, 8);
    const cached = model.forwardCached(ids, cache, { attentionMask: mask });
    expect(maxAbsDiff(cached, without)).toBeLessThan(1e-5);
    expect(cache.length).toBe(6);
    tf.dispose([withCkpt, without, cached, ids, mask]);
    cache.dispose();
    opt.dispose();
    model.dispose();
  });

  it("'auto' follows the activation estimate, whose formula is 4 L B T (14 D + 6 I + 3 H T) bytes", () => {
    const dims = modelDims(
      tinyLlamaConfig({
        vocab_size: 49152,
        hidden_size: 576,
        num_hidden_layers: 30,
        num_attention_heads: 9,
        num_key_value_heads: 3,
        intermediate_size: 1536,
        max_position_embeddings: 2048,
      }),
    );
    expect(blockActivationBytes(dims, 4, 128)).toBe(4 * 30 * 4 * 128 * (14 * 576 + 6 * 1536 + 3 * 9 * 128));
    expect(blockActivationBytes(dims, 4, 128)).toBeGreaterThan(CHECKPOINT_AUTO_BYTES); // the 135M shape: on
    const small = modelDims(tinyGpt2Config({ vocab_size: 1024, n_positions: 256, n_embd: 384, n_layer: 6, n_head: 6 }));
    expect(blockActivationBytes(small, 4, 128)).toBeLessThan(CHECKPOINT_AUTO_BYTES); // the 10M benchmark model: off
  });
});
