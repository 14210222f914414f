/**
 * Configuration of the PPO-with-critic trainer for language models: the settings shared with
 * GRPO (model and warm-start, data, rewards, sampling, the policy's optimizer, cadences; see
 * rl-config.ts) plus the critic, the token-level rewards, GAE and the PPO update. Every field
 * has its default and range here, validated once at the boundary; the defaults are the
 * arithmetic demo, on the same warm-started policy, prompts and reward as `rlvr grpo`.
 * The sources of each choice are in docs/ppo.md.
 */
import { z } from 'zod';
import { ConfigError, type ParseOptions, type ResolveOptions, defineConfig } from '../core/config.ts';
import { int, optimizerFields, rlCrossFieldProblems, rolloutFields, runFields } from './rl-config.ts';

const unit = () => z.number().min(0).max(1);

export const PpoConfig = defineConfig(
  z.object({
    ...rolloutFields,
    // PPO's baseline is the critic, not the group: one completion per prompt is allowed.
    numGenerations: int().min(1).max(1024).default(8).describe('completions per prompt; 1 is allowed (the critic is the baseline); the demo matches GRPO\'s 8'),
    steps: int().min(1).max(10_000_000).default(100).describe('PPO steps: sample, score, compute values and advantages, update critic and policy'),
    ...optimizerFields,

    criticLearningRate: z.number().gt(0).max(1).default(3e-4).describe('peak AdamW learning rate of the critic (its own optimizer); verl and ORZ use 5-10x the actor\'s'),
    criticWarmupSteps: int().min(0).default(5).describe('first steps train only the critic (value pretraining, VC-PPO / VAPO); the policy does not move'),
    valueClip: z.number().min(0).max(100).default(0.2).describe('clip the critic\'s values to V_old +- valueClip in the value loss (PPO2); 0 = off; verl/OpenRLHF 0.5, TRL/ORZ 0.2'),
    criticHeadInitStd: z.number().min(0).max(1).nullable().default(null).describe('std of the fresh value head\'s weights; null = 1 / (hidden + 1) (OpenRLHF)'),

    gamma: unit().default(1).describe('discount over completion tokens; 1 (all reference systems) for verifier rewards at the end'),
    lambdaActor: unit().default(0.95).describe('GAE lambda of the policy\'s advantages (VC-PPO: below lambdaCritic)'),
    lambdaCritic: unit().default(1).describe('GAE lambda of the critic\'s return targets (VC-PPO: 1, unbiased Monte-Carlo targets)'),
    lengthAdaptiveAlpha: z.number().gt(0).max(100).nullable().default(null).describe('VAPO: the actor lambda of a completion of l tokens is 1 - 1/(alpha * l), clamped to [0, 1]; null = lambdaActor for all; VAPO uses 0.05'),
    whitenAdvantages: z.boolean().default(true).describe('whiten the actor\'s advantages over the batch\'s completion tokens (mean 0, std 1)'),

    klCoef: z.number().min(0).max(10).default(0.01).describe('KL penalty in the reward: every completion token gets -klCoef x (logp - logp_ref) (k1; OpenRLHF 0.01, TRL 0.05); 0 = off'),
    beta: z.number().min(0).max(10).default(0).describe('KL penalty in the loss: + beta x the masked mean of k3(policy, reference), as GRPO; 0 = off'),
    missingEosPenalty: z.number().min(0).max(100).default(0).describe('subtracted from the score of a completion that reached maxCompletionLength without EOS (TRL missing_eos_penalty)'),

    epsilon: z.number().gt(0).max(1).default(0.2).describe('lower clip range of the surrogate: ratio >= 1 - epsilon'),
    epsilonHigh: z.number().gt(0).max(10).nullable().default(null).describe('upper clip range (ratio <= 1 + epsilonHigh); null = epsilon; DAPO/VAPO clip-higher 0.28'),
    ppoEpochs: int().min(1).max(64).default(1).describe('passes over each step\'s batch, each in a fresh random order'),
    miniBatchSize: int().min(0).max(1_000_000).default(64).describe('completions per update of the critic and of the policy; 0 = the whole batch'),
    lossType: z.enum(['grpo', 'bnpo', 'dr_grpo', 'dapo']).default('bnpo').describe('token aggregation of the policy loss: bnpo/dapo = token mean over the minibatch (verl), grpo = per-sequence mean, dr_grpo = sum / (N x maxCompletionLength)'),
    maskTruncatedCompletions: z.boolean().default(false).describe('leave completions cut at maxCompletionLength out of both losses'),
    entropyCoef: z.number().min(0).max(10).default(0).describe('entropy bonus: the policy loss subtracts this x the mean token entropy'),

    ...runFields('runs/ppo-arithmetic'),
  }),
);

export type PpoConfig = z.output<typeof PpoConfig.schema>;

/** The checks that involve more than one field; returns one problem per line. */
function crossFieldProblems(c: PpoConfig): string[] {
  const p = rlCrossFieldProblems(c);
  if (c.miniBatchSize > c.promptsPerStep * c.numGenerations) {
    p.push(`"miniBatchSize" must be <= promptsPerStep x numGenerations (${c.promptsPerStep * c.numGenerations}) or 0, got ${c.miniBatchSize}`);
  }
  if (c.criticWarmupSteps >= c.steps) p.push(`"criticWarmupSteps" (${c.criticWarmupSteps}) must be less than "steps" (${c.steps}), or the policy never trains`);
  return p;
}

/** Runs the cross-field checks on a schema-valid config; throws a `ConfigError` naming each bad field. */
export function checkPpoConfig(config: PpoConfig, source?: string): PpoConfig {
  const problems = crossFieldProblems(config);
  if (problems.length) throw new ConfigError(problems, source);
  return config;
}

/** Validates a config object (fills defaults) and runs the cross-field checks. */
export function parsePpoConfig(input: unknown, options: ParseOptions = {}): PpoConfig {
  return checkPpoConfig(PpoConfig.parse(input, options), options.source);
}

/** Merges defaults < values < file < `--set` < flags, validates, and runs the cross-field checks. */
export function resolvePpoConfig(options: ResolveOptions = {}): PpoConfig {
  return checkPpoConfig(PpoConfig.resolve(options), options.file);
}
