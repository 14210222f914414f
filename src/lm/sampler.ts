/**
 * Batched sampling from a causal LM with its KV cache, behind the `Sampler` interface the
 * trainers draw their rollouts through. The per-token log-probs of given completions (the
 * training forward) live in `token-stats.ts`.
 *
 * Generation (`generate`, synchronous: tfjs reads logits back with `dataSync`, so an async
 * signature would buy nothing but overhead per token):
 *   1. every prompt is repeated K = numGenerations times, group-contiguous: completion
 *      i*K + k belongs to prompt i. Sequences are processed in chunks of `batchSize`.
 *   2. prefill: the distinct prompts of a chunk are left-padded (pad id, attention mask 0)
 *      and run once through `forwardCached` (LM head on the last position only); the cache
 *      rows are then repeated for the K completions of each prompt.
 *   3. decode: one `forwardCached` over the active batch per new token, one `dataSync` of
 *      the [B, V] last-position logits, and sampling on the CPU:
 *        z = logits / T (T = 0: greedy argmax, the smallest id on ties);
 *        top-k keeps every id whose logit is >= the k-th largest (ties kept, as Hugging Face);
 *        top-p keeps, of what is left, the smallest set of most likely ids whose
 *        renormalised probability sums to >= p (always at least one);
 *        `vocabLimit` keeps ids below it (a tokenizer smaller than the embedding);
 *        the token is drawn by `Rng.categorical` over the kept probabilities.
 *      The reported log-prob is log softmax(z / T)[token] over the full vocabulary BEFORE
 *      any filtering (TRL / vLLM report it this way; T = 1 for greedy), which is exactly what
 *      `sequenceLogprobs` (token-stats.ts) recomputes with the same temperature.
 *   4. a sequence ends at an EOS id (kept in its completion, with its log-prob), or when one
 *      of `stop.strings` first occurs in `stop.decode(completion so far)`: the completion
 *      then ends with the token that completed the stop string (kept, like EOS; the text of
 *      that token may run on past the stop string), or after `maxNewTokens` tokens
 *      (`truncated`). The loop ends when every sequence has ended. Ended rows are dropped
 *      from the batch (a row gather of the cache) once they are at least an eighth of it.
 *
 * Randomness: each sequence draws from its own `rng.fork()`, forked in sequence order
 * before any work, so a seed fixes every completion whatever `batchSize` is.
 */
import * as tf from '@tensorflow/tfjs';
import type { Rng } from '../core/rng.ts';
import { KVCache } from './kv-cache.ts';
import type { CausalLM } from './model.ts';
import type { Tokenizer } from './tokenizer.ts';

// ---------------------------------------------------------------------------------------
// Token filtering and sampling on the CPU

/** How a next-token distribution is turned into a draw. */
export interface SamplingParams {
  /** Softmax temperature; 0 = greedy (argmax). Typical 0.6..1.2. */
  temperature: number;
  /** Keep the k most likely ids (ties at the k-th logit kept); 0 or undefined = off. */
  topK?: number;
  /** Nucleus: keep the smallest most-likely set with probability >= p; 1 or undefined = off. */
  topP?: number;
  /** Only ids below this may be drawn (a tokenizer with fewer ids than the model's vocabulary); default all. */
  vocabLimit?: number;
}

/** A filtered next-token distribution: the kept ids (in decreasing probability when filtered) and their renormalised probabilities. */
export interface TokenDistribution {
  ids: Int32Array;
  probs: Float64Array;
}

/** Reusable buffers for one vocabulary size, so sampling allocates nothing per token. */
class Scratch {
  readonly weights: Float64Array; // exp((z - max) / T) of every id
  readonly kept: Int32Array; // candidate ids
  readonly keptWeights: Float64Array;
  readonly select: Float64Array; // copy for quickselect
  constructor(readonly vocab: number) {
    this.weights = new Float64Array(vocab);
    this.kept = new Int32Array(vocab);
    this.keptWeights = new Float64Array(vocab);
    this.select = new Float64Array(vocab);
  }
}

