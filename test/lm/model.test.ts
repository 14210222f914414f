import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.ts';
import { tinyGpt2Config, tinyLlamaConfig, tinyQwen3Config } from '../../src/lm/config.ts';
import { CausalLM } from '../../src/lm/model.ts';
import { TINY_CONFIGS, leftPad, maxAbsDiff, randomRows, useCpu } from './lm-helpers.ts';

beforeAll(useCpu);

describe('CausalLM parameters', () => {
  it('counts parameters as the architecture formulas say', () => {
    const g = tinyGpt2Config({ vocab_size: 40, n_embd: 16, n_layer: 3, n_head: 2, n_positions: 20, n_inner: 24 });
    const [V, D, L, P, I] = [40, 16, 3, 20, 24];
    const gpt2 = V * D + P * D + L * (4 * D + D * 3 * D + 3 * D + D * D + D + D * I + I + I * D + D) + 2 * D;
    const l = tinyLlamaConfig({ vocab_size: 40, hidden_size: 16, num_hidden_layers: 3, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: 24 });
    const Dh = 4;
    const llama = V * D + L * (2 * D + D * 4 * Dh + 2 * D * 2 * Dh + 4 * Dh * D + 3 * D * I) + D;
    const qwen = llama + L * (4 * Dh + 2 * 2 * Dh) + D * V; // q/k/v biases + untied head
    const q = tinyLlamaConfig({ ...l, model_type: 'qwen2', tie_word_embeddings: false });
    // Qwen3 with head_dim 6 (4 heads: queries 24 wide on a width of 16), 2 K/V heads, q/k norm gains.
    const q3 = tinyQwen3Config({ ...l, head_dim: 6 });
    const Dh3 = 6;
    const qwen3 = V * D + L * (2 * D + D * 4 * Dh3 + 2 * D * 2 * Dh3 + 4 * Dh3 * D + 3 * D * I + 2 * Dh3) + D;
    const q3b = tinyQwen3Config({ ...l, head_dim: 6, attention_bias: true, tie_word_embeddings: false });
    const qwen3b = qwen3 + L * (4 * Dh3 + 2 * 2 * Dh3 + D) + D * V; // q/k/v/o biases + untied head
    for (const [cfg, expected] of [[g, gpt2], [l, llama], [q, qwen], [q3, qwen3], [q3b, qwen3b]] as const) {
      const m = CausalLM.create(cfg, new Rng(0));
      expect(m.numParameters()).toBe(expected);
      expect(new Set(m.variables.map((v) => v.name)).size).toBe(m.variables.length);
      m.dispose();
    }
  });

  it('initialises from the seeded Rng: normal(0, 0.02) matrices, zero biases, unit norms', () => {
    const cfg = tinyGpt2Config({ n_embd: 64, vocab_size: 256 });
    const a = CausalLM.create(cfg, new Rng(7));
    const b = CausalLM.create(cfg, new Rng(7));
    const c = CausalLM.create(cfg, new Rng(8));
    const wa = a.getWeights();
    const wte = Array.from(wa.get('transformer.wte.weight')!.dataSync());
    expect(maxAbsDiff(wte, b.getWeights().get('transformer.wte.weight')!)).toBe(0);
    expect(maxAbsDiff(wte, c.getWeights().get('transformer.wte.weight')!)).toBeGreaterThan(0.01);
    const mean = wte.reduce((s, x) => s + x, 0) / wte.length;
    const std = Math.sqrt(wte.reduce((s, x) => s + (x - mean) ** 2, 0) / wte.length);
    expect(Math.abs(mean)).toBeLessThan(0.002);
    expect(std).toBeGreaterThan(0.019);
    expect(std).toBeLessThan(0.021);
    expect(Array.from(wa.get('transformer.h.0.attn.c_attn.bias')!.dataSync()).every((x) => x === 0)).toBe(true);
    expect(Array.from(wa.get('transformer.ln_f.weight')!.dataSync()).every((x) => x === 1)).toBe(true);
    for (const m of [a, b, c]) m.dispose();
  });
});

