/**
 * GRPO: Group Relative Policy Optimization (Shao et al., "DeepSeekMath", 2024, section 4.1),
 * with the variants of DAPO (Yu et al., 2025: clip-higher, dynamic sampling, token-level
 * loss, overlong masking) and Dr. GRPO (Liu et al., 2025: no std scaling, constant
 * normaliser). The loop follows TRL's `GRPOTrainer`.
 *
 * One step (`collectStep` does 1-2, `optimizeStep` 3-4, `stepMetrics` the metrics line):
 *   1. sample   take `promptsPerStep` prompts (shuffled epochs) and draw K = `numGenerations`
 *               completions of each from the current policy pi_theta (`sampleRollout`);
 *   2. score    run every reward function on the completions, concurrently, and combine
 *               them with weights: r_i = sum_f w_f * v_f(i) (`scoreRollout`);
 *   (2b.)       with `dynamicSampling`, drop groups whose K rewards are all equal (they have
 *               zero advantage) and sample the next prompts to refill, at most
 *               `maxSamplingRounds` extra rounds (DAPO, section 3.2);
 *   3. advantages  A_i = (r_i - mean_group(r)) / (std + 1e-4), std by `scaleRewards`
 *               (`rolloutAdvantages` -> `groupAdvantages` in src/objectives);
 *   4. update   `numIterations` passes over the batch in minibatches of `miniBatchSize`
 *               completions, each an AdamW step on
 *                 L = grpoLoss(logp_theta, logp_old, logp_ref, A, mask) - entropyCoef * H
 *               with gradient clipping (`grpoUpdate`).
 *
 * The trained distribution is softmax(logits / temperature), the one the sampler draws from
 * (TRL divides the logits by the temperature in the same way).
 *
 * Old log-probs, exactly. The ratio exp(logp_theta - logp_old) needs the log-probs of the
 * policy that generated the samples. When a step makes exactly one optimizer update
 * (`numIterations` = 1 and one minibatch), that policy is the current one, so logp_old is
 * the training forward's own log-probs read back as constants (TRL: `old = logp.detach()`):
 * the ratio is exactly 1 and the gradient is exactly A * grad logp_theta. When a step makes
 * several updates, logp_old is recomputed once, before the first update, by `batchLogprobs`
 * (a full forward with the same layout and the same temperature as the training forward).
 * The sampler's own log-probs are not used for this: they come from the KV-cached,
 * one-token-at-a-time forward over a differently padded batch, which agrees with the full
 * forward only to float32 rounding (measured on the demo model: at most 1.9e-6 on wasm,
 * 9.5e-7 on cpu), so the first pass's ratio would not be exactly 1.
 *
 * The reference model (for the KL term) is a frozen copy of the starting policy. It is
 * never built when `beta` = 0. Checkpoints record the folder it was loaded from and the
 * SHA-256 of its weights, so a resumed run reloads the same reference.
 *
 * Checkpoints (`checkpoint-<step>/`, `final/`) are Hugging Face folders plus
 * `optimizer.safetensors` and `trainer_state.json` (step, prompt order and sampling RNG
 * states, config, reference record). A resumed run reproduces the uninterrupted one:
 * same samples, same updates, same metrics apart from timings.
 *
 * Deliberate simplifications: no gradient accumulation across micro-batches (a minibatch
 * is one forward/backward), one process, no separate inference engine; `dapo` normalises
 * by the minibatch's tokens (see src/objectives/ppo.ts).
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { parseJsonl } from '../../datasets/jsonl.ts';
import { loadRewardFunction, rewardMetrics, scoreCompletions, type ScoreOptions, type ScoreResult } from '../../rewards/combine.ts';
import type { RewardBatch, RewardSpec, RewardValue } from '../../rewards/types.ts';
import { ConfigError } from '../engine/config.ts';
import { AdamW, clipGradNorm, constantSchedule, type Schedule, warmupCosine, warmupLinear } from '../engine/optim.ts';
import { Rng, type RngState } from '../engine/rng.ts';
import { loadCausalLM } from '../lm/checkpoint.ts';
import type { CausalLM } from '../lm/model.ts';
import { type LogprobBatch, batchLogprobs, buildLogprobBatch, generate } from '../lm/sampler.ts';
import { type Tokenizer, loadTokenizer } from '../lm/tokenizer.ts';
import { categoricalEntropy } from '../objectives/entropy.ts';
import { groupAdvantages, groupStats, type GroupScale } from '../objectives/group.ts';
import { grpoLoss, type GrpoLossConfig } from '../objectives/grpo-loss.ts';
import { tokenLogprobs } from '../objectives/logprobs.ts';
import { maskedMean } from '../objectives/ppo.ts';
import { reportFromMetricsFile } from '../report/html.ts';
import { METRIC_NAMES } from '../report/metric-names.ts';
import type { MetricsWriter, SampleWriter } from '../report/metrics.ts';
import { type ProgressStream, TrainingProgress, printRunHeader } from '../report/progress.ts';
import { OPTIMIZER_FILE, TRAINER_STATE_FILE, listCheckpoints, modelWeightsSha256, openRunLogs, readTrainerStateJson, restoreOptimizerState, saveTrainerCheckpoint } from './checkpoint-state.ts';
import { type GrpoConfig, parseGrpoConfig } from './grpo-config.ts';
import { type WarmStartResult, warmStart, warmStartGenerate } from './grpo-warm-start.ts';
import { type BatchOrderState, ShuffledBatches, generateSftExamples } from './sft.ts';

// ---------------------------------------------------------------------------------------
// Data

/** One prompt with the dataset columns the reward functions may read. */
export interface GrpoRow {
  prompt: string;
  /** Every other column of the row (e.g. `answer`), passed to the reward functions. */
  columns: Record<string, unknown>;
  /** Where the row came from (`train.jsonl:12`), named in errors. */
  source: string;
}

/** A row with its prompt's token ids (the tokenizer's BOS included). */
export interface EncodedGrpoRow extends GrpoRow {
  promptIds: number[];
}

/** Column names the reward batch uses itself; a dataset column may not take them. */
const RESERVED_COLUMNS = ['prompts', 'completions', 'completionIds'];

/**
 * Reads a JSONL file of prompts: each line an object with a string `prompt`; the other
 * columns go to the reward functions. Every line must have the same columns (write `null`
 * where a value does not apply). Errors name the file, the line and the column.
 */
export async function loadGrpoRows(path: string): Promise<GrpoRow[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new Error(`cannot read data file ${path}: ${(e as Error).message}`);
  }
  const rows = parseJsonl(text, { source: path, requiredColumns: { prompt: 'string' } });
  if (rows.length === 0) throw new Error(`${path}: no prompts (the file is empty)`);
  const lineOf: number[] = [];
  text
    .replace(/^\uFEFF/, '')
    .split('\n')
    .forEach((line, i) => line.trim() !== '' && lineOf.push(i + 1));
  const all = new Map<string, number>(); // column -> first line that has it
  rows.forEach((row, i) => {
    for (const k of Object.keys(row)) if (!all.has(k)) all.set(k, lineOf[i]!);
  });
  for (const k of RESERVED_COLUMNS) {
    if (all.has(k)) throw new Error(`${path}:${all.get(k)}: column "${k}" is reserved for the reward batch itself; rename it`);
  }
  return rows.map((row, i) => {
    const at = `${path}:${lineOf[i]}`;
    for (const [k, first] of all) {
      if (!(k in row)) throw new Error(`${at}: missing column "${k}" (line ${first} has it; every line needs the same columns, null where a value does not apply)`);
    }
    const { prompt, ...columns } = row as { prompt: string } & Record<string, unknown>;
    return { prompt, columns, source: at };
  });
}

