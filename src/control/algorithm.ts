/**
 * The contract between the training loop (train.ts) and an algorithm's update rule, plus
 * the small tensor helpers the update rules share.
 *
 * One iteration of every algorithm: the loop collects a rollout into the shared buffer and
 * fills its advantages (GAE, or Monte-Carlo reward-to-go for REINFORCE); the algorithm's
 * `update` then changes the policy and returns the iteration's training statistics.
 */
import * as tf from '@tensorflow/tfjs';
import type { Rng } from '../core/rng.ts';
import type { Minibatch, RolloutBuffer } from './buffer.ts';
import type { ActionDistribution } from './distributions.ts';
import { gradientStep, type Optimizer } from './optimize.ts';
import type { ActorCritic } from './policy.ts';

export const ALGORITHMS = ['reinforce', 'a2c', 'npg', 'trpo', 'ppo'] as const;
export type AlgoName = (typeof ALGORITHMS)[number];

export interface UpdateResult {
  /** Mean policy loss over the update's gradient steps (the surrogate for NPG/TRPO, negated). */
  policyLoss: number;
  /** Mean value loss (mean squared error) over the critic's steps; NaN without a critic. */
  valueLoss: number;
  /** Mean entropy of the policy over the batch, before the update. */
  entropy: number;
  /** k3 estimate of KL(old || new): (ratio - 1) - log(ratio), averaged over the batch. */
  approxKl: number;
  /** Fraction of samples with |ratio - 1| > clip range (PPO); undefined elsewhere. */
  clipFrac?: number;
  /** Global gradient norm of the last step before clipping (undefined for NPG/TRPO's policy step). */
  gradNorm?: number;
  /** Learning rate used (the critic's for NPG/TRPO). */
  learningRate: number;
  /** Algorithm-specific values for the console and tests (not logged under METRIC_NAMES). */
  extra?: Record<string, number>;
}

export interface ControlAlgorithm {
  readonly name: AlgoName;
  /** How the loop fills the buffer's advantages before `update`. */
  readonly advantages: { kind: 'gae'; gamma: number; lambda: number } | { kind: 'monte-carlo'; gamma: number; baseline: boolean };
  /** One update from a filled buffer; `progressRemaining` goes 1 -> 0 over training. */
  update(buffer: RolloutBuffer, progressRemaining: number, rng: Rng): UpdateResult;
  /** Frees the optimizer state (not the policy). */
  dispose(): void;
}

/** The tensors of a minibatch, uploaded once. Dispose with `disposeBatch`. */
export interface BatchTensors {
  obs: tf.Tensor2D;
  /** int32 [B] (discrete) or float32 [B, A] (box). */
  actions: tf.Tensor;
  oldLogProbs: tf.Tensor1D;
  oldValues: tf.Tensor1D;
  advantages: tf.Tensor1D;
  returns: tf.Tensor1D;
  size: number;
}

/** Uploads a minibatch; `advantages` replaces the minibatch's own (e.g. whitened ones). */
export function uploadBatch(policy: ActorCritic, mb: Minibatch, advantages: Float32Array = mb.advantages): BatchTensors {
  const B = mb.size;
  const actions =
    mb.actions instanceof Int32Array
      ? tf.tensor1d(mb.actions, 'int32')
      : tf.tensor2d(mb.actions, [B, policy.actionSpace.type === 'box' ? policy.actionSpace.dim : 1]);
  return {
    obs: tf.tensor2d(mb.obs, [B, policy.obsDim]),
    actions,
    oldLogProbs: tf.tensor1d(mb.logProbs),
    oldValues: tf.tensor1d(mb.values),
    advantages: tf.tensor1d(advantages),
    returns: tf.tensor1d(mb.returns),
    size: B,
  };
}

export function disposeBatch(b: BatchTensors): void {
  tf.dispose([b.obs, b.actions, b.oldLogProbs, b.oldValues, b.advantages, b.returns]);
}

/** log pi(a | s) of the batch's actions under `dist` [B]. */
export function logProbOf(dist: ActionDistribution, actions: tf.Tensor): tf.Tensor1D {
  return dist.kind === 'categorical' ? dist.logProb(actions as tf.Tensor1D) : dist.logProb(actions as tf.Tensor2D);
}

/** Mean squared error between values and returns (SB3's value loss). */
export function mse(values: tf.Tensor, returns: tf.Tensor): tf.Scalar {
  return tf.mean(tf.squaredDifference(values, returns)) as tf.Scalar;
}

/** The k3 estimate of KL(old || new) from log-ratios log(new/old) at old samples: mean((r - 1) - log r). */
export function approxKlTensor(logRatio: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.mean(tf.sub(tf.sub(tf.exp(logRatio), 1), logRatio)) as tf.Scalar);
}

/** approx KL(old || current policy) over a batch, read back (for algorithms without a ratio in their loss). */
export function approxKlOf(policy: ActorCritic, batch: BatchTensors): number {
  const t = tf.tidy(() => {
    const { dist } = policy.forward(batch.obs, { critic: false });
    return approxKlTensor(tf.sub(logProbOf(dist, batch.actions), batch.oldLogProbs));
  });
  const v = t.dataSync()[0]!;
  t.dispose();
  return v;
}

/**
 * Regression of the critic on the buffer's returns: `epochs` passes of shuffled minibatches,
 * each one gradient step on mean (V(s) - R)^2 over the critic's parameters only (the critic
 * updates of NPG / TRPO, SB3's `n_critic_updates`). Returns the mean loss.
 */
export function fitValueFunction(
  policy: ActorCritic,
  buffer: RolloutBuffer,
  optimizer: Optimizer,
  options: { epochs: number; batchSize: number; learningRate: number; maxGradNorm: number | null },
  rng: Rng,
): number {
  let sum = 0;
  let count = 0;
  for (let e = 0; e < options.epochs; e++) {
    for (const mb of buffer.minibatches(options.batchSize, rng)) {
      const b = uploadBatch(policy, mb);
      try {
        const r = gradientStep(
          optimizer,
          [policy.criticVariable],
          () => {
            const loss = mse(policy.valuesOf(b.obs), b.returns);
            return { loss, stats: tf.reshape(loss, [1]) as tf.Tensor1D };
          },
          options.maxGradNorm,
          options.learningRate,
        );
        sum += r.loss;
        count++;
      } finally {
        disposeBatch(b);
      }
    }
  }
  return count ? sum / count : NaN;
}
