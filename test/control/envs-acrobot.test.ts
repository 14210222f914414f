import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.ts';
import { makeEnv } from '../../src/control/envs/index.ts';

/**
 * Reference Acrobot step, derived independently: the book dynamics written as the 2x2
 * manipulator system M(q) q'' = rhs solved by Cramer's rule (the book's closed form is its
 * elimination), gravity terms with sin() instead of cos(. - pi/2), and a generic RK4.
 */
const m1 = 1, m2 = 1, l1 = 1, lc1 = 0.5, lc2 = 0.5, I1 = 1, I2 = 1, g = 9.8;

function deriv(y: number[], torque: number): number[] {
  const [t1, t2, w1, w2] = y as [number, number, number, number];
  const M11 = m1 * lc1 ** 2 + m2 * (l1 ** 2 + lc2 ** 2 + 2 * l1 * lc2 * Math.cos(t2)) + I1 + I2;
  const M12 = m2 * (lc2 ** 2 + l1 * lc2 * Math.cos(t2)) + I2;
  const M22 = m2 * lc2 ** 2 + I2;
  const phi2 = m2 * lc2 * g * Math.sin(t1 + t2);
  const phi1 = -m2 * l1 * lc2 * w2 * w2 * Math.sin(t2) - 2 * m2 * l1 * lc2 * w2 * w1 * Math.sin(t2) + (m1 * lc1 + m2 * l1) * g * Math.sin(t1) + phi2;
  const rhs1 = -phi1;
  const rhs2 = torque - m2 * l1 * lc2 * w1 * w1 * Math.sin(t2) - phi2;
  const det = M11 * M22 - M12 * M12;
  const acc1 = (rhs1 * M22 - M12 * rhs2) / det;
  const acc2 = (M11 * rhs2 - M12 * rhs1) / det;
  return [w1, w2, acc1, acc2];
}

function refStep(s: number[], action: number): number[] {
  const torque = [-1, 0, 1][action]!;
  const h = 0.2;
  const add = (y: number[], k: number[], c: number) => y.map((v, i) => v + c * k[i]!);
  const k1 = deriv(s, torque);
  const k2 = deriv(add(s, k1, h / 2), torque);
  const k3 = deriv(add(s, k2, h / 2), torque);
  const k4 = deriv(add(s, k3, h), torque);
  const y = s.map((v, i) => v + (h / 6) * (k1[i]! + 2 * k2[i]! + 2 * k3[i]! + k4[i]!));
  const wrapAngle = (a: number) => {
    while (a > Math.PI) a -= 2 * Math.PI;
    while (a < -Math.PI) a += 2 * Math.PI;
    return a;
  };
  const clamp = (v: number, lim: number) => Math.min(Math.max(v, -lim), lim);
  return [wrapAngle(y[0]!), wrapAngle(y[1]!), clamp(y[2]!, 4 * Math.PI), clamp(y[3]!, 9 * Math.PI)];
}

function obsOf(s: number[]): number[] {
  return [Math.cos(s[0]!), Math.sin(s[0]!), Math.cos(s[1]!), Math.sin(s[1]!), s[2]!, s[3]!].map(Math.fround);
}

