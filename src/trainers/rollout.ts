/**
 * The rollout stage shared by the RL trainers (GRPO, PPO): load the reward functions and
 * the data, sample K completions per prompt through a `Sampler`, build the reward batch,
 * score it, and the rollout's metrics.
 *
 * Completions are group-contiguous: completion g*K + k answers prompt g. The reward batch
 * holds, per completion, its prompt, its text (decoded without special tokens), its ids and
 * every dataset column of its row (the contract in rewards/types.ts). Reward functions run
 * concurrently with a time limit; a failure is counted and that batch's values are null
 * (rewards/combine.ts).
 */
import { loadRewardFunction, rewardMetrics, scoreCompletions, type ScoreOptions, type ScoreResult } from '../../rewards/combine.ts';
import type { RewardBatch, RewardSpec, RewardValue } from '../../rewards/types.ts';
import { ConfigError } from '../core/config.ts';
import type { Rng } from '../core/rng.ts';
import type { Sampler } from '../lm/sampler.ts';
import type { Tokenizer } from '../lm/tokenizer.ts';
import { METRIC_NAMES } from '../report/metric-names.ts';
import { isDatasetFolder, pickEvalSplit } from '../../datasets/table.ts';
import { type EncodedPromptRow, type PromptRow, generatedPromptRows, loadPromptRows } from './prompts.ts';
import type { RlConfig } from './rl-config.ts';
import { warmStartGenerate } from './warm-start.ts';

// ---------------------------------------------------------------------------------------
// Rewards and data

