import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.ts';
import { aggregateLoss, clippedSurrogate, maskedMean, valueLoss } from '../../src/objectives/ppo.ts';
import { expectClose } from './helpers.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('clippedSurrogate', () => {
  // ratio, advantage -> expected loss, clippedLow, clippedHigh (epsilon 0.2)
  const cases: [number, number, number, number, number][] = [
    [1.5, 1, -1.2, 0, 1], // above the range with A > 0: clipped at 1.2
    [0.5, -1, 0.8, 1, 0], // below the range with A < 0: clipped at 0.8
    [1.5, -1, 1.5, 0, 0], // above the range with A < 0: min keeps the unclipped (worse) term
    [0.5, 1, -0.5, 0, 0], // below the range with A > 0: unclipped
    [1.1, 2, -2.2, 0, 0], // inside the range
  ];

  it('matches hand-computed per-element losses and clip indicators', () => {
    const logprobs = tf.tensor1d(cases.map((c) => Math.log(c[0])));
    const old = tf.zeros([cases.length]);
    const out = clippedSurrogate({ logprobs, oldLogprobs: old, advantages: tf.tensor1d(cases.map((c) => c[1])) }, { epsilon: 0.2 });
    expectClose(out.perElement.dataSync(), cases.map((c) => c[2]), 1e-6);
    expect(Array.from(out.clippedLow.dataSync())).toEqual(cases.map((c) => c[3]));
    expect(Array.from(out.clippedHigh.dataSync())).toEqual(cases.map((c) => c[4]));
    expectClose(out.ratio.dataSync(), cases.map((c) => c[0]), 1e-6);
  });

  it('uses epsilonHigh for the upper bound (DAPO clip-higher)', () => {
    const inputs = { logprobs: tf.tensor1d([Math.log(1.25), Math.log(1.3)]), oldLogprobs: tf.zeros([2]), advantages: tf.ones([2]) };
    expectClose(clippedSurrogate(inputs, { epsilon: 0.2 }).perElement.dataSync(), [-1.2, -1.2], 1e-6);
    const asym = clippedSurrogate(inputs, { epsilon: 0.2, epsilonHigh: 0.28 });
    expectClose(asym.perElement.dataSync(), [-1.25, -1.28], 1e-6);
    expect(Array.from(asym.clippedHigh.dataSync())).toEqual([0, 1]);
  });

  it('broadcasts per-sequence advantages [N] over [N, T]', () => {
    const lp = tf.tensor2d([[0, Math.log(2)], [Math.log(0.9), 0]]);
    const out = clippedSurrogate({ logprobs: lp, oldLogprobs: tf.zeros([2, 2]), advantages: tf.tensor1d([1, -3]) }, { epsilon: 0.2 });
    expect(out.perElement.shape).toEqual([2, 2]);
    expectClose(out.perElement.dataSync(), [-1, -1.2, 2.7, 3], 1e-6);
  });

  it('passes gradient only through unclipped elements: d loss / d logp = -A * ratio', () => {
    const old = tf.zeros([cases.length]);
    const adv = tf.tensor1d(cases.map((c) => c[1]));
    const g = tf.grad((lp: tf.Tensor) => tf.sum(clippedSurrogate({ logprobs: lp, oldLogprobs: old, advantages: adv }, { epsilon: 0.2 }).perElement))(
      tf.tensor1d(cases.map((c) => Math.log(c[0]))),
    );
    const expected = cases.map(([r, a, , low, high]) => (low || high ? 0 : -a * r));
    expectClose(g.dataSync(), expected, 1e-6);
  });

  it('does not leak and rejects bad shapes and ranges', () => {
    const lp = tf.zeros([2, 3]);
    const adv = tf.zeros([2]);
    const before = tf.memory().numTensors;
    const out = clippedSurrogate({ logprobs: lp, oldLogprobs: lp, advantages: adv }, { epsilon: 0.2 });
    tf.dispose(Object.values(out));
    expect(tf.memory().numTensors).toBe(before);
    expect(() => clippedSurrogate({ logprobs: lp, oldLogprobs: lp, advantages: tf.zeros([3]) }, { epsilon: 0.2 })).toThrow(
      /advantages has shape \[3\] but logprobs has shape \[2, 3\]/,
    );
    expect(() => clippedSurrogate({ logprobs: lp, oldLogprobs: tf.zeros([2]), advantages: adv }, { epsilon: 0.2 })).toThrow(/oldLogprobs has shape \[2\]/);
    expect(() => clippedSurrogate({ logprobs: lp, oldLogprobs: lp, advantages: adv }, { epsilon: -0.1 })).toThrow(/epsilon must be a finite number >= 0/);
  });
});

