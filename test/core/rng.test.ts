import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.ts';

/** Independent xoshiro128** written with BigInt arithmetic, straight from the reference C code. */
function referenceXoshiro(state: bigint[], n: number): number[] {
  const M = 0xffffffffn;
  const rotl = (x: bigint, k: bigint) => ((x << k) | (x >> (32n - k))) & M;
  const s = [...state];
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    out.push(Number((rotl((s[1]! * 5n) & M, 7n) * 9n) & M));
    const t = (s[1]! << 9n) & M;
    s[2] = s[2]! ^ s[0]!;
    s[3] = s[3]! ^ s[1]!;
    s[1] = s[1]! ^ s[2]!;
    s[0] = s[0]! ^ s[3]!;
    s[2] = s[2]! ^ t;
    s[3] = rotl(s[3]!, 11n);
  }
  return out;
}

describe('Rng', () => {
  it('matches the reference xoshiro128** stream', () => {
    const rng = new Rng(0);
    rng.setState([1, 2, 3, 4]);
    const ours = Array.from({ length: 1000 }, () => rng.nextUint32());
    expect(ours[0]).toBe(11520); // rotl(2 * 5, 7) * 9, by hand
    expect(ours).toEqual(referenceXoshiro([1n, 2n, 3n, 4n], 1000));
  });

  it('is deterministic per seed and differs across seeds', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const c = new Rng(43);
    const xa = Array.from({ length: 50 }, () => a.uniform());
    expect(Array.from({ length: 50 }, () => b.uniform())).toEqual(xa);
    expect(Array.from({ length: 50 }, () => c.uniform())).not.toEqual(xa);
  });

  it('resumes exactly from a saved state', () => {
    const rng = new Rng(7);
    for (let i = 0; i < 10; i++) rng.normal();
    const saved = rng.getState();
    const next = [rng.uniform(), rng.normal(), rng.int(17)];
    const resumed = new Rng(0);
    resumed.setState(saved);
    expect([resumed.uniform(), resumed.normal(), resumed.int(17)]).toEqual(next);
  });

  it('draws uniforms and normals with the right moments', () => {
    const rng = new Rng(1);
    const n = 200_000;
    let su = 0;
    let sn = 0;
    let sn2 = 0;
    for (let i = 0; i < n; i++) {
      const u = rng.uniform();
      expect(u >= 0 && u < 1).toBe(true);
      su += u;
      const z = rng.normal();
      sn += z;
      sn2 += z * z;
    }
    expect(su / n).toBeCloseTo(0.5, 2);
    expect(sn / n).toBeCloseTo(0, 2);
    expect(sn2 / n).toBeCloseTo(1, 1);
  });

  it('samples categorical frequencies proportional to the weights', () => {
    const rng = new Rng(3);
    const weights = [1, 0, 3, 6];
    const counts = [0, 0, 0, 0];
    const n = 100_000;
    for (let i = 0; i < n; i++) counts[rng.categorical(weights)]!++;
    expect(counts[1]).toBe(0);
    expect(counts[0]! / n).toBeCloseTo(0.1, 1);
    expect(counts[2]! / n).toBeCloseTo(0.3, 1);
    expect(counts[3]! / n).toBeCloseTo(0.6, 1);
    expect(() => rng.categorical([0, 0])).toThrow(/positive finite sum/);
    expect(() => rng.categorical([1, NaN])).toThrow(/non-negative/);
  });

  it('int is unbiased and in range; shuffle is a permutation', () => {
    const rng = new Rng(5);
    const counts = new Array(6).fill(0);
    for (let i = 0; i < 60_000; i++) counts[rng.int(6)]++;
    for (const c of counts) expect(Math.abs(c - 10_000)).toBeLessThan(500);
    const p = Array.from(rng.permutation(100));
    expect([...p].sort((x, y) => x - y)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(p).not.toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(() => rng.int(0)).toThrow();
  });

  it('forks independent, reproducible streams', () => {
    const a = new Rng(9).fork();
    const b = new Rng(9).fork();
    expect(a.uniform()).toBe(b.uniform());
    const parent = new Rng(9);
    const child = parent.fork();
    expect(child.uniform()).not.toBe(parent.uniform());
  });

  it('forks from any parent state (the fourth word may have its top bit set)', () => {
    // Seeds 0..63 include parents whose fourth drawn word is >= 2^31.
    for (let seed = 0; seed < 64; seed++) {
      const child = new Rng(seed).fork();
      expect(child.getState().every((w) => w >= 0 && w <= 0xffffffff)).toBe(true);
    }
  });

  it('rejects invalid seeds and states', () => {
    expect(() => new Rng(NaN)).toThrow(/finite/);
    expect(() => new Rng(0).setState([0, 0, 0, 0])).toThrow(/all-zero/);
    expect(() => new Rng(0).setState([1, 2, 3])).toThrow(/four/);
  });
});