/**
 * Prompt token ids of each row. The prompt plus `maxCompletionLength` new tokens must fit the
 * model's context, and every id its vocabulary; errors name the row's source.
 */
export function encodeGrpoRows(rows: readonly GrpoRow[], tokenizer: Tokenizer, limits: { maxPositions: number; vocabSize: number; maxCompletionLength: number }): EncodedGrpoRow[] {
  return rows.map((row) => {
    const promptIds = tokenizer.encode(row.prompt);
    if (promptIds.length === 0) throw new Error(`${row.source}: the prompt encodes to no tokens (an empty prompt needs a tokenizer that adds BOS)`);
    const total = promptIds.length + limits.maxCompletionLength;
    if (total > limits.maxPositions) {
      throw new Error(
        `${row.source}: the prompt is ${promptIds.length} tokens; with maxCompletionLength ${limits.maxCompletionLength} that is ${total} positions, more than the model's context of ${limits.maxPositions}`,
      );
    }
    for (const id of promptIds) {
      if (id >= limits.vocabSize) throw new Error(`${row.source}: token id ${id} is outside the model's vocabulary of ${limits.vocabSize}`);
    }
    return { ...row, promptIds };
  });
}

/** Loads each configured reward function (`name:weight` entries already split), with its metric name. */
export async function loadRewardSpecs(entries: GrpoConfig['rewards'], baseDir: string = process.cwd()): Promise<RewardSpec[]> {
  const specs: RewardSpec[] = [];
  for (const [i, e] of entries.entries()) {
    let fn;
    try {
      fn = await loadRewardFunction(e.reward, { baseDir, config: e.config ?? undefined });
    } catch (err) {
      throw new Error(`rewards[${i}] ("${e.reward}"): ${(err as Error).message}`);
    }
    const name = e.name ?? fn.rewardName ?? e.reward;
    if (name.includes('/') || /\s/.test(name)) throw new Error(`rewards[${i}]: the metric name "${name}" must have no "/" or spaces; set "name"`);
    if (specs.some((s) => s.name === name)) throw new Error(`rewards[${i}]: a second reward named "${name}"; give one a "name"`);
    specs.push({ name, fn, weight: e.weight });
  }
  return specs;
}

/**
 * Runs every reward function once on the first row (with an empty completion) and turns a
 * "the batch has no column 'X'" failure into an error naming the data line and the column,
 * before any training. Other failures are left to training, where they are counted.
 */
export async function checkRewardColumns(rows: readonly GrpoRow[], rewards: RewardSpec[], options: ScoreOptions = {}): Promise<void> {
  const row = rows[0];
  if (!row) throw new Error('checkRewardColumns: no rows');
  const batch = rewardBatch([row], 1, [''], [[]]);
  const result = await scoreCompletions(batch, rewards, options);
  for (const err of result.errors) {
    const m = /no column '([^']+)'/.exec(err.message);
    if (m) {
      throw new Error(`${row.source}: no column "${m[1]}", which reward "${err.name}" reads (columns: prompt${Object.keys(row.columns).map((c) => `, ${c}`).join('')})`);
    }
  }
}

// ---------------------------------------------------------------------------------------
// Stage 1: sampling

export interface SamplingOptions {
  numGenerations: number;
  maxCompletionLength: number;
  temperature: number;
  topP: number;
  topK: number;
  /** Most sequences per sampler forward; default all. */
  batchSize?: number | null;
  rng: Rng;
}

/** K completions for each of a batch of prompts, group-contiguous (completion g*K + k answers prompt g). */
export interface Rollout {
  rows: EncodedGrpoRow[];
  numGenerations: number;
  promptIds: number[][];
  completionIds: number[][];
  /** Completions decoded without special tokens (so without EOS). */
  texts: string[];
  /** The sampler's per-token log-probs (softmax(logits / temperature), before top-k/top-p). */
  samplerLogprobs: Float32Array[];
  /** Completions cut at maxCompletionLength without EOS. */
  truncated: boolean[];
}

/** Samples `numGenerations` completions per row from `model` (no tensors left behind). */
export function sampleRollout(model: CausalLM, tokenizer: Tokenizer, rows: EncodedGrpoRow[], options: SamplingOptions): Rollout {
  const gen = generate(
    model,
    rows.map((r) => r.promptIds),
    {
      numGenerations: options.numGenerations,
      maxNewTokens: options.maxCompletionLength,
      temperature: options.temperature,
      topP: options.topP,
      topK: options.topK,
      eosTokenId: tokenizer.eosTokenId,
      padTokenId: tokenizer.padTokenId,
      vocabLimit: Math.min(tokenizer.vocabSize, model.dims.vocabSize),
      rng: options.rng,
      batchSize: options.batchSize ?? undefined,
    },
  );
  return {
    rows,
    numGenerations: options.numGenerations,
    promptIds: gen.promptIds,
    completionIds: gen.completionIds,
    texts: gen.completionIds.map((ids) => tokenizer.decode(ids, { skipSpecialTokens: true })),
    samplerLogprobs: gen.logprobs,
    truncated: gen.truncated,
  };
}

// ---------------------------------------------------------------------------------------
// Stage 2: scoring

/** The reward batch of K completions per row: prompts, completions, ids, and every column repeated K times. */
export function rewardBatch(rows: readonly GrpoRow[], numGenerations: number, texts: string[], completionIds: number[][]): RewardBatch {
  const N = rows.length * numGenerations;
  if (texts.length !== N || completionIds.length !== N) {
    throw new Error(`rewardBatch: ${rows.length} rows x ${numGenerations} generations = ${N} completions, got ${texts.length} texts and ${completionIds.length} id lists`);
  }
  const rowOf = (i: number): GrpoRow => rows[Math.floor(i / numGenerations)]!;
  const batch: RewardBatch = {
    prompts: Array.from({ length: N }, (_, i) => rowOf(i).prompt),
    completions: texts,
    completionIds,
  };
  const columns = new Set(rows.flatMap((r) => Object.keys(r.columns)));
  for (const c of columns) batch[c] = Array.from({ length: N }, (_, i) => rowOf(i).columns[c]);
  return batch;
}

/** Scores a rollout with every reward function (concurrently, errors captured; see rewards/combine.ts). */
export async function scoreRollout(rollout: Pick<Rollout, 'rows' | 'numGenerations' | 'texts' | 'completionIds'>, rewards: RewardSpec[], options: ScoreOptions = {}): Promise<ScoreResult> {
  return scoreCompletions(rewardBatch(rollout.rows, rollout.numGenerations, rollout.texts, rollout.completionIds), rewards, options);
}

