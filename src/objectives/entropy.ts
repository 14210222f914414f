/**
 * Entropies and log-densities of the policy distributions used across rlvr.
 *
 * Categorical over the last axis (entropy bonus of A2C / PPO, Mnih et al. 2016; the
 * `entropy` metric of TRL):  H = -sum_a p_a log p_a,  p = softmax(z), computed from the
 * stable log-softmax so large logits give finite results.
 *
 * Diagonal Gaussian with per-dimension log std (continuous control; SB3
 * `DiagGaussianDistribution`, CleanRL `ppo_continuous_action.py`), summed over the last axis:
 *   H        = sum_i (log sigma_i + 0.5 * log(2 pi e))
 *   log N(a) = sum_i (-0.5 * ((a_i - mu_i) / sigma_i)^2 - log sigma_i - 0.5 * log(2 pi))
 */
import * as tf from '@tensorflow/tfjs';
import { shapeString } from './checks.ts';

const HALF_LOG_2PI = 0.5 * Math.log(2 * Math.PI);
const HALF_LOG_2PIE = 0.5 * Math.log(2 * Math.PI * Math.E);

function requireLastAxis(fn: string, name: string, t: tf.Tensor): void {
  if (t.rank < 1) throw new Error(`${fn}: ${name} must have rank >= 1 (the last axis is summed), got shape ${shapeString(t.shape)}`);
}

/** Entropy of softmax(logits) over the last axis: logits [..., V] -> [...]. */
export function categoricalEntropy(logits: tf.Tensor): tf.Tensor {
  requireLastAxis('categoricalEntropy', 'logits', logits);
  return tf.tidy(() => {
    const logp = tf.logSoftmax(logits.dtype === 'float32' ? logits : tf.cast(logits, 'float32')); // [..., V]
    return tf.neg(tf.sum(tf.mul(tf.exp(logp), logp), -1)); // [...]
  });
}

/** Entropy of a diagonal Gaussian: logStd [..., A] -> [...]. */
export function gaussianEntropy(logStd: tf.Tensor): tf.Tensor {
  requireLastAxis('gaussianEntropy', 'logStd', logStd);
  return tf.tidy(() => tf.sum(tf.add(logStd, HALF_LOG_2PIE), -1));
}

/**
 * Log-density of `actions` under N(mean, diag(exp(logStd))^2), summed over the last axis.
 * actions and mean [..., A]; logStd broadcasts against them (typically a state-independent
 * [A] parameter, or [..., A] from a network head). Result [...] (the broadcast shape without A).
 */
export function gaussianLogProb(actions: tf.Tensor, mean: tf.Tensor, logStd: tf.Tensor): tf.Tensor {
  const fn = 'gaussianLogProb';
  requireLastAxis(fn, 'actions', actions);
  requireLastAxis(fn, 'mean', mean);
  requireLastAxis(fn, 'logStd', logStd);
  const a = actions.shape[actions.rank - 1];
  for (const [name, t] of [['mean', mean], ['logStd', logStd]] as const) {
    if (t.shape[t.rank - 1] !== a) {
      throw new Error(
        `${fn}: ${name} has shape ${shapeString(t.shape)} but actions has shape ${shapeString(actions.shape)}; ` +
          'the last (action) dimensions must match',
      );
    }
  }
  return tf.tidy(() => {
    const z = tf.mul(tf.sub(actions, mean), tf.exp(tf.neg(logStd))); // [..., A]
    const perDim = tf.sub(tf.sub(tf.mul(-0.5, tf.square(z)), logStd), HALF_LOG_2PI); // [..., A]
    return tf.sum(perDim, -1); // [...]
  });
}
