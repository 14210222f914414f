import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.ts';
import { computeGae, discountedReturns, explainedVariance, whiten } from '../../src/objectives/returns.ts';
import { expectClose, normals } from './helpers.ts';

describe('discountedReturns', () => {
  it('matches hand-computed reward-to-go', () => {
    expectClose(discountedReturns([1, 1, 1], [0, 0, 0], 0.5), [1.75, 1.5, 1]);
  });

  it('restarts at episode ends and bootstraps only an unfinished tail', () => {
    // G3 = 4 + 0.5 * 2 = 5; G2 = 3 + 0.5 * 5 = 5.5; G1 = 2 (done); G0 = 1 + 0.5 * 2 = 2
    expectClose(discountedReturns([1, 2, 3, 4], [false, true, false, false], 0.5, 2), [2, 2, 5.5, 5]);
    // a done last step ignores the bootstrap value
    expectClose(discountedReturns([1, 2], [0, 1], 0.5, 100), [2, 2]);
  });

  it('rejects bad input with a message naming the problem', () => {
    expect(() => discountedReturns([1, 2], [0], 0.9)).toThrow(/dones has length 1 but rewards has length 2/);
    expect(() => discountedReturns([1], [0], 1.5)).toThrow(/gamma must be in \[0, 1\]/);
    expect(() => discountedReturns([1, NaN], [0, 0], 0.9)).toThrow(/rewards\[1\] is NaN/);
  });
});

/** Forward-looking GAE: A_t = sum_l (gamma lambda)^l delta_{t+l}, stopping after the first done step. */
function gaeForward(
  r: number[], v: number[], nv: number[], term: boolean[], trunc: boolean[], numEnvs: number, gamma: number, lambda: number,
): { adv: number[]; ret: number[] } {
  const steps = r.length / numEnvs;
  const adv = new Array<number>(r.length).fill(0);
  for (let i = 0; i < numEnvs; i++) {
    for (let t = 0; t < steps; t++) {
      let sum = 0;
      let w = 1;
      for (let u = t; u < steps; u++) {
        const k = u * numEnvs + i;
        const delta = r[k]! + (term[k] ? 0 : gamma * nv[k]!) - v[k]!;
        sum += w * delta;
        if (term[k] || trunc[k]) break;
        w *= gamma * lambda;
      }
      adv[t * numEnvs + i] = sum;
    }
  }
  return { adv, ret: adv.map((a, k) => a + v[k]!) };
}

