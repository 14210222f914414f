import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.ts';
import { tinyGpt2Config } from '../../src/lm/config.ts';
import { CausalLM } from '../../src/lm/model.ts';
import { generate, sampleToken, samplingDistribution } from '../../src/lm/sampler.ts';
import { useCpu } from './lm-helpers.ts';

beforeAll(useCpu);

/** softmax(z / T) in float64. */
function softmax(z: ArrayLike<number>, T = 1): number[] {
  const arr = Array.from(z, (x) => x / T);
  const m = Math.max(...arr);
  const e = arr.map((x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

/** The distribution as a map id -> probability, for order-free comparison. */
function asMap(d: { ids: Int32Array; probs: Float64Array }): Map<number, number> {
  return new Map(Array.from(d.ids, (id, j) => [id, d.probs[j]!]));
}

function expectDist(d: { ids: Int32Array; probs: Float64Array }, expected: Record<number, number>): void {
  const got = asMap(d);
  expect([...got.keys()].sort((a, b) => a - b)).toEqual(Object.keys(expected).map(Number).sort((a, b) => a - b));
  for (const [id, p] of Object.entries(expected)) expect(got.get(Number(id))).toBeCloseTo(p, 10);
}

/**
 * Reference nucleus filter written from the definition: sort by probability (ties by id),
 * keep the shortest prefix whose sum reaches p.
 */
function referenceTopP(probs: number[], p: number): Set<number> {
  const order = probs.map((_, i) => i).sort((a, b) => probs[b]! - probs[a]! || a - b);
  const keep = new Set<number>();
  let cum = 0;
  for (const i of order) {
    if (keep.size > 0 && cum >= p) break;
    keep.add(i);
    cum += probs[i]!;
  }
  return keep;
}

describe('samplingDistribution on a handcrafted distribution', () => {
  // probabilities 0.4, 0.25, 0.15, 0.1, 0.06, 0.04 placed at shuffled ids
  const probs = [0.1, 0.4, 0.04, 0.15, 0.25, 0.06];
  const logits = probs.map((p) => Math.log(p) + 3); // a shift does not change the softmax

  it('without filters is softmax(logits / T)', () => {
    expectDist(samplingDistribution(logits, { temperature: 1 }), Object.fromEntries(probs.map((p, i) => [i, p])));
    const t2 = probs.map((p) => Math.sqrt(p)); // p^(1/T) with T = 2
    const s = t2.reduce((a, b) => a + b, 0);
    expectDist(samplingDistribution(logits, { temperature: 2 }), Object.fromEntries(t2.map((p, i) => [i, p / s])));
  });

  it('top-p keeps the smallest most-likely set reaching p, renormalised', () => {
    expectDist(samplingDistribution(logits, { temperature: 1, topP: 0.39 }), { 1: 1 });
    expectDist(samplingDistribution(logits, { temperature: 1, topP: 0.41 }), { 1: 0.4 / 0.65, 4: 0.25 / 0.65 });
    expectDist(samplingDistribution(logits, { temperature: 1, topP: 0.79 }), { 1: 0.5, 4: 0.25 / 0.8, 3: 0.15 / 0.8 });
    expectDist(samplingDistribution(logits, { temperature: 1, topP: 0.81 }), { 1: 0.4 / 0.9, 4: 0.25 / 0.9, 3: 0.15 / 0.9, 0: 0.1 / 0.9 });
    // a tiny p still keeps the single most likely token
    expectDist(samplingDistribution(logits, { temperature: 1, topP: 1e-9 }), { 1: 1 });
    expect(samplingDistribution(logits, { temperature: 1, topP: 1 }).ids.length).toBe(6);
  });

  it('top-k keeps the k largest, renormalised, and applies before top-p', () => {
    expectDist(samplingDistribution(logits, { temperature: 1, topK: 3 }), { 1: 0.5, 4: 0.25 / 0.8, 3: 0.15 / 0.8 });
    expectDist(samplingDistribution(logits, { temperature: 1, topK: 1 }), { 1: 1 });
    expect(samplingDistribution(logits, { temperature: 1, topK: 6 }).ids.length).toBe(6);
    expect(samplingDistribution(logits, { temperature: 1, topK: 0 }).ids.length).toBe(6);
    // top-k 2 leaves {0.4, 0.25} -> {0.615, 0.385}; top-p 0.6 then keeps the first alone.
    // (top-p first would keep both: 0.4 < 0.6.)
    expectDist(samplingDistribution(logits, { temperature: 1, topK: 2, topP: 0.6 }), { 1: 1 });
    expectDist(samplingDistribution(logits, { temperature: 1, topK: 3, topP: 0.7 }), { 1: 0.4 / 0.65, 4: 0.25 / 0.65 });
  });

  it('keeps ties at the k-th logit, and greedy takes the smallest id among equal maxima', () => {
    const z = [1, 2, 2, 0];
    const e = [Math.E, Math.E ** 2, Math.E ** 2, 1];
    expectDist(samplingDistribution(z, { temperature: 1, topK: 1 }), { 1: 0.5, 2: 0.5 });
    const s = e[0]! + e[1]! + e[2]!;
    expectDist(samplingDistribution(z, { temperature: 1, topK: 2 }), { 1: 0.5, 2: 0.5 });
    expectDist(samplingDistribution(z, { temperature: 1, topK: 3 }), { 0: e[0]! / s, 1: e[1]! / s, 2: e[2]! / s });
    expectDist(samplingDistribution(z, { temperature: 0 }), { 1: 1 });
  });

  it('vocabLimit removes ids at or above it', () => {
    expectDist(samplingDistribution(logits, { temperature: 1, vocabLimit: 3 }), { 0: 0.1 / 0.54, 1: 0.4 / 0.54, 2: 0.04 / 0.54 });
    expectDist(samplingDistribution(logits, { temperature: 0, vocabLimit: 1 }), { 0: 1 });
  });

  it('reads one row of a larger array through offset/length', () => {
    const two = [...[5, 5, 5, 5, 5, 5], ...logits];
    expectDist(samplingDistribution(two, { temperature: 1, topP: 0.41 }, 6, 6), { 1: 0.4 / 0.65, 4: 0.25 / 0.65 });
  });

  it('rejects bad parameters with the field name', () => {
    expect(() => samplingDistribution(logits, { temperature: -1 })).toThrow(/temperature/);
    expect(() => samplingDistribution(logits, { temperature: 1, topP: 0 })).toThrow(/topP/);
    expect(() => samplingDistribution(logits, { temperature: 1, topP: 1.5 })).toThrow(/topP/);
    expect(() => samplingDistribution(logits, { temperature: 1, topK: 1.5 })).toThrow(/topK/);
    expect(() => samplingDistribution(logits, { temperature: 1, vocabLimit: 7 })).toThrow(/vocabLimit/);
    expect(() => sampleToken([0, NaN, 1], { temperature: 1 }, new Rng(0))).toThrow(/NaN/);
  });
});

describe('samplingDistribution on large random vocabularies', () => {
  it('matches a sort-based reference for top-p and top-k', () => {
    const rng = new Rng(11);
    for (const V of [50, 3000]) {
      for (const scale of [0.05, 1, 6]) {
        const z = Array.from({ length: V }, () => rng.normal(0, scale));
        if (V === 3000) for (let i = 0; i < 40; i++) z[rng.int(V)] = z[0]!; // ties
        const p = softmax(z);
        for (const topP of [0.1, 0.5, 0.9, 0.99]) {
          const got = new Set(samplingDistribution(z, { temperature: 1, topP }).ids);
          expect(got).toEqual(referenceTopP(p, topP));
        }
        for (const k of [1, 7, Math.floor(V / 2)]) {
          const kth = [...z].sort((a, b) => b - a)[k - 1]!;
          const expected = new Set(z.map((x, i) => (x >= kth ? i : -1)).filter((i) => i >= 0));
          expect(new Set(samplingDistribution(z, { temperature: 1, topK: k }).ids)).toEqual(expected);
        }
      }
    }
  });
});

describe('sampleToken', () => {
  it('draws with the filtered frequencies and reports the unfiltered log-prob', () => {
    const probs = [0.1, 0.4, 0.04, 0.15, 0.25, 0.06];
    const logits = probs.map((p) => Math.log(p));
    const rng = new Rng(5);
    const n = 20000;
    const counts = new Array<number>(6).fill(0);
    for (let i = 0; i < n; i++) {
      const { token, logprob } = sampleToken(logits, { temperature: 1, topP: 0.79 }, rng);
      counts[token]!++;
      expect(logprob).toBeCloseTo(Math.log(probs[token]!), 6);
    }
    expect(counts[0]! + counts[2]! + counts[5]!).toBe(0);
    const expected: Array<[number, number]> = [[1, 0.5], [4, 0.3125], [3, 0.1875]];
    for (const [id, p] of expected) expect(Math.abs(counts[id]! / n - p)).toBeLessThan(4 * Math.sqrt((p * (1 - p)) / n));
  });
});

describe('generate: empirical next-token frequencies', () => {
  it('match softmax(logits / T) of the model (chi-square)', () => {
    // A model with large initial weights, so its next-token distribution is far from uniform.
    const V = 16;
    const cfg = tinyGpt2Config({ vocab_size: V, n_embd: 16, n_head: 2, initializer_range: 0.4 });
    const model = CausalLM.create(cfg, new Rng(3));
    const prompt = [3, 7, 1, 12];
    const last = tf.tidy(() => model.forward(tf.tensor2d([prompt], [1, 4], 'int32')).slice([0, 3, 0], [1, 1, V]).dataSync());
    for (const [T, seed] of [[1, 1], [0.6, 2], [1.7, 3]] as const) {
      const n = 4000;
      const res = generate(model, [prompt], {
        numGenerations: n,
        maxNewTokens: 1,
        temperature: T,
        eosTokenId: 0,
        padTokenId: 0,
        rng: new Rng(seed),
      });
      const p = softmax(last, T);
      expect(Math.max(...p)).toBeGreaterThan(2 / V); // the test needs a non-uniform target
      const counts = new Array<number>(V).fill(0);
      res.completionIds.forEach((c, i) => {
        expect(c.length).toBe(1);
        counts[c[0]!]!++;
        expect(res.logprobs[i]![0]).toBeCloseTo(Math.log(p[c[0]!]!), 4);
      });
      let chi2 = 0;
      for (let v = 0; v < V; v++) chi2 += (counts[v]! - n * p[v]!) ** 2 / (n * p[v]!);
      // 15 degrees of freedom: mean 15, P(chi2 > 45) < 1e-4.
      expect(chi2).toBeLessThan(45);
    }
    // A wrong temperature is detected by the same statistic.
    const res = generate(model, [prompt], { numGenerations: 4000, maxNewTokens: 1, temperature: 1, eosTokenId: 0, padTokenId: 0, rng: new Rng(9) });
    const wrong = softmax(last, 0.6);
    const counts = new Array<number>(V).fill(0);
    for (const c of res.completionIds) counts[c[0]!]!++;
    let chi2 = 0;
    for (let v = 0; v < V; v++) chi2 += (counts[v]! - 4000 * wrong[v]!) ** 2 / (4000 * wrong[v]!);
    expect(chi2).toBeGreaterThan(45);
    model.dispose();
  });

  it('top-p and top-k restrict the support of generated tokens', () => {
    const V = 16;
    const model = CausalLM.create(tinyGpt2Config({ vocab_size: V, n_embd: 16, n_head: 2, initializer_range: 0.4 }), new Rng(3));
    const prompt = [3, 7, 1, 12];
    const last = tf.tidy(() => model.forward(tf.tensor2d([prompt], [1, 4], 'int32')).slice([0, 3, 0], [1, 1, V]).dataSync());
    const p = softmax(last, 0.8);
    const nucleus = referenceTopP(p, 0.6);
    const top3 = new Set(p.map((_, i) => i).sort((a, b) => p[b]! - p[a]!).slice(0, 3));
    expect(nucleus.size).toBeLessThan(V);
    for (const [opts, allowed] of [[{ topP: 0.6 }, nucleus], [{ topK: 3 }, top3]] as const) {
      const res = generate(model, [prompt], { numGenerations: 2000, maxNewTokens: 1, temperature: 0.8, eosTokenId: 0, padTokenId: 0, rng: new Rng(4), ...opts });
      const seen = new Set(res.completionIds.map((c) => c[0]!));
      expect(seen).toEqual(allowed);
    }
    model.dispose();
  });
});
