import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.ts';
import { type CausalLMConfig, tinyGpt2Config, tinyLlamaConfig, tinyQwen3Config } from '../../src/lm/config.ts';
import { CausalLM } from '../../src/lm/model.ts';
import { leftPad, maxAbsDiff, useCpu } from './lm-helpers.ts';

beforeAll(useCpu);

const CONFIGS: Array<[string, CausalLMConfig]> = [
  ['gpt2', tinyGpt2Config()],
  ['llama (GQA, tied)', tinyLlamaConfig()],
  ['qwen2 (qkv bias, untied)', tinyLlamaConfig({ model_type: 'qwen2', tie_word_embeddings: false })],
  ['qwen3 (q/k norm, head_dim 16, one K/V head, untied)', tinyQwen3Config({ num_key_value_heads: 1, tie_word_embeddings: false })],
];

const STEPS = 20;

/** Tokens sampled from the step's logits with our Rng, so the continuation depends on the model. */
function sample(logits: tf.Tensor3D, rng: Rng): number[] {
  const [B, t, V] = logits.shape;
  const last = tf.tidy(() => tf.softmax(tf.slice(logits, [0, t - 1, 0], [B, 1, V]))); // [B, 1, V]
  const probs = last.dataSync();
  last.dispose();
  return Array.from({ length: B }, (_, b) => rng.categorical(probs, b * V, V));
}

describe.each(CONFIGS)('KV cache (%s)', (_name, cfg) => {
  it(`matches the full forward over a ${STEPS}-token decode of a left-padded batch`, () => {
    const model = CausalLM.create(cfg, new Rng(21));
    const rng = new Rng(22);
    const prompts = [5, 2, 7].map((n) => Array.from({ length: n }, () => 1 + rng.int(cfg.vocab_size - 1)));
    const { ids: promptIds, mask: promptMask, width } = leftPad(prompts);
    const B = prompts.length;

    const cache = model.createCache(B, width + STEPS);
    const stepLogits: tf.Tensor3D[] = [model.forwardCached(promptIds, cache, { attentionMask: promptMask })];
    const generated: number[][] = prompts.map(() => []);
    for (let s = 0; s < STEPS; s++) {
      const next = sample(stepLogits[stepLogits.length - 1]!, rng);
      next.forEach((tok, b) => generated[b]!.push(tok));
      if (s === STEPS - 1) break;
      const nextIds = tf.tensor2d(next.map((x) => [x]), [B, 1], 'int32');
      stepLogits.push(model.forwardCached(nextIds, cache)); // the cache extends the mask with ones
      nextIds.dispose();
    }
    expect(cache.length).toBe(width + STEPS - 1);

    // One full forward over prompt + generated tokens (the last sampled token is not fed).
    const fullRows = prompts.map((p, b) => [...p, ...generated[b]!.slice(0, STEPS - 1)]);
    const { ids, mask } = leftPad(fullRows);
    const full = model.forward(ids, { attentionMask: mask }); // [B, width + STEPS - 1, V]
    const incremental = tf.concat(stepLogits, 1);
    expect(incremental.shape).toEqual(full.shape);
    // Compare on real tokens only (padded positions are masked out and meaningless).
    const m = mask.dataSync();
    const a = full.dataSync();
    const c = incremental.dataSync();
    const V = cfg.vocab_size;
    let worst = 0;
    let compared = 0;
    for (let i = 0; i < m.length; i++) {
      if (!m[i]) continue;
      compared++;
      for (let v = 0; v < V; v++) worst = Math.max(worst, Math.abs(a[i * V + v]! - c[i * V + v]!));
    }
    expect(compared).toBe(prompts.reduce((n, p) => n + p.length, 0) + B * (STEPS - 1));
    expect(worst).toBeLessThan(1e-4);

    // A second cache on the same model: the first row decoded alone, one token at a time
    // from an empty cache (no prefill, no mask), gives the same logits too.
    const solo = model.createCache(1, width + STEPS);
    const row = fullRows[0]!;
    const soloLogits: tf.Tensor3D[] = [];
    for (const tok of row) soloLogits.push(model.forwardCached(tf.tensor2d([[tok]], [1, 1], 'int32'), solo));
    const realStart = width - prompts[0]!.length;
    const fromFull = tf.slice(full, [0, realStart, 0], [1, row.length, V]);
    expect(maxAbsDiff(tf.concat(soloLogits, 1), fromFull)).toBeLessThan(1e-4);

    solo.dispose();
    cache.dispose();
    model.dispose();
  });

  it('prefills in chunks with an explicit mask the same as in one go', () => {
    const model = CausalLM.create(cfg, new Rng(23));
    const rng = new Rng(24);
    const rows = [9, 4].map((n) => Array.from({ length: n }, () => 1 + rng.int(cfg.vocab_size - 1)));
    const { ids, mask, width } = leftPad(rows);
    const full = model.forward(ids, { attentionMask: mask });
    const cache = model.createCache(2, width);
    const parts: tf.Tensor3D[] = [];
    for (const [start, len] of [[0, 4], [4, 3], [7, 2]] as const) {
      const chunk = tf.slice(ids, [0, start], [2, len]) as tf.Tensor2D;
      const maskSoFar = tf.slice(mask, [0, 0], [2, start + len]) as tf.Tensor2D;
      parts.push(model.forwardCached(chunk, cache, { attentionMask: maskSoFar }));
    }
    const inc = tf.concat(parts, 1);
    // Row 0 is all real; row 1's real tokens are its last 4.
    expect(maxAbsDiff(tf.slice(inc, [0, 0, 0], [1, -1, -1]), tf.slice(full, [0, 0, 0], [1, -1, -1]))).toBeLessThan(1e-4);
    expect(maxAbsDiff(tf.slice(inc, [1, 5, 0], [1, -1, -1]), tf.slice(full, [1, 5, 0], [1, -1, -1]))).toBeLessThan(1e-4);
    cache.dispose();
    model.dispose();
  });
});

