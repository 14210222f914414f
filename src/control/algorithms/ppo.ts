/**
 * PPO — Proximal Policy Optimization, clipped variant (Schulman, Wolski, Dhariwal, Radford
 * & Klimov, "Proximal Policy Optimization Algorithms", 2017), as Stable-Baselines3 and
 * CleanRL implement it. For `nEpochs` passes over the rollout in shuffled minibatches:
 *
 *   r_b   = exp(log pi(a_b|s_b) - log pi_old(a_b|s_b))
 *   L^pi  = -mean_b min(r_b A_b, clip(r_b, 1 - eps, 1 + eps) A_b)        (A whitened per minibatch)
 *   L^V   = mean_b (V(s_b) - R_b)^2,  or with clipRangeVf = c:
 *           mean_b max((V - R)^2, (V_old + clip(V - V_old, -c, c) - R)^2)
 *   L     = L^pi + vfCoef L^V - entCoef mean_b H(pi(.|s_b))
 *
 * followed by a global-norm gradient clip and an Adam step. With `targetKl`, the update
 * stops (before applying the minibatch step) once the minibatch's approx KL exceeds
 * 1.5 x targetKl, as SB3. The learning rate, the clip range and the entropy coefficient are
 * schedules of the remaining progress.
 *
 * Deliberate differences: the value loss is SB3's mean squared error (no 1/2), so SB3 / zoo
 * coefficients carry over; value clipping uses CleanRL's max form (from src/objectives)
 * rather than SB3's clipped-prediction form.
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { defineConfig } from '../../core/config.ts';
import { AdamW } from '../../engine/tfjs/optim.ts';
import type { Rng } from '../../core/rng.ts';
import { clippedSurrogate, valueLoss } from '../../objectives/index.ts';
import { approxKlTensor, disposeBatch, logProbOf, mse, uploadBatch, type ControlAlgorithm, type UpdateResult } from '../algorithm.ts';
import { minibatchAdvantages, type RolloutBuffer } from '../buffer.ts';
import { fields } from '../config.ts';
import { gradientStep } from '../optimize.ts';
import type { ActorCritic } from '../policy.ts';
import { makeSchedule, scheduleSchema, scheduleStart } from '../schedule.ts';

export const PpoConfig = defineConfig(
  z
    .object({
      numEnvs: fields.numEnvs(8),
      numSteps: fields.numSteps(2048),
      batchSize: z.number().int().min(1).default(64).describe('minibatch size (SB3 batch_size); typical 32-512'),
      nEpochs: z.number().int().min(1).max(1000).default(10).describe('passes over each rollout; typical 3-20'),
      gamma: fields.gamma(0.99),
      gaeLambda: fields.gaeLambda(0.95),
      learningRate: fields.learningRate(3e-4),
      clipRange: scheduleSchema(0, 10, false).default(0.2).describe('surrogate clip range epsilon, a number or a linear schedule; typical 0.1-0.3'),
      clipRangeVf: z.number().gt(0).nullable().default(null).describe('value clipping range around the rollout values (null: off); in the return units'),
      entCoef: fields.entCoef(0),
      vfCoef: fields.vfCoef(0.5),
      maxGradNorm: fields.maxGradNorm(0.5),
      targetKl: z.number().gt(0).nullable().default(null).describe('stop the epochs when a minibatch approx KL exceeds 1.5 x this (null: never); typical 0.01-0.05'),
      normalizeAdvantage: fields.normalizeAdvantage(true),
      normalizeObs: fields.normalizeObs(false),
      normalizeReward: fields.normalizeReward(false),
      adamEpsilon: fields.adamEpsilon(1e-5),
      policy: fields.policy(),
    }),
);
export type PpoConfig = z.output<typeof PpoConfig.schema>;

/** Per-minibatch statistics of one update, in order (for tests and diagnostics). */
export interface PpoMinibatchStats {
  epoch: number;
  policyLoss: number;
  valueLoss: number;
  entropy: number;
  approxKl: number;
  clipFrac: number;
}

