/**
 * The PPO terms, shared by classical-control PPO (per action, shape [B]) and the
 * language-model trainers (per token, shape [N, T] with a mask).
 *
 * Clipped surrogate (Schulman et al., "Proximal Policy Optimization Algorithms", 2017, eq. 7),
 * with DAPO's asymmetric "clip-higher" bound (Yu et al., "DAPO", 2025; TRL `epsilon_high`):
 *   ratio_t = exp(logp_t - logp_old_t)
 *   loss_t  = -min(ratio_t * A_t, clip(ratio_t, 1 - eps, 1 + epsHigh) * A_t)
 * The clip indicators follow TRL's GRPO metrics: "low" = ratio < 1 - eps with A < 0, "high" =
 * ratio > 1 + epsHigh with A > 0 (the elements whose gradient the clip removes).
 *
 * Value loss (PPO2 / CleanRL `clip_vloss`, SB3 `clip_range_vf`):
 *   0.5 * mean((V - R)^2), or with clipping
 *   0.5 * mean(max((V - R)^2, (V_old + clip(V - V_old, -c, c) - R)^2)).
 *
 * Loss aggregation over tokens of a [N, T] batch (TRL `GRPOTrainer._compute_loss`):
 *   grpo     mean_i( sum_t m_it x_it / max(sum_t m_it, 1) )   (DeepSeekMath: per-sequence mean)
 *   bnpo     sum_it m_it x_it / max(sum_it m_it, 1)           (token-level mean over the batch)
 *   dapo     same as bnpo here. TRL normalises by the token count of the whole generation
 *            batch across gradient-accumulation steps and processes; a caller that splits a
 *            batch into micro-batches must scale each micro-batch loss by its share of tokens.
 *   dr_grpo  sum_it m_it x_it / (N * maxCompletionLength)     (Liu et al., "Dr. GRPO", 2025:
 *            a constant normaliser, so long and short completions get equal per-token weight)
 */
import * as tf from '@tensorflow/tfjs';
import { requireNumber, requireRank, requireSameShape, sameShape, shapeString } from './checks.ts';

export type LossType = 'grpo' | 'bnpo' | 'dr_grpo' | 'dapo';
export const LOSS_TYPES: readonly LossType[] = ['grpo', 'bnpo', 'dr_grpo', 'dapo'];

export interface SurrogateInputs {
  /** log pi_theta(a) under the current policy (differentiable), e.g. [B] or [N, T]. */
  logprobs: tf.Tensor;
  /** log pi_old(a) from the rollout; same shape as logprobs. */
  oldLogprobs: tf.Tensor;
  /** A; same shape as logprobs, or one rank less (one advantage per sequence, [N] vs [N, T]). */
  advantages: tf.Tensor;
}

export interface SurrogateConfig {
  /** Lower clip range: the ratio is clipped below at 1 - epsilon. Typical 0.1-0.3 (0.2). */
  epsilon: number;
  /** Upper clip range: clipped above at 1 + epsilonHigh. Defaults to epsilon; DAPO uses 0.28. */
  epsilonHigh?: number;
}

export interface SurrogateOutput {
  /** -min(ratio * A, clip(ratio) * A), shape of logprobs. */
  perElement: tf.Tensor;
  /** 1 where ratio < 1 - epsilon and A < 0, else 0 (float32), shape of logprobs. */
  clippedLow: tf.Tensor;
  /** 1 where ratio > 1 + epsilonHigh and A > 0, else 0 (float32), shape of logprobs. */
  clippedHigh: tf.Tensor;
  /** exp(logprobs - oldLogprobs), shape of logprobs. */
  ratio: tf.Tensor;
}

/** Validates the clip ranges; returns [epsilon, epsilonHigh]. */
function checkClipRange(fn: string, config: SurrogateConfig): [number, number] {
  requireNumber(fn, 'epsilon', config.epsilon, 0);
  const high = config.epsilonHigh ?? config.epsilon;
  requireNumber(fn, 'epsilonHigh', high, 0);
  return [config.epsilon, high];
}

/** The PPO clipped surrogate per element, plus the clip indicators and the ratio (see the file header). */
export function clippedSurrogate(inputs: SurrogateInputs, config: SurrogateConfig): SurrogateOutput {
  const fn = 'clippedSurrogate';
  const { logprobs, oldLogprobs, advantages } = inputs;
  const [eps, epsHigh] = checkClipRange(fn, config);
  requireSameShape(fn, 'logprobs', logprobs, 'oldLogprobs', oldLogprobs);
  const perSequence = advantages.rank === logprobs.rank - 1 && sameShape(advantages.shape, logprobs.shape.slice(0, -1));
  if (!perSequence && !sameShape(advantages.shape, logprobs.shape)) {
    throw new Error(
      `${fn}: advantages has shape ${shapeString(advantages.shape)} but logprobs has shape ` +
        `${shapeString(logprobs.shape)}; advantages must have the same shape or drop only the last axis`,
    );
  }
  return tf.tidy(() => {
    const adv = perSequence ? tf.expandDims(advantages, -1) : advantages; // [N, 1] or same as logprobs
    const ratio = tf.exp(tf.sub(logprobs, oldLogprobs)); // [N, T]
    const unclipped = tf.mul(ratio, adv);
    const clipped = tf.mul(tf.clipByValue(ratio, 1 - eps, 1 + epsHigh), adv);
    const perElement = tf.neg(tf.minimum(unclipped, clipped)); // [N, T]
    const clippedLow = tf.cast(tf.logicalAnd(tf.less(ratio, 1 - eps), tf.less(adv, 0)), 'float32'); // [N, T]
    const clippedHigh = tf.cast(tf.logicalAnd(tf.greater(ratio, 1 + epsHigh), tf.greater(adv, 0)), 'float32'); // [N, T]
    return { perElement, clippedLow, clippedHigh, ratio };
  });
}