describe('valueLoss', () => {
  it('is half the mean squared error', () => {
    expectClose(valueLoss(tf.tensor1d([1, 2]), tf.tensor1d([0, 4])).dataSync(), [1.25], 1e-6);
  });

  it('clips the value change around the old values and takes the worse error', () => {
    // V - V_old = 1 is clipped to 0.2: (0.2 - 2)^2 = 3.24 > (1 - 2)^2 = 1
    const v = tf.tensor1d([1, 1]);
    const r = tf.tensor1d([2, 0]);
    const old = tf.tensor1d([0, 0]);
    // second element: clipped 0.2 -> (0.2)^2 = 0.04 < 1, keep 1
    expectClose(valueLoss(v, r, { oldValues: old, clipRange: 0.2 }).dataSync(), [0.5 * (3.24 + 1) / 2], 1e-6);
  });

  it('with a mask averages the masked elements only', () => {
    const v = tf.tensor2d([[1, 5], [3, 9]]);
    const r = tf.tensor2d([[0, 0], [1, 0]]);
    const m = tf.tensor2d([[1, 0], [1, 0]]);
    expectClose(valueLoss(v, r, { mask: m }).dataSync(), [0.5 * (1 + 4) / 2], 1e-6);
    expect(() => valueLoss(v, r, { clipRange: 0.2 })).toThrow(/clipRange is set, so oldValues is required/);
    expect(() => valueLoss(v, tf.zeros([2]))).toThrow(/returns has shape \[2\] but values has shape \[2, 2\]/);
  });
});

/** Float64 reference of the loss aggregation modes. */
function aggregateRef(x: number[][], m: number[][], type: string, maxLen: number): number {
  const N = x.length;
  const rowSums = x.map((row, i) => row.reduce((s, v, t) => s + v * m[i]![t]!, 0));
  const rowCounts = m.map((row) => row.reduce((s, v) => s + v, 0));
  const total = rowSums.reduce((a, b) => a + b, 0);
  const count = rowCounts.reduce((a, b) => a + b, 0);
  if (type === 'grpo') return rowSums.reduce((s, v, i) => s + v / Math.max(rowCounts[i]!, 1), 0) / N;
  if (type === 'dr_grpo') return total / (N * maxLen);
  return total / Math.max(count, 1);
}

describe('aggregateLoss', () => {
  const rng = new Rng(21);
  const x = Array.from({ length: 3 }, () => Array.from({ length: 4 }, () => rng.normal()));
  const lengths = [4, 2, 0]; // the last completion has no tokens
  const m = lengths.map((len) => Array.from({ length: 4 }, (_, t) => (t < len ? 1 : 0)));

  it('matches a float64 reference for every loss type', () => {
    for (const type of ['grpo', 'bnpo', 'dapo', 'dr_grpo'] as const) {
      const out = aggregateLoss(tf.tensor2d(x), tf.tensor2d(m), type, 6);
      expect(out.shape).toEqual([]);
      expectClose(out.dataSync(), [aggregateRef(x, m, type, 6)], 1e-6, 1e-5);
    }
  });

  it('gives per-sequence means equal weight in grpo and per-token weight in bnpo', () => {
    const xx = [[1, 1, 1, 1], [3, 0, 0, 0]];
    const mm = [[1, 1, 1, 1], [1, 0, 0, 0]];
    expectClose(aggregateLoss(tf.tensor2d(xx), tf.tensor2d(mm), 'grpo').dataSync(), [2], 1e-6); // (1 + 3) / 2
    expectClose(aggregateLoss(tf.tensor2d(xx), tf.tensor2d(mm), 'bnpo').dataSync(), [7 / 5], 1e-6);
    expectClose(aggregateLoss(tf.tensor2d(xx), tf.tensor2d(mm), 'dr_grpo', 4).dataSync(), [7 / 8], 1e-6);
  });

  it('accepts bool and int masks, guards an all-zero mask and does not leak', () => {
    const xt = tf.tensor2d(x);
    const bm = tf.tensor2d(m, undefined, 'bool');
    const empty = tf.zerosLike(bm);
    const before = tf.memory().numTensors;
    const a = aggregateLoss(xt, bm, 'bnpo');
    expectClose(a.dataSync(), [aggregateRef(x, m, 'bnpo', 0)], 1e-6, 1e-5);
    const z = maskedMean(xt, empty);
    expect(z.dataSync()[0]).toBe(0);
    tf.dispose([a, z]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rejects bad input', () => {
    const xt = tf.tensor2d(x);
    expect(() => aggregateLoss(xt, tf.tensor2d(m), 'dr_grpo')).toThrow(/'dr_grpo' needs maxCompletionLength/);
    expect(() => aggregateLoss(xt, tf.tensor2d(m), 'mean' as never)).toThrow(/lossType must be one of grpo, bnpo, dr_grpo, dapo/);
    expect(() => aggregateLoss(tf.zeros([12]), tf.zeros([12]), 'grpo')).toThrow(/perToken must be a \[N, T\] tensor, got shape \[12\]/);
    expect(() => aggregateLoss(xt, tf.zeros([3, 5]), 'grpo')).toThrow(/mask has shape \[3, 5\] but perToken has shape \[3, 4\]/);
  });
});
