import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.ts';
import { grpoLoss, grpoLossTensors, type GrpoLossConfig } from '../../src/objectives/grpo-loss.ts';
import { tokenLogprobs } from '../../src/objectives/logprobs.ts';
import { expectClose, logSumExp64, normals } from './helpers.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

type Mat = number[][];

/** Plain float64 GRPO loss and metrics, written from the equations (TRL `_compute_loss`). */
function grpoRef(lp: Mat, old: Mat, ref: Mat | undefined, adv: number[], mask: Mat, c: GrpoLossConfig) {
  const N = lp.length;
  const T = lp[0]!.length;
  let total = 0, count = 0, grpoSum = 0, kl = 0, low = 0, high = 0, ratioSum = 0;
  for (let i = 0; i < N; i++) {
    let rowSum = 0, rowCount = 0;
    for (let t = 0; t < T; t++) {
      const m = mask[i]![t]!;
      const r = Math.exp(lp[i]![t]! - old[i]![t]!);
      const a = adv[i]!;
      const clipped = Math.min(Math.max(r, 1 - c.epsilon), 1 + c.epsilonHigh);
      let x = -Math.min(r * a, clipped * a);
      if (c.beta > 0) {
        const d = ref![i]![t]! - lp[i]![t]!;
        const k3 = Math.exp(d) - d - 1;
        x += c.beta * k3;
        kl += m * k3;
      }
      rowSum += m * x;
      rowCount += m;
      low += m * (r < 1 - c.epsilon && a < 0 ? 1 : 0);
      high += m * (r > 1 + c.epsilonHigh && a > 0 ? 1 : 0);
      ratioSum += m * r;
    }
    grpoSum += rowSum / Math.max(rowCount, 1);
    total += rowSum;
    count += rowCount;
  }
  const denom = Math.max(count, 1);
  const loss =
    c.lossType === 'grpo' ? grpoSum / N : c.lossType === 'dr_grpo' ? total / (N * c.maxCompletionLength) : total / denom;
  return { loss, kl: kl / denom, low: low / denom, high: high / denom, region: (low + high) / denom, ratio: ratioSum / denom };
}

// A hand-made batch: N = 3 completions, T = 4, lengths 4, 2 and 3. Padding positions hold
// wild values that must not matter.
const lengths = [4, 2, 3];
const mask: Mat = lengths.map((len) => [0, 1, 2, 3].map((t) => (t < len ? 1 : 0)));
const rng = new Rng(31);
const old: Mat = mask.map((row) => row.map((m) => (m ? rng.uniformRange(-3, -0.1) : -50)));
const lp: Mat = old.map((row, i) => row.map((o, t) => (mask[i]![t] ? o + rng.normal(0, 0.3) : 40)));
const ref: Mat = old.map((row, i) => row.map((o, t) => (mask[i]![t] ? o + rng.normal(0, 0.2) : -80)));
const adv = [1.2, -0.7, 0.4];
const base: GrpoLossConfig = { epsilon: 0.2, epsilonHigh: 0.28, beta: 0.04, lossType: 'grpo', maxCompletionLength: 5 };
const lossTypes = ['grpo', 'bnpo', 'dr_grpo', 'dapo'] as const;

function tensors(lpm: Mat = lp) {
  return {
    logprobs: tf.tensor2d(lpm),
    oldLogprobs: tf.tensor2d(old),
    refLogprobs: tf.tensor2d(ref),
    advantages: tf.tensor1d(adv),
    mask: tf.tensor2d(mask),
  };
}