/** Several scored batches as one (in order), e.g. the sampling rounds of one step. */
export function concatScores(parts: readonly ScoreResult[]): ScoreResult {
  const n = parts.reduce((a, p) => a + p.rewards.length, 0);
  const rewards = new Float32Array(n);
  const missing = new Uint8Array(n);
  const perFunction: Record<string, RewardValue[]> = {};
  let off = 0;
  for (const p of parts) {
    rewards.set(p.rewards, off);
    missing.set(p.missing, off);
    for (const [name, values] of Object.entries(p.perFunction)) (perFunction[name] ??= []).push(...values);
    off += p.rewards.length;
  }
  return { rewards, missing, perFunction, errors: parts.flatMap((p) => p.errors) };
}

// ---------------------------------------------------------------------------------------
// Stage 3: advantages

/** Group-relative advantages of flat, group-contiguous rewards, and the group statistics. */
export function rolloutAdvantages(rewards: Float32Array, numGenerations: number, scale: GroupScale): { advantages: Float32Array; fracZeroStd: number; meanGroupStd: number } {
  const advantages = groupAdvantages(rewards, numGenerations, { scale });
  const stats = groupStats(rewards, numGenerations);
  const meanGroupStd = stats.std.length === 0 ? 0 : stats.std.reduce((a, b) => a + b, 0) / stats.std.length;
  return { advantages, fracZeroStd: stats.fracZeroStd, meanGroupStd };
}

/** Indices of the groups whose K rewards are not all equal (the ones with a learning signal). */
export function informativeGroups(rewards: Float32Array, numGenerations: number): number[] {
  const { std } = groupStats(rewards, numGenerations);
  const out: number[] = [];
  std.forEach((s, g) => {
    if (s > 0) out.push(g);
  });
  return out;
}

// ---------------------------------------------------------------------------------------
// Stage 4: loss and update

/** Everything the loss needs for one step's batch, built once and reused across passes. */
export interface TrainBatch {
  /** [left-padded prompt | right-padded completion] rows (src/lm/sampler.ts). */
  layout: LogprobBatch;
  /** One advantage per completion, [N]. */
  advantages: Float32Array;
  /** [N, T] row-major: 1 on completion tokens that count in the loss (truncated ones removed when masked). */
  lossMask: Float32Array;
  /** [N, T] log-probs of the policy before this step's first update, when the step makes several updates; else null. */
  oldLogprobs: Float32Array | null;
  /** [N, T] reference-model log-probs, when beta > 0; else null. */
  refLogprobs: Float32Array | null;
}

export interface TrainBatchOptions {
  padTokenId: number;
  temperature: number;
  maskTruncatedCompletions: boolean;
  /** Compute logp_old with `batchLogprobs` (the step makes more than one update). */
  needOldLogprobs: boolean;
  /** The frozen reference model, or null when beta = 0. */
  reference: CausalLM | null;
}

/** Builds the loss inputs of a batch of completions: layout, mask, and the no-grad old/reference log-probs. */
export function buildTrainBatch(
  model: CausalLM,
  batch: { promptIds: number[][]; completionIds: number[][]; truncated: boolean[]; advantages: Float32Array },
  options: TrainBatchOptions,
): TrainBatch {
  const layout = buildLogprobBatch(batch.promptIds, batch.completionIds, options.padTokenId);
  const N = layout.numRows;
  const T = layout.completionLength;
  if (batch.advantages.length !== N) throw new Error(`buildTrainBatch: ${N} completions but ${batch.advantages.length} advantages`);
  const lossMask = layout.completionMask.slice();
  if (options.maskTruncatedCompletions) {
    batch.truncated.forEach((cut, i) => {
      if (cut) lossMask.fill(0, i * T, (i + 1) * T);
    });
  }
  const noGrad = (m: CausalLM): Float32Array => {
    const lp = batchLogprobs(m, layout, { temperature: options.temperature }); // [N, T]
    const out = lp.dataSync() as Float32Array;
    lp.dispose();
    return out;
  };
  return {
    layout,
    advantages: batch.advantages,
    lossMask,
    oldLogprobs: options.needOldLogprobs ? noGrad(model) : null,
    refLogprobs: options.reference ? noGrad(options.reference) : null,
  };
}

/** Rows `rows` of a row-major [N, cols] array as a [rows.length, cols] tensor. */
function gatherRows(data: Float32Array | Int32Array, cols: number, rows: readonly number[], dtype: 'float32' | 'int32'): tf.Tensor2D {
  const out = dtype === 'int32' ? new Int32Array(rows.length * cols) : new Float32Array(rows.length * cols);
  rows.forEach((r, i) => out.set(data.subarray(r * cols, (r + 1) * cols), i * cols));
  return tf.tensor2d(out, [rows.length, cols], dtype);
}

/**
 * Per-token log-probs and entropies of softmax(logits / temperature) of the completion
 * tokens of `rows` ([n, T] each; differentiable). Same layout as `batchLogprobs`: the logits
 * at positions P-1 .. P+T-2 score completion tokens 0 .. T-1.
 */
export function policyTokenStats(model: CausalLM, layout: LogprobBatch, rows: readonly number[], temperature: number): { logprobs: tf.Tensor2D; entropy: tf.Tensor2D } {
  const { promptLength: P, completionLength: T } = layout;
  const W = P + T;
  return tf.tidy(() => {
    const ids = gatherRows(layout.ids, W, rows, 'int32').slice([0, 0], [-1, W - 1]) as tf.Tensor2D; // [n, W-1]
    const mask = gatherRows(layout.attentionMask, W, rows, 'float32').slice([0, 0], [-1, W - 1]) as tf.Tensor2D; // [n, W-1]
    const hidden = model.hiddenStates(ids, { attentionMask: mask }); // [n, W-1, D]
    const logits = model.logits(tf.slice(hidden, [0, P - 1, 0], [-1, T, -1]) as tf.Tensor3D); // [n, T, V]
    const targets = gatherRows(layout.completionIds, T, rows, 'int32'); // [n, T]
    const logprobs = tokenLogprobs(logits, targets, temperature) as tf.Tensor2D; // [n, T]
    const entropy = categoricalEntropy(temperature === 1 ? logits : tf.div(logits, temperature)) as tf.Tensor2D; // [n, T]
    return { logprobs, entropy };
  });
}

export interface UpdateOptions {
  loss: GrpoLossConfig;
  temperature: number;
  entropyCoef: number;
  gradClip: number;
  learningRate: number;
}

export interface UpdateMetrics {
  loss: number;
  kl: number;
  entropy: number;
  clipRatioLow: number;
  clipRatioHigh: number;
  clipRatioRegion: number;
  gradNorm: number;
}

/** The loss diverged: the update was not applied. */
export class NonFiniteLossError extends Error {
  constructor(
    message: string,
    readonly metrics: UpdateMetrics,
  ) {
    super(message);
    this.name = 'NonFiniteLossError';
  }
}

