/**
 * TRPO — trust region policy optimization (Schulman, Levine, Moritz, Jordan & Abbeel, "Trust
 * Region Policy Optimization", 2015), as Stable-Baselines3 (sb3-contrib) and Spinning Up:
 * the NPG step of npg.ts followed by a backtracking line search,
 *
 *   theta <- theta_old + beta^j sqrt(2 delta / (x^T F x)) x,   x = F^{-1} g,
 *
 * for the first j in 0..lineSearchMaxIters-1 at which the exact mean KL(pi_old || pi_theta)
 * over the batch is <= delta (`maxKl`) and the surrogate improves; if none qualifies the
 * policy is left unchanged. The critic is fitted as in NPG.
 */
import { z } from 'zod';
import { defineConfig } from '../../core/config.ts';
import type { ControlAlgorithm } from '../algorithm.ts';
import type { ActorCritic } from '../policy.ts';
import { createNaturalGradientAlgorithm, NpgConfig } from './npg.ts';

export const TrpoConfig = defineConfig(
  NpgConfig.schema
    .extend({
      lineSearchShrink: z.number().gt(0).lt(1).default(0.8).describe('step shrink factor per backtrack (SB3 line_search_shrinking_factor); typical 0.5-0.9'),
      lineSearchMaxIters: z.number().int().min(1).max(100).default(10).describe('step sizes tried before giving up (SB3 line_search_max_iter)'),
    }),
);
export type TrpoConfig = z.output<typeof TrpoConfig.schema>;

export function createTrpo(policy: ActorCritic, config: TrpoConfig): ControlAlgorithm {
  return createNaturalGradientAlgorithm('trpo', policy, config, {
    shrinkFactor: config.lineSearchShrink,
    maxBacktracks: config.lineSearchMaxIters,
  });
}
