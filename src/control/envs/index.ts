/**
 * Gymnasium-exact classic-control environments (pure TypeScript, no tfjs).
 *
 *   const env = makeEnv('CartPole-v1');
 *   let obs = env.reset(42);
 *   const { observation, reward, terminated, truncated } = env.step(1);
 *
 *   const vec = makeVecEnv('CartPole-v1', 512, 42);   // copy i seeded with 42 + i
 *   vec.reset();
 *   const r = vec.step(actions);                       // auto-resets finished copies
 */
import { acrobotSpec } from './acrobot.ts';
import { cartPoleSpec } from './cartpole.ts';
import { createEnv } from './env.ts';
import type { EnvSpec } from './kernel.ts';
import { mountainCarContinuousSpec } from './mountain-car-continuous.ts';
import { mountainCarSpec } from './mountain-car.ts';
import { pendulumSpec } from './pendulum.ts';
import type { Env, EnvId, VecEnv } from './types.ts';
import { createVecEnv } from './vec-env.ts';

export type {
  ActionSpace,
  BoxSpace,
  Env,
  EnvId,
  EpisodeStats,
  ObservationSpace,
  StepResult,
  VecEnv,
  VecStepResult,
} from './types.ts';
export { angleNormalize } from './pendulum.ts';

const SPECS: Record<EnvId, EnvSpec> = {
  'CartPole-v1': cartPoleSpec,
  'Acrobot-v1': acrobotSpec,
  'MountainCar-v0': mountainCarSpec,
  'MountainCarContinuous-v0': mountainCarContinuousSpec,
  'Pendulum-v1': pendulumSpec,
};

/** Every environment id, in a fixed order. */
export const ENV_IDS: readonly EnvId[] = Object.keys(SPECS) as EnvId[];

function specFor(id: string, caller: string): EnvSpec {
  if (!Object.prototype.hasOwnProperty.call(SPECS, id)) {
    throw new Error(`${caller}: unknown environment id ${JSON.stringify(id)}; valid ids: ${ENV_IDS.join(', ')}`);
  }
  return SPECS[id as EnvId];
}

/** A single environment; call `reset(seed?)` before the first `step`. */
export function makeEnv(id: EnvId): Env {
  return createEnv(specFor(id, 'makeEnv'));
}

/** n copies of environment `id`, copy i seeded with `seed + i`; call `reset()` before the first `step`. */
export function makeVecEnv(id: EnvId, n: number, seed: number): VecEnv {
  return createVecEnv(specFor(id, 'makeVecEnv'), n, seed);
}