/**
 * The objective on the completions `rows` of `batch` (a scalar to minimise; call it inside
 * `tf.variableGrads`): the GRPO loss minus `entropyCoef` x the mean token entropy, plus its
 * metrics read back as numbers.
 */
export function grpoObjective(
  model: CausalLM,
  batch: TrainBatch,
  rows: readonly number[],
  options: Pick<UpdateOptions, 'loss' | 'temperature' | 'entropyCoef'>,
): { loss: tf.Scalar; metrics: Omit<UpdateMetrics, 'loss' | 'gradNorm'> } {
  const T = batch.layout.completionLength;
  return tf.tidy(() => {
    const { logprobs, entropy } = policyTokenStats(model, batch.layout, rows, options.temperature); // [n, T]
    const mask = gatherRows(batch.lossMask, T, rows, 'float32'); // [n, T]
    // logp_old: recomputed before the step's first update, or (one update per step) the
    // current log-probs read back as constants, so that no gradient flows through them.
    const oldLogprobs = batch.oldLogprobs ? gatherRows(batch.oldLogprobs, T, rows, 'float32') : tf.tensor2d(logprobs.dataSync() as Float32Array, logprobs.shape);
    const refLogprobs = batch.refLogprobs ? gatherRows(batch.refLogprobs, T, rows, 'float32') : undefined;
    const advantages = tf.tensor1d(Float32Array.from(rows, (r) => batch.advantages[r]!)); // [n]
    const { loss, metrics } = grpoLoss({ logprobs, oldLogprobs, refLogprobs, advantages, mask }, options.loss);
    const meanEntropy = maskedMean(entropy, mask);
    const read = {
      kl: metrics.kl,
      entropy: meanEntropy.dataSync()[0]!,
      clipRatioLow: metrics.clipRatioLow,
      clipRatioHigh: metrics.clipRatioHigh,
      clipRatioRegion: metrics.clipRatioRegion,
    };
    const total = options.entropyCoef > 0 ? (tf.sub(loss, tf.mul(options.entropyCoef, meanEntropy)) as tf.Scalar) : loss;
    return { loss: total, metrics: read };
  });
}

/**
 * One AdamW update on the completions `rows` of `batch`: `grpoObjective`, gradient
 * clipping, then the step at `learningRate`. A non-finite loss or gradient norm throws
 * `NonFiniteLossError` before anything is applied.
 */
export function grpoUpdate(model: CausalLM, optimizer: AdamW, batch: TrainBatch, rows: readonly number[], options: UpdateOptions): UpdateMetrics {
  let read: Omit<UpdateMetrics, 'loss' | 'gradNorm'> | null = null;
  const { value, grads } = tf.variableGrads(() => {
    const out = grpoObjective(model, batch, rows, options);
    read = out.metrics;
    return out.loss;
  }, model.variables);
  const clipped = clipGradNorm(grads, options.gradClip);
  try {
    const metrics: UpdateMetrics = { loss: value.dataSync()[0]!, gradNorm: clipped.norm, ...read! };
    if (!Number.isFinite(metrics.loss) || !Number.isFinite(metrics.gradNorm)) {
      throw new NonFiniteLossError(`the loss is ${metrics.loss} and the gradient norm ${metrics.gradNorm}`, metrics);
    }
    // Inside tidy: the optimizer's first update creates its moments from temporaries.
    tf.tidy(() => optimizer.applyGradients(clipped.grads, options.learningRate));
    return metrics;
  } finally {
    tf.dispose([value, ...Object.values(grads), ...Object.values(clipped.grads)]);
  }
}

/** The minibatches of one pass over N completions: consecutive slices of `size` (0 = all). */
export function minibatches(N: number, size: number): number[][] {
  const mb = size > 0 ? size : N;
  const out: number[][] = [];
  for (let s = 0; s < N; s += mb) out.push(Array.from({ length: Math.min(mb, N - s) }, (_, i) => s + i));
  return out;
}

// ---------------------------------------------------------------------------------------
// Evaluation

export interface GrpoEvalSample {
  prompt: string;
  completion: string;
  rewards: Record<string, RewardValue>;
}

export interface GrpoEvalResult {
  /** Fraction of prompts whose greedy completion gets >= 1 from the accuracy reward. */
  accuracy: number;
  /** Mean combined reward of the greedy completions. */
  meanReward: number;
  numExamples: number;
  samples: GrpoEvalSample[];
}

/**
 * Greedy completions of `rows`, scored by every reward function; accuracy is decided by
 * the reward named `accuracyReward` (value >= 1 = correct).
 */
export async function evaluateGrpo(
  model: CausalLM,
  tokenizer: Tokenizer,
  rows: EncodedGrpoRow[],
  rewards: RewardSpec[],
  options: { maxCompletionLength: number; batchSize: number; accuracyReward: string; score?: ScoreOptions },
): Promise<GrpoEvalResult> {
  if (rows.length === 0) throw new Error('evaluateGrpo: no rows to evaluate');
  if (!rewards.some((r) => r.name === options.accuracyReward)) {
    throw new Error(`evaluateGrpo: accuracyReward "${options.accuracyReward}" is not one of the rewards (${rewards.map((r) => r.name).join(', ')})`);
  }
  const rollout = sampleRollout(model, tokenizer, rows, {
    numGenerations: 1,
    maxCompletionLength: options.maxCompletionLength,
    temperature: 0,
    topP: 1,
    topK: 0,
    batchSize: options.batchSize,
    rng: new Rng(0), // greedy: no draw depends on it
  });
  const scored = await scoreRollout(rollout, rewards, options.score);
  const values = scored.perFunction[options.accuracyReward]!;
  let correct = 0;
  let total = 0;
  const samples = rows.map((row, i) => {
    if ((values[i] ?? 0) >= 1) correct++;
    total += scored.rewards[i]!;
    const r: Record<string, RewardValue> = {};
    for (const [name, vs] of Object.entries(scored.perFunction)) r[name] = vs[i] ?? null;
    return { prompt: row.prompt, completion: rollout.texts[i]!, rewards: r };
  });
  return { accuracy: correct / rows.length, meanReward: total / rows.length, numExamples: rows.length, samples };
}

// ---------------------------------------------------------------------------------------
// Checkpoints

export const GRPO_STATE_FORMAT = 'rlvr-grpo-trainer-state';

/** Contents of a GRPO checkpoint's `trainer_state.json`. */
export interface GrpoTrainerState {
  format: typeof GRPO_STATE_FORMAT;
  version: 1;
  /** GRPO steps completed. */
  step: number;
  /** Prompt order: the data RNG state and the position in the current epoch. */
  promptOrder: BatchOrderState;
  /** State of the sampling RNG after the last completed step. */
  samplingRng: RngState;
  /** The starting policy, from which the reference model is re-derived: its folder and the SHA-256 of its weights. */
  initialModel: { dir: string; sha256: string };
  lastEval: { step: number; accuracy: number } | null;
  /** SHA-256 of the training prompts and columns, checked on resume. */
  dataFingerprint: string;
  config: GrpoConfig;
}

