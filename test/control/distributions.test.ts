import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../../src/engine/tfjs/backend.ts';
import { Rng } from '../../src/core/rng.ts';
import {
  CategoricalDistribution,
  DiagGaussianDistribution,
  sampleCategorical,
  sampleDiagGaussian,
} from '../../src/control/distributions.ts';

beforeAll(async () => {
  await initEngine({ backend: 'wasm', quiet: true });
});

const read = (t: tf.Tensor): number[] => {
  const v = Array.from(t.dataSync());
  t.dispose();
  return v;
};

/** Softmax in float64, written out. */
function softmax(z: number[]): number[] {
  const m = Math.max(...z);
  const e = z.map((x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

describe('CategoricalDistribution', () => {
  const rows = [
    [0.5, -1.2, 2.0],
    [0, 0, 0],
    [10, -10, 3],
  ];

  it('logProb, entropy and mode match the closed forms', () => {
    const logits = tf.tensor2d(rows);
    const d = new CategoricalDistribution(logits);
    const actions = tf.tensor1d([2, 1, 0], 'int32');
    const lp = read(d.logProb(actions));
    const h = read(d.entropy());
    const mode = read(d.mode());
    rows.forEach((z, b) => {
      const p = softmax(z);
      const a = [2, 1, 0][b]!;
      expect(lp[b]).toBeCloseTo(Math.log(p[a]!), 5);
      expect(h[b]).toBeCloseTo(-p.reduce((s, pi) => s + (pi > 0 ? pi * Math.log(pi) : 0), 0), 5);
    });
    expect(h[1]).toBeCloseTo(Math.log(3), 6); // uniform
    expect(mode).toEqual([2, 0, 0]);
    tf.dispose([logits, actions]);
  });

  it('KL(p || q) matches sum p (log p - log q), is 0 for equal logits and asymmetric', () => {
    const zp = tf.tensor2d([[0.3, 1.0, -0.5]]);
    const zq = tf.tensor2d([[1.5, -0.2, 0.1]]);
    const p = new CategoricalDistribution(zp);
    const q = new CategoricalDistribution(zq);
    const pp = softmax([0.3, 1.0, -0.5]);
    const qq = softmax([1.5, -0.2, 0.1]);
    const expected = pp.reduce((s, pi, i) => s + pi * Math.log(pi / qq[i]!), 0);
    const reverse = qq.reduce((s, qi, i) => s + qi * Math.log(qi / pp[i]!), 0);
    expect(read(p.kl(q))[0]).toBeCloseTo(expected, 5);
    expect(read(q.kl(p))[0]).toBeCloseTo(reverse, 5);
    expect(Math.abs(expected - reverse)).toBeGreaterThan(1e-3);
    expect(read(p.kl(p))[0]).toBeCloseTo(0, 6);
    tf.dispose([zp, zq]);
  });

  it('sampleCategorical draws with the softmax frequencies and returns matching log-probabilities', () => {
    const z = [1, 0, -1];
    const p = softmax(z);
    const n = 20000;
    const logits = new Float32Array(n * 3);
    for (let r = 0; r < n; r++) logits.set(z, r * 3);
    const actions = new Int32Array(n);
    const logp = new Float32Array(n);
    sampleCategorical(logits, n, 3, new Rng(1), actions, logp);
    const counts = [0, 0, 0];
    for (let r = 0; r < n; r++) {
      counts[actions[r]!]!++;
      expect(logp[r]).toBeCloseTo(Math.log(p[actions[r]!]!), 5);
    }
    // Binomial std of a frequency is sqrt(p(1-p)/n) <= 0.0036; allow 4 sigma.
    counts.forEach((c, k) => expect(Math.abs(c / n - p[k]!)).toBeLessThan(0.015));
    sampleCategorical(new Float32Array([0, 3, 1]), 1, 3, new Rng(2), actions, logp, true);
    expect(actions[0]).toBe(1);
  });
});

describe('DiagGaussianDistribution', () => {
  const mu = [
    [0.5, -1.0],
    [2.0, 0.0],
  ];
  const logStd = [-0.5, 0.3];
  const acts = [
    [0.1, -0.4],
    [3.0, 1.5],
  ];

  it('logProb and entropy match the closed forms', () => {
    const m = tf.tensor2d(mu);
    const s = tf.tensor1d(logStd);
    const a = tf.tensor2d(acts);
    const d = new DiagGaussianDistribution(m, s);
    const lp = read(d.logProb(a));
    const h = read(d.entropy());
    for (let b = 0; b < 2; b++) {
      let want = 0;
      for (let i = 0; i < 2; i++) {
        const sigma = Math.exp(logStd[i]!);
        want += -0.5 * ((acts[b]![i]! - mu[b]![i]!) / sigma) ** 2 - Math.log(sigma) - 0.5 * Math.log(2 * Math.PI);
      }
      expect(lp[b]).toBeCloseTo(want, 5);
      expect(h[b]).toBeCloseTo(logStd[0]! + logStd[1]! + Math.log(2 * Math.PI * Math.E), 5);
    }
    expect(read(d.mode())).toEqual(mu.flat().map((x) => Math.fround(x)));
    tf.dispose([m, s, a]);
  });

  it('KL matches the closed form for Gaussians with different means and stds', () => {
    const p = new DiagGaussianDistribution(tf.tensor2d([[0.2, -1]]), tf.tensor1d([0.1, -0.7]));
    const q = new DiagGaussianDistribution(tf.tensor2d([[1.0, 0.5]]), tf.tensor1d([-0.3, 0.4]));
    // KL(N(m1, s1^2) || N(m2, s2^2)) = log(s2/s1) + (s1^2 + (m1 - m2)^2) / (2 s2^2) - 1/2, per dimension.
    const kl1 = (m1: number, l1: number, m2: number, l2: number): number =>
      l2 - l1 + (Math.exp(2 * l1) + (m1 - m2) ** 2) / (2 * Math.exp(2 * l2)) - 0.5;
    const want = kl1(0.2, 0.1, 1.0, -0.3) + kl1(-1, -0.7, 0.5, 0.4);
    expect(read(p.kl(q))[0]).toBeCloseTo(want, 5);
    expect(read(p.kl(p))[0]).toBeCloseTo(0, 6);
    tf.dispose([p.mean, p.logStd, q.mean, q.logStd]);
  });

  it('sampleDiagGaussian has the right mean and std and returns log-densities of the stored actions', () => {
    const n = 20000;
    const mean = new Float32Array(n * 2);
    for (let r = 0; r < n; r++) mean.set([1.5, -2], r * 2);
    const ls = new Float32Array([Math.log(0.5), Math.log(2)]);
    const actions = new Float32Array(n * 2);
    const logp = new Float32Array(n);
    sampleDiagGaussian(mean, n, 2, ls, new Rng(3), actions, logp);
    for (const [k, m, s] of [[0, 1.5, 0.5], [1, -2, 2]] as const) {
      let sum = 0;
      let sq = 0;
      for (let r = 0; r < n; r++) sum += actions[r * 2 + k]!;
      const avg = sum / n;
      for (let r = 0; r < n; r++) sq += (actions[r * 2 + k]! - avg) ** 2;
      expect(Math.abs(avg - m)).toBeLessThan((4 * s) / Math.sqrt(n));
      expect(Math.abs(Math.sqrt(sq / n) / s - 1)).toBeLessThan(0.03);
    }
    const r = 7;
    const want =
      -0.5 * ((actions[r * 2]! - 1.5) / 0.5) ** 2 - Math.log(0.5) - 0.5 * ((actions[r * 2 + 1]! + 2) / 2) ** 2 - Math.log(2) - Math.log(2 * Math.PI);
    expect(logp[r]).toBeCloseTo(want, 4);
  });
});