/**
 * The k-th largest of a[0..n) (1-based k), by quickselect on `buf` (overwritten). O(n)
 * expected; the pivot is the median of three so sorted inputs stay linear.
 */
function kthLargest(a: ArrayLike<number>, offset: number, n: number, k: number, buf: Float64Array): number {
  for (let i = 0; i < n; i++) buf[i] = a[offset + i]!;
  let lo = 0;
  let hi = n - 1;
  const target = k - 1; // index in descending order
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const x = buf[lo]!;
    const y = buf[mid]!;
    const z = buf[hi]!;
    const pivot = x > y ? (y > z ? y : x > z ? z : x) : x > z ? x : y > z ? z : y;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (buf[i]! > pivot) i++;
      while (buf[j]! < pivot) j--;
      if (i <= j) {
        const t = buf[i]!;
        buf[i] = buf[j]!;
        buf[j] = t;
        i++;
        j--;
      }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else return buf[target]!;
  }
  return buf[target]!;
}

/**
 * Fill `s.weights` with exp((z - max) / tau) over all V ids and return log Z, the log of
 * the normaliser of softmax(z / tau) over the full vocabulary (for the reported log-prob).
 */
function expWeights(logits: ArrayLike<number>, offset: number, V: number, tau: number, s: Scratch): { max: number; logZ: number } {
  let max = -Infinity;
  for (let i = 0; i < V; i++) {
    const z = logits[offset + i]!;
    if (z > max) max = z;
  }
  if (!Number.isFinite(max)) throw new Error(`sampler: logits row has no finite maximum (${max}); the model produced NaN or infinite logits`);
  let sum = 0;
  const w = s.weights;
  for (let i = 0; i < V; i++) {
    const e = Math.exp((logits[offset + i]! - max) / tau);
    w[i] = e;
    sum += e;
  }
  if (!(sum > 0) || !Number.isFinite(sum)) throw new Error(`sampler: logits row has a non-finite softmax normaliser (${sum}); NaN logits?`);
  return { max, logZ: max / tau + Math.log(sum) };
}

/**
 * The candidates left after top-k / top-p / vocabLimit, into s.kept / s.keptWeights (weights
 * unnormalised, from s.weights). Returns how many, or -1 when nothing is filtered (all of
 * [0, n) with s.weights). When filtered, candidates are in decreasing probability (ties by id).
 */
function filterCandidates(logits: ArrayLike<number>, offset: number, n: number, p: SamplingParams, s: Scratch): number {
  const topK = p.topK ?? 0;
  const topP = p.topP ?? 1;
  const w = s.weights;
  const useK = topK > 0 && topK < n;
  const useP = topP < 1;
  if (!useK && !useP) return -1;
  let m = 0;
  let total = 0;
  if (useK) {
    const kth = kthLargest(logits, offset, n, topK, s.select);
    for (let i = 0; i < n; i++) {
      if (logits[offset + i]! >= kth) {
        s.kept[m++] = i;
        total += w[i]!;
      }
    }
  } else {
    for (let i = 0; i < n; i++) total += w[i]!;
    // Ids below (1 - p) * total / n hold less than 1 - p of the mass together, so the nucleus
    // lies inside the rest: only those need sorting.
    const floor = ((1 - topP) * total) / n;
    for (let i = 0; i < n; i++) if (w[i]! >= floor) s.kept[m++] = i;
  }
  const kept = s.kept.subarray(0, m);
  kept.sort((a, b) => w[b]! - w[a]! || a - b);
  if (useP) {
    const target = topP * total;
    let cum = 0;
    let keep = 0;
    while (keep < m && (keep === 0 || cum < target)) cum += w[kept[keep++]!]!;
    m = keep;
  }
  for (let j = 0; j < m; j++) s.keptWeights[j] = w[s.kept[j]!]!;
  return m;
}

function argmax(logits: ArrayLike<number>, offset: number, n: number): number {
  let best = 0;
  let bestZ = logits[offset]!;
  for (let i = 1; i < n; i++) {
    const z = logits[offset + i]!;
    if (z > bestZ) {
      bestZ = z;
      best = i;
    }
  }
  return best;
}