/** Reads and checks a GRPO checkpoint's `trainer_state.json`. */
export async function readGrpoTrainerState(dir: string): Promise<GrpoTrainerState> {
  const json = await readTrainerStateJson(dir, TRAINER_STATE_FILE, GRPO_STATE_FORMAT, 1);
  const path = join(dir, TRAINER_STATE_FILE);
  const step = json['step'];
  if (typeof step !== 'number' || !Number.isInteger(step) || step < 0) throw new Error(`${path}: "step" must be a non-negative integer, got ${JSON.stringify(step)}`);
  const order = json['promptOrder'] as BatchOrderState | undefined;
  if (!order || typeof order !== 'object' || !Array.isArray(order.epochRngState)) throw new Error(`${path}: "promptOrder" must hold { epoch, cursor, epochRngState }`);
  if (!Array.isArray(json['samplingRng']) || (json['samplingRng'] as unknown[]).length !== 4) throw new Error(`${path}: "samplingRng" must be the 4-word RNG state`);
  const init = json['initialModel'] as { dir?: unknown; sha256?: unknown } | undefined;
  if (!init || typeof init.dir !== 'string' || typeof init.sha256 !== 'string') throw new Error(`${path}: "initialModel" must hold { dir, sha256 }`);
  if (typeof json['dataFingerprint'] !== 'string') throw new Error(`${path}: "dataFingerprint" must be a string`);
  parseGrpoConfig(json['config'], { source: `${path} "config"` });
  return json as unknown as GrpoTrainerState;
}

/** The newest checkpoint (highest step) in a run folder, or null. */
export function latestGrpoCheckpoint(outDir: string): string | null {
  const all = listCheckpoints(outDir, TRAINER_STATE_FILE);
  return all.length ? all[all.length - 1]!.dir : null;
}

function dataFingerprint(rows: readonly GrpoRow[]): string {
  const h = createHash('sha256');
  for (const r of rows) h.update(JSON.stringify([r.prompt, r.columns])).update('\n');
  return h.digest('hex');
}

// ---------------------------------------------------------------------------------------
// One step, stage by stage

/** Completions of kept groups, group-contiguous, with their combined rewards. */
export interface StepBatch {
  rows: EncodedGrpoRow[];
  promptIds: number[][];
  completionIds: number[][];
  truncated: boolean[];
  rewards: Float32Array;
}

function pickGroups(r: Rollout, rewards: Float32Array, groups: readonly number[]): StepBatch {
  const K = r.numGenerations;
  const idx = groups.flatMap((g) => Array.from({ length: K }, (_, k) => g * K + k));
  return {
    rows: groups.map((g) => r.rows[g]!),
    promptIds: idx.map((i) => r.promptIds[i]!),
    completionIds: idx.map((i) => r.completionIds[i]!),
    truncated: idx.map((i) => r.truncated[i]!),
    rewards: Float32Array.from(idx, (i) => rewards[i]!),
  };
}

function joinBatches(parts: readonly StepBatch[]): StepBatch {
  return {
    rows: parts.flatMap((p) => p.rows),
    promptIds: parts.flatMap((p) => p.promptIds),
    completionIds: parts.flatMap((p) => p.completionIds),
    truncated: parts.flatMap((p) => p.truncated),
    rewards: Float32Array.from(parts.flatMap((p) => [...p.rewards])),
  };
}

/** The settings of one step, as `trainGrpo` derives them from the config. */
export interface StepOptions {
  sampling: SamplingOptions;
  score: ScoreOptions;
  dynamicSampling: boolean;
  maxSamplingRounds: number;
  promptsPerStep: number;
  scaleRewards: GroupScale;
  numIterations: number;
  miniBatchSize: number;
  maskTruncatedCompletions: boolean;
  padTokenId: number;
  update: UpdateOptions;
}

/** What stages 1-2 of a step produce. */
export interface CollectedStep {
  /** Every sampled completion's scores (all sampling rounds), for the reward metrics. */
  all: ScoreResult;
  /** Every sampled completion's length in tokens. */
  lengths: number[];
  /** How many sampled completions were cut at maxCompletionLength. */
  truncated: number;
  /** The groups to train on: all of them, or with dynamic sampling the informative ones (at most promptsPerStep). */
  batch: StepBatch;
  seconds: { generate: number; reward: number };
}

/**
 * Stages 1-2: sample K completions for the next prompts (`nextPrompts` gives a batch of
 * rows) and score them. With dynamic sampling, groups whose rewards are all equal are
 * dropped and further batches sampled until `promptsPerStep` groups are kept or
 * `maxSamplingRounds` extra rounds have run.
 */
export async function collectStep(
  model: CausalLM,
  tokenizer: Tokenizer,
  nextPrompts: () => EncodedGrpoRow[],
  rewards: RewardSpec[],
  o: Pick<StepOptions, 'sampling' | 'score' | 'dynamicSampling' | 'maxSamplingRounds' | 'promptsPerStep'>,
): Promise<CollectedStep> {
  const K = o.sampling.numGenerations;
  const scores: ScoreResult[] = [];
  const kept: StepBatch[] = [];
  const out: Omit<CollectedStep, 'all' | 'batch'> = { lengths: [], truncated: 0, seconds: { generate: 0, reward: 0 } };
  let keptGroups = 0;
  for (let round = 0; ; round++) {
    const rows = nextPrompts();
    let t = performance.now();
    const rollout = sampleRollout(model, tokenizer, rows, o.sampling);
    out.seconds.generate += (performance.now() - t) / 1000;
    t = performance.now();
    const scored = await scoreRollout(rollout, rewards, o.score);
    out.seconds.reward += (performance.now() - t) / 1000;
    scores.push(scored);
    for (const ids of rollout.completionIds) out.lengths.push(ids.length);
    out.truncated += rollout.truncated.filter(Boolean).length;
    const groups = o.dynamicSampling ? informativeGroups(scored.rewards, K).slice(0, o.promptsPerStep - keptGroups) : rows.map((_, g) => g);
    kept.push(pickGroups(rollout, scored.rewards, groups));
    keptGroups += groups.length;
    if (!o.dynamicSampling || keptGroups >= o.promptsPerStep || round >= o.maxSamplingRounds) break;
  }
  return { ...out, all: concatScores(scores), batch: joinBatches(kept) };
}

/**
 * Stages 3-4: group advantages of the batch, then `numIterations` passes of minibatch
 * updates (see the file header for logp_old). Returns each update's metrics; an empty batch
 * (dynamic sampling found nothing to learn from) makes no update.
 */
export function optimizeStep(
  model: CausalLM,
  optimizer: AdamW,
  reference: CausalLM | null,
  batch: StepBatch,
  o: Pick<StepOptions, 'sampling' | 'scaleRewards' | 'numIterations' | 'miniBatchSize' | 'maskTruncatedCompletions' | 'padTokenId' | 'update'>,
): UpdateMetrics[] {
  if (batch.rows.length === 0) return [];
  const { advantages } = rolloutAdvantages(batch.rewards, o.sampling.numGenerations, o.scaleRewards);
  const mbs = minibatches(batch.completionIds.length, o.miniBatchSize);
  const trainBatch = buildTrainBatch(model, { ...batch, advantages }, {
    padTokenId: o.padTokenId,
    temperature: o.update.temperature,
    maskTruncatedCompletions: o.maskTruncatedCompletions,
    needOldLogprobs: o.numIterations * mbs.length > 1,
    reference,
  });
  const updates: UpdateMetrics[] = [];
  for (let it = 0; it < o.numIterations; it++) {
    for (const mb of mbs) updates.push(grpoUpdate(model, optimizer, trainBatch, mb, o.update));
  }
  return updates;
}

