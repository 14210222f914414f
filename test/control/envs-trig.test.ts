import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.ts';
import { cos, sin } from '../../src/control/envs/trig.ts';

/** The next double above x (x finite, positive). */
function nextUp(x: number): number {
  const f = new Float64Array([x]);
  const u = new BigUint64Array(f.buffer);
  u[0]! += 1n;
  return f[0]!;
}
function nextDown(x: number): number {
  const f = new Float64Array([x]);
  const u = new BigUint64Array(f.buffer);
  u[0]! -= 1n;
  return f[0]!;
}

describe('inline sin/cos', () => {
  it('return exactly Math.sin / Math.cos on a million arguments across scales', () => {
    const rng = new Rng(123);
    const scales = [1e-9, 1e-6, 1e-3, 0.05, 0.21, 0.3, 0.31, 1, 4, 100];
    let mismatches = 0;
    for (let i = 0; i < 1_000_000; i++) {
      const x = rng.uniformRange(-1, 1) * scales[i % scales.length]!;
      if (!Object.is(sin(x), Math.sin(x)) || !Object.is(cos(x), Math.cos(x))) mismatches++;
    }
    expect(mismatches).toBe(0);
  });

  it('agree at the branch thresholds and on special values', () => {
    const edges = [2 ** -27, 0.29999995231628418, 0.3, Math.PI / 4];
    const xs: number[] = [0, -0, NaN, Infinity, -Infinity, 1e300, -1e-300, Number.MIN_VALUE];
    for (const e of edges) {
      let lo = e;
      let hi = e;
      for (let k = 0; k < 50; k++) {
        lo = nextDown(lo);
        hi = nextUp(hi);
        xs.push(lo, hi, -lo, -hi);
      }
    }
    for (const x of xs) {
      expect(Object.is(sin(x), Math.sin(x)), `sin(${x})`).toBe(true);
      expect(Object.is(cos(x), Math.cos(x)), `cos(${x})`).toBe(true);
    }
  });
});
