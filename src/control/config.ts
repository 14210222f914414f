/**
 * Config fields shared by the control algorithms. Each algorithm declares its own config
 * (in its file) from these builders, with its own defaults, so that every field is
 * documented once with its typical range. Validation goes through src/core/config.ts:
 * unknown keys, wrong types and out-of-range values are reported together, naming the field.
 */
import { z } from 'zod';
import { DEFAULT_ARCHITECTURE } from './policy.ts';
import { scheduleSchema, type ScheduleSpec } from './schedule.ts';

export const policyFields = z
  .object({
    hiddenSizes: z
      .array(z.number().int().min(1).max(4096))
      .min(1)
      .max(8)
      .default(DEFAULT_ARCHITECTURE.hiddenSizes)
      .describe('hidden layer widths of the actor and critic MLPs (tanh); typical [64, 64]'),
    sharedNetwork: z.boolean().default(false).describe('one trunk shared by actor and critic (NPG/TRPO need false)'),
    orthoInit: z.boolean().default(true).describe('orthogonal init with gains sqrt(2) / 0.01 / 1 (SB3 ortho_init)'),
    logStdInit: z.number().gte(-20).lte(5).default(0).describe('initial log-std of the Gaussian policy (box actions); typical -3..1'),
  });

/** Builders for the common fields, each taking the algorithm's default. */
export const fields = {
  numEnvs: (d: number) => z.number().int().min(1).max(4096).default(d).describe('parallel environment copies (SB3 n_envs); typical 1-32'),
  numSteps: (d: number) =>
    z.number().int().min(1).max(1_000_000).default(d).describe('steps per copy per rollout (SB3 n_steps); the batch is numEnvs x numSteps'),
  gamma: (d: number) => z.number().gte(0).lte(1).default(d).describe('discount factor; typical 0.9-0.9999'),
  gaeLambda: (d: number) => z.number().gte(0).lte(1).default(d).describe('GAE lambda (1 = Monte-Carlo advantage, 0 = one-step TD); typical 0.8-1'),
  learningRate: (d: ScheduleSpec) =>
    scheduleSchema(0, 1, false).default(d).describe('optimizer step size, a number or {type:"linear",start,end}; typical 1e-4..3e-3'),
  entCoef: (d: ScheduleSpec) =>
    scheduleSchema(0, 1).default(d).describe('entropy-bonus coefficient, a number or a linear decay {type:"linear",start,end}; typical 0-0.01'),
  vfCoef: (d: number) => z.number().gte(0).lte(100).default(d).describe('weight of the value loss (mean squared error, as SB3); typical 0.25-1'),
  maxGradNorm: (d: number | null) =>
    z.number().gt(0).nullable().default(d).describe('clip the global gradient norm to this (null: no clipping); typical 0.5'),
  normalizeAdvantage: (d: boolean) => z.boolean().default(d).describe('whiten advantages (per minibatch for PPO)'),
  normalizeObs: (d: boolean) => z.boolean().default(d).describe('running mean/std observation normalisation, clipped to +-10 (SB3 VecNormalize)'),
  normalizeReward: (d: boolean) => z.boolean().default(d).describe('scale rewards by the running std of the discounted return (SB3 VecNormalize)'),
  adamEpsilon: (d: number) => z.number().gt(0).lte(1).default(d).describe('Adam epsilon (SB3 uses 1e-5 for its policies)'),
  policy: () => policyFields.prefault({}).describe('network architecture'),
};

/** The fields every algorithm config has (the training loop reads these). */
export interface CommonControlConfig {
  numEnvs: number;
  numSteps: number;
  gamma: number;
  learningRate: ScheduleSpec;
  entCoef: ScheduleSpec;
  normalizeObs: boolean;
  normalizeReward: boolean;
  policy: z.output<typeof policyFields>;
}
