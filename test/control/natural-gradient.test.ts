import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../../src/engine/tfjs/backend.ts';
import { Rng } from '../../src/core/rng.ts';
import { disposeBatch, type BatchTensors } from '../../src/control/algorithm.ts';
import { backtrackingLineSearch, conjugateGradient, fisherVectorProduct, naturalGradientStep } from '../../src/control/natural-gradient.ts';
import { ActorCritic, type PolicyActionSpace } from '../../src/control/policy.ts';

beforeAll(async () => {
  await initEngine({ backend: 'wasm', quiet: true });
});

/** Solves A x = b by Gaussian elimination with partial pivoting (float64). */
function solve(a: number[][], b: number[]): number[] {
  const n = b.length;
  const m = a.map((row, i) => [...row, b[i]!]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r]![c]!) > Math.abs(m[p]![c]!)) p = r;
    [m[c], m[p]] = [m[p]!, m[c]!];
    for (let r = c + 1; r < n; r++) {
      const f = m[r]![c]! / m[c]![c]!;
      for (let k = c; k <= n; k++) m[r]![k] = m[r]![k]! - f * m[c]![k]!;
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let s = m[r]![n]!;
    for (let k = r + 1; k < n; k++) s -= m[r]![k]! * x[k]!;
    x[r] = s / m[r]![r]!;
  }
  return x;
}

describe('conjugateGradient', () => {
  it('solves a known symmetric positive-definite system in n iterations', () => {
    const rng = new Rng(1);
    const n = 6;
    const mm = Array.from({ length: n }, () => Array.from({ length: n }, () => rng.normal()));
    // A = M M^T + I is SPD.
    const a = mm.map((ri, i) => mm.map((rj, j) => ri.reduce((s, v, k) => s + v * rj[k]!, 0) + (i === j ? 1 : 0)));
    const b = Array.from({ length: n }, () => rng.normal());
    const avp = (v: Float64Array) => Float64Array.from(a.map((row) => row.reduce((s, x, k) => s + x * v[k]!, 0)));
    const { x, iterations } = conjugateGradient(avp, Float64Array.from(b), n, 1e-20);
    const want = solve(a, b);
    want.forEach((w, i) => expect(x[i]).toBeCloseTo(w, 8));
    expect(iterations).toBeLessThanOrEqual(n);
  });

  it('stops early on a tiny residual and rejects an operator that is not positive definite', () => {
    const { x, iterations } = conjugateGradient((v) => v.map((e) => 2 * e), Float64Array.from([2, 4]), 10);
    expect(iterations).toBe(1);
    expect(Array.from(x)).toEqual([1, 2]);
    expect(() => conjugateGradient((v) => v.map((e) => -e), Float64Array.from([1, 0]), 5)).toThrow(/not positive definite/);
  });
});

describe('backtrackingLineSearch', () => {
  // Quadratic KL = theta_0^2 / 2 and a surrogate linear in theta_0.
  const kl = (t: Float64Array) => (t[0]! * t[0]!) / 2;
  const theta0 = Float64Array.from([0, 0]);
  const fullStep = Float64Array.from([2, 0]);
  const opts = { maxKl: 0.5, shrinkFactor: 0.8, maxBacktracks: 10 };

  it('rejects steps that break the KL limit and accepts the first that keeps it', () => {
    const r = backtrackingLineSearch(theta0, fullStep, 0, (t) => ({ surrogate: t[0]!, kl: kl(t) }), opts);
    // KL at fraction f is 2 f^2: 2, 1.28, 0.82, 0.52 are over 0.5; 0.8^4 gives 0.336.
    expect(r.accepted).toBe(true);
    expect(r.tries).toBe(5);
    expect(r.fraction).toBeCloseTo(0.8 ** 4, 12);
    expect(r.theta[0]).toBeCloseTo(2 * 0.8 ** 4, 12);
    expect(r.kl).toBeLessThanOrEqual(0.5);
  });

  it('accepts the full step when it is within the limit and improves', () => {
    const r = backtrackingLineSearch(theta0, Float64Array.from([0.5, 1]), 0, (t) => ({ surrogate: t[0]!, kl: kl(t) }), opts);
    expect(r).toMatchObject({ accepted: true, tries: 1, fraction: 1 });
  });

  it('returns theta0 when no step improves the surrogate', () => {
    const r = backtrackingLineSearch(theta0, fullStep, 0, (t) => ({ surrogate: -t[0]!, kl: kl(t) }), opts);
    expect(r.accepted).toBe(false);
    expect(r.tries).toBe(10);
    expect(Array.from(r.theta)).toEqual([0, 0]);
  });
});

/** Float64 actor head of a one-hidden-layer policy from its flat actor vector (layout of policy.ts). */
function head64(flat: ArrayLike<number>, x: number[], h: number, width: number): number[] {
  const d = x.length;
  let o = 0;
  const take = (n: number): number[] => {
    const part = Array.from({ length: n }, (_, i) => flat[o + i]!);
    o += n;
    return part;
  };
  const W1 = take(d * h);
  const b1 = take(h);
  const W2 = take(h * width);
  const b2 = take(width);
  const hid = Array.from({ length: h }, (_, j) => Math.tanh(x.reduce((s, xi, i) => s + xi * W1[i * h + j]!, b1[j]!)));
  return Array.from({ length: width }, (_, j) => hid.reduce((s, hi, i) => s + hi * W2[i * width + j]!, b2[j]!));
}

