import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.ts';
import { ObsNormalizer, RewardNormalizer, RunningMeanStd } from '../../src/control/normalize.ts';

/** Two-pass mean and population variance of column k of row-major data. */
function twoPass(data: number[], d: number, k: number): { mean: number; variance: number } {
  const col = data.filter((_, i) => i % d === k);
  const mean = col.reduce((a, b) => a + b, 0) / col.length;
  return { mean, variance: col.reduce((a, b) => a + (b - mean) ** 2, 0) / col.length };
}

describe('RunningMeanStd', () => {
  it('merged batches of uneven sizes give the two-pass mean and variance of all rows', () => {
    const rng = new Rng(5);
    const d = 3;
    const all: number[] = [];
    const rms = new RunningMeanStd(d, 0); // no prior count: exact statistics of the data
    for (const rows of [1, 7, 2, 30, 5]) {
      const batch = Array.from({ length: rows * d }, (_, i) => rng.normal(i % d === 1 ? 5 : -2, i % d === 2 ? 3 : 0.5));
      rms.update(batch, rows);
      all.push(...batch);
    }
    for (let k = 0; k < d; k++) {
      const { mean, variance } = twoPass(all, d, k);
      expect(rms.mean[k]).toBeCloseTo(mean, 10);
      expect(rms.var[k]).toBeCloseTo(variance, 10);
    }
    expect(rms.count).toBe(45);
  });

  it('with the SB3 prior count 1e-4 the first batch dominates', () => {
    const rms = new RunningMeanStd(1);
    rms.update([2, 4], 2);
    // (0 * 1e-4 + 3 * 2) / (2 + 1e-4)
    expect(rms.mean[0]).toBeCloseTo(6 / 2.0001, 12);
  });

  it('rejects a batch of the wrong size and malformed saved state', () => {
    expect(() => new RunningMeanStd(2).update([1, 2, 3], 2)).toThrow(/expected 2 x 2 = 4 values, got 3/);
    expect(() => RunningMeanStd.fromJSON({ mean: [0], var: [-1], count: 1 })).toThrow(/var >= 0/);
  });
});

describe('ObsNormalizer', () => {
  it('normalises by the running statistics and clips to +-clip', () => {
    const n = new ObsNormalizer(2, 3);
    n.update([0, 10, 2, 10, 4, 10], 3); // column 0: mean ~2, var ~8/3; column 1: var 0
    const out = n.normalize(new Float32Array([2, 10, 100, 10]));
    const m = n.rms.mean[0]!;
    const s = Math.sqrt(n.rms.var[0]! + 1e-8);
    expect(out[0]).toBeCloseTo((2 - m) / s, 5);
    expect(out[2]).toBe(3); // clipped
    // A constant feature has a tiny variance (from the prior count): finite, small values.
    expect(out[1]).toBeCloseTo((10 - n.rms.mean[1]!) / Math.sqrt(n.rms.var[1]! + 1e-8), 4);
    expect(Math.abs(out[1]!)).toBeLessThan(0.01);
  });

  it('does not update while not training, and round-trips through JSON', () => {
    const n = new ObsNormalizer(1);
    n.update([1, 2, 3], 3);
    n.training = false;
    n.update([100], 1);
    const copy = ObsNormalizer.fromJSON(JSON.parse(JSON.stringify(n.toJSON())));
    expect(Array.from(copy.rms.mean)).toEqual(Array.from(n.rms.mean));
    expect(Array.from(copy.normalize([1.5]))).toEqual(Array.from(n.normalize([1.5])));
    expect(n.rms.mean[0]).toBeCloseTo(6 / 3.0001, 10);
  });
});

describe('RewardNormalizer', () => {
  it('divides by the running std of the discounted return and resets it at episode ends', () => {
    const gamma = 0.5;
    const rn = new RewardNormalizer(2, gamma, 10, 0);
    const ret = new RunningMeanStd(1);
    const returns = [0, 0];
    const steps: Array<[number[], number[]]> = [
      [[1, 2], [0, 0]],
      [[1, -1], [1, 0]],
      [[3, 0.5], [0, 0]],
    ];
    for (const [r, done] of steps) {
      for (let i = 0; i < 2; i++) returns[i] = returns[i]! * gamma + r[i]!;
      ret.update(returns, 2);
      const out = rn.normalize(r, done);
      for (let i = 0; i < 2; i++) expect(out[i]).toBeCloseTo(r[i]! / Math.sqrt(ret.var[0]!), 5);
      for (let i = 0; i < 2; i++) if (done[i]) returns[i] = 0;
    }
    // After the second step copy 0 ended: its return restarted from the third reward.
    expect(rn.returns[0]).toBe(3);
    expect(rn.returns[1]).toBeCloseTo((2 * 0.5 - 1) * 0.5 + 0.5, 12);
  });
});
