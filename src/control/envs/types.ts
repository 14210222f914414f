/**
 * Public types of the classic-control environments: the single environment (`Env`), the
 * vectorised one (`VecEnv`) and their spaces. The physics of each environment lives in its
 * own kernel file (`cartpole.ts`, `acrobot.ts`, ...); `env.ts` and `vec-env.ts` wrap a
 * kernel with the episode logic (time limit, errors, auto-reset).
 */

/** The environments, named as Gymnasium registers them. */
export type EnvId = 'CartPole-v1' | 'Acrobot-v1' | 'MountainCar-v0' | 'MountainCarContinuous-v0' | 'Pendulum-v1';

/** A float32 box, as Gymnasium's `Box(low, high, dtype=np.float32)`. */
export interface BoxSpace {
  readonly shape: number[];
  readonly low: Float32Array;
  readonly high: Float32Array;
}

export type ObservationSpace = BoxSpace;

/** `{ type: 'discrete', n }` is Gymnasium's `Discrete(n)`: actions 0..n-1. */
export type ActionSpace = { readonly type: 'discrete'; readonly n: number } | ({ readonly type: 'box' } & BoxSpace);

export interface StepResult {
  /** The observation after the step (a fresh array the caller may keep). */
  observation: Float32Array;
  reward: number;
  /** The episode reached a terminal state of the MDP (no bootstrapping past it). */
  terminated: boolean;
  /** The episode hit the time limit (`maxEpisodeSteps`); the state is not terminal. */
  truncated: boolean;
}

export interface Env {
  readonly id: EnvId;
  readonly observationSpace: ObservationSpace;
  readonly actionSpace: ActionSpace;
  /** Gymnasium's `reward_threshold` (the return that counts as solved), or null where it has none. */
  readonly rewardThreshold: number | null;
  /** Gymnasium's `max_episode_steps`: the step on which `truncated` becomes true. */
  readonly maxEpisodeSteps: number;
  /**
   * Start an episode and return its first observation. With a seed the generator is
   * re-seeded (`new Rng(seed)`); without one the stream continues (a fresh env starts
   * from seed 0, so runs stay deterministic).
   */
  reset(seed?: number): Float32Array;
  /**
   * Advance one step. A discrete action is an integer in [0, n); a continuous action is a
   * number or a length-1 array, clipped where Gymnasium clips it.
   */
  step(action: number | ArrayLike<number>): StepResult;
  /** The internal physics state (see each environment's header for its layout). */
  getState(): number[];
  /**
   * Replace the internal physics state, e.g. to replay a trajectory. The step counter and
   * the episode status are left as they are; the observation follows from the next step.
   */
  setState(state: number[]): void;
}

export interface VecStepResult {
  /** [numEnvs * obsDim]; a finished copy already shows its next episode's first observation. */
  observations: Float32Array;
  /** [numEnvs] */
  rewards: Float32Array;
  /** [numEnvs] 1 where the copy's episode reached a terminal state this step. */
  terminated: Uint8Array;
  /** [numEnvs] 1 where the copy's episode hit the time limit this step. */
  truncated: Uint8Array;
  /**
   * [numEnvs * obsDim] the last observation of each episode that ended this step; valid
   * only where `terminated[i] || truncated[i]` (other rows hold stale values). Use it to
   * bootstrap the value of a truncated episode.
   */
  finalObservations: Float32Array;
}

export interface EpisodeStats {
  /** Sum of the episode's rewards (in float64). */
  return: number;
  /** Number of steps in the episode. */
  length: number;
}

export interface VecEnv {
  readonly id: EnvId;
  readonly numEnvs: number;
  /** The space of one copy. */
  readonly observationSpace: ObservationSpace;
  /** The space of one copy. */
  readonly actionSpace: ActionSpace;
  readonly rewardThreshold: number | null;
  readonly maxEpisodeSteps: number;
  /**
   * Reset every copy (continuing each copy's random stream) and return the observations
   * [numEnvs * obsDim]. The returned array is a view that the next step overwrites.
   */
  reset(): Float32Array;
  /**
   * Step every copy with `actions` ([numEnvs] for discrete, [numEnvs * actionDim] for box
   * spaces); finished copies are reset in the same call. Every array of the result is a
   * view into a buffer that the next `step` or `reset` overwrites: copy what you keep.
   */
  step(actions: Int32Array | Float32Array | Float64Array): VecStepResult;
  /** Episodes finished since the last call, in the order they ended; the list is emptied. */
  completedEpisodes(): EpisodeStats[];
  /** Physics state of copy `index` (same layout as `Env.getState`). */
  getState(index: number): number[];
  /** Replace the physics state of copy `index`; its step counter is left as it is. */
  setState(index: number, state: number[]): void;
}
