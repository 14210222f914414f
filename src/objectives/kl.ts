/**
 * Per-element estimators of KL(p || ref) from log-probabilities of tokens sampled from p
 * (Schulman, "Approximating KL Divergence", 2020, http://joschu.net/blog/kl-approx.html).
 * With d = logp - logref evaluated at x ~ p:
 *   k1 = d                              unbiased, high variance, can be negative
 *   k2 = 0.5 * d^2                      biased, low variance, >= 0
 *   k3 = exp(-d) - (-d) - 1             unbiased, low variance, >= 0 (GRPO's KL term,
 *      = exp(logref - logp) - (logref - logp) - 1   DeepSeekMath eq. 4; TRL `per_token_kl`)
 * All are element-wise over same-shaped tensors; averaging over samples from p estimates the
 * KL (k1, k3 exactly in expectation). Gradients flow to both arguments.
 */
import * as tf from '@tensorflow/tfjs';
import { requireSameShape } from './checks.ts';

/** k1 = logp - logref. */
export function klK1(logp: tf.Tensor, logref: tf.Tensor): tf.Tensor {
  requireSameShape('klK1', 'logp', logp, 'logref', logref);
  return tf.sub(logp, logref);
}

/** k2 = 0.5 * (logp - logref)^2. */
export function klK2(logp: tf.Tensor, logref: tf.Tensor): tf.Tensor {
  requireSameShape('klK2', 'logp', logp, 'logref', logref);
  return tf.tidy(() => tf.mul(0.5, tf.square(tf.sub(logp, logref))));
}

/** k3 = exp(logref - logp) - (logref - logp) - 1. */
export function klK3(logp: tf.Tensor, logref: tf.Tensor): tf.Tensor {
  requireSameShape('klK3', 'logp', logp, 'logref', logref);
  return tf.tidy(() => {
    const d = tf.sub(logref, logp);
    return tf.sub(tf.sub(tf.exp(d), d), 1);
  });
}
