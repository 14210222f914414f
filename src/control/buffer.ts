/**
 * The rollout buffer shared by every control algorithm (Stable-Baselines3's
 * `RolloutBuffer` + `OnPolicyAlgorithm.collect_rollouts`), and the collector that fills it
 * from a vectorised environment.
 *
 * Storage is time-major flat typed arrays: element (t, i) of a [T, N] rollout (T steps of
 * N environment copies) sits at index k = t * N + i; observations and box actions add a
 * trailing feature axis ([T * N * obsDim], [T * N * actionDim]).
 *
 * Collection, per step: one batched forward over the N current observations (read back
 * once), actions drawn with our Rng, box actions clipped for the environment (the
 * buffer keeps the unclipped sample and its log-probability, as SB3). A copy whose
 * episode was truncated by the time limit is bootstrapped with V(final observation):
 * those values are computed in one batched forward over the truncated copies of the step.
 *
 * Advantages:
 *   - GAE (A2C, PPO, NPG, TRPO): `computeGae` builds V(s_{t+1}) per step — the next row's
 *     value inside an episode, V(final observation) on a truncated step, V(last
 *     observation) after the rollout's last step — and runs src/objectives' computeGae
 *     (terminated steps do not bootstrap; both kinds of episode end cut the recursion).
 *   - Monte-Carlo reward-to-go (REINFORCE): `computeMonteCarloReturns`. Without a critic
 *     nothing can stand in for the rewards after the rollout's end, so the steps of each
 *     copy's last, unfinished episode are marked invalid and left out of the update
 *     (deliberate simplification; the rollout should be long compared with episodes).
 *     Truncated episodes end their sum at the time limit.
 */
import type { Rng } from '../core/rng.ts';
import { computeGae, whiten } from '../objectives/index.ts';
import type { EpisodeStats, VecEnv } from './envs/types.ts';
import type { ObsNormalizer, RewardNormalizer } from './normalize.ts';
import { clipActions, type ActorCritic } from './policy.ts';

export interface RolloutBufferShape {
  /** Steps per copy, T. */
  numSteps: number;
  /** Environment copies, N. */
  numEnvs: number;
  obsDim: number;
  /** Action components per step: 1 for discrete actions, the box dimension otherwise. */
  actionDim: number;
  discrete: boolean;
}

/** A gathered minibatch: rows of the buffer in the order of `indices`. */
export interface Minibatch {
  indices: Int32Array;
  size: number;
  /** [size * obsDim] */
  obs: Float32Array;
  /** [size] (discrete) or [size * actionDim] (box, unclipped) */
  actions: Int32Array | Float32Array;
  logProbs: Float32Array;
  values: Float32Array;
  advantages: Float32Array;
  returns: Float32Array;
}

export class RolloutBuffer {
  readonly numSteps: number;
  readonly numEnvs: number;
  readonly obsDim: number;
  readonly actionDim: number;
  readonly discrete: boolean;
  /** T * N */
  readonly size: number;
  /** Observations as the policy saw them (normalised when normalisation is on). */
  readonly obs: Float32Array;
  readonly actions: Int32Array | Float32Array;
  readonly logProbs: Float32Array;
  readonly values: Float32Array;
  /** Rewards as trained on (scaled when reward normalisation is on). */
  readonly rewards: Float32Array;
  readonly terminated: Uint8Array;
  readonly truncated: Uint8Array;
  /** V(final observation) on truncated steps (NaN elsewhere). */
  readonly truncationValues: Float32Array;
  /** V of each copy's observation after the last step [N]. */
  readonly lastValues: Float32Array;
  readonly advantages: Float32Array;
  readonly returns: Float32Array;
  /** 1 where the step takes part in the update (all steps for GAE). */
  readonly valid: Uint8Array;
  /** Steps filled so far (0..T). */
  pos = 0;
  private ready = false;

