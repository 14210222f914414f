import { describe, expect, it } from 'vitest';
import { ENV_IDS, makeEnv, makeVecEnv, type EnvId } from '../../src/control/envs/index.ts';

const f32 = Math.fround;

/** Gymnasium's initial-state ranges, per state component: [low, high]. */
const INIT_RANGES: Record<EnvId, Array<[number, number]>> = {
  'CartPole-v1': [[-0.05, 0.05], [-0.05, 0.05], [-0.05, 0.05], [-0.05, 0.05]],
  'Acrobot-v1': [[-0.1, 0.1], [-0.1, 0.1], [-0.1, 0.1], [-0.1, 0.1]],
  'MountainCar-v0': [[-0.6, -0.4], [0, 0]],
  'MountainCarContinuous-v0': [[-0.6, -0.4], [0, 0]],
  'Pendulum-v1': [[-Math.PI, Math.PI], [-1, 1]],
};

/** A valid action for each environment (discrete index or length-1 box). */
const VALID_ACTION: Record<EnvId, number> = {
  'CartPole-v1': 1,
  'Acrobot-v1': 2,
  'MountainCar-v0': 0,
  'MountainCarContinuous-v0': 0.5,
  'Pendulum-v1': -1,
};

describe('makeEnv / makeVecEnv', () => {
  it('rejects an unknown id and lists the valid ones', () => {
    expect(() => makeEnv('CartPole-v0' as EnvId)).toThrow(
      /makeEnv: unknown environment id "CartPole-v0"; valid ids: CartPole-v1, Acrobot-v1, MountainCar-v0, MountainCarContinuous-v0, Pendulum-v1/,
    );
    expect(() => makeVecEnv('Hopper-v4' as EnvId, 2, 0)).toThrow(/makeVecEnv: unknown environment id "Hopper-v4"; valid ids: CartPole-v1/);
    expect(() => makeVecEnv('CartPole-v1', 0, 0)).toThrow(/n must be a positive integer, got 0/);
    expect(() => makeVecEnv('CartPole-v1', 2, 0.5)).toThrow(/seed must be a safe integer/);
  });
});