/** One draw from a logits row: the token and its log-prob under softmax(z / T) before filtering. */
function sampleRow(logits: ArrayLike<number>, offset: number, V: number, p: SamplingParams, rng: Rng, s: Scratch): { token: number; logprob: number } {
  const n = p.vocabLimit ?? V;
  if (p.temperature === 0) {
    const token = argmax(logits, offset, n);
    const { logZ } = expWeights(logits, offset, V, 1, s);
    return { token, logprob: logits[offset + token]! - logZ };
  }
  const tau = p.temperature;
  const { logZ } = expWeights(logits, offset, V, tau, s);
  const m = filterCandidates(logits, offset, n, p, s);
  const token = m < 0 ? rng.categorical(s.weights, 0, n) : s.kept[rng.categorical(s.keptWeights, 0, m)]!;
  return { token, logprob: logits[offset + token]! / tau - logZ };
}

/**
 * The distribution a token is drawn from, given one row of logits (`offset`/`length` select
 * a row of a larger array): the kept ids and their renormalised probabilities. Greedy
 * (temperature 0) gives the argmax with probability 1. Unfiltered, all ids in id order.
 */
export function samplingDistribution(logits: ArrayLike<number>, params: SamplingParams, offset = 0, length = logits.length - offset): TokenDistribution {
  checkSamplingParams('samplingDistribution', params, length);
  const n = params.vocabLimit ?? length;
  if (params.temperature === 0) {
    return { ids: Int32Array.of(argmax(logits, offset, n)), probs: Float64Array.of(1) };
  }
  const s = new Scratch(length);
  expWeights(logits, offset, length, params.temperature, s);
  const m = filterCandidates(logits, offset, n, params, s);
  const ids = m < 0 ? Int32Array.from({ length: n }, (_, i) => i) : s.kept.slice(0, m);
  const weights = m < 0 ? s.weights.subarray(0, n) : s.keptWeights.subarray(0, m);
  let total = 0;
  for (let j = 0; j < weights.length; j++) total += weights[j]!;
  return { ids, probs: Float64Array.from(weights, (x) => x / total) };
}

/** Draw one token from a logits row with `rng`; `logprob` is log softmax(z / T)[token] before filtering (T = 1 when greedy). */
export function sampleToken(logits: ArrayLike<number>, params: SamplingParams, rng: Rng, offset = 0, length = logits.length - offset): { token: number; logprob: number } {
  checkSamplingParams('sampleToken', params, length);
  return sampleRow(logits, offset, length, params, rng, new Scratch(length));
}

function checkSamplingParams(where: string, p: SamplingParams, vocab: number): void {
  if (typeof p.temperature !== 'number' || !Number.isFinite(p.temperature) || p.temperature < 0) {
    throw new Error(`${where}: temperature must be a finite number >= 0 (0 = greedy), got ${p.temperature}`);
  }
  if (p.topK !== undefined && (!Number.isInteger(p.topK) || p.topK < 0)) {
    throw new Error(`${where}: topK must be an integer >= 0 (0 = off), got ${p.topK}`);
  }
  if (p.topP !== undefined && (typeof p.topP !== 'number' || !(p.topP > 0 && p.topP <= 1))) {
    throw new Error(`${where}: topP must be in (0, 1] (1 = off), got ${p.topP}`);
  }
  if (p.vocabLimit !== undefined && (!Number.isInteger(p.vocabLimit) || p.vocabLimit < 1 || p.vocabLimit > vocab)) {
    throw new Error(`${where}: vocabLimit must be an integer in [1, ${vocab}] (the vocabulary size), got ${p.vocabLimit}`);
  }
  if (vocab < 1) throw new Error(`${where}: the logits row is empty`);
}

// ---------------------------------------------------------------------------------------
// Generation

