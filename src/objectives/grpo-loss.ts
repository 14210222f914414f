/**
 * The GRPO objective (Shao et al., "DeepSeekMath", 2024, eq. 3; TRL `GRPOTrainer._compute_loss`).
 * Per completion token t of completion i, with one advantage A_i per completion:
 *   ratio_it = exp(logp_it - logp_old_it)
 *   loss_it  = -min(ratio_it * A_i, clip(ratio_it, 1 - eps, 1 + epsHigh) * A_i) + beta * k3_it
 *   k3_it    = exp(logp_ref_it - logp_it) - (logp_ref_it - logp_it) - 1
 * then reduced over the masked tokens by `lossType` (`aggregateLoss`). With beta = 0 the
 * reference model is not needed and no KL term is computed (DAPO, Dr. GRPO and TRL's default).
 *
 * Metrics (TRL names in brackets), each a mean over the masked tokens of the whole batch:
 *   kl [kl]                         mean k3 (0 when beta = 0)
 *   clipRatioLow [clip_ratio/low_mean]      fraction with ratio < 1 - eps and A < 0
 *   clipRatioHigh [clip_ratio/high_mean]    fraction with ratio > 1 + epsHigh and A > 0
 *   clipRatioRegion [clip_ratio/region_mean] fraction clipped either way
 *   meanRatio                        mean ratio (1 on the first pass over fresh samples)
 *
 * Values at padding positions (mask 0) are ignored entirely, even when they are extreme.
 *
 * Using it under autodiff. `grpoLossTensors` returns only tensors and never reads data, so it
 * can sit anywhere in a tfjs graph. `grpoLoss` also reads the metrics with one synchronous
 * `dataSync` and disposes the metric tensors, returning `loss` as a live scalar; it is meant
 * to be called inside the closure given to `tf.variableGrads` / `optimizer.minimize`:
 *
 *   let metrics!: GrpoMetrics;
 *   const { value, grads } = tf.variableGrads(() => {
 *     const logprobs = tokenLogprobs(model(ids), targets);   // [N, T], depends on the variables
 *     const out = grpoLoss({ logprobs, oldLogprobs, refLogprobs, advantages, mask }, config);
 *     metrics = out.metrics;
 *     return out.loss;
 *   });
 *
 * This is sound because (1) the gradient is taken of `loss` only, and the tape prunes the
 * metric branches, which do not lead to it (tfjs has no stop-gradient; none is needed since
 * the metrics are never differentiated); (2) tensors a backward pass needs are kept by the
 * tape itself, so disposing the metric tensors early cannot break the backward pass; (3)
 * `dataSync` is synchronous, so it can run inside the closure.
 */
import * as tf from '@tensorflow/tfjs';
import { requireNumber, requireRank, requireSameShape, shapeString } from './checks.ts';
import { klK3 } from './kl.ts';
import { aggregateLoss, clippedSurrogate, LOSS_TYPES, maskedMean, type LossType } from './ppo.ts';

export interface GrpoLossInputs {
  /** log pi_theta of the completion tokens, [N, T]; the differentiable input. */
  logprobs: tf.Tensor;
  /** log pi_old from the sampler (the policy that generated the completions), [N, T]. */
  oldLogprobs: tf.Tensor;
  /** log pi_ref from the frozen reference model, [N, T]; may be omitted when beta = 0. */
  refLogprobs?: tf.Tensor;
  /** One group-relative advantage per completion, [N]. */
  advantages: tf.Tensor;
  /** 1 for real completion tokens, 0 for padding and tokens after EOS, [N, T]. */
  mask: tf.Tensor;
}

export interface GrpoLossConfig {
  /** Lower clip range (ratio >= 1 - epsilon). Typical 0.2. */
  epsilon: number;
  /** Upper clip range (ratio <= 1 + epsilonHigh). 0.2 for symmetric PPO clipping, 0.28 in DAPO. */
  epsilonHigh: number;
  /** KL penalty coefficient, >= 0. DeepSeekMath used 0.04; 0 (no reference model) in DAPO / Dr. GRPO. */
  beta: number;
  /** How per-token losses are reduced; see `aggregateLoss`. */
  lossType: LossType;
  /** The sampler's completion-length limit; the constant normaliser of 'dr_grpo'. */
  maxCompletionLength: number;
}

export interface GrpoMetrics {
  kl: number;
  clipRatioLow: number;
  clipRatioHigh: number;
  clipRatioRegion: number;
  meanRatio: number;
}

export interface GrpoLossTensors {
  loss: tf.Scalar;
  kl: tf.Scalar;
  clipRatioLow: tf.Scalar;
  clipRatioHigh: tf.Scalar;
  clipRatioRegion: tf.Scalar;
  meanRatio: tf.Scalar;
}

