/**
 * n copies of one environment stepped together, Stable-Baselines3 style: a copy whose
 * episode ends (terminated or truncated) is reset within the same `step`, its returned
 * observation is already the new episode's first one, and the episode's last observation
 * goes to `finalObservations` (so a truncated episode can be bootstrapped).
 *
 * The physics runs in the kernel's struct-of-arrays loop; this file adds one bookkeeping
 * pass (step counters, time limit, episode returns, auto-reset). Nothing is allocated per
 * step: every array in the result is a view into a buffer owned by the VecEnv.
 *
 * Copy i draws its initial states from `new Rng(seed + i)`, so copy i follows the same
 * episodes as a single env reset with `reset(seed + i)` and then `reset()` after each
 * episode (Gymnasium's vector envs seed their copies the same way).
 */
import { Rng } from '../../core/rng.ts';
import { checkSeed, checkState, discreteActionProblem } from './env.ts';
import type { EnvKernel, EnvSpec } from './kernel.ts';
import type { ActionSpace, EnvId, EpisodeStats, ObservationSpace, VecEnv, VecStepResult } from './types.ts';

class VectorEnv implements VecEnv {
  readonly id: EnvId;
  readonly numEnvs: number;
  readonly observationSpace: ObservationSpace;
  readonly actionSpace: ActionSpace;
  readonly rewardThreshold: number | null;
  readonly maxEpisodeSteps: number;

  private readonly kernel: EnvKernel;
  private readonly rngs: Rng[];
  private readonly obsDim: number;
  private readonly observations: Float32Array; // [n * obsDim]
  private readonly finalObservations: Float32Array; // [n * obsDim]
  private readonly rewards64: Float64Array; // [n] kernel output
  private readonly rewards: Float32Array; // [n]
  private readonly terminated: Uint8Array; // [n]
  private readonly truncated: Uint8Array; // [n]
  private readonly episodeSteps: Int32Array; // [n]
  private readonly episodeReturns: Float64Array; // [n]
  private readonly result: VecStepResult;
  /** Finished episodes as (return, length) pairs; grows by doubling, drained by completedEpisodes(). */
  private done = new Float64Array(256);
  private doneCount = 0;
  private started = false;

  constructor(
    private readonly spec: EnvSpec,
    n: number,
    seed: number,
  ) {
    this.id = spec.id;
    this.numEnvs = n;
    this.observationSpace = spec.observationSpace();
    this.actionSpace = spec.actionSpace();
    this.rewardThreshold = spec.rewardThreshold;
    this.maxEpisodeSteps = spec.maxEpisodeSteps;
    this.kernel = spec.createKernel(n);
    this.rngs = Array.from({ length: n }, (_, i) => new Rng(seed + i));
    this.obsDim = spec.obsDim;
    this.observations = new Float32Array(n * spec.obsDim);
    this.finalObservations = new Float32Array(n * spec.obsDim);
    this.rewards64 = new Float64Array(n);
    this.rewards = new Float32Array(n);
    this.terminated = new Uint8Array(n);
    this.truncated = new Uint8Array(n);
    this.episodeSteps = new Int32Array(n);
    this.episodeReturns = new Float64Array(n);
    this.result = {
      observations: this.observations,
      rewards: this.rewards,
      terminated: this.terminated,
      truncated: this.truncated,
      finalObservations: this.finalObservations,
    };
  }

  reset(): Float32Array {
    const d = this.obsDim;
    for (let i = 0; i < this.numEnvs; i++) {
      this.kernel.resetOne(i, this.rngs[i]!);
      this.kernel.observeOne(i, this.observations, i * d);
    }
    this.episodeSteps.fill(0);
    this.episodeReturns.fill(0);
    this.rewards.fill(0);
    this.terminated.fill(0);
    this.truncated.fill(0);
    this.started = true;
    return this.observations;
  }

