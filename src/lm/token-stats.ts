/**
 * The per-token boundary between a model and the trainers: for a batch of
 * [left-padded prompt | right-padded completion] rows, the chosen tokens' log-probs, the
 * next-token entropies and (for a critic) the values, all [N, T] over completion tokens.
 * Trainers and objectives see a model only through these quantities; this is the only code
 * that slices hidden states at the completion positions.
 *
 * Layout (TRL's): row i is `ids[i] = [pad.. prompt_i | completion_i ..pad]`, width P + T. The
 * hidden state at position P - 1 + t (the position before completion token t) gives the
 * logits that score token t and the value V(s_t) (verl / OpenRLHF read the critic there
 * too), so the last column is never fed to the model.
 *
 *   logp_t = log softmax(logits_{P-1+t} / temperature)[y_t]
 *   H_t    = -sum_v p_v log p_v  of softmax(logits_{P-1+t} / temperature)
 *   V_t    = head(h_{P-1+t})
 *
 * Padding: the attention mask (1 on prompt and completion tokens) makes padded rows exact;
 * positions are cumsum(mask) - 1, as in the sampler, so training scores what was sampled.
 */
import * as tf from '@tensorflow/tfjs';
import { categoricalEntropy } from '../objectives/entropy.ts';
import { tokenLogprobs } from '../objectives/logprobs.ts';
import type { CausalLM } from './model.ts';
import type { ValueHead } from './value-head.ts';

/**
 * Rows of [left-padded prompt | right-padded completion], built once and reusable across
 * optimisation iterations. Row-major typed arrays:
 * - ids [N, P + T] and attentionMask [N, P + T] (1 on prompt and completion tokens);
 * - completionIds [N, T] and completionMask [N, T] (1 on completion tokens), the targets.
 */
export interface LogprobBatch {
  numRows: number;
  /** P: the longest prompt; prompts are left-padded to it. */
  promptLength: number;
  /** T: the longest completion; completions are right-padded to it. */
  completionLength: number;
  ids: Int32Array;
  attentionMask: Float32Array;
  completionIds: Int32Array;
  completionMask: Float32Array;
}

/** Build the padded batch; prompt i goes with completion i (N each). */
export function buildLogprobBatch(promptIds: number[][], completionIds: number[][], padTokenId = 0): LogprobBatch {
  const w = 'buildLogprobBatch';
  if (!Array.isArray(promptIds) || !Array.isArray(completionIds) || promptIds.length !== completionIds.length || promptIds.length === 0) {
    throw new Error(`${w}: need as many prompts as completions (at least one), got ${promptIds?.length} prompts and ${completionIds?.length} completions`);
  }
  const N = promptIds.length;
  let P = 0;
  let T = 0;
  for (let i = 0; i < N; i++) {
    const p = promptIds[i]!;
    const c = completionIds[i]!;
    if (!Array.isArray(p) || p.length === 0) throw new Error(`${w}: promptIds[${i}] is empty (every row needs at least one prompt token)`);
    if (!Array.isArray(c)) throw new Error(`${w}: completionIds[${i}] is not an array`);
    P = Math.max(P, p.length);
    T = Math.max(T, c.length);
  }
  const W = P + T;
  const ids = new Int32Array(N * W).fill(padTokenId);
  const attentionMask = new Float32Array(N * W);
  const cIds = new Int32Array(N * T).fill(padTokenId);
  const completionMask = new Float32Array(N * T);
  for (let i = 0; i < N; i++) {
    const p = promptIds[i]!;
    const c = completionIds[i]!;
    for (const [name, arr] of [['promptIds', p], ['completionIds', c]] as const) {
      for (let t = 0; t < arr.length; t++) {
        if (!Number.isInteger(arr[t]) || arr[t]! < 0) throw new Error(`${w}: ${name}[${i}][${t}] = ${arr[t]} is not a token id`);
      }
    }
    const off = i * W + (P - p.length);
    ids.set(p, off);
    attentionMask.fill(1, off, i * W + P + c.length);
    ids.set(c, i * W + P);
    cIds.set(c, i * T);
    completionMask.fill(1, i * T, i * T + c.length);
  }
  return { numRows: N, promptLength: P, completionLength: T, ids, attentionMask, completionIds: cIds, completionMask };
}

