import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.ts';
import { categoricalEntropy, gaussianEntropy, gaussianLogProb } from '../../src/objectives/entropy.ts';
import { klK1, klK2, klK3 } from '../../src/objectives/kl.ts';
import { expectClose, logSumExp64, normals } from './helpers.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('KL estimators', () => {
  const lp = [Math.log(0.5), Math.log(0.2), Math.log(0.3)];
  const lr = [Math.log(0.25), Math.log(0.4), Math.log(0.3)];

  it('match hand-computed values', () => {
    const p = tf.tensor1d(lp);
    const r = tf.tensor1d(lr);
    // k1 = log(p / ref): [log 2, log 0.5, 0]
    expectClose(klK1(p, r).dataSync(), [Math.log(2), Math.log(0.5), 0], 1e-6);
    expectClose(klK2(p, r).dataSync(), [0.5 * Math.log(2) ** 2, 0.5 * Math.log(2) ** 2, 0], 1e-6);
    // k3 = ref/p - log(ref/p) - 1: [0.5 - log 0.5 - 1, 2 - log 2 - 1, 0]
    expectClose(klK3(p, r).dataSync(), [Math.log(2) - 0.5, 1 - Math.log(2), 0], 1e-6);
  });

  it('k3 and k2 are non-negative', () => {
    const rng = new Rng(9);
    const a = normals(rng, 500, 0, 3);
    const b = normals(rng, 500, 0, 3);
    const k3 = klK3(tf.tensor1d(a), tf.tensor1d(b)).dataSync();
    const k2 = klK2(tf.tensor1d(a), tf.tensor1d(b)).dataSync();
    expect(Math.min(...k3)).toBeGreaterThanOrEqual(0);
    expect(Math.min(...k2)).toBeGreaterThanOrEqual(0);
  });

  it('k1 and k3 averaged over samples from p approach the exact KL of two categoricals', () => {
    const p = [0.5, 0.3, 0.2];
    const q = [0.2, 0.3, 0.5];
    const exact = p.reduce((s, pi, i) => s + pi * Math.log(pi / q[i]!), 0); // 0.2749
    const rng = new Rng(2020);
    const n = 20000;
    const logp = new Float32Array(n);
    const logq = new Float32Array(n);
    for (let k = 0; k < n; k++) {
      const x = rng.categorical(p);
      logp[k] = Math.log(p[x]!);
      logq[k] = Math.log(q[x]!);
    }
    const a = tf.tensor1d(logp);
    const b = tf.tensor1d(logq);
    // per-sample std of k1 is ~0.72, so the standard error is ~0.005; allow 6 of them
    expect(Math.abs(tf.mean(klK1(a, b)).dataSync()[0]! - exact)).toBeLessThan(0.03);
    expect(Math.abs(tf.mean(klK3(a, b)).dataSync()[0]! - exact)).toBeLessThan(0.03);
  });

  it('do not leak and reject mismatched shapes', () => {
    const a = tf.tensor2d([[0.1, 0.2]]);
    const b = tf.tensor2d([[0.3, 0.1]]);
    const before = tf.memory().numTensors;
    tf.dispose([klK1(a, b), klK2(a, b), klK3(a, b)]);
    expect(tf.memory().numTensors).toBe(before);
    expect(() => klK3(a, tf.zeros([2]))).toThrow(/klK3: logref has shape \[2\] but logp has shape \[1, 2\]/);
  });
});

describe('categoricalEntropy', () => {
  it('is log V for uniform logits and matches a float64 reference', () => {
    expectClose(categoricalEntropy(tf.zeros([2, 6])).dataSync(), [Math.log(6), Math.log(6)], 1e-6);
    const z = [1, 2, 3];
    const lse = logSumExp64(z);
    const h = -z.reduce((s, x) => s + Math.exp(x - lse) * (x - lse), 0);
    expectClose(categoricalEntropy(tf.tensor1d(z)).dataSync(), [h], 1e-6);
  });

  it('is finite for logits of magnitude 1e4', () => {
    const out = categoricalEntropy(tf.tensor2d([[1e4, 1e4, -1e4], [1e4, 0, 0]])).dataSync();
    expectClose(out, [Math.log(2), 0], 1e-6);
  });

  it('has the analytic gradient -p (log p + H) with respect to the logits', () => {
    const z = [0.3, -1.2, 2.0, 0.5];
    const g = tf.grad((x: tf.Tensor) => categoricalEntropy(x))(tf.tensor1d(z)).dataSync();
    const lse = logSumExp64(z);
    const logp = z.map((x) => x - lse);
    const H = -logp.reduce((s, l) => s + Math.exp(l) * l, 0);
    expectClose(g, logp.map((l) => -Math.exp(l) * (l + H)), 1e-6);
  });
});

describe('Gaussian entropy and log-density', () => {
  it('entropy sums log std + 0.5 log(2 pi e) over the last axis', () => {
    const c = 0.5 * Math.log(2 * Math.PI * Math.E);
    expectClose(gaussianEntropy(tf.tensor2d([[0, Math.log(2)], [-1, 1]])).dataSync(), [2 * c + Math.log(2), 2 * c], 1e-6);
  });

  it('log-density matches the formula, with a broadcast [A] log std', () => {
    const a = [[0.5, -1], [2, 0]];
    const mu = [[0, 0], [1, 1]];
    const ls = [0.1, -0.3];
    const ref = a.map((row, b) =>
      row.reduce((s, x, i) => {
        const sd = Math.exp(ls[i]!);
        return s - 0.5 * ((x - mu[b]![i]!) / sd) ** 2 - ls[i]! - 0.5 * Math.log(2 * Math.PI);
      }, 0),
    );
    const out = gaussianLogProb(tf.tensor2d(a), tf.tensor2d(mu), tf.tensor1d(ls));
    expect(out.shape).toEqual([2]);
    expectClose(out.dataSync(), ref, 1e-5);
  });

  it('the mean of -log N(x) over samples is the entropy', () => {
    const rng = new Rng(12);
    const n = 20000;
    const ls = [0.4, -0.7, 0];
    const mu = [1, -2, 0.5];
    const x = new Float32Array(n * 3);
    for (let k = 0; k < n; k++) for (let i = 0; i < 3; i++) x[k * 3 + i] = rng.normal(mu[i]!, Math.exp(ls[i]!));
    const lp = gaussianLogProb(tf.tensor2d(x, [n, 3]), tf.tensor1d(mu), tf.tensor1d(ls));
    const h = gaussianEntropy(tf.tensor1d(ls)).dataSync()[0]!;
    // -log N has std sqrt(3/2) ~ 1.22 per sample here: standard error ~0.009
    expect(Math.abs(-tf.mean(lp).dataSync()[0]! - h)).toBeLessThan(0.05);
  });

  it('rejects mismatched action dimensions and does not leak', () => {
    expect(() => gaussianLogProb(tf.zeros([2, 3]), tf.zeros([2, 2]), tf.zeros([3]))).toThrow(/mean has shape \[2, 2\] but actions has shape \[2, 3\]/);
    expect(() => gaussianEntropy(tf.scalar(1))).toThrow(/logStd must have rank >= 1/);
    const a = tf.zeros([4, 2]);
    const ls = tf.zeros([2]);
    const before = tf.memory().numTensors;
    tf.dispose([gaussianLogProb(a, a, ls), gaussianEntropy(a), categoricalEntropy(a)]);
    expect(tf.memory().numTensors).toBe(before);
  });
});