/** The metrics line of one step (names from METRIC_NAMES; see docs/metrics.md). */
export function stepMetrics(
  collected: CollectedStep,
  updates: readonly UpdateMetrics[],
  o: { numGenerations: number; scaleRewards: GroupScale; learningRate: number; trainSeconds: number; stepSeconds: number },
): Record<string, number | undefined> {
  const mean = (xs: readonly number[]): number | undefined => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : undefined);
  const { all, lengths } = collected;
  const sampled = rolloutAdvantages(all.rewards, o.numGenerations, o.scaleRewards);
  const tokens = lengths.reduce((a, b) => a + b, 0);
  return {
    [METRIC_NAMES.reward.mean]: mean([...all.rewards]),
    [METRIC_NAMES.reward.std]: sampled.meanGroupStd,
    [METRIC_NAMES.reward.fracZeroStd]: sampled.fracZeroStd,
    ...rewardMetrics(all),
    [METRIC_NAMES.train.loss]: mean(updates.map((u) => u.loss)),
    [METRIC_NAMES.train.kl]: mean(updates.map((u) => u.kl)),
    [METRIC_NAMES.train.entropy]: mean(updates.map((u) => u.entropy)),
    [METRIC_NAMES.train.clipRatioLow]: mean(updates.map((u) => u.clipRatioLow)),
    [METRIC_NAMES.train.clipRatioHigh]: mean(updates.map((u) => u.clipRatioHigh)),
    [METRIC_NAMES.train.clipRatioRegion]: mean(updates.map((u) => u.clipRatioRegion)),
    [METRIC_NAMES.train.gradNorm]: mean(updates.map((u) => u.gradNorm)),
    [METRIC_NAMES.train.learningRate]: o.learningRate,
    [METRIC_NAMES.rollout.completionLengthMean]: mean(lengths),
    [METRIC_NAMES.rollout.completionLengthMin]: lengths.length ? Math.min(...lengths) : undefined,
    [METRIC_NAMES.rollout.completionLengthMax]: lengths.length ? Math.max(...lengths) : undefined,
    [METRIC_NAMES.rollout.truncatedRatio]: lengths.length ? collected.truncated / lengths.length : undefined,
    [METRIC_NAMES.time.generateS]: collected.seconds.generate,
    [METRIC_NAMES.time.rewardS]: collected.seconds.reward,
    [METRIC_NAMES.time.trainS]: o.trainSeconds,
    [METRIC_NAMES.throughput.tokensPerS]: tokens / Math.max(o.stepSeconds, 1e-9),
  };
}

// ---------------------------------------------------------------------------------------
// The training run

export interface GrpoRunOptions {
  /** A checkpoint folder (`checkpoint-<step>` or `final`) to continue from. */
  resumeFrom?: string;
  /** Reward functions to use instead of loading `config.rewards` (programmatic use). */
  rewards?: RewardSpec[];
  /** Folder reward module paths are resolved against; default the working directory. */
  baseDir?: string;
  /** Engine description for the run header; default the tfjs backend name. */
  engine?: string;
  /** Print nothing (header, progress, samples). */
  quiet?: boolean;
  /** Where the header, progress and samples go; default stdout. */
  stream?: ProgressStream;
  /** Finish the current step, save a checkpoint and return on Ctrl-C (SIGINT). Default true. */
  handleSigint?: boolean;
}

export interface GrpoRunResult {
  outDir: string;
  /** `<outDir>/final`, or the checkpoint written on interruption. */
  checkpointDir: string;
  /** Steps completed (the config's `steps` unless interrupted). */
  step: number;
  interrupted: boolean;
  /** The starting policy's folder (the reference model's source). */
  initialModelDir: string;
  warmStart: WarmStartResult | null;
  /** Every evaluation of this invocation, in step order (step 0 = the starting policy). */
  evals: Array<{ step: number; accuracy: number; meanReward: number }>;
  /** Wall-clock seconds of the loop, and its split. */
  seconds: number;
  time: { generate: number; reward: number; train: number; eval: number; checkpoint: number };
  /** Completion tokens sampled for training per second of generation time. */
  generatedTokensPerSecond: number;
  parameters: number;
  reportPath: string | null;
}

function makeSchedule(c: GrpoConfig): Schedule {
  if (c.lrSchedule === 'cosine') return warmupCosine(c.learningRate, c.warmupSteps, c.steps, c.minLrRatio);
  if (c.lrSchedule === 'linear') return warmupLinear(c.learningRate, c.warmupSteps, c.steps, c.minLrRatio);
  return constantSchedule(c.learningRate, c.warmupSteps);
}

/** The run's independent random streams: prompt order and sampling. */
function runRngs(seed: number): { prompts: Rng; sampling: Rng } {
  const root = new Rng(seed);
  return { prompts: new Rng(root.nextUint32()), sampling: new Rng(root.nextUint32()) };
}

/** Loads the training and held-out rows the config describes. */
async function loadData(config: GrpoConfig): Promise<{ train: GrpoRow[]; test: GrpoRow[] }> {
  const { trainFile, testFile, generate } = config.data;
  if (trainFile) return { train: await loadGrpoRows(trainFile), test: testFile ? await loadGrpoRows(testFile) : [] };
  const gen = generate ?? warmStartGenerate(config.model.warmStart);
  const { train, test } = generateSftExamples(gen);
  const toRow = (e: (typeof train)[number]): GrpoRow => ({ prompt: e.prompt, columns: { answer: e.answer ?? e.completion }, source: e.source });
  return { train: train.map(toRow), test: test.map(toRow) };
}

/** The reward functions, the accuracy reward's name, and the checked training and held-out rows. */
async function prepareRewardsAndData(
  config: GrpoConfig,
  options: Pick<GrpoRunOptions, 'rewards' | 'baseDir'>,
): Promise<{ rewards: RewardSpec[]; accuracyReward: string; scoreOptions: ScoreOptions; train: GrpoRow[]; test: GrpoRow[] }> {
  const rewards = options.rewards ?? (await loadRewardSpecs(config.rewards, options.baseDir));
  const accuracyReward = config.evalReward ?? rewards[0]!.name;
  if (!rewards.some((r) => r.name === accuracyReward)) {
    throw new ConfigError([`"evalReward" must name one of the rewards (${rewards.map((r) => r.name).join(', ')}), got "${accuracyReward}"`]);
  }
  const scoreOptions: ScoreOptions = { concurrency: config.rewardConcurrency, timeoutMs: config.rewardTimeoutMs };
  const { train, test } = await loadData(config);
  await checkRewardColumns(train, rewards, scoreOptions);
  if (test.length) await checkRewardColumns(test, rewards, scoreOptions);
  return { rewards, accuracyReward, scoreOptions, train, test };
}