  constructor(shape: RolloutBufferShape) {
    const { numSteps, numEnvs, obsDim, actionDim } = shape;
    for (const [name, v] of Object.entries({ numSteps, numEnvs, obsDim, actionDim })) {
      if (!Number.isInteger(v) || v < 1) throw new Error(`RolloutBuffer: ${name} must be a positive integer, got ${v}`);
    }
    if (shape.discrete && actionDim !== 1) throw new Error('RolloutBuffer: discrete actions have actionDim 1');
    this.numSteps = numSteps;
    this.numEnvs = numEnvs;
    this.obsDim = obsDim;
    this.actionDim = actionDim;
    this.discrete = shape.discrete;
    const n = numSteps * numEnvs;
    this.size = n;
    this.obs = new Float32Array(n * obsDim);
    this.actions = shape.discrete ? new Int32Array(n) : new Float32Array(n * actionDim);
    this.logProbs = new Float32Array(n);
    this.values = new Float32Array(n);
    this.rewards = new Float32Array(n);
    this.terminated = new Uint8Array(n);
    this.truncated = new Uint8Array(n);
    this.truncationValues = new Float32Array(n).fill(NaN);
    this.lastValues = new Float32Array(numEnvs);
    this.advantages = new Float32Array(n);
    this.returns = new Float32Array(n);
    this.valid = new Uint8Array(n);
  }

  /** Start a new rollout. */
  reset(): void {
    this.pos = 0;
    this.ready = false;
    this.truncationValues.fill(NaN);
  }

  get full(): boolean {
    return this.pos === this.numSteps;
  }

  /** Store step `pos` for all N copies (arrays as the collector has them; copied). */
  add(step: {
    obs: Float32Array;
    actions: Int32Array | Float32Array;
    logProbs: Float32Array;
    values: Float32Array;
    rewards: ArrayLike<number>;
    terminated: ArrayLike<number>;
    truncated: ArrayLike<number>;
  }): void {
    if (this.full) throw new Error(`RolloutBuffer.add: the buffer already holds ${this.numSteps} steps; call reset()`);
    const N = this.numEnvs;
    const t = this.pos;
    const check = (name: string, a: ArrayLike<number>, len: number): void => {
      if (a.length !== len) throw new Error(`RolloutBuffer.add: ${name} has length ${a.length}, expected ${len}`);
    };
    check('obs', step.obs, N * this.obsDim);
    check('actions', step.actions, N * this.actionDim);
    for (const [name, a] of [['logProbs', step.logProbs], ['values', step.values], ['rewards', step.rewards], ['terminated', step.terminated], ['truncated', step.truncated]] as const) {
      check(name, a, N);
    }
    this.obs.set(step.obs, t * N * this.obsDim);
    if (this.actions instanceof Int32Array) {
      if (!(step.actions instanceof Int32Array)) throw new Error('RolloutBuffer.add: discrete actions must be an Int32Array');
      this.actions.set(step.actions, t * N);
    } else {
      this.actions.set(step.actions, t * N * this.actionDim);
    }
    this.logProbs.set(step.logProbs, t * N);
    this.values.set(step.values, t * N);
    for (let i = 0; i < N; i++) {
      this.rewards[t * N + i] = step.rewards[i]!;
      this.terminated[t * N + i] = step.terminated[i] ? 1 : 0;
      this.truncated[t * N + i] = step.truncated[i] ? 1 : 0;
    }
    this.pos++;
  }

  /** Record V(final observation) for copy i at step t (a truncated, non-terminated step). */
  setTruncationValue(t: number, i: number, value: number): void {
    this.truncationValues[t * this.numEnvs + i] = value;
  }

  /** GAE advantages and lambda-returns over the full buffer (see the file header). */
  computeGae(gamma: number, lambda: number): void {
    this.requireFull('computeGae');
    const N = this.numEnvs;
    const n = this.size;
    const nextValues = new Float32Array(n);
    for (let k = 0; k < n; k++) {
      if (this.terminated[k]) nextValues[k] = 0;
      else if (this.truncated[k]) {
        const v = this.truncationValues[k]!;
        if (!Number.isFinite(v)) throw new Error(`RolloutBuffer.computeGae: step ${Math.floor(k / N)} copy ${k % N} was truncated but has no bootstrap value`);
        nextValues[k] = v;
      } else nextValues[k] = k + N < n ? this.values[k + N]! : this.lastValues[k % N]!;
    }
    const out = computeGae({
      rewards: this.rewards,
      values: this.values,
      nextValues,
      terminated: this.terminated,
      truncated: this.truncated,
      numEnvs: N,
      gamma,
      lambda,
    });
    this.advantages.set(out.advantages);
    this.returns.set(out.returns);
    this.valid.fill(1);
    this.ready = true;
  }

