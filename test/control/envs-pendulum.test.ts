import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.ts';
import { angleNormalize, makeEnv } from '../../src/control/envs/index.ts';

const f32 = Math.fround;

/** Reference step from the documented equations; the angle cost uses atan2 instead of a modulo. */
function refStep(s: number[], torque: number): { s: number[]; reward: number } {
  const [th, w] = s as [number, number];
  const u = Math.min(Math.max(torque, -2), 2);
  const wrapped = Math.atan2(Math.sin(th), Math.cos(th));
  const cost = wrapped * wrapped + 0.1 * w * w + 0.001 * u * u;
  const g = 10, m = 1, l = 1, dt = 0.05;
  const w2 = Math.min(Math.max(w + ((3 * g) / (2 * l) * Math.sin(th) + (3 / (m * l * l)) * u) * dt, -8), 8);
  return { s: [th + w2 * dt, w2], reward: -cost };
}

describe('Pendulum-v1', () => {
  it('has Gymnasium spaces, no threshold and a 200-step limit', () => {
    const env = makeEnv('Pendulum-v1');
    const as = env.actionSpace;
    expect(as.type).toBe('box');
    if (as.type !== 'box') return;
    expect(Array.from(as.low)).toEqual([-2]);
    expect(Array.from(as.high)).toEqual([2]);
    expect(Array.from(env.observationSpace.high)).toEqual([1, 1, 8]);
    expect(Array.from(env.observationSpace.low)).toEqual([-1, -1, -8]);
    expect(env.rewardThreshold).toBeNull();
    expect(env.maxEpisodeSteps).toBe(200);
  });

  it('matches hand-computed steps, with the torque clipped to [-2, 2]', () => {
    const env = makeEnv('Pendulum-v1');
    env.reset(0);
    env.setState([0, 0]);
    let r = env.step(2);
    // cost = 0.001 * 4; theta_dot' = (0 + 3 * 2) * 0.05 = 0.3; theta' = 0.3 * 0.05 = 0.015
    expect(r.reward).toBeCloseTo(-0.004, 15);
    expect(env.getState()[1]).toBeCloseTo(0.3, 15);
    expect(env.getState()[0]).toBeCloseTo(0.015, 15);
    expect(Array.from(r.observation)).toEqual([f32(Math.cos(0.015)), f32(Math.sin(0.015)), f32(0.3)]);
    env.setState([0, 0]);
    r = env.step([5]); // clipped to 2: same cost and same motion
    expect(r.reward).toBeCloseTo(-0.004, 15);
    expect(env.getState()[1]).toBeCloseTo(0.3, 15);
    // Horizontal, at rest, no torque: cost (pi/2)^2; theta_dot' = 15 * 0.05 = 0.75.
    env.setState([Math.PI / 2, 0]);
    r = env.step(0);
    expect(r.reward).toBeCloseTo(-((Math.PI / 2) ** 2), 14);
    expect(env.getState()[1]).toBeCloseTo(0.75, 15);
    expect(env.getState()[0]).toBeCloseTo(Math.PI / 2 + 0.0375, 15);
  });

  it('clips the angular speed to 8 before integrating the angle', () => {
    const env = makeEnv('Pendulum-v1');
    env.reset(0);
    env.setState([Math.PI / 2, 7.9]);
    env.step(2); // 7.9 + (15 + 6) * 0.05 = 8.95 -> 8
    expect(env.getState()[1]).toBe(8);
    expect(env.getState()[0]).toBeCloseTo(Math.PI / 2 + 0.4, 15);
  });

  it('keeps theta unwrapped in the state but normalises it in the cost', () => {
    const env = makeEnv('Pendulum-v1');
    env.reset(0);
    env.setState([3.1, 8]);
    env.step(2);
    const th = env.getState()[0]!;
    expect(th).toBeGreaterThan(Math.PI); // not wrapped
    const r = env.step(0);
    const wrapped = th - 2 * Math.PI;
    const expectedCost = wrapped * wrapped + 0.1 * 64 + 0;
    expect(r.reward).toBeCloseTo(-expectedCost, 12);
  });

  it('angle normalisation agrees with atan2 and with floor-modulo edge cases', () => {
    const rng = new Rng(4);
    for (let i = 0; i < 1000; i++) {
      const x = rng.uniformRange(-50, 50);
      expect(angleNormalize(x)).toBeCloseTo(Math.atan2(Math.sin(x), Math.cos(x)), 12);
    }
    expect(angleNormalize(Math.PI)).toBe(-Math.PI); // (pi + pi) mod 2 pi = 0
    expect(angleNormalize(-Math.PI)).toBe(-Math.PI);
    expect(angleNormalize((3 * Math.PI) / 2)).toBeCloseTo(-Math.PI / 2, 14);
    expect(angleNormalize((-3 * Math.PI) / 2)).toBeCloseTo(Math.PI / 2, 14);
  });

  it('replays random trajectories against the reference; never terminates; truncates at 200', () => {
    const env = makeEnv('Pendulum-v1');
    const rng = new Rng(2);
    for (let ep = 0; ep < 3; ep++) {
      const obs0 = env.reset(50 + ep);
      let s = env.getState();
      expect(Array.from(obs0)).toEqual([Math.cos(s[0]!), Math.sin(s[0]!), s[1]!].map(f32));
      for (let t = 1; ; t++) {
        const a = rng.uniformRange(-3, 3);
        const ref = refStep(s, a);
        const r = env.step([a]);
        s = env.getState();
        expect(Math.abs(s[0]! - ref.s[0]!)).toBeLessThan(1e-12);
        expect(Math.abs(s[1]! - ref.s[1]!)).toBeLessThan(1e-12);
        expect(Math.abs(r.reward - ref.reward)).toBeLessThan(1e-12);
        expect(Array.from(r.observation)).toEqual([Math.cos(s[0]!), Math.sin(s[0]!), s[1]!].map(f32));
        expect(r.terminated).toBe(false);
        expect(r.truncated).toBe(t === 200);
        if (r.truncated) break;
      }
    }
  });

  it('draws theta in [-pi, pi) and theta_dot in [-1, 1)', () => {
    const env = makeEnv('Pendulum-v1');
    let minTh = Infinity, maxTh = -Infinity;
    for (let seed = 0; seed < 500; seed++) {
      env.reset(seed);
      const [th, w] = env.getState() as [number, number];
      expect(th).toBeGreaterThanOrEqual(-Math.PI);
      expect(th).toBeLessThan(Math.PI);
      expect(w).toBeGreaterThanOrEqual(-1);
      expect(w).toBeLessThan(1);
      minTh = Math.min(minTh, th);
      maxTh = Math.max(maxTh, th);
    }
    expect(minTh).toBeLessThan(-3);
    expect(maxTh).toBeGreaterThan(3);
  });
});