function floatMask(mask: tf.Tensor): tf.Tensor {
  return mask.dtype === 'float32' ? mask : tf.cast(mask, 'float32');
}

/**
 * sum(x * mask) / max(sum(mask), 1) over all elements: the mean over masked entries, and 0
 * (not NaN) when the mask is empty. The mask is 0/1 (bool, int32 or float32), same shape as x.
 */
export function maskedMean(x: tf.Tensor, mask: tf.Tensor): tf.Scalar {
  requireSameShape('maskedMean', 'x', x, 'mask', mask);
  return tf.tidy(() => {
    const m = floatMask(mask);
    return tf.div(tf.sum(tf.mul(x, m)), tf.maximum(tf.sum(m), 1)) as tf.Scalar;
  });
}

export interface ValueLossOptions {
  /** V_old from the rollout; required when clipRange is set. */
  oldValues?: tf.Tensor;
  /** Clip the value change to [-clipRange, clipRange] around oldValues (PPO2). Typical 0.2; off by default. */
  clipRange?: number;
  /** 0/1 mask of the elements that count (language-model tokens); same shape as values. */
  mask?: tf.Tensor;
}

/** 0.5 * (masked) mean of the squared value error, optionally PPO-clipped (see the file header). */
export function valueLoss(values: tf.Tensor, returns: tf.Tensor, options: ValueLossOptions = {}): tf.Scalar {
  const fn = 'valueLoss';
  const { oldValues, clipRange, mask } = options;
  requireSameShape(fn, 'values', values, 'returns', returns);
  if (clipRange !== undefined) {
    requireNumber(fn, 'clipRange', clipRange, 0);
    if (oldValues === undefined) throw new Error(`${fn}: clipRange is set, so oldValues is required`);
  }
  if (oldValues !== undefined) requireSameShape(fn, 'values', values, 'oldValues', oldValues);
  if (mask !== undefined) requireSameShape(fn, 'values', values, 'mask', mask);
  return tf.tidy(() => {
    let perElement = tf.squaredDifference(values, returns);
    if (clipRange !== undefined && oldValues !== undefined) {
      const clippedV = tf.add(oldValues, tf.clipByValue(tf.sub(values, oldValues), -clipRange, clipRange));
      perElement = tf.maximum(perElement, tf.squaredDifference(clippedV, returns));
    }
    const mean = mask === undefined ? tf.mean(perElement) : maskedMean(perElement, mask);
    return tf.mul(0.5, mean) as tf.Scalar;
  });
}

/** Reduces a per-token loss [N, T] with its 0/1 mask [N, T] to a scalar by `lossType` (see the file header). */
export function aggregateLoss(
  perToken: tf.Tensor,
  mask: tf.Tensor,
  lossType: LossType,
  maxCompletionLength?: number,
): tf.Scalar {
  const fn = 'aggregateLoss';
  requireRank(fn, 'perToken', perToken, 2, 'a [N, T] tensor');
  requireSameShape(fn, 'perToken', perToken, 'mask', mask);
  if (!LOSS_TYPES.includes(lossType)) {
    throw new Error(`${fn}: lossType must be one of ${LOSS_TYPES.join(', ')}, got ${JSON.stringify(lossType)}`);
  }
  if (lossType === 'dr_grpo') {
    if (maxCompletionLength === undefined) throw new Error(`${fn}: lossType 'dr_grpo' needs maxCompletionLength`);
    if (!Number.isInteger(maxCompletionLength) || maxCompletionLength < 1) {
      throw new Error(`${fn}: maxCompletionLength must be an integer >= 1, got ${maxCompletionLength}`);
    }
  }
  const n = perToken.shape[0]!;
  return tf.tidy(() => {
    const m = floatMask(mask);
    const masked = tf.mul(perToken, m); // [N, T]
    switch (lossType) {
      case 'grpo': {
        const perSeq = tf.div(tf.sum(masked, -1), tf.maximum(tf.sum(m, -1), 1)); // [N]
        return tf.mean(perSeq) as tf.Scalar;
      }
      case 'bnpo':
      case 'dapo':
        return tf.div(tf.sum(masked), tf.maximum(tf.sum(m), 1)) as tf.Scalar;
      case 'dr_grpo':
        return tf.div(tf.sum(masked), n * maxCompletionLength!) as tf.Scalar;
    }
  });
}
