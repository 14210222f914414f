/**
 * Action distributions of the control policies, as in Stable-Baselines3's
 * `distributions.py`: a categorical over discrete actions (from logits) and a diagonal
 * Gaussian over box actions with a state-independent, learned log-std.
 *
 * Tensor side (differentiable, used by the updates), per row b of a batch:
 *   Categorical   log pi(a) = log_softmax(z)_a             entropy  -sum_a p_a log p_a
 *                 KL(p || q) = sum_a p_a (log p_a - log q_a)
 *   Gaussian      log pi(a) = sum_i -((a_i - mu_i)/sigma_i)^2 / 2 - log sigma_i - log(2 pi) / 2
 *                 entropy    = sum_i log sigma_i + log(2 pi e) / 2
 *                 KL(p || q) = sum_i log(sigma_q,i / sigma_p,i)
 *                              + (sigma_p,i^2 + (mu_p,i - mu_q,i)^2) / (2 sigma_q,i^2) - 1/2
 * The log-probabilities and entropies come from src/objectives (`tokenLogprobs`,
 * `categoricalEntropy`, `gaussianLogProb`, `gaussianEntropy`); the KLs are the closed forms.
 *
 * Sampling side (rollouts): one batched forward is read back once, and actions are drawn
 * in JavaScript from our seeded `Rng` with their log-probabilities computed in float64 —
 * no per-step tensors beyond the forward itself. Box actions are sampled unclipped; the
 * caller clips them to the action space for the environment, and the log-probability is
 * that of the unclipped sample (as SB3).
 */
import * as tf from '@tensorflow/tfjs';
import type { Rng } from '../core/rng.ts';
import { categoricalEntropy, gaussianEntropy, gaussianLogProb, tokenLogprobs } from '../objectives/index.ts';

const HALF_LOG_2PI = 0.5 * Math.log(2 * Math.PI);

function requireRank(fn: string, name: string, t: tf.Tensor, rank: number): void {
  if (t.rank !== rank) throw new Error(`${fn}: ${name} must have rank ${rank}, got shape [${t.shape.join(', ')}]`);
}

/** Categorical over the last axis of logits [B, n]. */
export class CategoricalDistribution {
  readonly kind = 'categorical' as const;

  constructor(readonly logits: tf.Tensor2D) {
    requireRank('CategoricalDistribution', 'logits', logits, 2);
  }

  /** log pi(a) for int32 actions [B] -> [B]. */
  logProb(actions: tf.Tensor1D): tf.Tensor1D {
    return tokenLogprobs(this.logits, actions) as tf.Tensor1D;
  }

  /** [B] */
  entropy(): tf.Tensor1D {
    return categoricalEntropy(this.logits) as tf.Tensor1D;
  }

  /** The most likely action of each row, int32 [B]. */
  mode(): tf.Tensor1D {
    return tf.argMax(this.logits, -1) as tf.Tensor1D;
  }

  /** KL(this || other) per row [B]. */
  kl(other: CategoricalDistribution): tf.Tensor1D {
    if (other.logits.shape.join() !== this.logits.shape.join()) {
      throw new Error(`CategoricalDistribution.kl: logits shapes differ: [${this.logits.shape}] vs [${other.logits.shape}]`);
    }
    return tf.tidy(() => {
      const lp = tf.logSoftmax(this.logits); // [B, n]
      const lq = tf.logSoftmax(other.logits); // [B, n]
      return tf.sum(tf.mul(tf.exp(lp), tf.sub(lp, lq)), -1) as tf.Tensor1D; // [B]
    });
  }
}

/** Diagonal Gaussian with mean [B, A] and a state-independent log-std [A]. */
export class DiagGaussianDistribution {
  readonly kind = 'gaussian' as const;

  constructor(
    readonly mean: tf.Tensor2D,
    readonly logStd: tf.Tensor1D,
  ) {
    requireRank('DiagGaussianDistribution', 'mean', mean, 2);
    requireRank('DiagGaussianDistribution', 'logStd', logStd, 1);
    if (logStd.shape[0] !== mean.shape[1]) {
      throw new Error(`DiagGaussianDistribution: logStd has shape [${logStd.shape}] but mean has shape [${mean.shape}]; expected [${mean.shape[1]}]`);
    }
  }

  /** log pi(a) of unclipped actions [B, A] -> [B]. */
  logProb(actions: tf.Tensor2D): tf.Tensor1D {
    return gaussianLogProb(actions, this.mean, this.logStd) as tf.Tensor1D;
  }