export interface GenerateOptions extends SamplingParams {
  /** K completions per prompt, group-contiguous: completion i*K + k belongs to prompt i. GRPO typically 4..16. */
  numGenerations: number;
  /** Most tokens generated per completion (EOS / stop token included). */
  maxNewTokens: number;
  /** Generation of a sequence stops at any of these ids (kept in the completion). */
  eosTokenId: number | number[];
  /** Id used for left padding of prompts (masked out of attention) and for ended rows. */
  padTokenId: number;
  /** Stop strings, checked on `decode(completion ids so far)` after every token. */
  stop?: { strings: string[]; decode: (ids: number[]) => string };
  /** Source of every draw; each sequence gets its own `rng.fork()`. */
  rng: Rng;
  /** Most sequences per forward (bounds the KV cache's memory); default all of them. */
  batchSize?: number;
}

/** Why a completion ended. */
export type FinishReason = 'eos' | 'stop' | 'length';

export interface GenerationResult {
  /** The prompt of each completion (N = prompts x numGenerations entries; shared arrays within a group). */
  promptIds: number[][];
  /** Generated ids per completion, without padding; ends with the EOS / stop token when there was one. */
  completionIds: number[][];
  /** Per completion token: log softmax(logits / T) at the drawn id before top-k/top-p (T = 1 when greedy). */
  logprobs: Float32Array[];
  /** True where a completion hit maxNewTokens without EOS or a stop string. */
  truncated: boolean[];
  /** 'eos', 'stop' or 'length' per completion. */
  finishReasons: FinishReason[];
  /** K, as requested. */
  numGenerations: number;
  /** The padding id used (for `toPaddedBatch`). */
  padTokenId: number;
}

/**
 * K sampled completions for each prompt (token ids), with per-token log-probs; see the file
 * header for the exact procedure. Synchronous. Leaves no tensors behind.
 */
export function generate(model: CausalLM, prompts: number[][], options: GenerateOptions): GenerationResult {
  const plan = planGeneration(prompts, options, modelLimits(model));
  for (const chunk of plan.chunks()) {
    const backend = tfjsDecoder(model);
    try {
      const loop = decodeChunk(plan, chunk.s0, chunk.s1);
      let r = loop.next();
      while (!r.done) r = loop.next(runRequestSync(backend, r.value));
    } finally {
      backend.dispose();
    }
  }
  return plan.result;
}

/**
 * What a decoding engine provides to the shared generation loop (`generateWith`): a KV-cached
 * forward over a batch of rows that returns last-position logits [rows, V] as one
 * Float32Array. Methods may be synchronous or return promises.
 */
export interface DecodeBackend {
  /**
   * Start a cache for `U` left-padded prompts ids/mask [U, width] (mask 1 = real token) with
   * room for `maxLength` positions, and return the logits of each prompt's last position.
   */
  prefill(ids: Int32Array, mask: Int32Array, U: number, width: number, maxLength: number): Float32Array | Promise<Float32Array>;
  /** Keep cache rows `rows`, in that order (rows may repeat: prompts fanned out to K completions). */
  selectRows(rows: Int32Array): void | Promise<void>;
  /** Append one real token per row (`next`, length = current rows) and return the logits [rows, V]. */
  step(next: Int32Array): Float32Array | Promise<Float32Array>;
  dispose(): void;
}

/** The limits generation checks prompts against. */
export interface DecoderLimits {
  vocabSize: number;
  maxPositions: number;
  /** The config field holding maxPositions, for error messages (`n_positions`, `max_position_embeddings`). */
  positionsField: string;
}

export function modelLimits(model: CausalLM): DecoderLimits {
  return {
    vocabSize: model.dims.vocabSize,
    maxPositions: model.dims.maxPositions,
    positionsField: model.config.model_type === 'gpt2' ? 'n_positions' : 'max_position_embeddings',
  };
}

export interface GenerateWithOptions extends GenerateOptions {
  /** Checked between tokens: when aborted, generation stops and the promise rejects with the signal's reason. */
  signal?: AbortSignal;
}

/**
 * `generate` over any `DecodeBackend` (one backend per chunk of `batchSize` sequences, made
 * by `makeBackend`): the same procedure, seeds and results as the tfjs `generate`, with the
 * engine doing the forward passes. Between tokens the event loop runs (signal handlers,
 * progress) and `signal` is checked.
 */