/** Rows `rows` of a row-major [N, cols] array as a [rows.length, cols] tensor. */
export function gatherRows(data: Float32Array | Int32Array, cols: number, rows: readonly number[], dtype: 'float32' | 'int32'): tf.Tensor2D {
  const out = dtype === 'int32' ? new Int32Array(rows.length * cols) : new Float32Array(rows.length * cols);
  rows.forEach((r, i) => out.set(data.subarray(r * cols, (r + 1) * cols), i * cols));
  return tf.tensor2d(out, [rows.length, cols], dtype);
}

/** Hidden states [n, T, D] at the positions that score the completion tokens of `rows` (differentiable). */
function completionHidden(model: CausalLM, layout: LogprobBatch, rows: readonly number[]): tf.Tensor3D {
  const { promptLength: P, completionLength: T } = layout;
  const W = P + T;
  return tf.tidy(() => {
    const ids = gatherRows(layout.ids, W, rows, 'int32').slice([0, 0], [-1, W - 1]) as tf.Tensor2D; // [n, W-1]
    const mask = gatherRows(layout.attentionMask, W, rows, 'float32').slice([0, 0], [-1, W - 1]) as tf.Tensor2D; // [n, W-1]
    const hidden = model.hiddenStates(ids, { attentionMask: mask }); // [n, W-1, D]
    return tf.slice(hidden, [0, P - 1, 0], [-1, T, -1]) as tf.Tensor3D; // [n, T, D]
  });
}

/**
 * Per-token log-probs and entropies of softmax(logits / temperature) of the completion
 * tokens of `rows` ([n, T] each; differentiable; not masked: the caller's loss mask decides
 * which tokens count).
 */
export function policyTokenStats(model: CausalLM, layout: LogprobBatch, rows: readonly number[], temperature: number): { logprobs: tf.Tensor2D; entropy: tf.Tensor2D } {
  const T = layout.completionLength;
  return tf.tidy(() => {
    const logits = model.logits(completionHidden(model, layout, rows)); // [n, T, V]
    const targets = gatherRows(layout.completionIds, T, rows, 'int32'); // [n, T]
    const logprobs = tokenLogprobs(logits, targets, temperature) as tf.Tensor2D; // [n, T]
    const entropy = categoricalEntropy(temperature === 1 ? logits : tf.div(logits, temperature)) as tf.Tensor2D; // [n, T]
    return { logprobs, entropy };
  });
}

/** A critic: a causal-LM trunk with a scalar head on its last hidden state. */
export interface ValueModel {
  trunk: CausalLM;
  head: ValueHead;
}

/** The critic's values V(s_t) of the completion tokens of `rows`, [n, T] (differentiable; not masked). */
export function criticTokenValues(critic: ValueModel, layout: LogprobBatch, rows: readonly number[]): tf.Tensor2D {
  return tf.tidy(() => critic.head.apply(completionHidden(critic.trunk, layout, rows)));
}

/** All rows 0..N-1 of a layout. */
export function allRows(layout: LogprobBatch): number[] {
  return Array.from({ length: layout.numRows }, (_, i) => i);
}

/** The critic's values of every row as a plain array [N, T], outside any gradient; in chunks of `batchSize` rows (default all). */
export function criticValuesNoGrad(critic: ValueModel, layout: LogprobBatch, batchSize?: number): Float32Array {
  const N = layout.numRows;
  const T = layout.completionLength;
  const out = new Float32Array(N * T);
  const bs = batchSize ?? N;
  for (let s = 0; s < N; s += bs) {
    const rows = Array.from({ length: Math.min(bs, N - s) }, (_, i) => s + i);
    const v = criticTokenValues(critic, layout, rows);
    out.set(v.dataSync() as Float32Array, s * T);
    v.dispose();
  }
  return out;
}

/**
 * log softmax(logits / temperature) of each completion token given its prompt and the
 * completion tokens before it: [N, T], 0 where completionMask is 0. Differentiable with
 * respect to the model's variables. One full forward per chunk of `batchSize` rows (default
 * all) over the first P + T - 1 columns.
 */