describe('grpoLoss', () => {
  it('the test batch has some clipped tokens and none near a clip boundary', () => {
    const ratios = lp.flatMap((row, i) => row.map((x, t) => (mask[i]![t] ? Math.exp(x - old[i]![t]!) : 1)));
    expect(ratios.some((r) => r < 0.8 || r > 1.28)).toBe(true);
    for (const r of ratios) for (const b of [0.8, 1.28]) expect(Math.abs(r - b)).toBeGreaterThan(1e-3);
  });

  it('matches the float64 reference for every loss type, with and without the KL term', () => {
    for (const lossType of lossTypes) {
      for (const beta of [0, 0.04]) {
        const config = { ...base, lossType, beta };
        const inputs = tensors();
        const out = grpoLoss(beta === 0 ? { ...inputs, refLogprobs: undefined } : inputs, config);
        const r = grpoRef(lp, old, ref, adv, mask, config);
        expectClose(out.loss.dataSync(), [r.loss], 1e-5, 1e-5);
        expect(out.metrics.kl).toBeCloseTo(beta === 0 ? 0 : r.kl, 5);
        expect(out.metrics.clipRatioLow).toBeCloseTo(r.low, 6);
        expect(out.metrics.clipRatioHigh).toBeCloseTo(r.high, 6);
        expect(out.metrics.clipRatioRegion).toBeCloseTo(r.region, 6);
        expect(out.metrics.meanRatio).toBeCloseTo(r.ratio, 5);
      }
    }
  });

  it('has the gradient of the reference, by central finite differences', () => {
    const h = 1e-6;
    for (const lossType of lossTypes) {
      const config = { ...base, lossType };
      const inputs = tensors();
      const g = tf.grad((x: tf.Tensor) => grpoLoss({ ...inputs, logprobs: x }, config).loss)(inputs.logprobs).dataSync();
      const fd: number[] = [];
      for (let i = 0; i < 3; i++) {
        for (let t = 0; t < 4; t++) {
          const plus = lp.map((row) => row.slice());
          const minus = lp.map((row) => row.slice());
          plus[i]![t]! += h;
          minus[i]![t]! -= h;
          fd.push((grpoRef(plus, old, ref, adv, mask, config).loss - grpoRef(minus, old, ref, adv, mask, config).loss) / (2 * h));
        }
      }
      expect(fd.some((x) => x !== 0)).toBe(true);
      expectClose(g, fd, 1e-5, 1e-4);
    }
  });

  it('with ratio 1 and beta 0 is minus the aggregated advantage, with no clipping', () => {
    const L = lengths;
    const expected = {
      grpo: -(adv[0]! + adv[1]! + adv[2]!) / 3,
      bnpo: -(adv[0]! * L[0]! + adv[1]! * L[1]! + adv[2]! * L[2]!) / (L[0]! + L[1]! + L[2]!),
      dapo: -(adv[0]! * L[0]! + adv[1]! * L[1]! + adv[2]! * L[2]!) / (L[0]! + L[1]! + L[2]!),
      dr_grpo: -(adv[0]! * L[0]! + adv[1]! * L[1]! + adv[2]! * L[2]!) / (3 * 5),
    };
    for (const lossType of lossTypes) {
      const inputs = tensors(old);
      const out = grpoLoss({ ...inputs, refLogprobs: undefined }, { ...base, lossType, beta: 0 });
      expectClose(out.loss.dataSync(), [expected[lossType]], 1e-6);
      expect(out.metrics).toEqual({ kl: 0, clipRatioLow: 0, clipRatioHigh: 0, clipRatioRegion: 0, meanRatio: 1 });
    }
  });

  it('counts clipped tokens: all ratios 1.5 clip the positive-advantage completions high', () => {
    const up = old.map((row) => row.map((o) => o + Math.log(1.5)));
    const out = grpoLoss({ ...tensors(up), refLogprobs: undefined }, { ...base, beta: 0, lossType: 'bnpo' });
    // completions 0 and 2 (A > 0, 4 + 3 tokens) are clipped at 1.28; completion 1 (A < 0) keeps ratio 1.5
    expect(out.metrics.clipRatioHigh).toBeCloseTo(7 / 9, 6);
    expect(out.metrics.clipRatioLow).toBe(0);
    expect(out.metrics.clipRatioRegion).toBeCloseTo(7 / 9, 6);
    expectClose(out.loss.dataSync(), [-(1.28 * (1.2 * 4 + 0.4 * 3) - 1.5 * 0.7 * 2) / 9], 1e-6);
    const down = old.map((row) => row.map((o) => o + Math.log(0.5)));
    const out2 = grpoLoss({ ...tensors(down), refLogprobs: undefined }, { ...base, beta: 0, lossType: 'bnpo' });
    expect(out2.metrics.clipRatioLow).toBeCloseTo(2 / 9, 6); // completion 1 only
    expect(out2.metrics.clipRatioHigh).toBe(0);
    expect(out2.metrics.meanRatio).toBeCloseTo(0.5, 6);
  });

  it('works inside tf.variableGrads through tokenLogprobs, without leaking', () => {
    const V = 6;
    const r = new Rng(8);
    const logits = tf.variable(tf.tensor3d(normals(r, 3 * 4 * V), [3, 4, V]));
    const ids = tf.tensor2d(Int32Array.from({ length: 12 }, () => r.int(V)), [3, 4], 'int32');
    const fixed = tensors();
    const start = tokenLogprobs(logits, ids);
    const oldT = tf.add(start, tf.tensor2d(lp).sub(tf.tensor2d(old)).neg()); // so that ratio = the test batch's ratios
    const inputs = { ...fixed, oldLogprobs: oldT };
    const gLpT = tf.grad((x: tf.Tensor) => grpoLoss({ ...inputs, logprobs: x }, base).loss)(start);
    const gLp = gLpT.dataSync();
    const z = logits.dataSync();
    const idv = ids.dataSync();
    const chain: number[] = [];
    for (let k = 0; k < 12; k++) {
      const row = Array.from(z.slice(k * V, k * V + V));
      const lse = logSumExp64(row);
      for (let v = 0; v < V; v++) chain.push(gLp[k]! * ((v === idv[k] ? 1 : 0) - Math.exp(row[v]! - lse)));
    }
    gLpT.dispose();
    const before = tf.memory().numTensors;
    let metrics: ReturnType<typeof grpoLoss>['metrics'] | undefined;
    for (let step = 0; step < 3; step++) {
      const { value, grads } = tf.variableGrads(() => {
        const out = grpoLoss({ ...inputs, logprobs: tokenLogprobs(logits, ids) }, base);
        metrics = out.metrics;
        return out.loss;
      });
      expect(Number.isFinite(value.dataSync()[0])).toBe(true);
      const g = grads[logits.name]!;
      expect(g.shape).toEqual([3, 4, V]);
      // chain rule: dL/dlogits[i, t, v] = dL/dlogp[i, t] * (onehot(ids[i, t])[v] - softmax(logits[i, t])[v])
      expectClose(g.dataSync(), chain, 1e-6, 1e-4);
      // so each row of dL/dlogits sums to 0
      const rowSumT = tf.sum(g, -1);
      const rowSums = rowSumT.dataSync();
      expectClose(rowSums, new Array(12).fill(0), 1e-6);
      // padded tokens get no gradient
      const padT = tf.tidy(() => tf.sum(tf.abs(g), -1));
      const pad = padT.dataSync();
      expect(pad[1 * 4 + 2]).toBe(0);
      expect(pad[1 * 4 + 3]).toBe(0);
      tf.dispose([value, ...Object.values(grads), rowSumT, padT]);
      expect(tf.memory().numTensors).toBe(before);
    }
    expect(metrics!.clipRatioRegion).toBeGreaterThan(0);
  });

  it('grpoLossTensors returns live tensors that the caller disposes', () => {
    const inputs = tensors();
    const before = tf.memory().numTensors;
    const out = grpoLossTensors(inputs, base);
    expect(Object.keys(out).sort()).toEqual(['clipRatioHigh', 'clipRatioLow', 'clipRatioRegion', 'kl', 'loss', 'meanRatio']);
    expect(tf.memory().numTensors).toBe(before + 6);
    tf.dispose(Object.values(out));
    const wrapped = grpoLoss(inputs, base);
    expect(tf.memory().numTensors).toBe(before + 1); // only the loss survives
    wrapped.loss.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rejects bad input with messages naming the field', () => {
    const inputs = tensors();
    expect(() => grpoLoss({ ...inputs, refLogprobs: undefined }, base)).toThrow(/beta = 0.04 > 0, so refLogprobs is required/);
    expect(() => grpoLoss({ ...inputs, advantages: tf.zeros([3, 4]) }, base)).toThrow(/advantages must be \[N\] = \[3\]/);
    expect(() => grpoLoss({ ...inputs, mask: tf.zeros([3, 5]) }, base)).toThrow(/mask has shape \[3, 5\]/);
    expect(() => grpoLoss(inputs, { ...base, lossType: 'sum' as never })).toThrow(/config.lossType must be one of/);
    expect(() => grpoLoss(inputs, { ...base, maxCompletionLength: 0 })).toThrow(/config.maxCompletionLength must be an integer >= 1/);
    expect(() => grpoLoss(inputs, { ...base, beta: -1 })).toThrow(/config.beta must be a finite number >= 0/);
    expect(() => grpoLoss({ ...inputs, logprobs: tf.zeros([12]) }, base)).toThrow(/logprobs must be a \[N, T\] tensor/);
  });
});