export async function generateWith(
  makeBackend: () => DecodeBackend | Promise<DecodeBackend>,
  limits: DecoderLimits,
  prompts: number[][],
  options: GenerateWithOptions,
): Promise<GenerationResult> {
  const plan = planGeneration(prompts, options, limits);
  for (const chunk of plan.chunks()) {
    const backend = await makeBackend();
    try {
      const loop = decodeChunk(plan, chunk.s0, chunk.s1);
      let r = loop.next();
      while (!r.done) {
        options.signal?.throwIfAborted();
        r = loop.next(await runRequest(backend, r.value));
      }
    } finally {
      backend.dispose();
    }
  }
  return plan.result;
}

type DecodeRequest =
  | { op: 'prefill'; ids: Int32Array; mask: Int32Array; U: number; width: number; maxLength: number }
  | { op: 'select'; rows: Int32Array }
  | { op: 'step'; next: Int32Array };

function runRequestSync(b: DecodeBackend, q: DecodeRequest): Float32Array | null {
  const out = q.op === 'prefill' ? b.prefill(q.ids, q.mask, q.U, q.width, q.maxLength) : q.op === 'select' ? b.selectRows(q.rows) : b.step(q.next);
  if (out instanceof Promise) throw new Error('generate: this backend is asynchronous; use generateWith');
  return out ?? null;
}

async function runRequest(b: DecodeBackend, q: DecodeRequest): Promise<Float32Array | null> {
  const out = q.op === 'prefill' ? b.prefill(q.ids, q.mask, q.U, q.width, q.maxLength) : q.op === 'select' ? b.selectRows(q.rows) : b.step(q.next);
  return (await out) ?? null;
}

/** A `DecodeBackend` over a tfjs `CausalLM` and its `KVCache`. */
function tfjsDecoder(model: CausalLM): DecodeBackend {
  let cache: KVCache | null = null;
  return {
    prefill(ids, mask, U, width, maxLength) {
      cache = model.createCache(U, maxLength);
      const idsT = tf.tensor2d(ids, [U, width], 'int32');
      const maskT = tf.tensor2d(mask, [U, width], 'int32');
      const out = model.forwardCached(idsT, cache, { attentionMask: maskT, lastOnly: true }); // [U, 1, V]
      const logits = out.dataSync() as Float32Array;
      tf.dispose([idsT, maskT, out]);
      return logits;
    },
    selectRows(rows) {
      cache = selectRows(cache!, rows);
    },
    step(next) {
      const stepIds = tf.tensor2d(next, [next.length, 1], 'int32');
      const out = model.forwardCached(stepIds, cache!); // [B, 1, V]
      const logits = out.dataSync() as Float32Array;
      tf.dispose([stepIds, out]);
      return logits;
    },
    dispose() {
      cache?.dispose();
      cache = null;
    },
  };
}

/** Validated options, the per-sequence generators and the result being filled. */
interface GenerationPlan {
  prompts: number[][];
  o: ValidOptions;
  V: number;
  rngs: Rng[];
  result: GenerationResult;
  scratch: Scratch;
  chunks(): { s0: number; s1: number }[];
}

function planGeneration(prompts: number[][], options: GenerateOptions, limits: DecoderLimits): GenerationPlan {
  const V = limits.vocabSize;
  const o = validateGenerateOptions(options, V);
  checkPrompts('generate', prompts, limits, o.maxNewTokens);
  const K = o.numGenerations;
  const N = prompts.length * K;
  const rngs = Array.from({ length: N }, () => o.rng.fork());
  const result: GenerationResult = {
    promptIds: Array.from({ length: N }, (_, j) => prompts[Math.floor(j / K)]!),
    completionIds: Array.from({ length: N }, () => []),
    logprobs: new Array<Float32Array>(N),
    truncated: new Array<boolean>(N).fill(false),
    finishReasons: new Array<FinishReason>(N).fill('length'),
    numGenerations: K,
    padTokenId: o.padTokenId,
  };
  const bs = o.batchSize ?? N;
  return {
    prompts,
    o,
    V,
    rngs,
    result,
    scratch: new Scratch(V),
    chunks: () => Array.from({ length: Math.ceil(N / bs) }, (_, i) => ({ s0: i * bs, s1: Math.min(N, (i + 1) * bs) })),
  };
}

