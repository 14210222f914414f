import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.ts';
import { makeEnv } from '../../src/control/envs/index.ts';

const f32 = Math.fround;

/** Reference MountainCar-v0 step from the documented transition (float64 throughout). */
function refDiscrete(s: number[], action: number): { s: number[]; terminated: boolean } {
  let [p, v] = s as [number, number];
  v = Math.min(Math.max(v + (action - 1) * 0.001 - 0.0025 * Math.cos(3 * p), -0.07), 0.07);
  p = Math.min(Math.max(p + v, -1.2), 0.6);
  if (p === -1.2 && v < 0) v = 0;
  return { s: [p, v], terminated: p >= 0.5 && v >= 0 };
}

describe('MountainCar-v0', () => {
  it('has Gymnasium spaces, threshold and time limit', () => {
    const env = makeEnv('MountainCar-v0');
    expect(env.actionSpace).toEqual({ type: 'discrete', n: 3 });
    expect(Array.from(env.observationSpace.low)).toEqual([f32(-1.2), f32(-0.07)]);
    expect(Array.from(env.observationSpace.high)).toEqual([f32(0.6), f32(0.07)]);
    expect(env.rewardThreshold).toBe(-110);
    expect(env.maxEpisodeSteps).toBe(200);
  });

  it('matches a hand-computed step', () => {
    const env = makeEnv('MountainCar-v0');
    env.reset(0);
    env.setState([-0.5, 0]);
    const r = env.step(2);
    // v = 0 + 0.001 - 0.0025 cos(-1.5) = 0.001 - 0.0025 * 0.0707372 = 0.000823157
    const v = 0.001 - 0.0025 * Math.cos(-1.5);
    expect(env.getState()[1]).toBeCloseTo(0.000823157, 9);
    expect(env.getState()[0]).toBeCloseTo(-0.5 + v, 15);
    expect(r.reward).toBe(-1);
    expect(Array.from(r.observation)).toEqual(env.getState().map(f32));
  });

  it('replays random trajectories against the reference until truncation at 200', () => {
    const env = makeEnv('MountainCar-v0');
    const rng = new Rng(3);
    for (let ep = 0; ep < 5; ep++) {
      const obs0 = env.reset(100 + ep);
      let s = env.getState();
      expect(Array.from(obs0)).toEqual(s.map(f32));
      for (let t = 1; ; t++) {
        const a = rng.int(3);
        const ref = refDiscrete(s, a);
        const r = env.step(a);
        s = env.getState();
        expect(Math.abs(s[0]! - ref.s[0]!)).toBeLessThan(1e-15);
        expect(Math.abs(s[1]! - ref.s[1]!)).toBeLessThan(1e-15);
        expect(r.terminated).toBe(ref.terminated);
        expect(r.reward).toBe(-1);
        expect(r.truncated).toBe(t === 200);
        if (r.terminated || r.truncated) break;
      }
    }
  });

  it('stops the car at the left wall: position clipped to -1.2 and velocity set to 0', () => {
    const env = makeEnv('MountainCar-v0');
    env.reset(0);
    env.setState([-1.19, -0.05]);
    const r = env.step(0);
    expect(env.getState()).toEqual([-1.2, 0]);
    expect(Array.from(r.observation)).toEqual([f32(-1.2), 0]);
    // At the wall but moving right: the velocity is kept.
    env.setState([-1.2, 0]);
    env.step(2);
    const [p, v] = env.getState();
    expect(v).toBeGreaterThan(0);
    expect(p).toBeGreaterThan(-1.2);
  });

  it('clips the velocity to +-0.07 and the position to 0.6 (right side keeps its velocity)', () => {
    const env = makeEnv('MountainCar-v0');
    env.reset(0);
    env.setState([-0.5, 0.0699]);
    env.step(2);
    expect(env.getState()[1]).toBe(0.07);
    env.setState([0.59, 0.07]);
    const r = env.step(2);
    expect(env.getState()[0]).toBe(0.6);
    expect(env.getState()[1]).toBeGreaterThan(0);
    expect(r.terminated).toBe(true);
  });

  it('terminates at position >= 0.5 only with non-negative velocity, still with reward -1', () => {
    const env = makeEnv('MountainCar-v0');
    env.reset(0);
    env.setState([0.49, 0.02]);
    let r = env.step(2);
    expect(r.terminated).toBe(true);
    expect(r.reward).toBe(-1);
    env.reset(0);
    env.setState([0.55, -0.001]);
    r = env.step(1);
    expect(env.getState()[0]).toBeGreaterThanOrEqual(0.5);
    expect(env.getState()[1]).toBeLessThan(0);
    expect(r.terminated).toBe(false);
  });

  it('reaches the goal by pushing along the velocity', () => {
    const env = makeEnv('MountainCar-v0');
    env.reset(4);
    let steps = 0;
    for (;;) {
      const r = env.step(env.getState()[1]! >= 0 ? 2 : 0);
      steps++;
      if (r.terminated || r.truncated) {
        expect(r.terminated).toBe(true);
        break;
      }
    }
    expect(steps).toBeLessThan(200);
  });
});