/**
 * The starting policy's folder and the SHA-256 of its weights: the checkpoint's record on
 * resume (checked against the folder, since the reference model is re-derived from it), else
 * `model.modelDir`, else the SFT warm-start.
 */
async function startingPolicy(
  config: GrpoConfig,
  saved: GrpoTrainerState | null,
  o: { engine?: string; quiet: boolean; stream: ProgressStream; say: (line: string) => void },
): Promise<{ initialModelDir: string; initialSha: string; warm: WarmStartResult | null }> {
  let warm: WarmStartResult | null = null;
  let initialModelDir: string;
  if (saved) initialModelDir = saved.initialModel.dir;
  else if (config.model.modelDir) initialModelDir = resolve(config.model.modelDir);
  else {
    warm = await warmStart(config.model.warmStart, { engine: o.engine, quiet: o.quiet, stream: o.stream });
    initialModelDir = warm.modelDir;
    o.say(warm.cached ? `warm start: reusing ${warm.modelDir} (SFT ${warm.sftConfig.steps} steps)` : `warm start: SFT finished in ${warm.seconds.toFixed(0)} s -> ${warm.modelDir}`);
  }
  const initialSha = modelWeightsSha256(initialModelDir);
  if (saved && saved.initialModel.sha256 !== initialSha) {
    throw new Error(`cannot resume: the starting model ${initialModelDir} has changed since the run began (its weights' SHA-256 differs), so the reference model cannot be re-derived`);
  }
  return { initialModelDir, initialSha, warm };
}

/**
 * Runs GRPO as `config` describes (see the file header), or continues the run saved in
 * `options.resumeFrom`. Writes `<outDir>/metrics.jsonl`, `samples.jsonl`, `config.json`,
 * `checkpoint-<step>/` every `saveEvery` steps and on Ctrl-C, `final/` after the last step,
 * and `report.html`. Call `initEngine` first to choose the tfjs backend.
 */