describe('computeGae', () => {
  it('matches a hand-computed single-environment case with a truncation', () => {
    // gamma 0.9, lambda 0.8; step 1 is truncated (bootstraps from nextValues[1] = 10, cuts the recursion)
    const g = 0.9;
    const gl = 0.72;
    const rewards = [1, 2, 3];
    const values = [0.5, 1, 2];
    const nextValues = [1, 10, 4];
    const out = computeGae({
      rewards, values, nextValues, terminated: [0, 0, 0], truncated: [0, 1, 0], numEnvs: 1, gamma: g, lambda: 0.8,
    });
    const d2 = 3 + g * 4 - 2; // 4.6, last step: A_2 = delta_2
    const d1 = 2 + g * 10 - 1; // 10
    const d0 = 1 + g * 1 - 0.5; // 1.4
    const a = [d0 + gl * d1, d1, d2];
    expectClose(out.advantages, a);
    expectClose(out.returns, a.map((x, k) => x + values[k]!));
  });

  it('does not bootstrap a terminated step', () => {
    const out = computeGae({
      rewards: [1, 1], values: [5, 5], nextValues: [5, 99], terminated: [0, 1], truncated: [0, 0], numEnvs: 1, gamma: 1, lambda: 1,
    });
    // A_1 = 1 - 5 = -4; A_0 = (1 + 5 - 5) + A_1 = -3
    expectClose(out.advantages, [-3, -4]);
    expectClose(out.returns, [2, 1]);
  });

  it('matches the forward-sum definition on random multi-environment rollouts', () => {
    const rng = new Rng(7);
    const numEnvs = 3;
    const steps = 25;
    const n = numEnvs * steps;
    const r = Array.from({ length: n }, () => rng.normal());
    const v = Array.from({ length: n }, () => rng.normal());
    const nv = Array.from({ length: n }, () => rng.normal());
    const term = Array.from({ length: n }, () => rng.uniform() < 0.1);
    const trunc = Array.from({ length: n }, (_, k) => !term[k] && rng.uniform() < 0.1);
    for (const [gamma, lambda] of [[0.99, 0.95], [0.9, 0], [1, 1]] as const) {
      const out = computeGae({ rewards: r, values: v, nextValues: nv, terminated: term, truncated: trunc, numEnvs, gamma, lambda });
      const ref = gaeForward(r, v, nv, term, trunc, numEnvs, gamma, lambda);
      expectClose(out.advantages, ref.adv, 1e-4, 1e-5);
      expectClose(out.returns, ref.ret, 1e-4, 1e-5);
    }
  });

  it('with lambda = 1 and no truncation gives the discounted returns', () => {
    const rng = new Rng(3);
    const n = 30;
    const r = Array.from({ length: n }, () => rng.uniform());
    const v = Array.from({ length: n }, () => rng.normal());
    const nv = v.slice(1).concat([2.5]); // a single stream: V(s_{t+1}) is the next row's value
    const dones = Array.from({ length: n }, () => rng.uniform() < 0.15);
    const out = computeGae({ rewards: r, values: v, nextValues: nv, terminated: dones, truncated: new Array(n).fill(false), numEnvs: 1, gamma: 0.95, lambda: 1 });
    expectClose(out.returns, discountedReturns(r, dones, 0.95, 2.5), 1e-4);
  });

  it('rejects bad input with a message naming the problem', () => {
    const base = { rewards: [1, 2, 3, 4], values: [0, 0, 0, 0], nextValues: [0, 0, 0, 0], terminated: [0, 0, 0, 0], truncated: [0, 0, 0, 0], numEnvs: 2, gamma: 0.9, lambda: 0.9 };
    expect(() => computeGae({ ...base, numEnvs: 3 })).toThrow(/length 4, which is not a multiple of numEnvs = 3/);
    expect(() => computeGae({ ...base, values: [0, 0, 0] })).toThrow(/values has length 3 but rewards has length 4/);
    expect(() => computeGae({ ...base, lambda: -0.1 })).toThrow(/lambda must be in \[0, 1\]/);
    expect(() => computeGae({ ...base, numEnvs: 0 })).toThrow(/numEnvs must be an integer >= 1/);
    expect(() => computeGae({ ...base, nextValues: [0, NaN, 0, 0] })).toThrow(/nextValues\[1\] is NaN/);
    // NaN next value on a terminated step is never read
    expect(() => computeGae({ ...base, nextValues: [0, NaN, 0, 0], terminated: [0, 1, 0, 0] })).not.toThrow();
  });
});

describe('whiten', () => {
  it('uses the population std', () => {
    const s = Math.sqrt(2 / 3);
    expectClose(whiten(new Float32Array([1, 2, 3])), [-1 / s, 0, 1 / s]);
  });

  it('gives mean 0 and std 1 on random data', () => {
    const rng = new Rng(1);
    const x = normals(rng, 1000, 3, 5);
    const w = whiten(x);
    const mean = w.reduce((a, b) => a + b, 0) / w.length;
    const std = Math.sqrt(w.reduce((a, b) => a + (b - mean) ** 2, 0) / w.length);
    expect(Math.abs(mean)).toBeLessThan(1e-5);
    expect(Math.abs(std - 1)).toBeLessThan(1e-5);
  });

  it('uses masked entries only and zeroes the rest', () => {
    expectClose(whiten(new Float32Array([1, 100, 3]), 0, [1, 0, 1]), [-1, 0, 1]);
    expect(() => whiten(new Float32Array([1, 2]), 1e-8, [0, 0])).toThrow(/mask selects no entries/);
    expect(() => whiten(new Float32Array([1, 2]), 1e-8, [1])).toThrow(/mask has length 1 but x has length 2/);
  });
});

describe('explainedVariance', () => {
  it('matches known values', () => {
    expect(explainedVariance([1, 2, 3, 4], [1, 2, 3, 4])).toBe(1);
    expect(explainedVariance([2.5, 2.5, 2.5, 2.5], [1, 2, 3, 4])).toBeCloseTo(0, 12);
    // residuals [0, 0, 0, 1]: Var = 0.1875; Var[y] = 1.25
    expect(explainedVariance([1, 2, 3, 3], [1, 2, 3, 4])).toBeCloseTo(1 - 0.1875 / 1.25, 12);
    expect(explainedVariance([1, 2], [3, 3])).toBeNaN();
    expect(() => explainedVariance([1], [1, 2])).toThrow(/predicted has length 1 but target has length 2/);
  });
});