/**
 * Reference MountainCarContinuous-v0 step in plain float64 (NumPy 1 semantics). The
 * environment follows NumPy 2's float32 promotion, so the two agree to float32 precision.
 */
function refContinuous(s: number[], a: number): { s: number[]; terminated: boolean; reward: number } {
  let [p, v] = s as [number, number];
  const force = Math.min(Math.max(a, -1), 1);
  v = Math.min(Math.max(v + force * 0.0015 - 0.0025 * Math.cos(3 * p), -0.07), 0.07);
  p = Math.min(Math.max(p + v, -1.2), 0.6);
  if (p === -1.2 && v < 0) v = 0;
  const terminated = p >= 0.45 && v >= 0;
  return { s: [p, v], terminated, reward: (terminated ? 100 : 0) - 0.1 * a * a };
}

describe('MountainCarContinuous-v0', () => {
  it('has Gymnasium spaces, threshold and time limit', () => {
    const env = makeEnv('MountainCarContinuous-v0');
    const as = env.actionSpace;
    expect(as.type).toBe('box');
    if (as.type !== 'box') return;
    expect(as.shape).toEqual([1]);
    expect(Array.from(as.low)).toEqual([-1]);
    expect(Array.from(as.high)).toEqual([1]);
    expect(Array.from(env.observationSpace.low)).toEqual([f32(-1.2), f32(-0.07)]);
    expect(env.rewardThreshold).toBe(90);
    expect(env.maxEpisodeSteps).toBe(999);
  });

  it('penalises the raw action but pushes with the clipped force', () => {
    const env = makeEnv('MountainCarContinuous-v0');
    env.reset(0);
    env.setState([-0.5, 0]);
    const big = env.step(3.0);
    const afterBig = env.getState();
    env.reset(0);
    env.setState([-0.5, 0]);
    const one = env.step([1.0]);
    expect(env.getState()).toEqual(afterBig); // same physics: force clipped to 1
    expect(big.reward).toBeCloseTo(-0.9, 15); // -0.1 * 3^2, not -0.1 * 1^2
    expect(one.reward).toBeCloseTo(-0.1, 15);
    // Hand value of the first step: v = 0.0015 - 0.0025 cos(-1.5), stored in float32.
    expect(afterBig[1]).toBe(f32(0.0015 - 0.0025 * Math.cos(-1.5)));
    expect(afterBig[0]).toBe(f32(-0.5 + (0.0015 - 0.0025 * Math.cos(-1.5))));
    env.reset(0);
    env.setState([-0.5, 0]);
    expect(env.step(-2.5).reward).toBeCloseTo(-0.625, 15);
  });

  it('adds 100 on reaching position >= 0.45 with non-negative velocity', () => {
    const env = makeEnv('MountainCarContinuous-v0');
    env.reset(0);
    env.setState([0.44, 0.02]);
    const r = env.step(0.5);
    expect(r.terminated).toBe(true);
    expect(r.reward).toBeCloseTo(100 - 0.1 * 0.25, 12);
    env.reset(0);
    env.setState([0.5, -0.01]);
    const r2 = env.step(-0.5);
    expect(env.getState()[0]).toBeGreaterThanOrEqual(0.45);
    expect(r2.terminated).toBe(false);
    expect(r2.reward).toBeCloseTo(-0.025, 15);
  });

  it('stores the state in float32 and returns it as the observation', () => {
    const env = makeEnv('MountainCarContinuous-v0');
    env.reset(9);
    const rng = new Rng(1);
    for (let t = 0; t < 100; t++) {
      const r = env.step(rng.uniformRange(-2, 2));
      const s = env.getState();
      expect(s.map(f32)).toEqual(s);
      expect(Array.from(r.observation)).toEqual(s);
    }
  });

  it('stops at the left wall and clips the velocity', () => {
    const env = makeEnv('MountainCarContinuous-v0');
    env.reset(0);
    env.setState([-1.19, -0.05]);
    env.step(-1);
    expect(env.getState()).toEqual([f32(-1.2), 0]);
    env.setState([-0.5, 0.0699]);
    env.step(1);
    expect(env.getState()[1]).toBe(f32(0.07));
  });

  it('replays random trajectories against the float64 reference to float32 precision', () => {
    const env = makeEnv('MountainCarContinuous-v0');
    const rng = new Rng(8);
    let terminations = 0;
    for (let ep = 0; ep < 6; ep++) {
      env.reset(ep);
      let s = env.getState();
      expect(s[1]).toBe(0);
      for (let t = 1; ; t++) {
        // Mostly push along the velocity (reaches the goal), sometimes a random action beyond the bounds.
        const a = rng.uniform() < 0.2 ? rng.uniformRange(-3, 3) : (s[1]! >= 0 ? 1.3 : -1.3);
        const ref = refContinuous(s, a);
        const r = env.step(a);
        s = env.getState();
        expect(Math.abs(s[0]! - ref.s[0]!)).toBeLessThan(2e-7);
        expect(Math.abs(s[1]! - ref.s[1]!)).toBeLessThan(5e-9); // float32 half-ulp at 0.07 is 3.7e-9
        expect(r.terminated).toBe(ref.terminated);
        expect(r.reward).toBeCloseTo(ref.reward, 12);
        expect(r.truncated).toBe(t === 999);
        if (r.terminated) terminations++;
        if (r.terminated || r.truncated) break;
      }
    }
    expect(terminations).toBe(6);
  });

  it('compares a float32 position with the goal rounded to float32, as NumPy 2 does', () => {
    // From a float32 state whose velocity gets clipped (to the Python float 0.07), the new
    // position is computed in float32 and lands on f32(0.45) = 0.4499999881 < 0.45; NumPy 2
    // compares it with f32(0.45), so the episode terminates (checked against Gymnasium 1.3).
    const env = makeEnv('MountainCarContinuous-v0');
    env.reset(0);
    const p = f32(f32(0.45) - f32(0.07));
    env.setState([p, f32(0.07)]);
    const r = env.step(1.0);
    expect(env.getState()).toEqual([f32(0.45), f32(0.07)]);
    expect(env.getState()[0]).toBeLessThan(0.45);
    expect(r.terminated).toBe(true);
    expect(r.reward).toBeCloseTo(99.9, 12);
  });

  it('truncates at 999 steps', () => {
    const env = makeEnv('MountainCarContinuous-v0');
    env.reset(1);
    let t = 0;
    for (;;) {
      const r = env.step(0);
      t++;
      expect(r.truncated).toBe(t === 999);
      if (r.terminated || r.truncated) break;
    }
    expect(t).toBe(999);
  });
});