interface ValidOptions extends GenerateOptions {
  eos: Set<number>;
}

function validateGenerateOptions(options: GenerateOptions, V: number): ValidOptions {
  const w = 'generate';
  if (typeof options !== 'object' || options === null) throw new Error(`${w}: options must be an object`);
  checkSamplingParams(w, options, V);
  const intAtLeast = (name: string, v: unknown, min: number): void => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw new Error(`${w}: ${name} must be an integer >= ${min}, got ${String(v)}`);
  };
  intAtLeast('numGenerations', options.numGenerations, 1);
  intAtLeast('maxNewTokens', options.maxNewTokens, 1);
  if (options.batchSize !== undefined) intAtLeast('batchSize', options.batchSize, 1);
  const ids = Array.isArray(options.eosTokenId) ? options.eosTokenId : [options.eosTokenId];
  if (ids.length === 0) throw new Error(`${w}: eosTokenId must be an id or a non-empty list of ids`);
  ids.forEach((id, i) => {
    if (!Number.isInteger(id) || id < 0 || id >= V) throw new Error(`${w}: eosTokenId${Array.isArray(options.eosTokenId) ? `[${i}]` : ''} = ${id} is outside the model vocabulary [0, ${V})`);
  });
  if (!Number.isInteger(options.padTokenId) || options.padTokenId < 0 || options.padTokenId >= V) {
    throw new Error(`${w}: padTokenId = ${options.padTokenId} is outside the model vocabulary [0, ${V})`);
  }
  if (!options.rng || typeof (options.rng as Partial<Rng> | undefined)?.nextUint32 !== 'function') throw new Error(`${w}: options.rng must be an Rng`);
  if (options.stop) {
    const { strings, decode } = options.stop;
    if (!Array.isArray(strings) || typeof decode !== 'function') throw new Error(`${w}: stop must be { strings: string[]; decode: (ids) => string }`);
    strings.forEach((s, i) => {
      if (typeof s !== 'string' || s.length === 0) throw new Error(`${w}: stop.strings[${i}] must be a non-empty string, got ${JSON.stringify(s)}`);
    });
  }
  return { ...options, eos: new Set(ids) };
}

function checkPrompts(where: string, prompts: number[][], limits: DecoderLimits, extra: number): void {
  if (!Array.isArray(prompts) || prompts.length === 0) throw new Error(`${where}: prompts must be a non-empty array of token-id arrays`);
  const { vocabSize: V, maxPositions: maxPos, positionsField: field } = limits;
  prompts.forEach((p, i) => {
    if (!Array.isArray(p) || p.length === 0) throw new Error(`${where}: prompts[${i}] is empty (every prompt needs at least one token, e.g. BOS)`);
    for (let t = 0; t < p.length; t++) {
      const id = p[t]!;
      if (!Number.isInteger(id) || id < 0 || id >= V) throw new Error(`${where}: prompts[${i}][${t}] = ${id} is outside the model vocabulary [0, ${V})`);
    }
    if (p.length + extra > maxPos) {
      throw new Error(`${where}: prompts[${i}] has ${p.length} tokens; with ${extra} new tokens that is ${p.length + extra} positions, more than the model's ${field} (${maxPos})`);
    }
  });
}

/** A cache holding rows `rows` of `cache` (which is disposed). */
function selectRows(cache: KVCache, rows: Int32Array): KVCache {
  const out = new KVCache(rows.length, cache.maxLength, cache.numLayers);
  const picked = tf.tidy(() => {
    const idx = tf.tensor1d(rows, 'int32');
    return {
      keys: cache.keys.map((k) => tf.gather(k!, idx, 0)), // [B', Hkv, L, Dh]
      values: cache.values.map((v) => tf.gather(v!, idx, 0)), // [B', Hkv, L, Dh]
      mask: tf.gather(cache.mask!, idx, 0), // [B', L]
    };
  });
  out.update(picked.keys, picked.values, picked.mask);
  cache.dispose();
  return out;
}

