import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.ts';
import { logSoftmax, tokenLogprobs } from '../../src/objectives/logprobs.ts';
import { expectClose, logSumExp64, normals } from './helpers.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Float64 reference: log softmax(z / tau)[id] for each row of a flat [M, V] array. */
function refLogprobs(z: ArrayLike<number>, ids: ArrayLike<number>, V: number, tau: number): number[] {
  const out: number[] = [];
  for (let m = 0; m < ids.length; m++) {
    const row = Array.from({ length: V }, (_, v) => z[m * V + v]! / tau);
    out.push(row[ids[m]!]! - logSumExp64(row));
  }
  return out;
}

describe('tokenLogprobs', () => {
  it('matches a hand-computed value', () => {
    const out = tokenLogprobs(tf.tensor2d([[1, 2, 3]]), tf.tensor1d([2], 'int32'));
    expectClose(out.dataSync(), [3 - Math.log(Math.exp(1) + Math.exp(2) + Math.exp(3))]);
    expect(out.shape).toEqual([1]);
  });

  it('matches a float64 reference on a random [N, T, V] batch with a temperature', () => {
    const rng = new Rng(2);
    const [N, T, V] = [2, 3, 7];
    const z = normals(rng, N * T * V, 0, 3);
    const ids = Int32Array.from({ length: N * T }, () => rng.int(V));
    for (const tau of [1, 0.7, 2]) {
      const out = tokenLogprobs(tf.tensor3d(z, [N, T, V]), tf.tensor2d(ids, [N, T], 'int32'), tau);
      expect(out.shape).toEqual([N, T]);
      expectClose(out.dataSync(), refLogprobs(z, ids, V, tau), 1e-5, 1e-5);
    }
  });

  it('is finite and correct for logits of magnitude 1e4', () => {
    const z = [1e4, 1e4 - 1, 1e4 - 3, -1e4, 0, 1e4];
    const out = tokenLogprobs(tf.tensor2d(z, [2, 3]), tf.tensor1d([1, 0], 'int32')).dataSync();
    expect(Array.from(out).every(Number.isFinite)).toBe(true);
    expectClose(out, [-1 - Math.log(1 + Math.exp(-1) + Math.exp(-3)), -2e4], 1e-4, 1e-6);
  });

  it('has gradient (onehot - softmax) / temperature with respect to the logits', () => {
    const rng = new Rng(4);
    const [M, V, tau] = [4, 5, 0.8];
    const z = normals(rng, M * V);
    const ids = Int32Array.from({ length: M }, () => rng.int(V));
    const idT = tf.tensor1d(ids, 'int32');
    const g = tf.grad((x: tf.Tensor) => tf.sum(tokenLogprobs(x, idT, tau)))(tf.tensor2d(z, [M, V]));
    const expected: number[] = [];
    for (let m = 0; m < M; m++) {
      const row = Array.from({ length: V }, (_, v) => z[m * V + v]! / tau);
      const lse = logSumExp64(row);
      for (let v = 0; v < V; v++) expected.push(((v === ids[m] ? 1 : 0) - Math.exp(row[v]! - lse)) / tau);
    }
    expectClose(g.dataSync(), expected, 1e-6, 1e-5);
  });

  it('does not leak tensors', () => {
    const z = tf.randomNormal([3, 4, 6]);
    const ids = tf.zeros([3, 4], 'int32');
    const before = tf.memory().numTensors;
    const out = tokenLogprobs(z, ids, 0.5);
    const ls = logSoftmax(z);
    const g = tf.grad((x: tf.Tensor) => tf.sum(tokenLogprobs(x, ids)))(z);
    tf.dispose([out, ls, g]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([z, ids]);
  });

  it('rejects bad input with a message naming the problem', () => {
    const z = tf.zeros([2, 3, 5]);
    expect(() => tokenLogprobs(z, tf.zeros([2, 4], 'int32'))).toThrow(/ids has shape \[2, 4\] .* must have the logits shape without its last axis, \[2, 3\]/);
    expect(() => tokenLogprobs(z, tf.zeros([2, 3], 'float32'))).toThrow(/ids must be an int32 tensor, got dtype float32/);
    expect(() => tokenLogprobs(z, tf.tensor2d([0, 1, 2, 3, 5, 0], [2, 3], 'int32'))).toThrow(/id 5 at flat position 4 .* outside \[0, 5\)/);
    expect(() => tokenLogprobs(z, tf.zeros([2, 3], 'int32'), 0)).toThrow(/temperature must be a finite number > 0/);
  });
});

describe('logSoftmax', () => {
  it('rows exponentiate to probabilities that sum to 1', () => {
    const out = logSoftmax(tf.tensor2d([[1, 2, 3], [1e4, 0, -1e4]]), 3);
    const p = tf.exp(out).sum(-1).dataSync();
    expectClose(p, [1, 1], 1e-6);
    expectClose(out.dataSync().slice(0, 3), [1, 2, 3].map((x) => x / 3 - logSumExp64([1 / 3, 2 / 3, 1])), 1e-6);
  });
});