function checkConfig(fn: string, config: GrpoLossConfig): void {
  requireNumber(fn, 'config.epsilon', config.epsilon, 0);
  requireNumber(fn, 'config.epsilonHigh', config.epsilonHigh, 0);
  requireNumber(fn, 'config.beta', config.beta, 0);
  if (!LOSS_TYPES.includes(config.lossType)) {
    throw new Error(`${fn}: config.lossType must be one of ${LOSS_TYPES.join(', ')}, got ${JSON.stringify(config.lossType)}`);
  }
  if (!Number.isInteger(config.maxCompletionLength) || config.maxCompletionLength < 1) {
    throw new Error(`${fn}: config.maxCompletionLength must be an integer >= 1, got ${config.maxCompletionLength}`);
  }
}

/** The GRPO loss and its metrics as tensors (the caller disposes them); see the file header. */
export function grpoLossTensors(inputs: GrpoLossInputs, config: GrpoLossConfig): GrpoLossTensors {
  const fn = 'grpoLoss';
  checkConfig(fn, config);
  const { logprobs, oldLogprobs, refLogprobs, advantages, mask } = inputs;
  requireRank(fn, 'logprobs', logprobs, 2, 'a [N, T] tensor');
  requireSameShape(fn, 'logprobs', logprobs, 'oldLogprobs', oldLogprobs);
  requireSameShape(fn, 'logprobs', logprobs, 'mask', mask);
  if (advantages.rank !== 1 || advantages.shape[0] !== logprobs.shape[0]) {
    throw new Error(
      `${fn}: advantages must be [N] = [${logprobs.shape[0]}] (one per completion), got shape ${shapeString(advantages.shape)}`,
    );
  }
  const useKl = config.beta > 0;
  if (useKl) {
    if (refLogprobs === undefined) throw new Error(`${fn}: config.beta = ${config.beta} > 0, so refLogprobs is required`);
    requireSameShape(fn, 'logprobs', logprobs, 'refLogprobs', refLogprobs);
  }
  return tf.tidy(() => {
    const m = mask.dtype === 'float32' ? mask : tf.cast(mask, 'float32'); // [N, T]
    // Padding positions are set to 0 in all three log-prob inputs (ratio 1, k3 0) before any
    // exp: whatever the caller left there, exp(90) = Infinity times a 0 mask would be NaN in
    // the loss and in the gradient. `where` also passes exactly zero gradient to padding.
    const keep = tf.cast(m, 'bool'); // [N, T]
    const zeros = tf.zerosLike(logprobs);
    const lp = tf.where(keep, logprobs, zeros); // [N, T]
    const old = tf.where(keep, oldLogprobs, zeros); // [N, T]
    const s = clippedSurrogate({ logprobs: lp, oldLogprobs: old, advantages }, { epsilon: config.epsilon, epsilonHigh: config.epsilonHigh });
    let perToken = s.perElement; // [N, T]
    let kl = tf.scalar(0);
    if (useKl) {
      const k3 = klK3(lp, tf.where(keep, refLogprobs!, zeros)); // [N, T]
      perToken = tf.add(perToken, tf.mul(config.beta, k3));
      kl = maskedMean(k3, m);
    }
    const loss = aggregateLoss(perToken, m, config.lossType, config.maxCompletionLength);
    return {
      loss,
      kl,
      clipRatioLow: maskedMean(s.clippedLow, m),
      clipRatioHigh: maskedMean(s.clippedHigh, m),
      clipRatioRegion: maskedMean(tf.add(s.clippedLow, s.clippedHigh), m), // the two are disjoint
      meanRatio: maskedMean(s.ratio, m),
    };
  });
}

/**
 * The GRPO loss as a live scalar plus its metrics read as numbers (one `dataSync`). Safe to
 * call inside `tf.variableGrads` / `optimizer.minimize` closures; see the file header.
 */
export function grpoLoss(inputs: GrpoLossInputs, config: GrpoLossConfig): { loss: tf.Scalar; metrics: GrpoMetrics } {
  const { loss, ...metricTensors } = grpoLossTensors(inputs, config);
  const names = Object.keys(metricTensors) as (keyof GrpoMetrics)[];
  const values = tf.tidy(() => tf.stack(names.map((k) => metricTensors[k])).dataSync());
  tf.dispose(Object.values(metricTensors));
  const metrics = {} as GrpoMetrics;
  names.forEach((k, i) => {
    metrics[k] = values[i]!;
  });
  return { loss, metrics };
}