/** F v from the explicit Jacobian (float64 central differences) and the closed-form M. */
function explicitFisherTimes(space: PolicyActionSpace, flat: Float32Array, obs: number[][], h: number, v: Float64Array): Float64Array {
  const width = space.type === 'discrete' ? space.n : space.dim;
  const n = flat.length;
  const nHead = n - (space.type === 'box' ? width : 0);
  const eps = 1e-6;
  const out = new Float64Array(n);
  for (const x of obs) {
    // J [width, nHead] by columns.
    const J = Array.from({ length: width }, () => new Float64Array(nHead));
    for (let p = 0; p < nHead; p++) {
      const plus = Float64Array.from(flat);
      const minus = Float64Array.from(flat);
      plus[p] = plus[p]! + eps;
      minus[p] = minus[p]! - eps;
      const fp = head64(plus, x, h, width);
      const fm = head64(minus, x, h, width);
      for (let j = 0; j < width; j++) J[j]![p] = (fp[j]! - fm[j]!) / (2 * eps);
    }
    const jv = J.map((row) => row.reduce((s, val, p) => s + val * v[p]!, 0));
    let u: number[];
    if (space.type === 'discrete') {
      const z = head64(flat, x, h, width);
      const m = Math.max(...z);
      const e = z.map((zi) => Math.exp(zi - m));
      const s = e.reduce((a, b) => a + b, 0);
      const pr = e.map((ei) => ei / s);
      const pjv = pr.reduce((a, pi, j) => a + pi * jv[j]!, 0);
      u = pr.map((pi, j) => pi * jv[j]! - pi * pjv); // (diag(p) - p p^T) J v
    } else {
      const logStd = Array.from(flat.subarray(nHead));
      u = jv.map((val, j) => val * Math.exp(-2 * logStd[j]!));
    }
    for (let p = 0; p < nHead; p++) out[p] = out[p]! + J.reduce((s, row, j) => s + row[p]! * u[j]!, 0) / obs.length;
  }
  if (space.type === 'box') for (let p = nHead; p < n; p++) out[p] = 2 * v[p]!;
  return out;
}

describe('fisherVectorProduct', () => {
  const obs = [[0.4, -1.1], [1.3, 0.2], [-0.6, 0.9]];
  for (const space of [{ type: 'discrete', n: 3 }, { type: 'box', dim: 2, low: [-1, -1], high: [1, 1] }] as PolicyActionSpace[]) {
    it(`equals J^T M J v / B from an explicit Jacobian (${space.type})`, () => {
      const p = new ActorCritic(2, space, { hiddenSizes: [4], orthoInit: false, logStdInit: -0.3 }, new Rng(11));
      // Bigger head weights than the 0.01 init so the probabilities are far from uniform.
      p.setFlat('actor', p.getFlat('actor').map((w) => w * 3));
      const v = new Rng(12).fillNormal(new Float64Array(p.numParams('actor'))) as Float64Array;
      const o = tf.tensor2d(obs);
      const fvp = fisherVectorProduct(p, o, 0);
      const got = fvp(v);
      const want = explicitFisherTimes(space, p.getFlat('actor'), obs, 4, v);
      const scale = Math.max(...want.map(Math.abs));
      want.forEach((w, i) => expect(Math.abs(got[i]! - w)).toBeLessThan(1e-4 * scale + 1e-6));
      // Damping adds damping * v.
      const damped = fisherVectorProduct(p, o, 0.5);
      const gd = damped(v);
      gd.forEach((g, i) => expect(g).toBeCloseTo(got[i]! + 0.5 * v[i]!, 4));
      fvp.dispose();
      damped.dispose();
      o.dispose();
      p.dispose();
    });
  }
});

describe('naturalGradientStep', () => {
  function batch(p: ActorCritic, rng: Rng, B: number): BatchTensors {
    const obs = rng.fillNormal(new Float32Array(B * 2)) as Float32Array;
    const { actions, logProbs } = p.act(obs, B, rng);
    const adv = Float32Array.from({ length: B }, (_, b) => (actions[b] === 0 ? 1 : -0.5) + 0.1 * rng.normal());
    return {
      obs: tf.tensor2d(obs, [B, 2]),
      actions: tf.tensor1d(actions as Int32Array, 'int32'),
      oldLogProbs: tf.tensor1d(logProbs),
      oldValues: tf.zeros([B]),
      advantages: tf.tensor1d(adv),
      returns: tf.zeros([B]),
      size: B,
    };
  }

  it('TRPO keeps the exact KL within the limit and improves the surrogate; NPG takes the quadratic-model step', () => {
    const space: PolicyActionSpace = { type: 'discrete', n: 2 };
    const trpoPolicy = new ActorCritic(2, space, { hiddenSizes: [8] }, new Rng(20));
    const b = batch(trpoPolicy, new Rng(21), 256);
    const before = trpoPolicy.getFlat('actor');
    const r = naturalGradientStep(trpoPolicy, b, { maxKl: 0.01, damping: 0.01, cgIters: 10, entCoef: 0, lineSearch: { shrinkFactor: 0.8, maxBacktracks: 10 } });
    expect(r.accepted).toBe(true);
    expect(r.kl).toBeLessThanOrEqual(0.01);
    expect(r.kl).toBeGreaterThan(0);
    expect(r.surrogateAfter).toBeGreaterThan(r.surrogateBefore);
    expect(Array.from(trpoPolicy.getFlat('actor'))).not.toEqual(Array.from(before));
    // The same step without the line search: the KL is close to the quadratic model's delta.
    trpoPolicy.setFlat('actor', before);
    const n = naturalGradientStep(trpoPolicy, b, { maxKl: 0.01, damping: 0.01, cgIters: 10, entCoef: 0, lineSearch: null });
    expect(n.fraction).toBe(1);
    expect(n.kl).toBeGreaterThan(0.005);
    expect(n.kl).toBeLessThan(0.02);
    disposeBatch(b);
    trpoPolicy.dispose();
  });
});