export function batchLogprobs(model: CausalLM, batch: LogprobBatch, options: { temperature?: number; batchSize?: number } = {}): tf.Tensor2D {
  const w = 'batchLogprobs';
  const tau = options.temperature ?? 1;
  if (typeof tau !== 'number' || !Number.isFinite(tau) || !(tau > 0)) throw new Error(`${w}: temperature must be a finite number > 0, got ${tau}`);
  const { numRows: N, promptLength: P, completionLength: T } = batch;
  const bs = options.batchSize ?? N;
  if (!Number.isInteger(bs) || bs < 1) throw new Error(`${w}: batchSize must be an integer >= 1, got ${bs}`);
  const V = model.dims.vocabSize;
  if (T === 0) return tf.zeros([N, 0]);
  for (let k = 0; k < batch.ids.length; k++) {
    const id = batch.ids[k]!;
    if (id >= V) throw new Error(`${w}: token id ${id} at row ${Math.floor(k / (P + T))}, column ${k % (P + T)} is outside the model vocabulary [0, ${V})`);
  }
  const W = P + T;
  const Win = W - 1; // the last completion token is only a target
  const parts: tf.Tensor2D[] = [];
  for (let start = 0; start < N; start += bs) {
    const n = Math.min(bs, N - start);
    const ids = new Int32Array(n * Win);
    const mask = new Float32Array(n * Win);
    for (let r = 0; r < n; r++) {
      ids.set(batch.ids.subarray((start + r) * W, (start + r) * W + Win), r * Win);
      mask.set(batch.attentionMask.subarray((start + r) * W, (start + r) * W + Win), r * Win);
    }
    parts.push(
      tf.tidy(() => {
        const hidden = model.hiddenStates(tf.tensor2d(ids, [n, Win], 'int32'), { attentionMask: tf.tensor2d(mask, [n, Win]) }); // [n, Win, D]
        const h = tf.slice(hidden, [0, P - 1, 0], [n, T, -1]); // positions predicting completion tokens
        const logits = model.logits(h); // [n, T, V]
        const logp = tf.logSoftmax(tau === 1 ? logits : tf.div(logits, tau)); // [n, T, V]
        const targets = tf.tensor2d(batch.completionIds.subarray(start * T, (start + n) * T), [n, T], 'int32');
        // One-hot gather (the gradient of tf.gather needs UnsortedSegmentSum); int32 then
        // cast, since wasm's float32 oneHot is wrong in tfjs 4.22.
        const onehot = tf.cast(tf.oneHot(targets, V), 'float32'); // [n, T, V]
        const cmask = tf.tensor2d(batch.completionMask.subarray(start * T, (start + n) * T), [n, T]);
        return tf.mul(tf.sum(tf.mul(logp, onehot), -1), cmask) as tf.Tensor2D; // [n, T]
      }),
    );
  }
  if (parts.length === 1) return parts[0]!;
  const out = tf.concat(parts, 0);
  tf.dispose(parts);
  return out;
}

/**
 * Per-token log-probs [N, T] of `completionIds[i]` given `promptIds[i]` (see `batchLogprobs`)
 * and the matching mask [N, T] (1 on completion tokens).
 */
export function sequenceLogprobs(
  model: CausalLM,
  promptIds: number[][],
  completionIds: number[][],
  options: { temperature?: number; batchSize?: number; padTokenId?: number } = {},
): { logprobs: tf.Tensor2D; mask: tf.Tensor2D } {
  const batch = buildLogprobBatch(promptIds, completionIds, options.padTokenId ?? 0);
  const logprobs = batchLogprobs(model, batch, options);
  return { logprobs, mask: tf.tensor2d(batch.completionMask, [batch.numRows, batch.completionLength]) };
}

/** `batchLogprobs` read back as a plain array [N, T] (no gradient is kept): old-policy and reference log-probs. */
export function logprobsNoGrad(model: CausalLM, layout: LogprobBatch, temperature: number): Float32Array {
  const lp = batchLogprobs(model, layout, { temperature }); // [N, T]
  const out = lp.dataSync() as Float32Array;
  lp.dispose();
  return out;
}
