import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.ts';
import { makeEnv } from '../../src/control/envs/index.ts';

/**
 * Reference one-step CartPole written from the documented equations (Florian 2007 with
 * Gymnasium's constants), independently of the implementation's expression layout.
 */
function refStep(s: number[], action: number): number[] {
  const [x, v, th, w] = s as [number, number, number, number];
  const g = 9.8, mc = 1.0, mp = 0.1, l = 0.5, F = action === 1 ? 10 : -10, tau = 0.02;
  const M = mc + mp;
  const sin = Math.sin(th), cos = Math.cos(th);
  const tmp = (F + mp * l * w * w * sin) / M;
  const thAcc = (g * sin - cos * tmp) / (l * (4 / 3 - (mp * cos * cos) / M));
  const xAcc = tmp - (mp * l * thAcc * cos) / M;
  // explicit Euler: every component advances with the OLD derivatives
  return [x + tau * v, v + tau * xAcc, th + tau * w, w + tau * thAcc];
}

const THETA_LIMIT = (12 * 2 * Math.PI) / 360;

describe('CartPole-v1', () => {
  it('has Gymnasium spaces, threshold and time limit', () => {
    const env = makeEnv('CartPole-v1');
    expect(env.actionSpace).toEqual({ type: 'discrete', n: 2 });
    expect(env.observationSpace.shape).toEqual([4]);
    expect(Array.from(env.observationSpace.high)).toEqual([4.8, Infinity, THETA_LIMIT * 2, Infinity].map(Math.fround));
    expect(Array.from(env.observationSpace.low)).toEqual([-4.8, -Infinity, -THETA_LIMIT * 2, -Infinity].map(Math.fround));
    expect(env.rewardThreshold).toBe(475);
    expect(env.maxEpisodeSteps).toBe(500);
  });

  it('matches hand-computed values for two steps from rest', () => {
    // From [0,0,0,0] with action 1: temp = 100/11, theta_acc = -600/41, x_acc = 400/41.
    const env = makeEnv('CartPole-v1');
    env.reset(0);
    env.setState([0, 0, 0, 0]);
    let r = env.step(1);
    let s = env.getState();
    expect(s[0]).toBe(0);
    expect(s[1]).toBeCloseTo(8 / 41, 14);
    expect(s[2]).toBe(0);
    expect(s[3]).toBeCloseTo(-12 / 41, 14);
    expect(r.reward).toBe(1);
    expect(r.terminated).toBe(false);
    // theta is still 0, so the accelerations repeat; positions move with the old velocities.
    r = env.step(1);
    s = env.getState();
    expect(s[0]).toBeCloseTo(0.02 * (8 / 41), 14);
    expect(s[1]).toBeCloseTo(16 / 41, 14);
    expect(s[2]).toBeCloseTo(0.02 * (-12 / 41), 14);
    expect(s[3]).toBeCloseTo(-24 / 41, 14);
    expect(Array.from(r.observation)).toEqual(s.map(Math.fround));
  });

  it('integrates with explicit Euler, not semi-implicit', () => {
    const env = makeEnv('CartPole-v1');
    env.reset(0);
    env.setState([0, 1, 0, 0]);
    env.step(1);
    // Explicit Euler: x' = x + tau * x_dot(old) = 0.02 exactly; semi-implicit would add tau^2 * x_acc.
    expect(env.getState()[0]).toBe(0.02);
  });

  it('replays random trajectories against the reference equations', () => {
    const env = makeEnv('CartPole-v1');
    const rng = new Rng(7);
    let checked = 0;
    for (let ep = 0; ep < 30; ep++) {
      let obs = env.reset(ep);
      let s = env.getState();
      expect(Array.from(obs)).toEqual(s.map(Math.fround));
      for (;;) {
        const a = rng.int(2);
        const expected = refStep(s, a);
        const r = env.step(a);
        s = env.getState();
        for (let k = 0; k < 4; k++) expect(s[k]).toBeCloseTo(expected[k]!, 13);
        expect(Array.from(r.observation)).toEqual(s.map(Math.fround));
        const out = Math.abs(s[0]!) > 2.4 || Math.abs(s[2]!) > THETA_LIMIT;
        expect(r.terminated).toBe(out);
        expect(r.reward).toBe(1); // including the terminating step
        checked++;
        if (r.terminated || r.truncated) break;
        obs = r.observation;
      }
    }
    expect(checked).toBeGreaterThan(200);
  });

  it('terminates on each position and angle threshold (strictly beyond them)', () => {
    const env = makeEnv('CartPole-v1');
    const cases: Array<[number[], boolean]> = [
      [[2.39, 1, 0, 0], true], // x -> 2.41
      [[-2.39, -1, 0, 0], true], // x -> -2.41
      [[2.4, 0, 0, 0], false], // x stays exactly 2.4: not beyond the threshold
      [[0, 0, 0.2, 1], true], // theta -> 0.22 > 0.2094
      [[0, 0, -0.2, -1], true],
      [[0, 0, THETA_LIMIT, 0], false], // theta stays at the threshold
      [[0, 0, 0.1, 0], false],
    ];
    for (const [state, expected] of cases) {
      env.reset(0);
      env.setState(state);
      const r = env.step(state[1]! >= 0 ? 1 : 0);
      expect(r.terminated, JSON.stringify(state)).toBe(expected);
      expect(r.reward).toBe(1);
      expect(r.truncated).toBe(false);
    }
  });

  it('truncates at exactly 500 steps with a balancing policy', () => {
    const env = makeEnv('CartPole-v1');
    env.reset(3);
    env.setState([0, 0, 0, 0]);
    let steps = 0;
    let total = 0;
    for (;;) {
      const s = env.getState();
      const r = env.step(3 * s[2]! + s[3]! + 0.1 * s[1]! > 0 ? 1 : 0);
      steps++;
      total += r.reward;
      expect(r.truncated).toBe(steps === 500);
      if (r.terminated || r.truncated) break;
    }
    expect(steps).toBe(500);
    expect(total).toBe(500);
    expect(() => env.step(0)).toThrow(/CartPole-v1.*reset/);
  });

  it('errors on stepping after termination instead of returning reward 0', () => {
    const env = makeEnv('CartPole-v1');
    env.reset(0);
    env.setState([2.39, 1, 0, 0]);
    expect(env.step(1).terminated).toBe(true);
    expect(() => env.step(1)).toThrow(/CartPole-v1: step\(\) called after the episode ended/);
    env.reset();
    expect(env.step(1).reward).toBe(1);
  });
});