describe.each(ENV_IDS)('%s: reset, determinism and errors', (id) => {
  it('draws initial states inside Gymnasium ranges, spread across them', () => {
    const env = makeEnv(id);
    const ranges = INIT_RANGES[id];
    const mins = ranges.map(() => Infinity);
    const maxs = ranges.map(() => -Infinity);
    for (let seed = 0; seed < 400; seed++) {
      env.reset(seed);
      const s = env.getState();
      expect(s.length).toBe(ranges.length);
      s.forEach((v, k) => {
        const [lo, hi] = ranges[k]!;
        // Acrobot rounds to float32, which may land exactly on f32(bound).
        expect(v).toBeGreaterThanOrEqual(Math.min(lo, f32(lo)));
        expect(v).toBeLessThanOrEqual(Math.max(hi, f32(hi)));
        if (lo !== hi) expect(v).not.toBe(hi);
        mins[k] = Math.min(mins[k]!, v);
        maxs[k] = Math.max(maxs[k]!, v);
      });
    }
    ranges.forEach(([lo, hi], k) => {
      const width = hi - lo;
      if (width === 0) return;
      expect(mins[k]!).toBeLessThan(lo + 0.05 * width);
      expect(maxs[k]!).toBeGreaterThan(hi - 0.05 * width);
    });
  });

  it('is deterministic per seed; reset() without a seed continues the stream', () => {
    const a = makeEnv(id);
    const b = makeEnv(id);
    const run = (env: typeof a, seed: number | undefined) => {
      const out: number[] = Array.from(env.reset(seed));
      for (let t = 0; t < 30; t++) {
        const r = env.step(VALID_ACTION[id]);
        out.push(...r.observation, r.reward);
        if (r.terminated || r.truncated) break;
      }
      return out;
    };
    expect(run(a, 123)).toEqual(run(b, 123));
    const again = run(a, 123);
    expect(again).toEqual(run(b, 123));
    const next = run(a, undefined);
    expect(next).not.toEqual(again); // a new episode from the continuing stream
    expect(run(b, undefined)).toEqual(next);
    expect(run(a, 124)).not.toEqual(run(b, 123));
    // A fresh env without a seed starts from seed 0.
    expect(Array.from(makeEnv(id).reset())).toEqual(Array.from(makeEnv(id).reset(0)));
  });

  it('errors clearly on misuse', () => {
    const env = makeEnv(id);
    expect(() => env.step(VALID_ACTION[id])).toThrow(new RegExp(`${id}: step\\(\\) called before reset\\(\\)`));
    env.reset(0);
    expect(() => env.reset(1.5)).toThrow(new RegExp(`${id}: seed must be a safe integer, got 1.5`));
    expect(() => env.step(NaN)).toThrow(new RegExp(`${id}: .*NaN`));
    expect(() => env.step([VALID_ACTION[id], 0])).toThrow(new RegExp(`${id}: action must have length 1, got length 2`));
    expect(() => env.step([])).toThrow(new RegExp(`${id}: action must have length 1, got length 0`));
    expect(() => env.step('1' as unknown as number)).toThrow(new RegExp(`${id}: action must be a number or an array`));
    if (env.actionSpace.type === 'discrete') {
      const n = env.actionSpace.n;
      expect(() => env.step(n)).toThrow(new RegExp(`${id}: discrete action ${n} is out of range; expected an integer in \\[0, ${n - 1}\\]`));
      expect(() => env.step(-1)).toThrow(new RegExp(`${id}: discrete action -1 is out of range`));
      expect(() => env.step(0.5)).toThrow(new RegExp(`${id}: discrete action 0.5 is not an integer`));
    } else {
      // Out-of-bounds continuous actions are clipped, not rejected.
      expect(() => env.step(1e6)).not.toThrow();
    }
    const names = env.getState().length;
    expect(() => env.setState([1])).toThrow(new RegExp(`${id}: setState expects ${names} numbers`));
    const bad = env.getState();
    bad[1] = Infinity;
    expect(() => env.setState(bad)).toThrow(new RegExp(`${id}: setState component 1 \\(\\w+\\) must be a finite number, got Infinity`));
  });

  it('setState replays a trajectory exactly', () => {
    const env = makeEnv(id);
    env.reset(77);
    const start = env.getState();
    const first: number[][] = [];
    for (let t = 0; t < 20; t++) {
      const r = env.step(VALID_ACTION[id]);
      first.push([...r.observation, r.reward, env.getState()].flat());
      if (r.terminated) break;
    }
    env.reset(78);
    env.setState(start);
    for (let t = 0; t < first.length; t++) {
      const r = env.step(VALID_ACTION[id]);
      expect([...r.observation, r.reward, env.getState()].flat()).toEqual(first[t]);
    }
  });

  it('setState leaves the step counter alone: truncation still comes at maxEpisodeSteps', () => {
    const env = makeEnv(id);
    env.reset(3);
    const s0 = env.getState();
    for (let t = 1; t <= env.maxEpisodeSteps; t++) {
      env.setState(s0); // hold the physics at the start; only the counter advances
      const r = env.step(VALID_ACTION[id]);
      expect(r.terminated).toBe(false);
      expect(r.truncated).toBe(t === env.maxEpisodeSteps);
    }
    expect(() => env.step(VALID_ACTION[id])).toThrow(/after the episode ended/);
  });

  it('returns observations the caller may keep', () => {
    const env = makeEnv(id);
    const o0 = env.reset(5);
    const copy = Array.from(o0);
    const r = env.step(VALID_ACTION[id]);
    expect(Array.from(o0)).toEqual(copy);
    expect(r.observation).not.toBe(o0);
  });
});
