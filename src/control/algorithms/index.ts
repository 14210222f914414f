/** The five control algorithms by name: their config definitions and constructors. */
import type { z } from 'zod';
import type { AlgoName, ControlAlgorithm } from '../algorithm.ts';
import type { ActorCritic } from '../policy.ts';
import { A2cConfig, createA2c } from './a2c.ts';
import { createNpg, NpgConfig } from './npg.ts';
import { createPpo, PpoConfig } from './ppo.ts';
import { createReinforce, ReinforceConfig } from './reinforce.ts';
import { createTrpo, TrpoConfig } from './trpo.ts';

export const ALGORITHM_CONFIGS = {
  reinforce: ReinforceConfig,
  a2c: A2cConfig,
  npg: NpgConfig,
  trpo: TrpoConfig,
  ppo: PpoConfig,
} as const;

/** The validated config of algorithm A. */
export type ControlConfigOf<A extends AlgoName> = z.output<(typeof ALGORITHM_CONFIGS)[A]['schema']>;
export type AnyControlConfig = ControlConfigOf<AlgoName>;

/** Builds algorithm `algo` for `policy` from its validated config. */
export function createAlgorithm<A extends AlgoName>(algo: A, policy: ActorCritic, config: ControlConfigOf<A>): ControlAlgorithm {
  switch (algo) {
    case 'reinforce':
      return createReinforce(policy, config as ControlConfigOf<'reinforce'>);
    case 'a2c':
      return createA2c(policy, config as ControlConfigOf<'a2c'>);
    case 'npg':
      return createNpg(policy, config as ControlConfigOf<'npg'>);
    case 'trpo':
      return createTrpo(policy, config as ControlConfigOf<'trpo'>);
    case 'ppo':
      return createPpo(policy, config as ControlConfigOf<'ppo'>);
    default:
      throw new Error(`createAlgorithm: unknown algorithm ${JSON.stringify(algo)}`);
  }
}