export async function trainGrpo(configInput: GrpoConfig, options: GrpoRunOptions = {}): Promise<GrpoRunResult> {
  const config = parseGrpoConfig(configInput, { source: 'trainGrpo config' });
  const quiet = options.quiet ?? false;
  const stream = options.stream ?? process.stdout;
  const say = (line: string): void => {
    if (!quiet) stream.write(`${line}\n`);
  };
  const resumeFrom = options.resumeFrom ? resolve(options.resumeFrom) : undefined;
  const saved = resumeFrom ? await readGrpoTrainerState(resumeFrom) : null;
  if (saved && config.steps <= saved.step) {
    throw new ConfigError([`"steps" (${config.steps}) must be greater than the checkpoint's step (${saved.step}) to continue training`], 'resume');
  }

  // Rewards and data first: their errors come before any model work (the warm-start takes minutes).
  const { rewards, accuracyReward, scoreOptions, train, test } = await prepareRewardsAndData(config, options);
  const { initialModelDir, initialSha, warm } = await startingPolicy(config, saved, { engine: options.engine, quiet, stream, say });

  const { model } = await loadCausalLM(resumeFrom ?? initialModelDir);
  const tokenizer = await loadTokenizer(resumeFrom ?? initialModelDir);
  // The reference: a frozen copy of the starting policy, only when the KL term is on.
  let reference: CausalLM | null = null;
  const optimizer = new AdamW(model.variables, {
    learningRate: config.learningRate,
    beta1: config.beta1,
    beta2: config.beta2,
    epsilon: config.adamEpsilon,
    weightDecay: config.weightDecay,
  });
  const outDir = resolve(config.outDir);
  let metrics: MetricsWriter | null = null;
  let sampleLog: SampleWriter | null = null;
  let progress: TrainingProgress | null = null;
  let interrupted = false;
  const onSigint = (): void => {
    if (interrupted) {
      process.stderr.write('\nsecond Ctrl-C: exiting without saving\n');
      process.exit(130);
    }
    interrupted = true;
    (progress ?? { log: say }).log('Ctrl-C: finishing this step, then saving a checkpoint (Ctrl-C again to quit at once)');
  };
  const handleSigint = options.handleSigint ?? true;
  if (handleSigint) process.on('SIGINT', onSigint);
  try {
    if (config.beta > 0) {
      reference = saved ? (await loadCausalLM(initialModelDir)).model : model.clone({ trainable: false });
    }
    if (tokenizer.vocabSize > model.dims.vocabSize) {
      throw new Error(`${initialModelDir}: the tokenizer has ${tokenizer.vocabSize} ids but the model's vocabulary only ${model.dims.vocabSize}`);
    }
    const limits = { maxPositions: model.dims.maxPositions, vocabSize: model.dims.vocabSize, maxCompletionLength: config.maxCompletionLength };
    const trainRows = encodeGrpoRows(train, tokenizer, limits);
    const evalRows = encodeGrpoRows(test.slice(0, config.evalSize), tokenizer, limits);
    const fingerprint = dataFingerprint(train);
    const rngs = runRngs(config.seed);
    const order = new ShuffledBatches(trainRows.length, config.promptsPerStep, rngs.prompts);
    const samplingRng = rngs.sampling;
    let step = 0;
    let lastEval: GrpoTrainerState['lastEval'] = null;
    if (saved && resumeFrom) {
      if (saved.dataFingerprint !== fingerprint) {
        throw new Error(`cannot resume from ${resumeFrom}: the training prompts differ from the ones the checkpoint was trained on (fingerprint mismatch); check "data" in the config`);
      }
      restoreOptimizerState(model, optimizer, await readFile(join(resumeFrom, OPTIMIZER_FILE)), join(resumeFrom, OPTIMIZER_FILE));
      order.setState(saved.promptOrder);
      samplingRng.setState(saved.samplingRng);
      step = saved.step;
      lastEval = saved.lastEval;
    } else if (config.optimizerFromStart) {
      const path = join(initialModelDir, OPTIMIZER_FILE);
      if (!existsSync(path)) throw new ConfigError([`"optimizerFromStart" is true but the starting model ${initialModelDir} has no ${OPTIMIZER_FILE}`]);
      restoreOptimizerState(model, optimizer, await readFile(path), path);
    }

    const schedule = makeSchedule(config);
    ({ metrics, samples: sampleLog } = openRunLogs(outDir, config, saved ? saved.step : null));
    printRunHeader({
      title: saved ? `rlvr grpo (resumed at step ${saved.step} from ${resumeFrom})` : 'rlvr grpo',
      engine: options.engine ?? tf.getBackend(),
      modelInfo: {
        ...model.summary(),
        prompts: trainRows.length,
        eval: evalRows.length,
        reference: reference ? 'frozen copy of the start' : 'none (beta = 0)',
      },
      config: config as unknown as Record<string, unknown>,
      stream,
      quiet,
    });
    say(`starting policy: ${initialModelDir}`);
    say(`rewards: ${rewards.map((r) => `${r.name} x ${r.weight ?? 1}`).join(', ')}; accuracy from "${accuracyReward}"`);
    if (evalRows.length === 0) say('no held-out prompts (data.testFile is null): evaluation is skipped');

    const time = { generate: 0, reward: 0, train: 0, eval: 0, checkpoint: 0 };
    let generatedTokens = 0;
    const evals: GrpoRunResult['evals'] = [];
    const runEvaluation = async (at: number): Promise<void> => {
      const t0 = performance.now();
      const r = await evaluateGrpo(model, tokenizer, evalRows, rewards, {
        maxCompletionLength: config.maxCompletionLength,
        batchSize: config.evalBatchSize,
        accuracyReward,
        score: scoreOptions,
      });
      time.eval += (performance.now() - t0) / 1000;
      lastEval = { step: at, accuracy: r.accuracy };
      evals.push({ step: at, accuracy: r.accuracy, meanReward: r.meanReward });
      metrics!.log(at, { [METRIC_NAMES.eval.accuracy]: r.accuracy });
      progress?.update(at, { [METRIC_NAMES.eval.accuracy]: r.accuracy });
      const log = (line: string): void => (progress ? progress.log(line) : say(line));
      log(`step ${at}: eval/accuracy ${(100 * r.accuracy).toFixed(1)}% on ${r.numExamples} held-out prompts (mean reward ${r.meanReward.toFixed(3)})`);
      for (const s of r.samples.slice(0, config.logSamples)) {
        sampleLog!.log({ step: at, prompt: s.prompt, completion: s.completion, rewards: s.rewards });
        const rw = Object.entries(s.rewards).map(([k, v]) => `${k}=${v === null ? 'null' : Number(v.toFixed(3))}`).join(' ');
        log(`  ${JSON.stringify(s.prompt)} -> ${JSON.stringify(s.completion)}  ${rw}`);
      }
    };
    let lastCheckpoint: string | null = saved && resumeFrom ? resumeFrom : null;
    const checkpoint = async (dir: string): Promise<void> => {
      const t0 = performance.now();
      const state: GrpoTrainerState = {
        format: GRPO_STATE_FORMAT,
        version: 1,
        step,
        promptOrder: order.getState(),
        samplingRng: samplingRng.getState(),
        initialModel: { dir: initialModelDir, sha256: initialSha },
        lastEval,
        dataFingerprint: fingerprint,
        config,
      };
      await saveTrainerCheckpoint(dir, model, tokenizer, optimizer, state);
      lastCheckpoint = dir;
      time.checkpoint += (performance.now() - t0) / 1000;
    };

    const stepOptions: StepOptions = {
      sampling: {
        numGenerations: config.numGenerations,
        maxCompletionLength: config.maxCompletionLength,
        temperature: config.temperature,
        topP: config.topP,
        topK: config.topK,
        batchSize: config.samplingBatchSize,
        rng: samplingRng,
      },
      score: scoreOptions,
      dynamicSampling: config.dynamicSampling,
      maxSamplingRounds: config.maxSamplingRounds,
      promptsPerStep: config.promptsPerStep,
      scaleRewards: config.scaleRewards,
      numIterations: config.numIterations,
      miniBatchSize: config.miniBatchSize,
      maskTruncatedCompletions: config.maskTruncatedCompletions,
      padTokenId: tokenizer.padTokenId,
      update: {
        loss: {
          epsilon: config.epsilon,
          epsilonHigh: config.epsilonHigh ?? config.epsilon,
          beta: config.beta,
          lossType: config.lossType,
          maxCompletionLength: config.maxCompletionLength,
        },
        temperature: config.temperature,
        entropyCoef: config.entropyCoef,
        gradClip: config.gradClip,
        learningRate: config.learningRate,
      },
    };

    progress = new TrainingProgress({ total: config.steps, label: 'grpo', quiet, stream });
    progress.start(step);
    if (evalRows.length > 0 && !saved) await runEvaluation(0);
    const t0 = performance.now();
    while (step < config.steps) {
      const tStep = performance.now();
      const learningRate = schedule(step);
      // 1-2. Sample K completions per prompt and score them (refilling dropped groups with dynamic sampling).
      const collected = await collectStep(model, tokenizer, () => order.next().map((i) => trainRows[i]!), rewards, stepOptions);
      // 3-4. Group advantages, then the policy updates.
      const tTrain = performance.now();
      let updates: UpdateMetrics[];
      try {
        updates = optimizeStep(model, optimizer, reference, collected.batch, { ...stepOptions, update: { ...stepOptions.update, learningRate } });
      } catch (e) {
        if (!(e instanceof NonFiniteLossError)) throw e;
        const where = lastCheckpoint ? `the last good checkpoint is ${lastCheckpoint}` : 'no checkpoint had been written yet';
        throw new Error(`training stopped at step ${step + 1}: ${e.message}, so this update was not applied; ${where}. Lower the learning rate, check the rewards' scale, or set gradClip.`);
      }
      const trainSeconds = (performance.now() - tTrain) / 1000;
      time.generate += collected.seconds.generate;
      time.reward += collected.seconds.reward;
      time.train += trainSeconds;
      generatedTokens += collected.lengths.reduce((a, b) => a + b, 0);
      step++;

      const record = stepMetrics(collected, updates, {
        numGenerations: config.numGenerations,
        scaleRewards: config.scaleRewards,
        learningRate,
        trainSeconds,
        stepSeconds: (performance.now() - tStep) / 1000,
      });
      if (step % config.logEvery === 0 || step === config.steps) metrics.log(step, record);
      progress.update(step, record);

      // Let the event loop run (the loop is otherwise synchronous work and promise callbacks),
      // so that a pending Ctrl-C reaches its handler before the step's end-of-step checks.
      await new Promise<void>((done) => setImmediate(done));
      const last = step === config.steps;
      if (evalRows.length > 0 && ((config.evalEvery > 0 && step % config.evalEvery === 0) || last)) await runEvaluation(step);
      if (last) await checkpoint(join(outDir, 'final'));
      else if (interrupted || (config.saveEvery > 0 && step % config.saveEvery === 0)) await checkpoint(join(outDir, `checkpoint-${step}`));
      if (interrupted) break;
    }
    const seconds = (performance.now() - t0) / 1000;
    progress.stop();
    if (interrupted) say(`interrupted at step ${step}: saved ${lastCheckpoint}; continue with --resume`);
    metrics.close();
    sampleLog.close();
    let reportPath: string | null = null;
    if (config.report) {
      reportPath = (await reportFromMetricsFile(outDir, undefined, { title: `rlvr grpo: ${basename(outDir)}` })).outPath;
      say(`report: ${reportPath}`);
    }
    return {
      outDir,
      checkpointDir: lastCheckpoint ?? join(outDir, 'final'),
      step,
      interrupted,
      initialModelDir,
      warmStart: warm,
      evals,
      seconds,
      time,
      generatedTokensPerSecond: generatedTokens / Math.max(time.generate, 1e-9),
      parameters: model.numParameters(),
      reportPath,
    };
  } finally {
    if (handleSigint) process.off('SIGINT', onSigint);
    progress?.stop();
    metrics?.close();
    sampleLog?.close();
    optimizer.dispose();
    reference?.dispose();
    model.dispose();
  }
}