describe('Acrobot-v1', () => {
  it('has Gymnasium spaces, threshold and time limit', () => {
    const env = makeEnv('Acrobot-v1');
    expect(env.actionSpace).toEqual({ type: 'discrete', n: 3 });
    expect(env.observationSpace.shape).toEqual([6]);
    expect(Array.from(env.observationSpace.high)).toEqual([1, 1, 1, 1, 4 * Math.PI, 9 * Math.PI].map(Math.fround));
    expect(Array.from(env.observationSpace.low)).toEqual([-1, -1, -1, -1, -4 * Math.PI, -9 * Math.PI].map(Math.fround));
    expect(env.rewardThreshold).toBe(-100);
    expect(env.maxEpisodeSteps).toBe(500);
  });

  it('hanging at rest with zero torque stays at rest; torque +1 starts the expected swing', () => {
    const env = makeEnv('Acrobot-v1');
    env.reset(0);
    env.setState([0, 0, 0, 0]);
    const r = env.step(1);
    for (const v of env.getState()) expect(Math.abs(v)).toBeLessThan(1e-12);
    const expectedObs = [1, 0, 1, 0, 0, 0];
    for (let k = 0; k < 6; k++) expect(Math.abs(r.observation[k]! - expectedObs[k]!)).toBeLessThan(1e-12);
    expect(r.reward).toBe(-1);
    // At rest the mass matrix is [[4.5, 1.75], [1.75, 1.25]]: torque +1 gives
    // theta2'' = 72/41 and theta1'' = -28/41 initially (gravity then resists).
    env.setState([0, 0, 0, 0]);
    env.step(2);
    const [t1, t2, w1, w2] = env.getState() as [number, number, number, number];
    expect(w2).toBeGreaterThan(0);
    expect(w2).toBeLessThan((72 / 41) * 0.2);
    expect(w1).toBeLessThan(0);
    expect(w1).toBeGreaterThan((-28 / 41) * 0.2 * 1.5);
    expect(t2).toBeGreaterThan(0);
    expect(t1).toBeLessThan(0);
  });

  it('replays random trajectories one step at a time against the reference', () => {
    const env = makeEnv('Acrobot-v1');
    const rng = new Rng(11);
    for (let ep = 0; ep < 4; ep++) {
      env.reset(ep);
      let s = env.getState();
      for (let t = 0; t < 150; t++) {
        const a = rng.int(3);
        const expected = refStep(s, a);
        const r = env.step(a);
        s = env.getState();
        for (let k = 0; k < 4; k++) expect(Math.abs(s[k]! - expected[k]!)).toBeLessThan(1e-12);
        const obs = obsOf(s);
        for (let k = 0; k < 6; k++) expect(Math.abs(r.observation[k]! - obs[k]!)).toBeLessThanOrEqual(Math.abs(obs[k]!) * 1.2e-7);
        if (r.terminated || r.truncated) break;
      }
    }
  });

  it('wraps the angles into [-pi, pi] and bounds the speeds', () => {
    const env = makeEnv('Acrobot-v1');
    env.reset(0);
    // Fast spin near +pi: theta1 passes pi and must come back wrapped.
    env.setState([3.1, -3.1, 4 * Math.PI, 9 * Math.PI]);
    env.step(2);
    const s = env.getState();
    const raw = refStep([3.1, -3.1, 4 * Math.PI, 9 * Math.PI], 2);
    expect(s[0]).toBeGreaterThanOrEqual(-Math.PI);
    expect(s[0]).toBeLessThanOrEqual(Math.PI);
    expect(s[1]).toBeGreaterThanOrEqual(-Math.PI);
    expect(s[1]).toBeLessThanOrEqual(Math.PI);
    for (let k = 0; k < 4; k++) expect(Math.abs(s[k]! - raw[k]!)).toBeLessThan(1e-12);
    // Speeds beyond the bounds are clipped to exactly +-4 pi and +-9 pi.
    env.reset(0);
    env.setState([0, 0, 100, -100]);
    env.step(1);
    const [, , w1, w2] = env.getState();
    expect(Math.abs(w1!)).toBeLessThanOrEqual(4 * Math.PI);
    expect(Math.abs(w2!)).toBeLessThanOrEqual(9 * Math.PI);
    expect([4 * Math.PI, -4 * Math.PI]).toContain(w1);
    expect([9 * Math.PI, -9 * Math.PI]).toContain(w2);
  });

  it('terminates with reward 0 exactly when -cos(t1) - cos(t1 + t2) > 1', () => {
    const env = makeEnv('Acrobot-v1');
    env.reset(0);
    // Random states all over the circle: some end the step above the bar, most below.
    const rng = new Rng(5);
    let terminations = 0;
    for (let i = 0; i < 300; i++) {
      const start = [rng.uniformRange(-Math.PI, Math.PI), rng.uniformRange(-Math.PI, Math.PI), rng.uniformRange(-2, 2), rng.uniformRange(-2, 2)];
      env.reset(0);
      env.setState(start);
      const r = env.step(rng.int(3));
      const [t1, t2] = env.getState() as [number, number];
      const height = -Math.cos(t1) - Math.cos(t2 + t1);
      expect(r.terminated).toBe(height > 1);
      expect(r.reward).toBe(height > 1 ? 0 : -1);
      if (r.terminated) terminations++;
    }
    expect(terminations).toBeGreaterThan(10);
  });

  it('reaches the goal with a swing-up policy and truncates at 500 steps without one', () => {
    const env = makeEnv('Acrobot-v1');
    env.reset(2);
    let steps = 0;
    let total = 0;
    for (;;) {
      const r = env.step(env.getState()[3]! > 0 ? 2 : 0);
      steps++;
      total += r.reward;
      if (r.terminated || r.truncated) {
        expect(r.terminated).toBe(true);
        expect(r.reward).toBe(0);
        break;
      }
    }
    expect(total).toBe(-(steps - 1));
    env.reset(2);
    let t = 0;
    for (;;) {
      const r = env.step(1); // no torque: it never swings up
      t++;
      expect(r.terminated).toBe(false);
      expect(r.truncated).toBe(t === 500);
      if (r.truncated) break;
    }
  });

  it('draws the initial state in [-0.1, 0.1) rounded to float32', () => {
    const env = makeEnv('Acrobot-v1');
    for (let seed = 0; seed < 200; seed++) {
      const obs = env.reset(seed);
      const s = env.getState();
      for (const v of s) {
        expect(v).toBeGreaterThanOrEqual(-0.1);
        expect(v).toBeLessThanOrEqual(Math.fround(0.1));
        expect(Math.fround(v)).toBe(v);
      }
      expect(Array.from(obs)).toEqual(obsOf(s));
    }
  });
});