export interface PpoAlgorithm extends ControlAlgorithm {
  /** The minibatch statistics of the most recent update. */
  lastMinibatches: PpoMinibatchStats[];
}

export function createPpo(policy: ActorCritic, config: PpoConfig): PpoAlgorithm {
  const optimizer = new AdamW(policy.variables, { learningRate: scheduleStart(config.learningRate), epsilon: config.adamEpsilon, weightDecay: 0 });
  const lrAt = makeSchedule(config.learningRate);
  const clipAt = makeSchedule(config.clipRange);
  const entAt = makeSchedule(config.entCoef);
  const algo: PpoAlgorithm = {
    name: 'ppo',
    advantages: { kind: 'gae', gamma: config.gamma, lambda: config.gaeLambda },
    lastMinibatches: [],

    update(buffer: RolloutBuffer, progressRemaining: number, rng: Rng): UpdateResult {
      const lr = lrAt(progressRemaining);
      const eps = clipAt(progressRemaining);
      const entCoef = entAt(progressRemaining);
      const history: PpoMinibatchStats[] = [];
      let gradNorm = NaN;
      let stoppedAtEpoch = -1;
      for (let epoch = 0; epoch < config.nEpochs && stoppedAtEpoch < 0; epoch++) {
        for (const mb of buffer.minibatches(config.batchSize, rng)) {
          const b = uploadBatch(policy, mb, minibatchAdvantages(mb, config.normalizeAdvantage));
          let r;
          try {
            r = gradientStep(
              optimizer,
              policy.variables,
              () => {
                const { dist, values } = policy.forward(b.obs);
                const logp = logProbOf(dist, b.actions); // [B]
                const sur = clippedSurrogate({ logprobs: logp, oldLogprobs: b.oldLogProbs, advantages: b.advantages }, { epsilon: eps });
                const policyLoss = tf.mean(sur.perElement);
                const vLoss =
                  config.clipRangeVf === null
                    ? mse(values!, b.returns)
                    : tf.mul(2, valueLoss(values!, b.returns, { oldValues: b.oldValues, clipRange: config.clipRangeVf })); // MSE units
                const entropy = tf.mean(dist.entropy());
                const loss = tf.sub(tf.add(policyLoss, tf.mul(config.vfCoef, vLoss)), tf.mul(entCoef, entropy)) as tf.Scalar;
                const approxKl = approxKlTensor(tf.sub(logp, b.oldLogProbs));
                const clipFrac = tf.mean(tf.cast(tf.greater(tf.abs(tf.sub(sur.ratio, 1)), eps), 'float32'));
                return { loss, stats: tf.stack([policyLoss, vLoss, entropy, approxKl, clipFrac]) as tf.Tensor1D };
              },
              config.maxGradNorm,
              lr,
              config.targetKl === null ? undefined : (s) => s[3]! <= 1.5 * config.targetKl!,
            );
          } finally {
            disposeBatch(b);
          }
          if (!r.applied) {
            stoppedAtEpoch = epoch;
            break;
          }
          gradNorm = r.gradNorm;
          const s = r.stats;
          history.push({ epoch, policyLoss: s[0]!, valueLoss: s[1]!, entropy: s[2]!, approxKl: s[3]!, clipFrac: s[4]! });
        }
      }
      algo.lastMinibatches = history;
      const mean = (f: (h: PpoMinibatchStats) => number): number => (history.length ? history.reduce((a, h) => a + f(h), 0) / history.length : NaN);
      return {
        policyLoss: mean((h) => h.policyLoss),
        valueLoss: mean((h) => h.valueLoss),
        entropy: mean((h) => h.entropy),
        approxKl: mean((h) => h.approxKl),
        clipFrac: mean((h) => h.clipFrac),
        gradNorm,
        learningRate: lr,
        extra: { clipRange: eps, entCoef, minibatches: history.length, stoppedAtEpoch },
      };
    },

    dispose(): void {
      optimizer.dispose();
    },
  };
  return algo;
}