  /**
   * Discounted reward-to-go G_t within each episode; steps of an episode that has not ended
   * by the rollout's end are marked invalid. Advantages are G_t - V(s_t) with a baseline,
   * G_t without.
   */
  computeMonteCarloReturns(gamma: number, baseline: boolean): void {
    this.requireFull('computeMonteCarloReturns');
    if (!(gamma >= 0 && gamma <= 1)) throw new Error(`computeMonteCarloReturns: gamma must be in [0, 1], got ${gamma}`);
    const N = this.numEnvs;
    for (let i = 0; i < N; i++) {
      let g = 0;
      let seenEnd = false;
      for (let t = this.numSteps - 1; t >= 0; t--) {
        const k = t * N + i;
        if (this.terminated[k] || this.truncated[k]) {
          g = this.rewards[k]!;
          seenEnd = true;
        } else {
          g = this.rewards[k]! + gamma * g;
        }
        this.returns[k] = g;
        this.valid[k] = seenEnd ? 1 : 0;
        this.advantages[k] = seenEnd ? g - (baseline ? this.values[k]! : 0) : 0;
      }
    }
    this.ready = true;
  }

  /** Number of valid steps. */
  get validCount(): number {
    let c = 0;
    for (let k = 0; k < this.size; k++) c += this.valid[k]!;
    return c;
  }

  /** The valid indices in buffer order. */
  validIndices(): Int32Array {
    const out = new Int32Array(this.validCount);
    let j = 0;
    for (let k = 0; k < this.size; k++) if (this.valid[k]) out[j++] = k;
    return out;
  }

  /**
   * Shuffled minibatches of `batchSize` valid steps (the last one may be smaller), each
   * step appearing exactly once. The permutation comes from `rng`.
   */
  *minibatches(batchSize: number, rng: Rng): Generator<Minibatch> {
    this.requireReady('minibatches');
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`RolloutBuffer.minibatches: batchSize must be a positive integer, got ${batchSize}`);
    const idx = this.validIndices();
    rng.shuffle(idx);
    for (let start = 0; start < idx.length; start += batchSize) yield this.gather(idx.subarray(start, Math.min(idx.length, start + batchSize)));
  }

  /** All valid steps as one batch, in buffer order. */
  all(): Minibatch {
    this.requireReady('all');
    return this.gather(this.validIndices());
  }

  /** Rows of the buffer at `indices`. */
  gather(indices: Int32Array): Minibatch {
    const m = indices.length;
    const d = this.obsDim;
    const a = this.actionDim;
    const obs = new Float32Array(m * d);
    const actions = this.discrete ? new Int32Array(m) : new Float32Array(m * a);
    const logProbs = new Float32Array(m);
    const values = new Float32Array(m);
    const advantages = new Float32Array(m);
    const returns = new Float32Array(m);
    for (let j = 0; j < m; j++) {
      const k = indices[j]!;
      if (!(k >= 0 && k < this.size)) throw new Error(`RolloutBuffer.gather: index ${k} is outside [0, ${this.size})`);
      obs.set(this.obs.subarray(k * d, k * d + d), j * d);
      if (this.actions instanceof Int32Array) actions[j] = this.actions[k]!;
      else (actions as Float32Array).set(this.actions.subarray(k * a, k * a + a), j * a);
      logProbs[j] = this.logProbs[k]!;
      values[j] = this.values[k]!;
      advantages[j] = this.advantages[k]!;
      returns[j] = this.returns[k]!;
    }
    return { indices: Int32Array.from(indices), size: m, obs, actions, logProbs, values, advantages, returns };
  }

  private requireFull(fn: string): void {
    if (!this.full) throw new Error(`RolloutBuffer.${fn}: the rollout holds ${this.pos} of ${this.numSteps} steps`);
  }

  private requireReady(fn: string): void {
    if (!this.ready) throw new Error(`RolloutBuffer.${fn}: compute advantages first (computeGae or computeMonteCarloReturns)`);
  }
}

/** Advantages of a minibatch, whitened when asked (and when there is more than one). */
export function minibatchAdvantages(mb: Minibatch, normalize: boolean): Float32Array {
  return normalize && mb.size > 1 ? whiten(mb.advantages) : mb.advantages;
}

