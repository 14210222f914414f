/**
 * REINFORCE — Monte-Carlo policy gradient with reward-to-go (Williams, "Simple statistical
 * gradient-following algorithms for connectionist reinforcement learning", 1992; Sutton &
 * Barto, 2nd ed., section 13.3-13.4), optionally with a learned state-value baseline:
 *
 *   G_t = sum_{k >= t} gamma^(k - t) r_k        (to the end of the episode)
 *   A_t = G_t - V(s_t)  with a baseline,  G_t  without
 *   L   = -mean_t A_t log pi(a_t|s_t) - entCoef mean_t H(pi(.|s_t)) [+ vfCoef mean_t (V(s_t) - G_t)^2]
 *
 * one Adam step per rollout. Deliberate simplifications: episodes are collected by the
 * shared rollout buffer (numEnvs copies x numSteps), so each copy's last, unfinished
 * episode is left out of the update (no critic bootstrap, see buffer.ts); A_t is whitened
 * over the batch by default (a constant shift and scale of the returns, the usual variance
 * reduction); the gradient uses gamma^0 at every step (reward-to-go form), as Spinning Up.
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { defineConfig } from '../../core/config.ts';
import { AdamW } from '../../engine/tfjs/optim.ts';
import { approxKlOf, disposeBatch, logProbOf, mse, uploadBatch, type ControlAlgorithm, type UpdateResult } from '../algorithm.ts';
import { minibatchAdvantages, type RolloutBuffer } from '../buffer.ts';
import { fields } from '../config.ts';
import { gradientStep } from '../optimize.ts';
import type { ActorCritic } from '../policy.ts';
import { makeSchedule, scheduleStart } from '../schedule.ts';

export const ReinforceConfig = defineConfig(
  z
    .object({
      numEnvs: fields.numEnvs(8),
      numSteps: fields.numSteps(256),
      gamma: fields.gamma(0.99),
      learningRate: fields.learningRate(1e-3),
      baseline: z.boolean().default(true).describe('subtract a learned V(s) from the returns (REINFORCE with baseline)'),
      vfCoef: fields.vfCoef(0.5),
      entCoef: fields.entCoef(0),
      maxGradNorm: fields.maxGradNorm(null),
      normalizeAdvantage: fields.normalizeAdvantage(true),
      adamEpsilon: fields.adamEpsilon(1e-5),
      normalizeObs: fields.normalizeObs(false),
      normalizeReward: fields.normalizeReward(false),
      policy: fields.policy(),
    }),
);
export type ReinforceConfig = z.output<typeof ReinforceConfig.schema>;

export function createReinforce(policy: ActorCritic, config: ReinforceConfig): ControlAlgorithm {
  // Without a baseline only the actor is trained (the critic would have no loss).
  const variables = config.baseline ? policy.variables : [policy.actorVariable];
  const optimizer = new AdamW(variables, { learningRate: scheduleStart(config.learningRate), epsilon: config.adamEpsilon, weightDecay: 0 });
  const lrAt = makeSchedule(config.learningRate);
  const entAt = makeSchedule(config.entCoef);
  return {
    name: 'reinforce',
    advantages: { kind: 'monte-carlo', gamma: config.gamma, baseline: config.baseline },

    update(buffer: RolloutBuffer, progressRemaining: number): UpdateResult {
      const lr = lrAt(progressRemaining);
      const entCoef = entAt(progressRemaining);
      const mb = buffer.all();
      if (mb.size === 0) {
        // No episode ended inside the rollout: nothing to learn from.
        return { policyLoss: NaN, valueLoss: NaN, entropy: NaN, approxKl: 0, learningRate: lr, extra: { entCoef, samples: 0 } };
      }
      const b = uploadBatch(policy, mb, minibatchAdvantages(mb, config.normalizeAdvantage));
      try {
        const r = gradientStep(
          optimizer,
          variables,
          () => {
            const { dist, values } = policy.forward(b.obs, { critic: config.baseline });
            const logp = logProbOf(dist, b.actions); // [B]
            const policyLoss = tf.neg(tf.mean(tf.mul(b.advantages, logp)));
            const entropy = tf.mean(dist.entropy());
            const vLoss = values ? mse(values, b.returns) : tf.scalar(NaN);
            let loss = tf.sub(policyLoss, tf.mul(entCoef, entropy));
            if (values) loss = tf.add(loss, tf.mul(config.vfCoef, vLoss));
            return { loss: loss as tf.Scalar, stats: tf.stack([policyLoss, vLoss, entropy]) as tf.Tensor1D };
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
          extra: { entCoef, samples: mb.size },
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
