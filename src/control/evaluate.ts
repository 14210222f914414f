/**
 * Evaluation of a trained control policy: `episodes` full episodes with deterministic
 * actions (the distribution's mode: arg-max for discrete actions, the mean clipped to the
 * box for continuous ones), on a separately seeded vectorised environment.
 *
 * Episodes are split evenly over the copies and each copy runs its quota to the end, so
 * short episodes are not over-represented (taking the first `episodes` to finish would be).
 */
import { Rng } from '../core/rng.ts';
import { makeVecEnv } from './envs/index.ts';
import type { EnvId } from './envs/types.ts';
import type { ObsNormalizer } from './normalize.ts';
import { clipActions, type ActorCritic } from './policy.ts';

export interface EvaluateOptions {
  /** Number of episodes (default 100). */
  episodes?: number;
  /** Seed of the evaluation environments (copy i gets seed + i). Default 0. */
  seed?: number;
  /** Observation normalisation used in training (its statistics are not updated). */
  obsNormalizer?: ObsNormalizer | null;
  /** Deterministic actions (default true); false samples from the policy with `rng`. */
  deterministic?: boolean;
  /** Random draws for stochastic evaluation. */
  rng?: Rng;
  /** Environment copies stepped together (default min(episodes, 10)). */
  numEnvs?: number;
}

export interface EvalResult {
  episodes: number;
  meanReturn: number;
  /** Population standard deviation of the episode returns. */
  stdReturn: number;
  minReturn: number;
  maxReturn: number;
  meanLength: number;
  deterministic: boolean;
  returns: number[];
  lengths: number[];
}

export function evaluatePolicy(policy: ActorCritic, envId: EnvId, options: EvaluateOptions = {}): EvalResult {
  const episodes = options.episodes ?? 100;
  if (!Number.isInteger(episodes) || episodes < 1) throw new Error(`evaluatePolicy: episodes must be a positive integer, got ${episodes}`);
  const copies = options.numEnvs ?? Math.min(episodes, 10);
  if (!Number.isInteger(copies) || copies < 1 || copies > episodes) {
    throw new Error(`evaluatePolicy: numEnvs must be an integer in [1, episodes = ${episodes}], got ${copies}`);
  }
  const deterministic = options.deterministic ?? true;
  const rng = options.rng ?? new Rng(options.seed ?? 0);
  const env = makeVecEnv(envId, copies, options.seed ?? 0);
  const obsDim = env.observationSpace.shape[0]!;
  if (obsDim !== policy.obsDim) throw new Error(`evaluatePolicy: the policy takes ${policy.obsDim}-dim observations but ${envId} has ${obsDim}`);
  const quota = Array.from({ length: copies }, (_, i) => Math.floor(episodes / copies) + (i < episodes % copies ? 1 : 0));
  const done = new Array<number>(copies).fill(0);
  const running = new Float64Array(copies);
  const lengths = new Int32Array(copies);
  const returns: number[] = [];
  const epLengths: number[] = [];
  const normalizer = options.obsNormalizer ?? null;
  const wasTraining = normalizer?.training ?? false;
  if (normalizer) normalizer.training = false;
  const space = policy.actionSpace;
  const clipped = space.type === 'box' ? new Float32Array(copies * space.dim) : null;
  try {
    let raw = env.reset();
    while (returns.length < episodes) {
      const obs = normalizer ? normalizer.normalize(raw) : raw.slice();
      const { actions } = policy.act(obs, copies, rng, deterministic);
      const res = env.step(space.type === 'box' ? clipActions(actions as Float32Array, space, clipped!) : actions);
      for (let i = 0; i < copies; i++) {
        running[i] = running[i]! + res.rewards[i]!;
        lengths[i] = lengths[i]! + 1;
        if (res.terminated[i] || res.truncated[i]) {
          if (done[i]! < quota[i]!) {
            returns.push(running[i]!);
            epLengths.push(lengths[i]!);
            done[i] = done[i]! + 1;
          }
          running[i] = 0;
          lengths[i] = 0;
        }
      }
      raw = res.observations;
    }
  } finally {
    if (normalizer) normalizer.training = wasTraining;
  }
  const n = returns.length;
  const mean = returns.reduce((a, b) => a + b, 0) / n;
  const std = Math.sqrt(returns.reduce((a, b) => a + (b - mean) ** 2, 0) / n);
  return {
    episodes: n,
    meanReturn: mean,
    stdReturn: std,
    minReturn: Math.min(...returns),
    maxReturn: Math.max(...returns),
    meanLength: epLengths.reduce((a, b) => a + b, 0) / n,
    deterministic,
    returns,
    lengths: epLengths,
  };
}
