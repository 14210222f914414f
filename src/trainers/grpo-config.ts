/**
 * Configuration of the GRPO trainer: one typed object, every field with its default and a
 * why-comment, validated once at the boundary. The defaults are the arithmetic demo: a tiny
 * character-level GPT-2, warm-started by SFT on generated 2-digit addition (cached), then
 * GRPO with an exact-match verifier, evaluated on the held-out split.
 *
 * Field checks (types, ranges, unknown keys) come from the zod schema through
 * `defineConfig`; `checkGrpoConfig` adds the checks that involve several fields. Both throw a
 * `ConfigError` whose lines name the field and the allowed values.
 */
import { z } from 'zod';
import { ConfigError, type ParseOptions, type ResolveOptions, defineConfig } from '../core/config.ts';
import { int, optimizerFields, rlCrossFieldProblems, rolloutFields, runFields } from './rl-config.ts';

export { ArithmeticGenerateSchema } from './rl-config.ts';

export const GrpoConfig = defineConfig(
  z.object({
    ...rolloutFields,
    steps: int().min(1).max(10_000_000).default(50).describe('GRPO steps: sample, score, update'),
    ...optimizerFields,

    beta: z.number().min(0).max(10).default(0.04).describe('KL(policy || reference) coefficient; 0 = no reference model at all (DAPO, Dr. GRPO)'),
    epsilon: z.number().gt(0).max(1).default(0.2).describe('lower clip range: the ratio is clipped below at 1 - epsilon'),
    epsilonHigh: z.number().gt(0).max(10).nullable().default(null).describe('upper clip range (ratio <= 1 + epsilonHigh); null = epsilon; DAPO uses 0.28'),
    numIterations: int().min(1).max(64).default(1).describe('optimisation passes over each batch of samples (mu in the GRPO paper)'),
    miniBatchSize: int().min(0).max(1_000_000).default(0).describe('completions per optimizer update; 0 = the whole batch (one update per pass)'),
    lossType: z.enum(['grpo', 'bnpo', 'dr_grpo', 'dapo']).default('grpo').describe('token aggregation: grpo = per-sequence mean, bnpo/dapo = token mean, dr_grpo = sum / (N x maxCompletionLength)'),
    scaleRewards: z.enum(['group', 'batch', 'none']).default('group').describe('advantage scale: group std (GRPO), batch std, or none (Dr. GRPO)'),
    maskTruncatedCompletions: z.boolean().default(false).describe('leave completions cut at maxCompletionLength out of the loss (DAPO)'),
    entropyCoef: z.number().min(0).max(10).default(0).describe('entropy bonus: the loss subtracts this x the mean token entropy'),
    dynamicSampling: z.boolean().default(false).describe('DAPO: drop groups whose rewards are all equal and refill from the next prompts'),
    maxSamplingRounds: int().min(1).max(64).default(3).describe('with dynamicSampling: most extra sampling rounds per step to fill the batch'),

    ...runFields('runs/grpo-arithmetic'),
  }),
);

export type GrpoConfig = z.output<typeof GrpoConfig.schema>;
export type GrpoRewardEntry = GrpoConfig['rewards'][number];

/** The checks that involve more than one field; returns one problem per line. */
function crossFieldProblems(c: GrpoConfig): string[] {
  const p = rlCrossFieldProblems(c);
  if (c.miniBatchSize > c.promptsPerStep * c.numGenerations) {
    p.push(`"miniBatchSize" must be <= promptsPerStep x numGenerations (${c.promptsPerStep * c.numGenerations}) or 0, got ${c.miniBatchSize}`);
  }
  return p;
}

/** Runs the cross-field checks on a schema-valid config; throws a `ConfigError` naming each bad field. */
export function checkGrpoConfig(config: GrpoConfig, source?: string): GrpoConfig {
  const problems = crossFieldProblems(config);
  if (problems.length) throw new ConfigError(problems, source);
  return config;
}

/** Validates a config object (fills defaults) and runs the cross-field checks. */
export function parseGrpoConfig(input: unknown, options: ParseOptions = {}): GrpoConfig {
  return checkGrpoConfig(GrpoConfig.parse(input, options), options.source);
}

/** Merges defaults < values < file < `--set` < flags, validates, and runs the cross-field checks. */
export function resolveGrpoConfig(options: ResolveOptions = {}): GrpoConfig {
  return checkGrpoConfig(GrpoConfig.resolve(options), options.file);
}