  /** [B] (the same value for every row, since the std does not depend on the state). */
  entropy(): tf.Tensor1D {
    return tf.tidy(() => tf.mul(tf.ones([this.mean.shape[0]]), gaussianEntropy(this.logStd)) as tf.Tensor1D);
  }

  /** The mean, the deterministic action [B, A] (unclipped). */
  mode(): tf.Tensor2D {
    return this.mean.clone();
  }

  /** KL(this || other) per row [B]. */
  kl(other: DiagGaussianDistribution): tf.Tensor1D {
    if (other.mean.shape.join() !== this.mean.shape.join()) {
      throw new Error(`DiagGaussianDistribution.kl: mean shapes differ: [${this.mean.shape}] vs [${other.mean.shape}]`);
    }
    return tf.tidy(() => {
      const varP = tf.exp(tf.mul(2, this.logStd)); // [A]
      const varQ = tf.exp(tf.mul(2, other.logStd)); // [A]
      const sq = tf.square(tf.sub(this.mean, other.mean)); // [B, A]
      const perDim = tf.sub(tf.add(tf.sub(other.logStd, this.logStd), tf.div(tf.add(varP, sq), tf.mul(2, varQ))), 0.5); // [B, A]
      return tf.sum(perDim, -1) as tf.Tensor1D;
    });
  }
}

export type ActionDistribution = CategoricalDistribution | DiagGaussianDistribution;

/**
 * Draws one action per row from categorical logits (row-major [rows, n]); writes the
 * action and its log-probability. `deterministic` takes the arg-max instead of sampling
 * (no random draw is consumed).
 */
export function sampleCategorical(
  logits: ArrayLike<number>,
  rows: number,
  n: number,
  rng: Rng,
  actionsOut: Int32Array,
  logProbsOut: Float32Array,
  deterministic = false,
): void {
  if (logits.length < rows * n || actionsOut.length < rows || logProbsOut.length < rows) {
    throw new Error(`sampleCategorical: expected ${rows} x ${n} logits and room for ${rows} actions`);
  }
  const p = new Float64Array(n);
  for (let r = 0; r < rows; r++) {
    const o = r * n;
    let max = -Infinity;
    let best = 0;
    for (let k = 0; k < n; k++) {
      const z = logits[o + k]!;
      if (!Number.isFinite(z)) throw new Error(`sampleCategorical: logit ${k} of row ${r} is ${z}`);
      if (z > max) {
        max = z;
        best = k;
      }
    }
    let sum = 0;
    for (let k = 0; k < n; k++) {
      const e = Math.exp(logits[o + k]! - max);
      p[k] = e;
      sum += e;
    }
    const a = deterministic ? best : rng.categorical(p);
    actionsOut[r] = a;
    logProbsOut[r] = logits[o + a]! - max - Math.log(sum);
  }
}

/**
 * Draws one action per row from N(mean, diag(exp(logStd))^2): mean row-major [rows, dim],
 * logStd [dim]. Writes the unclipped actions and their log-densities. `deterministic`
 * returns the mean (no random draw is consumed).
 */
export function sampleDiagGaussian(
  mean: ArrayLike<number>,
  rows: number,
  dim: number,
  logStd: ArrayLike<number>,
  rng: Rng,
  actionsOut: Float32Array,
  logProbsOut: Float32Array,
  deterministic = false,
): void {
  if (mean.length < rows * dim || logStd.length !== dim || actionsOut.length < rows * dim || logProbsOut.length < rows) {
    throw new Error(`sampleDiagGaussian: expected ${rows} x ${dim} means, ${dim} log-stds and room for ${rows} x ${dim} actions`);
  }
  let logStdSum = 0;
  for (let k = 0; k < dim; k++) logStdSum += logStd[k]!;
  for (let r = 0; r < rows; r++) {
    let quad = 0;
    for (let k = 0; k < dim; k++) {
      const i = r * dim + k;
      const mu = mean[i]!;
      if (!Number.isFinite(mu)) throw new Error(`sampleDiagGaussian: mean ${k} of row ${r} is ${mu}`);
      const z = deterministic ? 0 : rng.normal();
      const a = Math.fround(mu + Math.exp(logStd[k]!) * z);
      actionsOut[i] = a;
      // The log-density of the stored float32 action, so the update sees the same value.
      const zs = (a - mu) / Math.exp(logStd[k]!);
      quad += zs * zs;
    }
    logProbsOut[r] = -0.5 * quad - logStdSum - dim * HALF_LOG_2PI;
  }
}