/**
 * Sequences [s0, s1) of the group-contiguous layout, written into `plan.result`: a generator
 * that yields each forward it needs (prefill, row selection, decode step) and receives the
 * logits, so one loop serves synchronous and asynchronous engines.
 */
function* decodeChunk(plan: GenerationPlan, s0: number, s1: number): Generator<DecodeRequest, void, Float32Array | null> {
  const { prompts, o, V, rngs, result, scratch } = plan;
  const K = o.numGenerations;
  const firstPrompt = Math.floor(s0 / K);
  const U = Math.floor((s1 - 1) / K) - firstPrompt + 1; // distinct prompts in the chunk
  let width = 0;
  for (let u = 0; u < U; u++) width = Math.max(width, prompts[firstPrompt + u]!.length);

  // Prefill the distinct prompts, left-padded.
  const ids = new Int32Array(U * width).fill(o.padTokenId);
  const mask = new Int32Array(U * width);
  for (let u = 0; u < U; u++) {
    const p = prompts[firstPrompt + u]!;
    const pad = width - p.length;
    for (let t = 0; t < p.length; t++) {
      ids[u * width + pad + t] = p[t]!;
      mask[u * width + pad + t] = 1;
    }
  }
  let B = s1 - s0;
  let rows = Int32Array.from({ length: B }, (_, r) => s0 + r); // sequence index of each batch row
  const uniqueLogits = (yield { op: 'prefill', ids, mask, U, width, maxLength: width + o.maxNewTokens - 1 })!; // [U, V]
  let logits: Float32Array; // [B, V], row r = current sequence rows[r]
  if (U === B) {
    logits = uniqueLogits;
  } else {
    const fromUnique = rows.map((s) => Math.floor(s / K) - firstPrompt);
    logits = new Float32Array(B * V);
    for (let r = 0; r < B; r++) logits.set(uniqueLogits.subarray(fromUnique[r]! * V, (fromUnique[r]! + 1) * V), r * V);
    yield { op: 'select', rows: fromUnique };
  }

  const lps: number[][] = Array.from({ length: B }, () => []);
  const done = new Uint8Array(B);
  let numDone = 0;
  const next = new Int32Array(B);
  for (let step = 0; step < o.maxNewTokens; step++) {
    for (let r = 0; r < B; r++) {
      if (done[r]) continue;
      const s = rows[r]!;
      const { token, logprob } = sampleRow(logits, r * V, V, o, rngs[s]!, scratch);
      const completion = result.completionIds[s]!;
      completion.push(token);
      lps[s - s0]!.push(logprob);
      next[r] = token;
      let reason: FinishReason | null = null;
      if (o.eos.has(token)) reason = 'eos';
      else if (o.stop && o.stop.strings.length > 0) {
        const text = o.stop.decode(completion);
        if (o.stop.strings.some((x) => text.includes(x))) reason = 'stop';
      }
      if (reason) {
        result.finishReasons[s] = reason;
        done[r] = 1;
        numDone++;
      }
    }
    if (numDone === B || step === o.maxNewTokens - 1) break;

    // Drop ended rows once they are an eighth of the batch: one row gather of the cache
    // against forwards over rows whose output is thrown away.
    if (numDone > 0 && numDone * 8 >= B) {
      const keep = new Int32Array(B - numDone);
      let j = 0;
      for (let r = 0; r < B; r++) if (!done[r]) keep[j++] = r;
      yield { op: 'select', rows: keep };
      const nextRows = new Int32Array(keep.length);
      for (let i = 0; i < keep.length; i++) {
        const r = keep[i]!;
        nextRows[i] = rows[r]!;
        next[i] = next[r]!;
      }
      rows = nextRows;
      B = keep.length;
      done.fill(0);
      numDone = 0;
    }
    for (let r = 0; r < B; r++) if (done[r]) next[r] = o.padTokenId;
    logits = (yield { op: 'step', next: next.slice(0, B) })!;
  }
  for (let s = s0; s < s1; s++) {
    result.logprobs[s] = Float32Array.from(lps[s - s0]!);
    result.truncated[s] = result.finishReasons[s] === 'length';
  }
}

/**
 * Completions right-padded into one batch: ids [N, T] (pad id after the end), mask [N, T]
 * (1 on generated tokens), T = the longest completion.
 */
