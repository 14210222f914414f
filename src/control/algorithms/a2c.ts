/**
 * A2C — synchronous advantage actor-critic (Mnih et al., "Asynchronous Methods for Deep
 * Reinforcement Learning", 2016, the synchronous form of OpenAI Baselines / Stable-Baselines3).
 * One gradient step per rollout of numEnvs x numSteps (n-step) transitions:
 *
 *   A_t = GAE(gamma, lambda)   (lambda = 1: the n-step return minus V, the paper's estimator)
 *   L   = -mean_t A_t log pi(a_t|s_t) + vfCoef mean_t (V(s_t) - R_t)^2 - entCoef mean_t H(pi(.|s_t))
 *
 * with global-norm gradient clipping and RMSprop (alpha 0.99, eps 1e-5, as SB3's default) or
 * Adam. Advantages are not whitened by default (SB3's default for A2C).
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { defineConfig } from '../../core/config.ts';
import { AdamW } from '../../engine/tfjs/optim.ts';
import { approxKlOf, disposeBatch, logProbOf, mse, uploadBatch, type ControlAlgorithm, type UpdateResult } from '../algorithm.ts';
import { minibatchAdvantages, type RolloutBuffer } from '../buffer.ts';
import { fields } from '../config.ts';
import { gradientStep, RmsProp, type Optimizer } from '../optimize.ts';
import type { ActorCritic } from '../policy.ts';
import { makeSchedule, scheduleStart } from '../schedule.ts';

export const A2cConfig = defineConfig(
  z
    .object({
      numEnvs: fields.numEnvs(8),
      numSteps: fields.numSteps(5),
      gamma: fields.gamma(0.99),
      gaeLambda: fields.gaeLambda(1),
      learningRate: fields.learningRate(7e-4),
      entCoef: fields.entCoef(0),
      vfCoef: fields.vfCoef(0.5),
      maxGradNorm: fields.maxGradNorm(0.5),
      normalizeAdvantage: fields.normalizeAdvantage(false),
      optimizer: z.enum(['rmsprop', 'adam']).default('rmsprop').describe('RMSprop (SB3 default for A2C) or Adam'),
      rmsPropAlpha: z.number().gte(0).lt(1).default(0.99).describe('RMSprop smoothing constant; typical 0.9-0.99'),
      rmsPropEpsilon: z.number().gt(0).lte(1).default(1e-5).describe('RMSprop epsilon (outside the square root, PyTorch form)'),
      adamEpsilon: fields.adamEpsilon(1e-5),
      normalizeObs: fields.normalizeObs(false),
      normalizeReward: fields.normalizeReward(false),
      policy: fields.policy(),
    }),
);
export type A2cConfig = z.output<typeof A2cConfig.schema>;

export function createA2c(policy: ActorCritic, config: A2cConfig): ControlAlgorithm {
  const lr0 = scheduleStart(config.learningRate);
  const optimizer: Optimizer =
    config.optimizer === 'rmsprop'
      ? new RmsProp(policy.variables, { learningRate: lr0, alpha: config.rmsPropAlpha, epsilon: config.rmsPropEpsilon })
      : new AdamW(policy.variables, { learningRate: lr0, epsilon: config.adamEpsilon, weightDecay: 0 });
  const lrAt = makeSchedule(config.learningRate);
  const entAt = makeSchedule(config.entCoef);
  return {
    name: 'a2c',
    advantages: { kind: 'gae', gamma: config.gamma, lambda: config.gaeLambda },

    update(buffer: RolloutBuffer, progressRemaining: number): UpdateResult {
      const lr = lrAt(progressRemaining);
      const entCoef = entAt(progressRemaining);
      const mb = buffer.all();
      const b = uploadBatch(policy, mb, minibatchAdvantages(mb, config.normalizeAdvantage));
      try {
        const r = gradientStep(
          optimizer,
          policy.variables,
          () => {
            const { dist, values } = policy.forward(b.obs);
            const logp = logProbOf(dist, b.actions); // [B]
            const policyLoss = tf.neg(tf.mean(tf.mul(b.advantages, logp)));
            const vLoss = mse(values!, b.returns);
            const entropy = tf.mean(dist.entropy());
            const loss = tf.sub(tf.add(policyLoss, tf.mul(config.vfCoef, vLoss)), tf.mul(entCoef, entropy)) as tf.Scalar;
            return { loss, stats: tf.stack([policyLoss, vLoss, entropy]) as tf.Tensor1D };
          },
          config.maxGradNorm,
          lr,
        );
        return {
          policyLoss: r.stats[0]!,
          valueLoss: r.stats[1]!,
          entropy: r.stats[2]!,
          approxKl: approxKlOf(policy, b),
          gradNorm: r.gradNorm,
          learningRate: lr,
          extra: { entCoef },
        };
      } finally {
        disposeBatch(b);
      }
    },

    dispose(): void {
      optimizer.dispose();
    },
  };
}
