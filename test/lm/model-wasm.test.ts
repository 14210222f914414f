/**
 * The model on the wasm backend (with the engine's kernel fixes: untransposed matmuls,
 * UnsortedSegmentSum for the embedding gradient) computes what the pure-JS cpu backend
 * computes: logits of a left-padded batch, gradients of every parameter, cached decoding.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { initEngine } from '../../src/engine/tfjs/backend.ts';
import { Rng } from '../../src/core/rng.ts';
import { type CausalLMConfig, tinyGpt2Config, tinyLlamaConfig, tinyQwen3Config } from '../../src/lm/config.ts';
import { CausalLM } from '../../src/lm/model.ts';
import { leftPad } from './lm-helpers.ts';

interface Result {
  logits: Float32Array;
  cached: Float32Array;
  grads: Map<string, Float32Array>;
}

function run(config: CausalLMConfig): Result {
  const model = CausalLM.create(config, new Rng(61));
  const rng = new Rng(62);
  const rows = [9, 6, 3].map((n) => Array.from({ length: n }, () => 1 + rng.int(config.vocab_size - 1)));
  const { ids, mask } = leftPad(rows);
  const logits = model.forward(ids, { attentionMask: mask });
  const { grads } = tf.variableGrads(() => {
    const l = model.forward(ids, { attentionMask: mask }); // [B, T, V]
    const targets = tf.oneHot(tf.slice(ids, [0, 1], [-1, -1]), config.vocab_size);
    return tf.losses.softmaxCrossEntropy(targets, tf.slice(l, [0, 0, 0], [-1, 8, -1]), tf.slice(mask, [0, 1], [-1, -1])) as tf.Scalar;
  }, model.variables);
  const cache = model.createCache(3, 12);
  const steps = [model.forwardCached(ids, cache, { attentionMask: mask })];
  for (const tok of [5, 7]) steps.push(model.forwardCached(tf.fill([3, 1], tok, 'int32') as tf.Tensor2D, cache));
  const out: Result = {
    logits: logits.dataSync() as Float32Array,
    cached: tf.concat(steps, 1).dataSync() as Float32Array,
    grads: new Map(model.variables.map((v, i) => [model.variableNames[i]!, grads[v.name]!.dataSync() as Float32Array])),
  };
  cache.dispose();
  model.dispose();
  return out;
}

/** max |a - b| / max(1, max |b|). */
function relErr(a: Float32Array, b: Float32Array): number {
  let scale = 1;
  let worst = 0;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]!));
  for (let i = 0; i < b.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst / scale;
}

describe.each([
  ['gpt2', tinyGpt2Config()],
  ['llama (GQA)', tinyLlamaConfig()],
  ['qwen3 (q/k norm, head_dim 16)', tinyQwen3Config()],
] as Array<[string, CausalLMConfig]>)('wasm vs cpu (%s)', (_name, config) => {
  it('gives the same logits, gradients and cached logits', async () => {
    await initEngine({ backend: 'cpu', quiet: true });
    const cpu = run(config);
    const info = await initEngine({ backend: 'wasm', quiet: true });
    expect(info.backend).toBe('wasm');
    const wasm = run(config);
    expect(relErr(wasm.logits, cpu.logits)).toBeLessThan(1e-4);
    expect(relErr(wasm.cached, cpu.cached)).toBeLessThan(1e-4);
    expect(wasm.grads.size).toBe(cpu.grads.size);
    for (const [name, g] of cpu.grads) {
      const w = wasm.grads.get(name)!;
      let norm = 0;
      for (const x of g) norm += x * x;
      expect(norm, `${name} gradient is non-zero`).toBeGreaterThan(0);
      expect(relErr(w, g), name).toBeLessThan(1e-4);
    }
  });
});
