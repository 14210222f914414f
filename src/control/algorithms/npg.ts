/**
 * NPG — natural policy gradient (Kakade, "A Natural Policy Gradient", 2001; the
 * trust-region step size of Schulman et al. 2015 / Spinning Up's NPG):
 *
 *   g = grad_theta L(theta_old),  L = mean(pi_theta / pi_old * A) + entCoef mean(H)
 *   x = F^{-1} g  (conjugate gradient on Fisher-vector products, see natural-gradient.ts)
 *   theta <- theta_old + sqrt(2 maxKl / (x^T F x)) x
 *
 * with GAE advantages (whitened over the batch by default) from a critic fitted by Adam
 * regression on the lambda-returns (`criticEpochs` passes of `batchSize` minibatches) after
 * the policy step. The step is always taken (no line search: that is TRPO). The policy
 * gradient uses the whole rollout as one batch. NPG and TRPO share `naturalGradientStep`.
 */
import { z } from 'zod';
import { defineConfig } from '../../core/config.ts';
import { AdamW } from '../../engine/tfjs/optim.ts';
import type { Rng } from '../../core/rng.ts';
import { disposeBatch, fitValueFunction, uploadBatch, type ControlAlgorithm, type UpdateResult } from '../algorithm.ts';
import { minibatchAdvantages, type RolloutBuffer } from '../buffer.ts';
import { fields } from '../config.ts';
import { naturalGradientStep, type NaturalStepOptions } from '../natural-gradient.ts';
import type { ActorCritic } from '../policy.ts';
import { makeSchedule, scheduleStart } from '../schedule.ts';

export const NpgConfig = defineConfig(
  z
    .object({
      numEnvs: fields.numEnvs(2),
      numSteps: fields.numSteps(2048),
      gamma: fields.gamma(0.99),
      gaeLambda: fields.gaeLambda(0.95),
      maxKl: z.number().gt(0).lte(1).default(0.01).describe('KL size of each policy step (delta, SB3 target_kl); typical 0.005-0.05'),
      cgIters: z.number().int().min(1).max(200).default(15).describe('conjugate-gradient iterations (SB3 cg_max_steps); typical 10-20'),
      cgDamping: z.number().gte(0).lte(10).default(0.1).describe('Fisher damping added to the diagonal (SB3 cg_damping); typical 1e-3..0.1'),
      entCoef: fields.entCoef(0),
      normalizeAdvantage: fields.normalizeAdvantage(true),
      learningRate: fields.learningRate(1e-3),
      criticEpochs: z.number().int().min(0).max(1000).default(10).describe('passes of critic regression per rollout (SB3 n_critic_updates); typical 5-20'),
      batchSize: z.number().int().min(1).default(128).describe('minibatch size of the critic regression; typical 64-512'),
      maxGradNorm: fields.maxGradNorm(null),
      adamEpsilon: fields.adamEpsilon(1e-5),
      normalizeObs: fields.normalizeObs(false),
      normalizeReward: fields.normalizeReward(false),
      policy: fields.policy(),
    }),
);
export type NpgConfig = z.output<typeof NpgConfig.schema>;

/** The update shared by NPG and TRPO; `lineSearch` null is NPG. */
export function createNaturalGradientAlgorithm(
  name: 'npg' | 'trpo',
  policy: ActorCritic,
  config: NpgConfig,
  lineSearch: NaturalStepOptions['lineSearch'],
): ControlAlgorithm {
  if (policy.shared) throw new Error(`${name}: needs separate actor and critic networks; set policy.sharedNetwork to false`);
  const criticOptimizer = new AdamW([policy.criticVariable], { learningRate: scheduleStart(config.learningRate), epsilon: config.adamEpsilon, weightDecay: 0 });
  const lrAt = makeSchedule(config.learningRate);
  const entAt = makeSchedule(config.entCoef);
  return {
    name,
    advantages: { kind: 'gae', gamma: config.gamma, lambda: config.gaeLambda },

    update(buffer: RolloutBuffer, progressRemaining: number, rng: Rng): UpdateResult {
      const lr = lrAt(progressRemaining);
      const entCoef = entAt(progressRemaining);
      const mb = buffer.all();
      const b = uploadBatch(policy, mb, minibatchAdvantages(mb, config.normalizeAdvantage));
      let step;
      try {
        step = naturalGradientStep(policy, b, { maxKl: config.maxKl, damping: config.cgDamping, cgIters: config.cgIters, entCoef, lineSearch });
      } finally {
        disposeBatch(b);
      }
      const valueLoss = fitValueFunction(
        policy,
        buffer,
        criticOptimizer,
        { epochs: config.criticEpochs, batchSize: config.batchSize, learningRate: lr, maxGradNorm: config.maxGradNorm },
        rng,
      );
      return {
        policyLoss: -step.surrogateAfter,
        valueLoss,
        entropy: step.entropy,
        approxKl: step.approxKl,
        learningRate: lr,
        extra: {
          kl: step.kl,
          stepSize: step.stepSize,
          stepFraction: step.fraction,
          accepted: step.accepted ? 1 : 0,
          improvement: step.surrogateAfter - step.surrogateBefore,
          cgIterations: step.cgIterations,
          entCoef,
        },
      };
    },

    dispose(): void {
      criticOptimizer.dispose();
    },
  };
}

export function createNpg(policy: ActorCritic, config: NpgConfig): ControlAlgorithm {
  return createNaturalGradientAlgorithm('npg', policy, config, null);
}
