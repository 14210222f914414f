/**
 * The token batch of one step: the sampled completions laid out for the training forward
 * ([left-padded prompt | right-padded completion], `buildLogprobBatch`), the loss mask, and
 * the no-gradient quantities every update of the step compares against: the old policy's and
 * the reference model's log-probs, and (PPO) the critic's values, all [N, T] row-major.
 * Plus the minibatches an update pass draws from it, and SFT's right-padded batch of
 * [prompt | completion | EOS] sequences (`makeSftBatch`).
 */
import type { Rng } from '../core/rng.ts';
import type { EncodedSftExample } from './prompts.ts';
import type { CausalLM } from '../lm/model.ts';
import { type LogprobBatch, type ValueModel, buildLogprobBatch } from '../lm/token-stats.ts';
import { type TokenEngine, asCritic, asPolicy } from './token-engine.ts';

/** Everything a step's updates need, built once and reused across passes. */
export interface TokenBatch {
  /** [left-padded prompt | right-padded completion] rows. */
  layout: LogprobBatch;
  /** [N, T]: 1 on completion tokens that count in the loss (truncated completions removed when masked). */
  lossMask: Float32Array;
  /** [N, T] log-probs of the policy before the step's first update, when the step needs them; else null. */
  oldLogprobs: Float32Array | null;
  /** [N, T] frozen reference model log-probs, when there is a reference; else null. */
  refLogprobs: Float32Array | null;
  /** [N, T] the critic's values before the step's first update (PPO); else null. */
  oldValues: Float32Array | null;
  /** Seconds spent on the reference model and on the old policy / critic forwards. */
  seconds: { reference: number; old: number };
}

export interface TokenBatchOptions {
  padTokenId: number;
  temperature: number;
  /** Leave completions cut at the length limit out of the loss (DAPO's overlong filtering). */
  maskTruncatedCompletions: boolean;
  /** The policy (a tfjs model, or an engine), when logp_old must be recomputed (the step makes more than one update); else null. */
  oldPolicy: CausalLM | TokenEngine | null;
  /** The frozen reference model (or its engine), or null. */
  reference: CausalLM | TokenEngine | null;
  /** The critic (or its engine), for PPO's old values; else null. */
  critic?: ValueModel | TokenEngine | null;
}

/** Lays out a step's completions and computes its no-gradient log-probs and values (on the engines given). */
export async function buildTokenBatch(batch: { promptIds: number[][]; completionIds: number[][]; truncated: boolean[] }, options: TokenBatchOptions): Promise<TokenBatch> {
  const layout = buildLogprobBatch(batch.promptIds, batch.completionIds, options.padTokenId);
  const T = layout.completionLength;
  const lossMask = layout.completionMask.slice();
  if (options.maskTruncatedCompletions) {
    batch.truncated.forEach((cut, i) => {
      if (cut) lossMask.fill(0, i * T, (i + 1) * T);
    });
  }
  let t = performance.now();
  const oldLogprobs = options.oldPolicy ? await asPolicy(options.oldPolicy, options.temperature).noGrad(layout) : null;
  const oldValues = options.critic ? await asCritic(options.critic).noGrad(layout) : null;
  const old = (performance.now() - t) / 1000;
  t = performance.now();
  const refLogprobs = options.reference ? await asPolicy(options.reference, options.temperature).noGrad(layout) : null;
  return { layout, lossMask, oldLogprobs, refLogprobs, oldValues, seconds: { reference: (performance.now() - t) / 1000, old } };
}

/** The minibatches of one pass over N rows: consecutive slices of `size` (0 = all). */
export function minibatches(N: number, size: number): number[][] {
  const mb = size > 0 ? size : N;
  const out: number[][] = [];
  for (let s = 0; s < N; s += mb) out.push(Array.from({ length: Math.min(mb, N - s) }, (_, i) => s + i));
  return out;
}

/** The minibatches of one pass over N rows in a fresh random order drawn from `rng` (slices of `size`; 0 = all). */
export function shuffledMinibatches(N: number, size: number, rng: Rng): number[][] {
  const order = rng.permutation(N);
  return minibatches(N, size).map((mb) => mb.map((i) => order[i]!));
}

// ---------------------------------------------------------------------------------------
// SFT: right-padded supervised sequences

/** A padded training batch, row-major [size, length]. */
export interface SftBatch {
  size: number;
  /** Longest sequence in the batch minus one (inputs and targets are shifted by one). */
  length: number;
  /** Model inputs, right-padded with the pad id. */
  inputIds: Int32Array;
  /** Next-token targets (pad id on padding). */
  targets: Int32Array;
  /** 1 where the target is a completion token or the final EOS, 0 on prompt and padding targets. */
  lossMask: Float32Array;
  /** Non-padding input tokens (for throughput). */
  numTokens: number;
  /** Number of 1s in `lossMask`. */
  numTargets: number;
}

/** Right-pads `examples` into one batch (see `SftBatch`). */
export function makeSftBatch(examples: readonly Pick<EncodedSftExample, 'promptIds' | 'completionIds'>[], padTokenId: number): SftBatch {
  if (examples.length === 0) throw new Error('makeSftBatch: the batch has no examples');
  let T = 0;
  for (const ex of examples) {
    if (ex.promptIds.length === 0) throw new Error('makeSftBatch: an example has an empty prompt');
    T = Math.max(T, ex.promptIds.length + ex.completionIds.length - 1);
  }
  const B = examples.length;
  const inputIds = new Int32Array(B * T).fill(padTokenId);
  const targets = new Int32Array(B * T).fill(padTokenId);
  const lossMask = new Float32Array(B * T);
  let numTokens = 0;
  let numTargets = 0;
  examples.forEach((ex, b) => {
    const seq = [...ex.promptIds, ...ex.completionIds];
    const P = ex.promptIds.length;
    for (let t = 0; t < seq.length - 1; t++) {
      inputIds[b * T + t] = seq[t]!;
      targets[b * T + t] = seq[t + 1]!;
      if (t + 1 >= P) {
        lossMask[b * T + t] = 1; // target seq[t+1] is a completion token
        numTargets++;
      }
    }
    numTokens += seq.length - 1;
  });
  return { size: B, length: T, inputIds, targets, lossMask, numTokens, numTargets };
}