export interface RolloutStats {
  /** Episodes that ended during the rollout, with their raw (unnormalised) returns. */
  episodes: EpisodeStats[];
  /** Environment steps taken (T * N). */
  envSteps: number;
}

/**
 * Steps a VecEnv with a policy and fills rollout buffers. It owns the environment's current
 * observation between rollouts, and the normalisers' running statistics.
 */
export class RolloutCollector {
  private rawObs: Float32Array;
  private readonly obsDim: number;

  constructor(
    readonly env: VecEnv,
    readonly policy: ActorCritic,
    readonly obsNormalizer: ObsNormalizer | null = null,
    readonly rewardNormalizer: RewardNormalizer | null = null,
  ) {
    this.obsDim = env.observationSpace.shape[0]!;
    if (policy.obsDim !== this.obsDim) throw new Error(`RolloutCollector: the policy takes ${policy.obsDim}-dim observations but ${env.id} has ${this.obsDim}`);
    const space = env.actionSpace;
    const ps = policy.actionSpace;
    if (space.type !== ps.type || (space.type === 'discrete' && ps.type === 'discrete' && space.n !== ps.n) || (space.type === 'box' && ps.type === 'box' && space.shape[0] !== ps.dim)) {
      throw new Error(`RolloutCollector: the policy's action space does not match ${env.id}'s`);
    }
    if (rewardNormalizer && rewardNormalizer.numEnvs !== env.numEnvs) {
      throw new Error(`RolloutCollector: the reward normaliser tracks ${rewardNormalizer.numEnvs} copies but the env has ${env.numEnvs}`);
    }
    this.rawObs = env.reset().slice();
    obsNormalizer?.update(this.rawObs, env.numEnvs);
  }

  private policyObs(raw: Float32Array): Float32Array {
    return this.obsNormalizer ? this.obsNormalizer.normalize(raw) : raw.slice();
  }

  /** Fill `buffer` (reset first) with numSteps steps of every copy, then its last values. */
  collect(buffer: RolloutBuffer, rng: Rng): RolloutStats {
    const N = this.env.numEnvs;
    if (buffer.numEnvs !== N || buffer.obsDim !== this.obsDim) {
      throw new Error(`RolloutCollector.collect: buffer is [${buffer.numSteps} x ${buffer.numEnvs}] of ${buffer.obsDim}-dim observations, env has ${N} copies of ${this.obsDim}`);
    }
    buffer.reset();
    const space = this.policy.actionSpace;
    const clipped = space.type === 'box' ? new Float32Array(N * space.dim) : null;
    const done = new Uint8Array(N);
    const d = this.obsDim;
    for (let t = 0; t < buffer.numSteps; t++) {
      const obs = this.policyObs(this.rawObs);
      const { actions, logProbs, values } = this.policy.act(obs, N, rng);
      const envActions = space.type === 'box' ? clipActions(actions as Float32Array, space, clipped!) : actions;
      const res = this.env.step(envActions);
      for (let i = 0; i < N; i++) done[i] = res.terminated[i]! | res.truncated[i]!;
      const rewards = this.rewardNormalizer ? this.rewardNormalizer.normalize(res.rewards, done) : res.rewards;
      this.obsNormalizer?.update(res.observations, N);
      buffer.add({ obs, actions, logProbs, values, rewards, terminated: res.terminated, truncated: res.truncated });
      // Bootstrap copies cut by the time limit (not those that also terminated) from V(final obs).
      const cut: number[] = [];
      for (let i = 0; i < N; i++) if (res.truncated[i] && !res.terminated[i]) cut.push(i);
      if (cut.length > 0) {
        const finals = new Float32Array(cut.length * d);
        cut.forEach((i, j) => finals.set(res.finalObservations.subarray(i * d, i * d + d), j * d));
        const v = this.policy.predictValues(this.policyObs(finals), cut.length);
        cut.forEach((i, j) => buffer.setTruncationValue(t, i, v[j]!));
      }
      this.rawObs.set(res.observations);
    }
    buffer.lastValues.set(this.policy.predictValues(this.policyObs(this.rawObs), N));
    return { episodes: this.env.completedEpisodes(), envSteps: buffer.numSteps * N };
  }
}
