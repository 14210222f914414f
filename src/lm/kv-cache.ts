/**
 * Key/value cache for incremental decoding.
 *
 * For each layer it holds the keys and the values for every position decoded so far, plus
 * the attention mask over those positions:
 *
 *   keys[l]   [B, Hkv, L, Dh]   (scores = Q K^T is matMul(q, keys, false, true))
 *   values[l] [B, Hkv, L, Dh]
 *   mask      [B, L]            1 = real token, 0 = padding
 *
 * tfjs tensors are immutable, so appending t new positions concatenates along the time
 * axis and disposes the previous tensors (O(L) copy per step; at the sequence lengths of
 * RLVR completions this is small next to the projections). Time is the second-to-last axis
 * of both, so an append copies B Hkv runs of L Dh floats per tensor. (Keys used to be stored
 * transposed, [B, Hkv, Dh, L], so that the score product needed no transpose flag; appending
 * along their last axis copied B Hkv Dh runs of L floats, and took 13 % of the sampling time
 * of a 10M model at batch 64. A one-row decode product reads the transposed operand in place
 * at the same speed.) The cache's tensors are kept out of any enclosing `tf.tidy`, so
 * decoding inside a tidy does not free them; call `dispose()` when done.
 */
import * as tf from '@tensorflow/tfjs';

export class KVCache {
  /** Per layer K [B, Hkv, L, Dh]; null before the first step. */
  keys: Array<tf.Tensor4D | null>;
  /** Per layer V [B, Hkv, L, Dh]; null before the first step. */
  values: Array<tf.Tensor4D | null>;
  /** Attention mask over the cached positions [B, L] (float32); null before the first step. */
  mask: tf.Tensor2D | null = null;
  /** Number of cached positions L. */
  length = 0;
  private disposed = false;

  constructor(
    /** Rows in the batch. */
    readonly batch: number,
    /** Most positions this cache will hold (prompt + completion). */
    readonly maxLength: number,
    /** Number of transformer layers. */
    readonly numLayers: number,
  ) {
    if (!Number.isInteger(batch) || batch < 1) throw new Error(`KVCache: batch must be a positive integer, got ${batch}`);
    if (!Number.isInteger(maxLength) || maxLength < 1) {
      throw new Error(`KVCache: maxLength must be a positive integer, got ${maxLength}`);
    }
    this.keys = new Array<tf.Tensor4D | null>(numLayers).fill(null);
    this.values = new Array<tf.Tensor4D | null>(numLayers).fill(null);
  }

  /** Throws unless the cache is live and has room for `t` more positions. */
  checkAppend(t: number): void {
    if (this.disposed) throw new Error('KVCache: the cache has been disposed');
    if (this.length + t > this.maxLength) {
      throw new Error(
        `KVCache: appending ${t} positions to ${this.length} cached ones exceeds maxLength ${this.maxLength}`,
      );
    }
  }

  /**
   * Replace the cached tensors with the extended ones (computed by the model), keeping them
   * alive outside any tidy and freeing the previous ones.
   */
  update(keys: tf.Tensor4D[], values: tf.Tensor4D[], mask: tf.Tensor2D): void {
    const old: tf.Tensor[] = [];
    for (let l = 0; l < this.numLayers; l++) {
      const k = this.keys[l];
      const v = this.values[l];
      if (k) old.push(k);
      if (v) old.push(v);
      this.keys[l] = tf.keep(keys[l]!);
      this.values[l] = tf.keep(values[l]!);
    }
    if (this.mask) old.push(this.mask);
    this.mask = tf.keep(mask);
    this.length = mask.shape[1];
    for (const t of old) t.dispose();
  }

  dispose(): void {
    for (const t of [...this.keys, ...this.values, this.mask]) t?.dispose();
    this.keys.fill(null);
    this.values.fill(null);
    this.mask = null;
    this.length = 0;
    this.disposed = true;
  }
}
