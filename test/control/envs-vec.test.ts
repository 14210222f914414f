import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.ts';
import { ENV_IDS, makeEnv, makeVecEnv, type Env, type EnvId } from '../../src/control/envs/index.ts';

function randomActions(id: EnvId, n: number, rng: Rng): Int32Array | Float32Array {
  const space = makeEnv(id).actionSpace;
  if (space.type === 'discrete') return Int32Array.from({ length: n }, () => rng.int(space.n));
  // Beyond the bounds on purpose: clipping must agree too.
  return Float32Array.from({ length: n }, () => rng.uniformRange(-1.5 * space.high[0]!, 1.5 * space.high[0]!));
}

/** Steps that cover at least one time-limit truncation for every environment. */
const STEPS: Record<EnvId, number> = {
  'CartPole-v1': 700,
  'Acrobot-v1': 520,
  'MountainCar-v0': 420,
  'MountainCarContinuous-v0': 1010,
  'Pendulum-v1': 420,
};

describe.each(ENV_IDS)('%s vectorised', (id) => {
  it('equals n single envs seeded seed + i, auto-reset and final observations included', () => {
    const n = 3;
    const seed = 40;
    const vec = makeVecEnv(id, n, seed);
    const singles: Env[] = Array.from({ length: n }, () => makeEnv(id));
    const obsDim = vec.observationSpace.shape[0]!;
    const vObs0 = vec.reset();
    singles.forEach((env, i) => expect(Array.from(vObs0.subarray(i * obsDim, (i + 1) * obsDim))).toEqual(Array.from(env.reset(seed + i))));
    const rng = new Rng(9);
    const episodes: Array<{ return: number; length: number }> = [];
    const running = new Array<number>(n).fill(0);
    const lengths = new Array<number>(n).fill(0);
    let ends = 0;
    let truncations = 0;
    for (let t = 0; t < STEPS[id]; t++) {
      const actions = randomActions(id, n, rng);
      if (id === 'CartPole-v1') {
        // Mostly balance the pole so that some episodes reach the 500-step limit.
        singles.forEach((env, i) => {
          const [, v, th, w] = env.getState() as [number, number, number, number];
          if (rng.uniform() < 0.97) actions[i] = 3 * th + w + 0.1 * v > 0 ? 1 : 0;
        });
      }
      const r = vec.step(actions);
      for (let i = 0; i < n; i++) {
        const s = singles[i]!.step(actions[i]!);
        const row = (a: Float32Array) => Array.from(a.subarray(i * obsDim, (i + 1) * obsDim));
        expect(r.rewards[i]).toBe(Math.fround(s.reward));
        expect(r.terminated[i]).toBe(s.terminated ? 1 : 0);
        expect(r.truncated[i]).toBe(s.truncated ? 1 : 0);
        running[i]! += s.reward;
        lengths[i]!++;
        if (s.terminated || s.truncated) {
          ends++;
          if (s.truncated) truncations++;
          expect(row(r.finalObservations)).toEqual(Array.from(s.observation));
          episodes.push({ return: running[i]!, length: lengths[i]! });
          running[i] = 0;
          lengths[i] = 0;
          // Same-step reset: the returned row is already the next episode's first observation.
          expect(row(r.observations)).toEqual(Array.from(singles[i]!.reset()));
        } else {
          expect(row(r.observations)).toEqual(Array.from(s.observation));
        }
        expect(vec.getState(i)).toEqual(singles[i]!.getState());
      }
    }
    expect(truncations).toBeGreaterThan(0);
    const stats = vec.completedEpisodes();
    expect(stats.length).toBe(ends);
    // Same episodes, possibly in a different order within one step.
    const key = (e: { return: number; length: number }) => `${e.length}:${e.return}`;
    expect(stats.map(key).sort()).toEqual(episodes.map(key).sort());
    expect(vec.completedEpisodes()).toEqual([]); // drained
  });

  it('steps copies identically to a single env from the same states (setState parity)', () => {
    const n = 4;
    const vec = makeVecEnv(id, n, 0);
    vec.reset();
    const single = makeEnv(id);
    single.reset(0);
    const rng = new Rng(21);
    for (let trial = 0; trial < 25; trial++) {
      // Copy 0 keeps its own state; the others get states copied from the single env's episode.
      const states = Array.from({ length: n }, (_, i) => (i === 0 ? vec.getState(0) : (single.reset(1000 + trial * n + i), single.getState())));
      states.forEach((s, i) => vec.setState(i, s));
      const actions = randomActions(id, n, rng);
      const r = vec.step(actions);
      const obsDim = vec.observationSpace.shape[0]!;
      for (let i = 0; i < n; i++) {
        single.reset(0);
        single.setState(states[i]!);
        const s = single.step(actions[i]!);
        expect(r.rewards[i]).toBe(Math.fround(s.reward));
        expect(r.terminated[i]).toBe(s.terminated ? 1 : 0);
        if (!s.terminated && !r.truncated[i]) {
          expect(Array.from(r.observations.subarray(i * obsDim, (i + 1) * obsDim))).toEqual(Array.from(s.observation));
          expect(vec.getState(i)).toEqual(single.getState());
        } else {
          expect(Array.from(r.finalObservations.subarray(i * obsDim, (i + 1) * obsDim))).toEqual(Array.from(s.observation));
        }
      }
    }
  });

  it('returns views into reused buffers and validates its input', () => {
    const vec = makeVecEnv(id, 2, 1);
    const space = vec.actionSpace;
    const good = space.type === 'discrete' ? new Int32Array(2) : new Float32Array(2);
    expect(() => vec.step(good)).toThrow(new RegExp(`${id} \\(vectorised\\): step\\(\\) called before reset\\(\\)`));
    vec.reset();
    const a = vec.step(good);
    const b = vec.step(good);
    expect(b.observations).toBe(a.observations);
    expect(b.rewards).toBe(a.rewards);
    expect(b.finalObservations).toBe(a.finalObservations);
    expect(() => vec.step(space.type === 'discrete' ? new Int32Array(3) : new Float32Array(3))).toThrow(/expected 2 actions \(2 copies x 1\), got 3/);
    expect(() => vec.step([0, 0] as unknown as Int32Array)).toThrow(/actions must be an Int32Array, Float32Array or Float64Array/);
    if (space.type === 'discrete') {
      expect(() => vec.step(Int32Array.of(0, space.n))).toThrow(new RegExp(`discrete action for copy 1 ${space.n} is out of range`));
      expect(() => vec.step(Float32Array.of(0.5, 0))).toThrow(/discrete action for copy 0 0.5 is not an integer/);
      expect(() => vec.step(Float64Array.of(1, NaN))).toThrow(/discrete action for copy 1 is NaN/);
    } else {
      expect(() => vec.step(Float32Array.of(0, NaN))).toThrow(/action 1 \(copy 1\) is NaN/);
      expect(() => vec.step(Float32Array.of(100, -100))).not.toThrow();
    }
    expect(() => vec.getState(2)).toThrow(/copy index must be an integer in \[0, 1\], got 2/);
    expect(() => vec.setState(0, [1])).toThrow(/copy 0: setState expects/);
  });
});

describe('VecEnv episode statistics', () => {
  it('reports CartPole returns equal to episode lengths and restarts them on reset()', () => {
    const vec = makeVecEnv('CartPole-v1', 8, 3);
    vec.reset();
    const rng = new Rng(0);
    for (let t = 0; t < 200; t++) vec.step(randomActions('CartPole-v1', 8, rng));
    const eps = vec.completedEpisodes();
    expect(eps.length).toBeGreaterThan(20);
    for (const e of eps) {
      expect(e.return).toBe(e.length);
      expect(e.length).toBeGreaterThanOrEqual(8); // a random CartPole episode cannot fall in fewer steps
    }
    // reset() drops unfinished episodes: a fresh count starts from 0.
    vec.reset();
    const r = vec.step(Int32Array.from({ length: 8 }, () => 1));
    expect(Array.from(r.terminated)).toEqual(new Array(8).fill(0));
    expect(vec.completedEpisodes()).toEqual([]);
  });
});