  step(actions: Int32Array | Float32Array | Float64Array): VecStepResult {
    if (!this.started) throw new Error(`${this.id} (vectorised): step() called before reset()`);
    this.checkActions(actions);
    const n = this.numEnvs;
    const d = this.obsDim;
    const kernel = this.kernel;
    const obs = this.observations;
    const finalObs = this.finalObservations;
    const rewards64 = this.rewards64;
    const rewards = this.rewards;
    const terminated = this.terminated;
    const truncated = this.truncated;
    const steps = this.episodeSteps;
    const returns = this.episodeReturns;
    const maxSteps = this.maxEpisodeSteps;
    kernel.stepBatch(actions, obs, rewards64, terminated);
    for (let i = 0; i < n; i++) {
      const r = rewards64[i]!;
      rewards[i] = r;
      const ret = returns[i]! + r;
      const len = steps[i]! + 1;
      const trunc = len >= maxSteps ? 1 : 0;
      truncated[i] = trunc;
      if ((terminated[i]! | trunc) === 0) {
        returns[i] = ret;
        steps[i] = len;
        continue;
      }
      const o = i * d;
      for (let k = o; k < o + d; k++) finalObs[k] = obs[k]!;
      this.recordEpisode(ret, len);
      returns[i] = 0;
      steps[i] = 0;
      kernel.resetOne(i, this.rngs[i]!);
      kernel.observeOne(i, obs, o);
    }
    return this.result;
  }

  completedEpisodes(): EpisodeStats[] {
    const out: EpisodeStats[] = [];
    for (let k = 0; k < this.doneCount; k++) out.push({ return: this.done[2 * k]!, length: this.done[2 * k + 1]! });
    this.doneCount = 0;
    return out;
  }

  getState(index: number): number[] {
    this.checkIndex(index);
    return this.kernel.getState(index);
  }

  setState(index: number, state: number[]): void {
    this.checkIndex(index);
    checkState(this.spec, `${this.id} (vectorised) copy ${index}`, state);
    this.kernel.setState(index, state);
  }

  private recordEpisode(ret: number, len: number): void {
    if (2 * this.doneCount + 2 > this.done.length) {
      const grown = new Float64Array(this.done.length * 2);
      grown.set(this.done);
      this.done = grown;
    }
    this.done[2 * this.doneCount] = ret;
    this.done[2 * this.doneCount + 1] = len;
    this.doneCount++;
  }

  private checkIndex(index: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.numEnvs) {
      throw new Error(`${this.id} (vectorised): copy index must be an integer in [0, ${this.numEnvs - 1}], got ${index}`);
    }
  }

  private checkActions(actions: Int32Array | Float32Array | Float64Array): void {
    const spec = this.spec;
    if (!(actions instanceof Int32Array || actions instanceof Float32Array || actions instanceof Float64Array)) {
      throw new Error(`${this.id} (vectorised): actions must be an Int32Array, Float32Array or Float64Array`);
    }
    const perCopy = spec.numActions > 0 ? 1 : spec.actionDim;
    const expected = this.numEnvs * perCopy;
    if (actions.length !== expected) {
      throw new Error(
        `${this.id} (vectorised): expected ${expected} actions (${this.numEnvs} copies x ${perCopy}), got ${actions.length}`,
      );
    }
    if (spec.numActions > 0) {
      const m = spec.numActions;
      if (actions instanceof Int32Array) {
        // Integers already: only the range can be wrong.
        for (let i = 0; i < expected; i++) {
          const a = actions[i]!;
          if (a < 0 || a >= m) this.badDiscrete(i, a);
        }
      } else {
        for (let i = 0; i < expected; i++) {
          const a = actions[i]!;
          if (!(a >= 0 && a < m && Math.floor(a) === a)) this.badDiscrete(i, a);
        }
      }
    } else {
      for (let i = 0; i < expected; i++) {
        if (Number.isNaN(actions[i]!)) {
          throw new Error(`${this.id} (vectorised): action ${i} (copy ${Math.floor(i / perCopy)}) is NaN`);
        }
      }
    }
  }

  private badDiscrete(i: number, a: number): never {
    const problem = discreteActionProblem(this.spec.numActions, a) ?? 'is invalid';
    throw new Error(`${this.id} (vectorised): discrete action for copy ${i} ${problem}`);
  }
}

export function createVecEnv(spec: EnvSpec, n: number, seed: number): VecEnv {
  if (!Number.isInteger(n) || n < 1) throw new Error(`makeVecEnv(${spec.id}): n must be a positive integer, got ${n}`);
  checkSeed(`makeVecEnv(${spec.id})`, seed);
  if (!Number.isSafeInteger(seed + n)) throw new Error(`makeVecEnv(${spec.id}): seed + n must be a safe integer`);
  return new VectorEnv(spec, n, seed);
}
