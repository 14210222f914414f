import { expect } from 'vitest';

/** Element-wise |a - b| <= atol + rtol * |b|, with the first offending index in the message. */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, atol = 1e-5, rtol = 1e-5): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const b = expected[i]!;
    const ok = Math.abs(a - b) <= atol + rtol * Math.abs(b);
    if (!ok) expect.fail(`index ${i}: got ${a}, expected ${b} (atol ${atol}, rtol ${rtol})`);
  }
}

export function logSumExp64(row: ArrayLike<number>): number {
  let m = -Infinity;
  for (let i = 0; i < row.length; i++) m = Math.max(m, row[i]!);
  let s = 0;
  for (let i = 0; i < row.length; i++) s += Math.exp(row[i]! - m);
  return m + Math.log(s);
}

/** n float32 draws from N(mean, std^2) with the seeded Rng. */
export function normals(rng: { normal(mean?: number, std?: number): number }, n: number, mean = 0, std = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.normal(mean, std);
  return out;
}