describe('KV cache lifecycle', () => {
  it('survives decoding inside tf.tidy and frees its tensors on dispose', () => {
    const model = CausalLM.create(tinyLlamaConfig(), new Rng(25));
    const start = tf.memory().numTensors;
    const cache = model.createCache(1, 8);
    const first = tf.tidy(() => model.forwardCached(tf.tensor2d([[3, 4]], [1, 2], 'int32'), cache).dataSync()[0]);
    expect(first).toBeTypeOf('number');
    // Cached tensors outlived the tidy: the next step can read them.
    const next = tf.tidy(() => model.forwardCached(tf.tensor2d([[5]], [1, 1], 'int32'), cache).arraySync());
    expect(next[0]!.length).toBe(1);
    expect(cache.length).toBe(3);
    expect(cache.keys[0]!.shape).toEqual([1, 2, 3, model.dims.headDim]);
    expect(cache.values[0]!.shape).toEqual([1, 2, 3, model.dims.headDim]);
    cache.dispose();
    expect(tf.memory().numTensors).toBe(start);
    expect(() => model.forwardCached(tf.tensor2d([[5]], [1, 1], 'int32'), cache)).toThrow(/disposed/);
    model.dispose();
  });

  it('refuses appends beyond maxLength, a batch mismatch and a mask of the wrong length', () => {
    const model = CausalLM.create(tinyGpt2Config(), new Rng(26));
    const cache = model.createCache(2, 4);
    expect(() => model.forwardCached(tf.zeros([2, 5], 'int32') as tf.Tensor2D, cache)).toThrow(
      /appending 5 positions to 0 cached ones exceeds maxLength 4/,
    );
    expect(() => model.forwardCached(tf.zeros([3, 1], 'int32') as tf.Tensor2D, cache)).toThrow(
      /ids have batch 3, the cache was created for batch 2/,
    );
    tf.dispose(model.forwardCached(tf.zeros([2, 2], 'int32') as tf.Tensor2D, cache));
    expect(() =>
      model.forwardCached(tf.zeros([2, 1], 'int32') as tf.Tensor2D, cache, { attentionMask: tf.ones([2, 1]) as tf.Tensor2D }),
    ).toThrow(/attentionMask must have shape \[2, 3\] \(2 cached \+ 1 new positions\)/);
    const other = CausalLM.create(tinyGpt2Config({ n_layer: 3 }), new Rng(0));
    expect(() => other.forwardCached(tf.zeros([2, 1], 'int32') as tf.Tensor2D, cache)).toThrow(/the cache has 2 layers, the model has 3/);
    other.dispose();
    cache.dispose();
    model.dispose();
  });
});