describe.each(TINY_CONFIGS)('CausalLM forward (%s)', (_name, cfg) => {
  it('is causal: changing a later token leaves earlier logits unchanged', () => {
    const m = CausalLM.create(cfg, new Rng(1));
    const rows = randomRows(new Rng(2), [9], cfg.vocab_size);
    const changed = rows.map((r) => r.map((x, i) => (i === 6 ? (x % (cfg.vocab_size - 1)) + 1 : x)));
    const a = m.forward(tf.tensor2d(rows, [1, 9], 'int32'));
    const b = m.forward(tf.tensor2d(changed, [1, 9], 'int32'));
    expect(maxAbsDiff(tf.slice(a, [0, 0, 0], [1, 6, -1]), tf.slice(b, [0, 0, 0], [1, 6, -1]))).toBe(0);
    expect(maxAbsDiff(tf.slice(a, [0, 6, 0], [1, 3, -1]), tf.slice(b, [0, 6, 0], [1, 3, -1]))).toBeGreaterThan(1e-4);
    m.dispose();
  });

  it('gives a left-padded row the same logits on its real tokens as the row alone', () => {
    const m = CausalLM.create(cfg, new Rng(3));
    const rows = randomRows(new Rng(4), [8, 5, 2], cfg.vocab_size);
    for (const padId of [0, 7]) {
      const { ids, mask, width } = leftPad(rows, padId);
      const batched = m.forward(ids, { attentionMask: mask });
      rows.forEach((row, b) => {
        const alone = m.forward(tf.tensor2d([row], [1, row.length], 'int32'));
        const real = tf.slice(batched, [b, width - row.length, 0], [1, row.length, -1]);
        expect(maxAbsDiff(real, alone)).toBeLessThan(1e-5);
      });
    }
    // Without the mask the padding is attended to and shifts positions: the row differs.
    const { ids, width } = leftPad(rows);
    const unmasked = m.forward(ids);
    const alone = m.forward(tf.tensor2d([rows[2]!], [1, 2], 'int32'));
    expect(maxAbsDiff(tf.slice(unmasked, [2, width - 2, 0], [1, 2, -1]), alone)).toBeGreaterThan(1e-3);
    m.dispose();
  });

  it('splits into hiddenStates + logits, and an all-ones mask changes nothing', () => {
    const m = CausalLM.create(cfg, new Rng(5));
    const ids = tf.tensor2d(randomRows(new Rng(6), [6, 6], cfg.vocab_size), [2, 6], 'int32');
    const full = m.forward(ids);
    const h = m.hiddenStates(ids);
    expect(h.shape).toEqual([2, 6, m.dims.hiddenSize]);
    expect(maxAbsDiff(m.logits(h), full)).toBe(0);
    expect(maxAbsDiff(m.forward(ids, { attentionMask: tf.ones([2, 6]) as tf.Tensor2D }), full)).toBeLessThan(1e-6);
    m.dispose();
  });

  it('clones deeply and copies weights with setWeights', () => {
    const m = CausalLM.create(cfg, new Rng(9));
    const ids = tf.tensor2d(randomRows(new Rng(10), [5], cfg.vocab_size), [1, 5], 'int32');
    const before = m.forward(ids);
    const ref = m.clone({ trainable: false });
    expect(ref.variables.every((v) => !v.trainable)).toBe(true);
    expect(maxAbsDiff(ref.forward(ids), before)).toBe(0);

    // Change the original: the clone keeps the old values.
    const other = CausalLM.create(cfg, new Rng(11));
    m.setWeights(other.getWeights());
    expect(maxAbsDiff(m.forward(ids), other.forward(ids))).toBe(0);
    expect(maxAbsDiff(ref.forward(ids), before)).toBe(0);
    other.dispose();
    // The clone survives disposal of the original.
    m.dispose();
    expect(maxAbsDiff(ref.forward(ids), before)).toBe(0);
    ref.dispose();
  });
});

describe('grouped-query attention', () => {
  it('equals multi-head attention whose K/V heads repeat each shared head H/Hkv times', () => {
    const gqaCfg = tinyLlamaConfig({ num_attention_heads: 4, num_key_value_heads: 2 });
    const mhaCfg = tinyLlamaConfig({ num_attention_heads: 4, num_key_value_heads: 4 });
    const gqa = CausalLM.create(gqaCfg, new Rng(12));
    const mha = CausalLM.create(mhaCfg, new Rng(13));
    const Dh = gqa.dims.headDim;
    const w = new Map(gqa.getWeights());
    const made: tf.Tensor[] = [];
    for (let l = 0; l < gqaCfg.num_hidden_layers; l++) {
      for (const p of ['k_proj', 'v_proj']) {
        const name = `model.layers.${l}.self_attn.${p}.weight`;
        const [h0, h1] = tf.split(w.get(name)!, 2, 1); // [D, Dh] each: kv heads 0 and 1
        const rep = tf.concat([h0!, h0!, h1!, h1!], 1); // query heads 0,1 -> kv 0; 2,3 -> kv 1
        expect(rep.shape[1]).toBe(4 * Dh);
        made.push(h0!, h1!, rep);
        w.set(name, rep);
      }
    }
    mha.setWeights(w);
    const ids = tf.tensor2d(randomRows(new Rng(14), [7], 64), [1, 7], 'int32');
    expect(maxAbsDiff(gqa.forward(ids), mha.forward(ids))).toBeLessThan(1e-5);
    for (const t of made) t.dispose();
    gqa.dispose();
    mha.dispose();
  });
});

