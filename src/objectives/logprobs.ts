/**
 * Per-token log-probabilities of chosen ids under a categorical over the last axis.
 *
 *   log pi(a | s) = log softmax(z / tau)_a = z_a / tau - logsumexp(z / tau)
 *
 * with temperature tau (TRL `_get_per_token_logps` divides the logits by the sampling
 * temperature so that the trained distribution is the one that was sampled from).
 * Stability: `tf.logSoftmax` subtracts the row maximum before exponentiating and has a
 * custom gradient (dy - sum(dy) * softmax), so logits of magnitude 1e4 give finite, exact
 * results and gradients.
 *
 * Gathering at the ids uses a one-hot product, sum(onehot(a) * log_softmax(z), -1), instead of
 * `tf.gather`: the gradient of gather needs the `UnsortedSegmentSum` kernel, which the wasm
 * backend does not register, whereas Mul / Sum / Cast / OneHot are registered everywhere.
 * Memory trade-off: the one-hot mask and the product are each as large as the logits
 * ([..., V] floats), so the forward pass holds about three logits-sized buffers (log-softmax,
 * mask, product) instead of one, and the backward pass builds two more; for a vocabulary of a
 * few thousand and a few thousand tokens per batch this is tens of MB. Callers with a large
 * vocabulary should chunk the batch along N.
 *
 * Note: on tfjs-backend-wasm 4.22 `tf.oneHot(..., 'float32')` returns the int32 bit pattern
 * of 1 (a denormal ~1.4e-45) instead of 1.0, so the mask is built as int32 and cast.
 */
import * as tf from '@tensorflow/tfjs';
import { requireNumber, shapeString } from './checks.ts';

function checkTemperature(fn: string, temperature: number): void {
  if (typeof temperature !== 'number' || !Number.isFinite(temperature) || !(temperature > 0)) {
    throw new Error(`${fn}: temperature must be a finite number > 0, got ${temperature}`);
  }
}

/** log softmax(logits / temperature) over the last axis; same shape as logits. */
export function logSoftmax(logits: tf.Tensor, temperature = 1): tf.Tensor {
  checkTemperature('logSoftmax', temperature);
  if (logits.rank < 1) throw new Error(`logSoftmax: logits must have rank >= 1, got shape ${shapeString(logits.shape)}`);
  return tf.tidy(() => {
    const z = logits.dtype === 'float32' ? logits : tf.cast(logits, 'float32');
    return tf.logSoftmax(temperature === 1 ? z : tf.div(z, temperature)); // [..., V]
  });
}

/**
 * log softmax(logits / temperature) gathered at `ids`: logits [..., V], ids int32 [...]
 * (the logits shape without its last axis), result float32 [...]. Differentiable with
 * respect to the logits. Ids outside [0, V) are an error (they would silently give 0).
 */
export function tokenLogprobs(logits: tf.Tensor, ids: tf.Tensor, temperature = 1): tf.Tensor {
  const fn = 'tokenLogprobs';
  checkTemperature(fn, temperature);
  if (logits.rank < 1) throw new Error(`${fn}: logits must have rank >= 1, got shape ${shapeString(logits.shape)}`);
  const vocab = logits.shape[logits.rank - 1]!;
  requireNumber(fn, 'vocabulary size (last logits dimension)', vocab, 1);
  const lead = logits.shape.slice(0, -1);
  if (ids.rank !== lead.length || ids.shape.some((d, i) => d !== lead[i])) {
    throw new Error(
      `${fn}: ids has shape ${shapeString(ids.shape)} but logits has shape ${shapeString(logits.shape)}; ` +
        `ids must have the logits shape without its last axis, ${shapeString(lead)}`,
    );
  }
  if (ids.dtype !== 'int32') throw new Error(`${fn}: ids must be an int32 tensor, got dtype ${ids.dtype}`);
  const idData = ids.dataSync();
  for (let k = 0; k < idData.length; k++) {
    const id = idData[k]!;
    if (id < 0 || id >= vocab) {
      throw new Error(`${fn}: id ${id} at flat position ${k} of ids ${shapeString(ids.shape)} is outside [0, ${vocab})`);
    }
  }
  return tf.tidy(() => {
    const logp = logSoftmax(logits, temperature); // [..., V]
    const mask = tf.cast(tf.oneHot(ids, vocab), 'float32'); // [..., V]
    return tf.sum(tf.mul(logp, mask), -1); // [...]
  });
}
