/**
 * GRPO: Group Relative Policy Optimization (Shao et al., "DeepSeekMath", 2024, section 4.1),
 * with the variants of DAPO (Yu et al., 2025: clip-higher, dynamic sampling, token-level
 * loss, overlong masking) and Dr. GRPO (Liu et al., 2025: no std scaling, constant
 * normaliser). The loop follows TRL's `GRPOTrainer`.
 *
 * One step (`collectStep` does 1-2, `optimizeStep` 3-4, `stepMetrics` the metrics line; the
 * shared stages are in rollout.ts, token-batch.ts, update.ts, evaluate.ts and run.ts):
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
 * several updates, logp_old is recomputed once, before the first update, by `logprobsNoGrad`
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
import { resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { ScoreOptions } from '../../rewards/combine.ts';
import type { RewardSpec } from '../../rewards/types.ts';
import type { AdamW } from '../engine/tfjs/optim.ts';
import { Rng } from '../core/rng.ts';
import type { CausalLM } from '../lm/model.ts';
import type { Sampler } from '../lm/sampler.ts';
import type { Tokenizer } from '../lm/tokenizer.ts';
import { gatherRows, policyTokenStats } from '../lm/token-stats.ts';
import { groupAdvantages, groupStats, type GroupScale } from '../objectives/group.ts';
import { grpoLoss, type GrpoLossConfig } from '../objectives/grpo-loss.ts';
import { maskedMean } from '../objectives/ppo.ts';
import { METRIC_NAMES } from '../report/metric-names.ts';
import { promptEvaluator } from './evaluate.ts';
import { type GrpoConfig, parseGrpoConfig } from './grpo-config.ts';
import type { EncodedPromptRow } from './prompts.ts';
import { openRlEngines, openSampler } from './sampling-engine.ts';
import { RlRunRecord, type RlRunOptions, type RlRunResult, type RlTrainerState, readRlTrainerState, rlLoopOptions, rlRunNotes, setupRlRun } from './rl-setup.ts';
import { type RolloutSummary, type SamplingOptions, type ScoredRollout, collectRollout, meanOf, rolloutMetrics, samplingOptions, summarizeRollouts } from './rollout.ts';
import { makeSchedule, runLoop } from './run.ts';
import { type TokenBatch, buildTokenBatch, minibatches } from './token-batch.ts';
import { STATE_FORMATS, saveTrainerCheckpoint } from './trainer-state.ts';
import { type TokenEngine, type TokenStats, asPolicy } from './token-engine.ts';

// ---------------------------------------------------------------------------------------
// Stages 1-2: sample and score, with DAPO's dynamic sampling

/** Completions of kept groups, group-contiguous, with their combined rewards. */
export interface StepBatch {
  rows: EncodedPromptRow[];
  promptIds: number[][];
  completionIds: number[][];
  truncated: boolean[];
  rewards: Float32Array;
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

/** The completions of groups `groups` of a scored rollout. */
function pickGroups({ rollout: r, scored }: ScoredRollout, groups: readonly number[]): StepBatch {
  const K = r.numGenerations;
  const idx = groups.flatMap((g) => Array.from({ length: K }, (_, k) => g * K + k));
  return {
    rows: groups.map((g) => r.rows[g]!),
    promptIds: idx.map((i) => r.promptIds[i]!),
    completionIds: idx.map((i) => r.completionIds[i]!),
    truncated: idx.map((i) => r.truncated[i]!),
    rewards: Float32Array.from(idx, (i) => scored.rewards[i]!),
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

/** What stages 1-2 of a step produce. */
export interface CollectedStep extends RolloutSummary {
  /** The groups to train on: all of them, or with dynamic sampling the informative ones (at most promptsPerStep). */
  batch: StepBatch;
}

/**
 * Stages 1-2: sample K completions for the next prompts (`nextPrompts` gives a batch of
 * rows) and score them. With dynamic sampling, groups whose rewards are all equal are
 * dropped and further batches sampled until `promptsPerStep` groups are kept or
 * `maxSamplingRounds` extra rounds have run.
 */
export async function collectStep(
  sampler: Sampler,
  tokenizer: Tokenizer,
  nextPrompts: () => EncodedPromptRow[],
  rewards: RewardSpec[],
  options: { sampling: SamplingOptions; score: ScoreOptions; dynamicSampling: boolean; maxSamplingRounds: number; promptsPerStep: number },
): Promise<CollectedStep> {
  const K = options.sampling.numGenerations;
  const rounds: ScoredRollout[] = [];
  const kept: StepBatch[] = [];
  let keptGroups = 0;
  for (let round = 0; ; round++) {
    const r = await collectRollout(sampler, tokenizer, nextPrompts(), rewards, options);
    rounds.push(r);
    const groups = options.dynamicSampling ? informativeGroups(r.scored.rewards, K).slice(0, options.promptsPerStep - keptGroups) : r.rollout.rows.map((_, g) => g);
    kept.push(pickGroups(r, groups));
    keptGroups += groups.length;
    if (!options.dynamicSampling || keptGroups >= options.promptsPerStep || round >= options.maxSamplingRounds) break;
  }
  return { ...summarizeRollouts(rounds), batch: joinBatches(kept) };
}

// ---------------------------------------------------------------------------------------
// Stages 3-4: advantages, loss and update

/** Group-relative advantages of flat, group-contiguous rewards, and the group statistics. */
export function rolloutAdvantages(rewards: Float32Array, numGenerations: number, scale: GroupScale): { advantages: Float32Array; fracZeroStd: number; meanGroupStd: number } {
  const advantages = groupAdvantages(rewards, numGenerations, { scale });
  const stats = groupStats(rewards, numGenerations);
  const meanGroupStd = stats.std.length === 0 ? 0 : stats.std.reduce((a, b) => a + b, 0) / stats.std.length;
  return { advantages, fracZeroStd: stats.fracZeroStd, meanGroupStd };
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

/**
 * The objective on the completions `rows` of `batch` (a scalar to minimise; call it inside
 * `tf.variableGrads`): the GRPO loss minus `entropyCoef` x the mean token entropy, plus its
 * metrics read back as numbers. `advantages` has one entry per completion of the batch;
 * `stats` are the policy's log-probs and entropies of those rows [n, T] (on either engine:
 * see token-engine.ts).
 */
export function grpoStatsObjective(
  stats: TokenStats,
  batch: TokenBatch,
  advantages: Float32Array,
  rows: readonly number[],
  options: Pick<UpdateOptions, 'loss' | 'entropyCoef'>,
): { loss: tf.Scalar; metrics: Omit<UpdateMetrics, 'loss' | 'gradNorm'> } {
  const T = batch.layout.completionLength;
  return tf.tidy(() => {
    const { logprobs, entropy } = stats as { logprobs: tf.Tensor2D; entropy: tf.Tensor2D }; // [n, T]
    const mask = gatherRows(batch.lossMask, T, rows, 'float32'); // [n, T]
    // logp_old: recomputed before the step's first update, or (one update per step) the
    // current log-probs read back as constants, so that no gradient flows through them.
    const oldLogprobs = batch.oldLogprobs ? gatherRows(batch.oldLogprobs, T, rows, 'float32') : tf.tensor2d(logprobs.dataSync() as Float32Array, logprobs.shape);
    const refLogprobs = batch.refLogprobs ? gatherRows(batch.refLogprobs, T, rows, 'float32') : undefined;
    const adv = tf.tensor1d(Float32Array.from(rows, (r) => advantages[r]!)); // [n]
    const { loss, metrics } = grpoLoss({ logprobs, oldLogprobs, refLogprobs, advantages: adv, mask }, options.loss);
    const meanEntropy = maskedMean(entropy, mask);
    const values = {
      kl: metrics.kl,
      entropy: meanEntropy.dataSync()[0]!,
      clipRatioLow: metrics.clipRatioLow,
      clipRatioHigh: metrics.clipRatioHigh,
      clipRatioRegion: metrics.clipRatioRegion,
    };
    const total = options.entropyCoef > 0 ? (tf.sub(loss, tf.mul(options.entropyCoef, meanEntropy)) as tf.Scalar) : loss;
    return { loss: total, metrics: values };
  });
}

/** `grpoStatsObjective` on a tfjs model's differentiable statistics (call inside `tf.variableGrads`). */
export function grpoObjective(
  model: CausalLM,
  batch: TokenBatch,
  advantages: Float32Array,
  rows: readonly number[],
  options: Pick<UpdateOptions, 'loss' | 'temperature' | 'entropyCoef'>,
): { loss: tf.Scalar; metrics: Omit<UpdateMetrics, 'loss' | 'gradNorm'> } {
  return tf.tidy(() => {
    const { logprobs, entropy } = policyTokenStats(model, batch.layout, rows, options.temperature);
    return grpoStatsObjective({ logprobs, entropy }, batch, advantages, rows, options);
  });
}

/** One AdamW update of the policy (a tfjs model, or an engine) on the completions `rows`. */
export async function grpoUpdate(policy: CausalLM | TokenEngine, optimizer: AdamW, batch: TokenBatch, advantages: Float32Array, rows: readonly number[], options: UpdateOptions): Promise<UpdateMetrics> {
  const engine = asPolicy(policy, options.temperature);
  const { loss, gradNorm, metrics } = await engine.step(optimizer, batch.layout, rows, (stats) => grpoStatsObjective(stats, batch, advantages, rows, options), options);
  return { loss, gradNorm, ...metrics };
}

/**
 * Stages 3-4: group advantages of the batch, then `numIterations` passes of minibatch
 * updates (see the file header for logp_old). Returns each update's metrics and the
 * reference model's seconds; an empty batch (dynamic sampling found nothing to learn from)
 * makes no update.
 */
export async function optimizeStep(
  policy: CausalLM | TokenEngine,
  optimizer: AdamW,
  reference: CausalLM | TokenEngine | null,
  batch: StepBatch,
  options: { numGenerations: number; scaleRewards: GroupScale; numIterations: number; miniBatchSize: number; maskTruncatedCompletions: boolean; padTokenId: number; update: UpdateOptions },
): Promise<{ updates: UpdateMetrics[]; referenceSeconds: number }> {
  if (batch.rows.length === 0) return { updates: [], referenceSeconds: 0 };
  const engine = asPolicy(policy, options.update.temperature);
  const { advantages } = rolloutAdvantages(batch.rewards, options.numGenerations, options.scaleRewards);
  const mbs = minibatches(batch.completionIds.length, options.miniBatchSize);
  const tokens = await buildTokenBatch(batch, {
    padTokenId: options.padTokenId,
    temperature: options.update.temperature,
    maskTruncatedCompletions: options.maskTruncatedCompletions,
    oldPolicy: options.numIterations * mbs.length > 1 ? engine : null,
    reference,
  });
  const updates: UpdateMetrics[] = [];
  for (let it = 0; it < options.numIterations; it++) {
    for (const mb of mbs) updates.push(await grpoUpdate(engine, optimizer, tokens, advantages, mb, options.update));
  }
  return { updates, referenceSeconds: tokens.seconds.reference };
}

/** The metrics line of one step (names from METRIC_NAMES; see docs/metrics.md). */
export function stepMetrics(
  collected: CollectedStep,
  updates: readonly UpdateMetrics[],
  options: { numGenerations: number; scaleRewards: GroupScale; learningRate: number; trainSeconds: number; referenceSeconds: number; stepSeconds: number },
): Record<string, number | undefined> {
  const sampled = rolloutAdvantages(collected.all.rewards, options.numGenerations, options.scaleRewards);
  const m = (f: (u: UpdateMetrics) => number): number | undefined => meanOf(updates, f);
  return {
    ...rolloutMetrics(collected, options.stepSeconds),
    [METRIC_NAMES.reward.std]: sampled.meanGroupStd,
    [METRIC_NAMES.reward.fracZeroStd]: sampled.fracZeroStd,
    [METRIC_NAMES.train.loss]: m((u) => u.loss),
    [METRIC_NAMES.train.kl]: m((u) => u.kl),
    [METRIC_NAMES.train.entropy]: m((u) => u.entropy),
    [METRIC_NAMES.train.clipRatioLow]: m((u) => u.clipRatioLow),
    [METRIC_NAMES.train.clipRatioHigh]: m((u) => u.clipRatioHigh),
    [METRIC_NAMES.train.clipRatioRegion]: m((u) => u.clipRatioRegion),
    [METRIC_NAMES.train.gradNorm]: m((u) => u.gradNorm),
    [METRIC_NAMES.train.learningRate]: options.learningRate,
    [METRIC_NAMES.time.trainS]: options.trainSeconds,
    [METRIC_NAMES.time.referenceS]: options.referenceSeconds,
    [METRIC_NAMES.time.policyUpdateS]: options.trainSeconds - options.referenceSeconds,
  };
}

// ---------------------------------------------------------------------------------------
// Checkpoints

export const GRPO_STATE_FORMAT = STATE_FORMATS.grpo;

/** Contents of a GRPO checkpoint's `trainer_state.json` (the fields every RL trainer saves). */
export type GrpoTrainerState = RlTrainerState<GrpoConfig> & { format: typeof GRPO_STATE_FORMAT };

/** Reads and checks a GRPO checkpoint's `trainer_state.json`. */
export async function readGrpoTrainerState(dir: string): Promise<GrpoTrainerState> {
  return (await readRlTrainerState(dir, GRPO_STATE_FORMAT, (c, source) => parseGrpoConfig(c, { source }))) as GrpoTrainerState;
}

// ---------------------------------------------------------------------------------------
// The training run

export type GrpoRunOptions = RlRunOptions;
export type GrpoRunResult = RlRunResult;

/** The run's independent random streams: prompt order and sampling. */
function runRngs(seed: number): { prompts: Rng; sampling: Rng } {
  const root = new Rng(seed);
  return { prompts: new Rng(root.nextUint32()), sampling: new Rng(root.nextUint32()) };
}

/**
 * Runs GRPO as `config` describes (see the file header), or continues the run saved in
 * `options.resumeFrom`. Writes `<outDir>/metrics.jsonl`, `samples.jsonl`, `config.json`,
 * `checkpoint-<step>/` every `saveEvery` steps and on Ctrl-C, `final/` after the last step,
 * and `report.html`. Call `initEngine` first to choose the tfjs backend.
 */
export async function trainGrpo(configInput: GrpoConfig, options: GrpoRunOptions = {}): Promise<GrpoRunResult> {
  const config = parseGrpoConfig(configInput, { source: 'trainGrpo config' });
  const saved = options.resumeFrom ? await readGrpoTrainerState(resolve(options.resumeFrom)) : null;
  const rngs = runRngs(config.seed);
  // The reference: a frozen copy of the starting policy, only when the KL term is on.
  const setup = await setupRlRun(config, saved, { ...options, needReference: config.beta > 0, promptRng: rngs.prompts, samplingRng: rngs.sampling });
  const { policy: model, tokenizer, reference, optimizer, trainRows, order } = setup;
  const closers: Array<() => Promise<void>> = [];
  try {
    const sampler = await openSampler(model, config.engine, config.device);
    closers.push(() => sampler.dispose());
    const engines = await openRlEngines({ policy: model, reference }, config.engine, config.device, { temperature: config.temperature, entropyGradient: config.entropyCoef > 0 });
    closers.push(() => engines.dispose());
    const schedule = makeSchedule(config);
    const sampling = samplingOptions(config, rngs.sampling);
    const update: UpdateOptions = {
      loss: { epsilon: config.epsilon, epsilonHigh: config.epsilonHigh ?? config.epsilon, beta: config.beta, lossType: config.lossType, maxCompletionLength: config.maxCompletionLength },
      temperature: config.temperature,
      entropyCoef: config.entropyCoef,
      gradClip: config.gradClip,
      learningRate: config.learningRate,
    };
    const record = new RlRunRecord(setup);

    const loop = await runLoop({
      command: 'grpo',
      config,
      ...rlLoopOptions(setup, saved, options),
      modelInfo: { ...model.summary(), prompts: trainRows.length, eval: setup.evalRows.length, reference: reference ? 'frozen copy of the start' : 'none (beta = 0)' },
      notes: rlRunNotes(setup, [`sampling: ${sampler.description}`, `updates: ${engines.description}`]),
      step: async (done, out) => {
        const tStep = performance.now();
        const learningRate = schedule(done);
        // 1-2. Sample K completions per prompt and score them (refilling dropped groups with dynamic sampling).
        const collected = await collectStep(sampler, tokenizer, () => order.next().map((i) => trainRows[i]!), setup.rewards, { ...config, sampling, score: setup.scoreOptions });
        record.checkRewards(done + 1, collected.all, out); // failures printed and written; stops when the rewards failed for too long
        // 3-4. Group advantages, then the policy updates.
        const tTrain = performance.now();
        const { updates, referenceSeconds } = await optimizeStep(engines.policy, optimizer, engines.reference, collected.batch, { ...config, padTokenId: tokenizer.padTokenId, update: { ...update, learningRate } });
        const trainSeconds = (performance.now() - tTrain) / 1000;
        const tensorBytes = tf.memory().numBytes;
        record.addStep(collected, trainSeconds);
        return {
          ...stepMetrics(collected, updates, { ...config, learningRate, trainSeconds, referenceSeconds, stepSeconds: (performance.now() - tStep) / 1000 }),
          [METRIC_NAMES.memory.tensorMb]: tensorBytes / 2 ** 20,
          [METRIC_NAMES.memory.rssMb]: process.memoryUsage().rss / 2 ** 20,
        };
      },
      evaluate: promptEvaluator(sampler, setup, config, record.onEval),
      save: async (dir, step) => {
        const state: GrpoTrainerState = { format: GRPO_STATE_FORMAT, version: 1, ...record.state(step, rngs.sampling, config) };
        await saveTrainerCheckpoint(dir, model, tokenizer, optimizer, state);
      },
    });
    return { ...record.result(config.outDir, loop), parameters: model.numParameters() };
  } finally {
    for (const close of closers.reverse()) await close();
    setup.dispose();
  }
}