describe('input validation', () => {
  it('names the problem', () => {
    const m = CausalLM.create(tinyGpt2Config({ n_positions: 8 }), new Rng(0));
    expect(() => m.forward(tf.tensor2d([[1, 2]], [1, 2], 'float32'))).toThrow(/ids must be int32, got float32/);
    expect(() => m.forward(tf.tensor2d([[1, 64]], [1, 2], 'int32'))).toThrow(/token id 64 at \[0, 1\] is outside the vocabulary \[0, 64\)/);
    expect(() => m.forward(tf.zeros([1, 9], 'int32') as tf.Tensor2D)).toThrow(/sequence length 9 exceeds the model's n_positions \(8\)/);
    expect(() => m.forward(tf.zeros([2, 3], 'int32') as tf.Tensor2D, { attentionMask: tf.ones([2, 4]) as tf.Tensor2D })).toThrow(
      /attentionMask must have shape \[2, 3\], got \[2,4\]/,
    );
    expect(() => m.createCache(1, 9)).toThrow(/maxLength 9 exceeds the model's n_positions \(8\)/);
    const other = CausalLM.create(tinyGpt2Config({ n_positions: 8, n_embd: 16 }), new Rng(0));
    expect(() => m.setWeights(other.getWeights())).toThrow(/parameter transformer.wte.weight has shape \[64,16\], expected \[64,32\]/);
    const partial = new Map(m.getWeights());
    partial.delete('transformer.ln_f.bias');
    expect(() => m.setWeights(partial)).toThrow(/missing parameter transformer.ln_f.bias/);
    other.dispose();
    m.dispose();
    expect(() => m.forward(tf.zeros([1, 2], 'int32') as tf.Tensor2D)).toThrow(/the model has been disposed/);
  });
});

describe('memory', () => {
  it.each(TINY_CONFIGS)('keeps tf.memory().numTensors flat over 20 training steps and 20 cached decodes (%s)', (_name, cfg) => {
    const m = CausalLM.create(cfg, new Rng(15));
    const ref = m.clone({ trainable: false });
    const rng = new Rng(16);
    const { ids, mask } = leftPad(randomRows(rng, [10, 7], cfg.vocab_size));
    const opt = tf.train.adam(1e-2);
    const losses: number[] = [];
    const step = (): void => {
      tf.tidy(() => {
        const { value, grads } = tf.variableGrads(() => {
          const logits = m.forward(ids, { attentionMask: mask }); // [B, T, V]
          const targets = tf.oneHot(tf.slice(ids, [0, 1], [-1, -1]), cfg.vocab_size); // [B, T-1, V]
          const weights = tf.slice(mask, [0, 1], [-1, -1]);
          const ce = tf.losses.softmaxCrossEntropy(targets, tf.slice(logits, [0, 0, 0], [-1, 9, -1]), weights);
          const refLogits = ref.forward(ids, { attentionMask: mask }); // no gradient: frozen reference
          return tf.add(ce, tf.mul(0, tf.mean(refLogits))) as tf.Scalar;
        }, m.variables);
        expect(Object.keys(grads).length).toBe(m.variables.length);
        losses.push(value.dataSync()[0]!);
        opt.applyGradients(grads as Parameters<typeof opt.applyGradients>[0]);
      });
    };
    step(); // the optimizer creates its slot variables on the first step
    const afterFirst = tf.memory().numTensors;
    for (let i = 0; i < 19; i++) step();
    expect(tf.memory().numTensors).toBe(afterFirst);
    expect(losses[19]!).toBeLessThan(losses[0]! - 0.5); // it trained

    const cache = m.createCache(2, 32);
    tf.dispose(m.forwardCached(ids, cache, { attentionMask: mask }));
    const afterPrefill = tf.memory().numTensors;
    for (let i = 0; i < 20; i++) {
      const next = tf.tensor2d([[1 + rng.int(cfg.vocab_size - 1)], [1 + rng.int(cfg.vocab_size - 1)]], [2, 1], 'int32');
      tf.dispose(m.forwardCached(next, cache));
      next.dispose();
    }
    expect(cache.length).toBe(30);
    expect(tf.memory().numTensors).toBe(afterPrefill);
    cache.dispose();
    m.dispose();
    ref.dispose();
    opt.dispose();
    tf.dispose([ids, mask]);
  });
});
