import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.ts';
import { groupAdvantages, groupStats } from '../../src/objectives/group.ts';
import { expectClose } from './helpers.ts';

describe('groupAdvantages', () => {
  const rewards = [1, 0, 0, 1, 1, 1, 1, 1];

  it("'group' divides by each group's population std + eps", () => {
    // group 0: mean 0.5, std 0.5; group 1: constant -> exactly 0
    const a = 0.5 / (0.5 + 1e-4);
    expectClose(groupAdvantages(rewards, 4), [a, -a, -a, a, 0, 0, 0, 0]);
    expect(Array.from(groupAdvantages(rewards, 4).slice(4))).toEqual([0, 0, 0, 0]);
  });

  it("'batch' divides by the std of all rewards", () => {
    // all 8 rewards: mean 0.75, variance 0.75 * 0.25
    const a = 0.5 / (Math.sqrt(0.1875) + 1e-3);
    expectClose(groupAdvantages(rewards, 4, { scale: 'batch', eps: 1e-3 }), [a, -a, -a, a, 0, 0, 0, 0]);
  });

  it("'none' only subtracts the group mean", () => {
    expectClose(groupAdvantages([3, 1, 2, 10, 20, 30], 3, { scale: 'none' }), [1, -1, 0, -10, 0, 10]);
  });

  it('matches a naive float64 reference on random rewards', () => {
    const rng = new Rng(11);
    const G = 5;
    const r = Array.from({ length: 6 * G }, () => rng.normal(0, 2));
    for (const scale of ['group', 'batch', 'none'] as const) {
      const ref: number[] = [];
      const all = r.reduce((s, x) => s + x, 0) / r.length;
      const batchStd = Math.sqrt(r.reduce((s, x) => s + (x - all) ** 2, 0) / r.length);
      for (let g = 0; g < 6; g++) {
        const xs = r.slice(g * G, g * G + G);
        const m = xs.reduce((s, x) => s + x, 0) / G;
        const sd = Math.sqrt(xs.reduce((s, x) => s + (x - m) ** 2, 0) / G);
        const d = scale === 'group' ? sd + 1e-4 : scale === 'batch' ? batchStd + 1e-4 : 1;
        for (const x of xs) ref.push((x - m) / d);
      }
      expectClose(groupAdvantages(r, G, { scale }), ref, 1e-5, 1e-5);
    }
  });

  it('has zero mean within every group', () => {
    const rng = new Rng(5);
    const adv = groupAdvantages(Array.from({ length: 40 }, () => rng.uniform()), 8);
    for (let g = 0; g < 5; g++) {
      expect(Math.abs(adv.slice(g * 8, g * 8 + 8).reduce((s, x) => s + x, 0))).toBeLessThan(1e-5);
    }
  });

  it('rejects bad input naming the problem and where it is', () => {
    expect(() => groupAdvantages([1, 2, 3], 2)).toThrow(/length 3, which is not a multiple of groupSize = 2/);
    expect(() => groupAdvantages([1, 2], 0)).toThrow(/groupSize must be an integer >= 1, got 0/);
    expect(() => groupAdvantages([1, 2, 3, 4, 5, NaN], 3)).toThrow(/reward at index 5 \(group 1, member 2\) is NaN/);
    expect(() => groupAdvantages([1, 2], 2, { scale: 'rank' as never })).toThrow(/options.scale must be/);
    expect(() => groupAdvantages([1, 2], 2, { eps: -1 })).toThrow(/options.eps must be/);
  });
});

describe('groupStats', () => {
  it('reports per-group mean, std and the fraction of constant groups', () => {
    const s = groupStats([1, 0, 0, 1, 0.1, 0.1, 0.1, 0.1, 2, 2, 2, 4], 4);
    expectClose(s.mean, [0.5, 0.1, 2.5]);
    expectClose(s.std, [0.5, 0, Math.sqrt(0.75)]);
    expect(s.std[1]).toBe(0); // constant group: exactly zero, not round-off
    expect(s.fracZeroStd).toBeCloseTo(1 / 3, 12);
    expect(groupStats([], 4).fracZeroStd).toBe(0);
    expect(() => groupStats([1, Infinity], 1)).toThrow(/reward at index 1 .* is Infinity/);
  });
});