export function toPaddedBatch(result: Pick<GenerationResult, 'completionIds' | 'padTokenId'>): { ids: Int32Array; mask: Float32Array; T: number } {
  const N = result.completionIds.length;
  let T = 0;
  for (const c of result.completionIds) T = Math.max(T, c.length);
  const ids = new Int32Array(N * T).fill(result.padTokenId);
  const mask = new Float32Array(N * T);
  result.completionIds.forEach((c, i) => {
    ids.set(c, i * T);
    mask.fill(1, i * T, i * T + c.length);
  });
  return { ids, mask, T };
}

export interface GenerateTextOptions extends Omit<GenerateOptions, 'eosTokenId' | 'padTokenId' | 'stop'> {
  /** Default: the tokenizer's EOS id. */
  eosTokenId?: number | number[];
  /** Default: the tokenizer's padding id. */
  padTokenId?: number;
  /** Stop strings, matched on the completion decoded without special tokens. */
  stopStrings?: string[];
  /** Passed to `tokenizer.encode` for the prompts (default true: the tokenizer's BOS, if it adds one). */
  addSpecialTokens?: boolean;
}

export interface TextGenerationResult extends GenerationResult {
  /** The prompt text of each completion (N entries, group-contiguous). */
  prompts: string[];
  /** Each completion decoded without special tokens (so without EOS); it contains the stop string when one ended it. */
  texts: string[];
}

/**
 * `generate` on text prompts: encodes with `tokenizer`, samples only ids the tokenizer can
 * decode (below its vocabSize), and decodes the completions.
 */
export function generateText(model: CausalLM, tokenizer: Tokenizer, prompts: string[], options: GenerateTextOptions): TextGenerationResult {
  if (!Array.isArray(prompts) || prompts.some((p) => typeof p !== 'string')) throw new Error('generateText: prompts must be an array of strings');
  const V = model.dims.vocabSize;
  if (tokenizer.vocabSize > V) throw new Error(`generateText: the tokenizer has ${tokenizer.vocabSize} ids but the model's vocabulary only ${V}`);
  const { stopStrings, addSpecialTokens, eosTokenId, padTokenId, ...rest } = options;
  const encoded = prompts.map((p) => tokenizer.encode(p, { addSpecialTokens: addSpecialTokens ?? true }));
  const gen: GenerateOptions = {
    ...rest,
    eosTokenId: eosTokenId ?? tokenizer.eosTokenId,
    padTokenId: padTokenId ?? tokenizer.padTokenId,
    vocabLimit: Math.min(options.vocabLimit ?? tokenizer.vocabSize, tokenizer.vocabSize),
  };
  if (stopStrings && stopStrings.length > 0) {
    gen.stop = { strings: stopStrings, decode: (ids) => tokenizer.decode(ids, { skipSpecialTokens: true }) };
  }
  const result = generate(model, encoded, gen);
  const K = result.numGenerations;
  return {
    ...result,
    prompts: result.completionIds.map((_, j) => prompts[Math.floor(j / K)]!),
    texts: result.completionIds.map((c) => tokenizer.decode(c, { skipSpecialTokens: true })),
  };
}

// ---------------------------------------------------------------------------------------
// The sampler interface the trainers draw rollouts through

/**
 * What a trainer needs from a generation engine: K completions per prompt with their
 * per-token log-probs, under `generate`'s contract (group-contiguous, seeded per sequence,
 * log-probs of softmax(logits / temperature) before filtering). The tfjs sampler below runs
 * `generate` on the live model; another engine implements the same interface and is handed
 * the current weights after each optimizer step.
 */
export interface Sampler {
  /** Engine name for run headers (e.g. "tfjs"). */
  readonly name: string;
  generate(prompts: number[][], options: GenerateOptions): Promise<GenerationResult>;
}

/** A `Sampler` over a tfjs `CausalLM`: it reads the model's variables, so it always samples the current weights. */
export function tfjsSampler(model: CausalLM): Sampler {
  return { name: 'tfjs', generate: async (prompts, options) => generate(model, prompts, options) };
}