/** Loads each configured reward function (`name:weight` entries already split), with its metric name. */
export async function loadRewardSpecs(entries: RlConfig['rewards'], baseDir: string = process.cwd()): Promise<RewardSpec[]> {
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
 * missing-column failure into an error naming the data line and the column, before any
 * training. Other failures are left to training, where they are counted.
 */
export async function checkRewardColumns(rows: readonly PromptRow[], rewards: RewardSpec[], options: ScoreOptions = {}): Promise<void> {
  const row = rows[0];
  if (!row) throw new Error('checkRewardColumns: no rows');
  const batch = rewardBatch([row], 1, [''], [[]]);
  const result = await scoreCompletions(batch, rewards, options);
  for (const err of result.errors) {
    if (err.missingColumn) {
      throw new Error(`${row.source}: no column "${err.missingColumn}", which reward "${err.name}" reads (columns: prompt${Object.keys(row.columns).map((c) => `, ${c}`).join('')})`);
    }
  }
}

/**
 * The training and held-out rows a config describes: its files or dataset folders (a
 * folder's held-out split is `data.evalSplit`, else its test or validation split), its
 * generator, or the warm-start preset's data. Held-out rows are read up to `evalSize`.
 */
export async function loadPromptData(config: Pick<RlConfig, 'data' | 'model'> & { evalSize?: number }): Promise<{ train: PromptRow[]; test: PromptRow[] }> {
  const { trainFile, testFile, generate } = config.data;
  if (!trainFile) return generatedPromptRows(generate ?? warmStartGenerate(config.model.warmStart));
  const d = config.data;
  const options = { columns: d.columns, format: d.format, chat: d.chat, system: d.system };
  const train = await loadPromptRows(trainFile, { ...options, split: d.split, maxRows: d.maxRows });
  const evalFrom = testFile ?? trainFile;
  const evalSplit = isDatasetFolder(evalFrom) ? pickEvalSplit(evalFrom, testFile === null ? d.split : null, d.evalSplit) : null;
  const test = testFile === null && evalSplit === null ? [] : await loadPromptRows(evalFrom, { ...options, ...(evalSplit ? { split: evalSplit } : {}), maxRows: config.evalSize ?? null });
  if (d.enableThinking !== null) {
    const plain = train.find((r) => typeof r.prompt === 'string');
    if (plain) throw new Error(`${plain.source}: "data.enableThinking" is set, but the prompts are plain text; it applies to chat messages (add --chat or --system, or use conversational prompts)`);
    const variables = { enable_thinking: d.enableThinking };
    for (const r of [...train, ...test]) r.templateVariables = { ...r.templateVariables, ...variables };
  }
  return { train, test };
}

/** What a trainer needs before any model work: the reward functions, the accuracy reward's name, and the checked rows. */
export interface RewardsAndData {
  rewards: RewardSpec[];
  accuracyReward: string;
  scoreOptions: ScoreOptions;
  train: PromptRow[];
  test: PromptRow[];
}

/**
 * Loads the rewards (or takes `rewards` given programmatically) and the data, and checks
 * that every column a reward reads exists, so that these errors come before the model loads
 * (a warm-start takes minutes).
 */
export async function prepareRewardsAndData(config: RlConfig, options: { rewards?: RewardSpec[]; baseDir?: string }): Promise<RewardsAndData> {
  const rewards = options.rewards ?? (await loadRewardSpecs(config.rewards, options.baseDir));
  const accuracyReward = config.evalReward ?? rewards[0]!.name;
  if (!rewards.some((r) => r.name === accuracyReward)) {
    throw new ConfigError([`"evalReward" must name one of the rewards (${rewards.map((r) => r.name).join(', ')}), got "${accuracyReward}"`]);
  }
  const scoreOptions: ScoreOptions = { concurrency: config.rewardConcurrency, timeoutMs: config.rewardTimeoutMs };
  const { train, test } = await loadPromptData(config);
  await checkRewardColumns(train, rewards, scoreOptions);
  if (test.length) await checkRewardColumns(test, rewards, scoreOptions);
  return { rewards, accuracyReward, scoreOptions, train, test };
}

// ---------------------------------------------------------------------------------------
// Sampling

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

/** The sampling settings of a config, drawing from `rng`. */
export function samplingOptions(config: RlConfig, rng: Rng): SamplingOptions {
  return {
    numGenerations: config.numGenerations,
    maxCompletionLength: config.maxCompletionLength,
    temperature: config.temperature,
    topP: config.topP,
    topK: config.topK,
    batchSize: config.samplingBatchSize,
    rng,
  };
}

/** K completions for each of a batch of prompts, group-contiguous (completion g*K + k answers prompt g). */
export interface Rollout {
  rows: EncodedPromptRow[];
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

/** Samples `numGenerations` completions per row through `sampler`. */
export async function sampleRollout(sampler: Sampler, tokenizer: Tokenizer, rows: EncodedPromptRow[], options: SamplingOptions): Promise<Rollout> {
  const gen = await sampler.generate(
    rows.map((r) => r.promptIds),
    {
      numGenerations: options.numGenerations,
      maxNewTokens: options.maxCompletionLength,
      temperature: options.temperature,
      topP: options.topP,
      topK: options.topK,
      eosTokenId: tokenizer.eosTokenId,
      padTokenId: tokenizer.padTokenId,
      vocabLimit: tokenizer.vocabSize,
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
// Scoring

/** The reward batch of K completions per row: prompts, completions, ids, and every column repeated K times. */
export function rewardBatch(rows: readonly PromptRow[], numGenerations: number, texts: string[], completionIds: number[][]): RewardBatch {
  const N = rows.length * numGenerations;
  if (texts.length !== N || completionIds.length !== N) {
    throw new Error(`rewardBatch: ${rows.length} rows x ${numGenerations} generations = ${N} completions, got ${texts.length} texts and ${completionIds.length} id lists`);
  }
  const rowOf = (i: number): PromptRow => rows[Math.floor(i / numGenerations)]!;
  // Conversational prompts (TRL's form): the prompt's messages, and each completion as [{ role: 'assistant', content }].
  const chat = rows.length > 0 && typeof rows[0]!.prompt !== 'string';
  const other = rows.find((r) => (typeof r.prompt !== 'string') !== chat);
  if (other) throw new Error(`rewardBatch: ${other.source} and ${rows[0]!.source} mix plain-text and conversational prompts in one batch`);
  const batch: RewardBatch = {
    prompts: Array.from({ length: N }, (_, i) => rowOf(i).prompt) as RewardBatch['prompts'],
    completions: chat ? texts.map((content) => [{ role: 'assistant', content }]) : texts,
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
// One sampling round and its metrics

/** One round of sampling and scoring, timed. */
export interface ScoredRollout {
  rollout: Rollout;
  scored: ScoreResult;
  seconds: { generate: number; reward: number };
}

/** Samples K completions of `rows` and scores them. */
export async function collectRollout(
  sampler: Sampler,
  tokenizer: Tokenizer,
  rows: EncodedPromptRow[],
  rewards: RewardSpec[],
  options: { sampling: SamplingOptions; score: ScoreOptions },
): Promise<ScoredRollout> {
  let t = performance.now();
  const rollout = await sampleRollout(sampler, tokenizer, rows, options.sampling);
  const generate = (performance.now() - t) / 1000;
  t = performance.now();
  const scored = await scoreRollout(rollout, rewards, options.score);
  return { rollout, scored, seconds: { generate, reward: (performance.now() - t) / 1000 } };
}

/** What the rollout metrics are computed from: every completion sampled this step (all rounds). */
export interface RolloutSummary {
  all: ScoreResult;
  /** Every sampled completion's length in tokens. */
  lengths: number[];
  /** How many sampled completions were cut at maxCompletionLength. */
  truncated: number;
  seconds: { generate: number; reward: number };
}

/** The summary of one or more sampling rounds. */
export function summarizeRollouts(rounds: readonly ScoredRollout[]): RolloutSummary {
  return {
    all: concatScores(rounds.map((r) => r.scored)),
    lengths: rounds.flatMap((r) => r.rollout.completionIds.map((ids) => ids.length)),
    truncated: rounds.reduce((n, r) => n + r.rollout.truncated.filter(Boolean).length, 0),
    seconds: {
      generate: rounds.reduce((s, r) => s + r.seconds.generate, 0),
      reward: rounds.reduce((s, r) => s + r.seconds.reward, 0),
    },
  };
}

const mean = (xs: readonly number[]): number | undefined => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : undefined);

/** The reward, rollout, sampling-time and throughput metrics of a step (names from METRIC_NAMES; docs/metrics.md). */
export function rolloutMetrics(summary: RolloutSummary, stepSeconds: number): Record<string, number | undefined> {
  const { all, lengths } = summary;
  const tokens = lengths.reduce((a, b) => a + b, 0);
  return {
    [METRIC_NAMES.reward.mean]: mean([...all.rewards]),
    ...rewardMetrics(all),
    [METRIC_NAMES.reward.errors]: all.errors.reduce((n, e) => n + e.count, 0),
    [METRIC_NAMES.rollout.completionLengthMean]: mean(lengths),
    [METRIC_NAMES.rollout.completionLengthMin]: lengths.length ? Math.min(...lengths) : undefined,
    [METRIC_NAMES.rollout.completionLengthMax]: lengths.length ? Math.max(...lengths) : undefined,
    [METRIC_NAMES.rollout.truncatedRatio]: lengths.length ? summary.truncated / lengths.length : undefined,
    [METRIC_NAMES.rollout.tokens]: tokens,
    [METRIC_NAMES.time.generateS]: summary.seconds.generate,
    [METRIC_NAMES.time.rewardS]: summary.seconds.reward,
    [METRIC_NAMES.time.stepS]: stepSeconds,
    [METRIC_NAMES.throughput.tokensPerS]: tokens / Math.max(stepSeconds, 1e-9),
  };
}

/** The mean of one field over a step's updates (undefined when there were none). */
export function meanOf<T>(items: readonly T[], field: (item: T) => number): number | undefined {
  return mean(items.map(field));
}
