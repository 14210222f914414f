/**
 * The contract between an environment's physics (a "kernel") and the episode logic in
 * `env.ts` / `vec-env.ts`.
 *
 * A kernel holds the physics state of `n` copies as struct-of-arrays (one Float64Array per
 * state component) and steps all of them in one loop. It knows nothing about time limits,
 * seeds or errors: actions reach it already validated. Keeping the loop inside each
 * environment's own file keeps every call site in it monomorphic, so V8 can inline it.
 */
import type { Rng } from '../../core/rng.ts';
import type { ActionSpace, EnvId, ObservationSpace } from './types.ts';

export type ActionArray = Int32Array | Float32Array | Float64Array;

export interface EnvKernel {
  readonly n: number;
  /**
   * Step all n copies: read `actions` ([n * actionDim]), write the new observations
   * ([n * obsDim]), rewards ([n], float64 so the single env can report them exactly) and
   * terminated flags ([n]).
   */
  stepBatch(actions: ActionArray, obs: Float32Array, rewards: Float64Array, terminated: Uint8Array): void;
  /** Draw copy i's initial state from Gymnasium's initial-state distribution. */
  resetOne(i: number, rng: Rng): void;
  /** Write copy i's observation at obs[offset .. offset + obsDim). */
  observeOne(i: number, obs: Float32Array, offset: number): void;
  getState(i: number): number[];
  /** `state` has already been checked for length and finiteness. */
  setState(i: number, state: readonly number[]): void;
}

export interface EnvSpec {
  readonly id: EnvId;
  readonly obsDim: number;
  /** Names of the physics state components, in `getState` order (used in error messages). */
  readonly stateNames: readonly string[];
  /** Number of discrete actions, or 0 for a box action space. */
  readonly numActions: number;
  /** Length of a box action (0 for discrete). */
  readonly actionDim: number;
  readonly rewardThreshold: number | null;
  readonly maxEpisodeSteps: number;
  observationSpace(): ObservationSpace;
  actionSpace(): ActionSpace;
  createKernel(n: number): EnvKernel;
}

/** A float32 box space; `low`/`high` are rounded to float32 as numpy does for `Box(dtype=float32)`. */
export function box(low: number[], high: number[]): { shape: number[]; low: Float32Array; high: Float32Array } {
  return { shape: [low.length], low: Float32Array.from(low), high: Float32Array.from(high) };
}
