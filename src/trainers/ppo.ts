/**
 * PPO with a learned critic for language models (Schulman et al., "Proximal Policy
 * Optimization Algorithms", 2017; Ouyang et al., "InstructGPT", 2022, for the token-level
 * setting), in the form verl, OpenRLHF and Open-Reasoner-Zero run it with verifier rewards.
 * The choices and their sources are in docs/ppo.md.
 *
 * One step (`ppoStep`; the shared stages are rollout.ts, token-batch.ts, update.ts,
 * evaluate.ts and run.ts):
 *   1. sample   `promptsPerStep` prompts x K = `numGenerations` completions from pi_theta;
 *   2. score    the verifiers' combined score s_i of each completion (minus
 *               `missingEosPenalty` when it never emitted EOS);
 *   3. forward  no-gradient passes: logp_old (the policy before this step's updates),
 *               logp_ref (the frozen starting policy), V_old (the critic), all [N, T];
 *   4. rewards  per token (`tokenRewards`, src/objectives): r_t = -klCoef * (logp_old - logp_ref)_t on every
 *               completion token (k1), plus s_i on the last one;
 *   5. GAE      `tokenGae` (src/objectives): advantages with lambda_actor (VAPO's
 *               length-adaptive lambda optional), critic targets R_t = A_t + V_old,t with
 *               lambda_critic (VC-PPO's decoupled GAE); the advantages are whitened over the
 *               batch's tokens;
 *   6. update   `ppoEpochs` passes over shuffled minibatches of `miniBatchSize` completions;
 *               each minibatch makes one critic step on the clipped value loss
 *                 0.5 * mean_t max((V - R)^2, (clip(V, V_old +- valueClip) - R)^2)
 *               and (after `criticWarmupSteps` steps) one policy step on
 *                 L = agg_t[-min(rho_t A_t, clip(rho_t, 1 - eps, 1 + epsHigh) A_t)]
 *                     + beta * mean_t k3(logp, logp_ref) - entropyCoef * H,
 *               rho_t = exp(logp_t - logp_old,t), each with its own AdamW.
 *
 * The critic is a separate model: a copy of the starting policy's trunk with a fresh scalar
 * head (value-head.ts), reading V(s_t) at the position before token t; the policy and the
 * critic never share parameters. Checkpoints hold the policy (Hugging Face folder plus
 * optimizer and trainer state) and `critic/` (its trunk as a Hugging Face folder,
 * `value_head.safetensors`, its optimizer), so a resumed run reproduces the uninterrupted one.
 *
 * Deliberate simplifications: the critic updates before the policy on each minibatch
 * (verl updates the critic on the whole batch first; the order does not change the step's
 * targets, which are fixed at step 3); no reward whitening (judged harmful in TRL's later
 * PPO work); no adaptive KL controller.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { type AdamW, constantSchedule } from '../engine/tfjs/optim.ts';
import { Rng, type RngState } from '../core/rng.ts';
import type { CausalLM } from '../lm/model.ts';
import { type ValueModel, gatherRows } from '../lm/token-stats.ts';
import { Critic, VALUE_HEAD_FILE } from '../lm/value-head.ts';
import { klK3 } from '../objectives/kl.ts';
import { aggregateLoss, clippedSurrogate, maskedMean, valueLoss } from '../objectives/ppo.ts';
import { explainedVariance } from '../objectives/returns.ts';
import { maskedWhiten, tokenGae, tokenRewards } from '../objectives/token-gae.ts';
import { METRIC_NAMES } from '../report/metric-names.ts';
import { promptEvaluator } from './evaluate.ts';
import { type PpoConfig, parsePpoConfig } from './ppo-config.ts';
import { openSampler, openRlEngines } from './sampling-engine.ts';
import { RlRunRecord, type RlRunOptions, type RlRunResult, type RlTrainerState, readRlTrainerState, rlLoopOptions, rlRunNotes, setupRlRun } from './rl-setup.ts';
import { type ScoredRollout, collectRollout, meanOf, rolloutMetrics, samplingOptions, summarizeRollouts } from './rollout.ts';
import { createAdamW, makeSchedule, runLoop } from './run.ts';
import { type TokenBatch, buildTokenBatch, shuffledMinibatches } from './token-batch.ts';
import { OPTIMIZER_FILE, STATE_FORMATS, optimizerStateBytes, restoreOptimizerState, saveTrainerCheckpoint } from './trainer-state.ts';
import { type TokenEngine, type TokenStats, asCritic, asPolicy } from './token-engine.ts';

// ---------------------------------------------------------------------------------------
// Stage 4-5: token rewards and advantages

/** The actor's advantages and the critic's targets of a step's batch, and the critic's health before the update. */
export interface PpoTargets {
  /** [N, T] actor advantages (whitened when configured), 0 off the loss mask. */
  advantages: Float32Array;
  /** [N, T] critic targets R_t. */
  returns: Float32Array;
  explainedVariance: number;
  valuesMean: number;
  returnsMean: number;
}

/** Stages 4-5: token rewards, decoupled GAE, whitening (see the file header). */
export function ppoTargets(batch: TokenBatch, scores: ArrayLike<number>, config: Pick<PpoConfig, 'klCoef' | 'gamma' | 'lambdaActor' | 'lambdaCritic' | 'lengthAdaptiveAlpha' | 'whitenAdvantages'>): PpoTargets {
  const { layout, lossMask, oldValues } = batch;
  if (!oldValues) throw new Error('ppoTargets: the token batch has no critic values');
  const gae = tokenGae({
    rewards: tokenRewards(batch, scores, config.klCoef),
    values: oldValues,
    mask: layout.completionMask,
    numRows: layout.numRows,
    gamma: config.gamma,
    lambdaActor: config.lambdaActor,
    lambdaCritic: config.lambdaCritic,
    lengthAdaptiveAlpha: config.lengthAdaptiveAlpha,
  });
  const on = (k: number): boolean => lossMask[k] === 1;
  const idx = Array.from({ length: lossMask.length }, (_, k) => k).filter(on);
  const pick = (a: Float32Array): Float32Array => Float32Array.from(idx, (k) => a[k]!);
  const mean = (a: Float32Array): number => (a.length ? a.reduce((s, x) => s + x, 0) / a.length : NaN);
  const advantages = idx.length > 0 && config.whitenAdvantages ? maskedWhiten(gae.advantages, lossMask) : gae.advantages.map((a, k) => (on(k) ? a : 0));
  return {
    advantages,
    returns: gae.returns,
    explainedVariance: explainedVariance(pick(oldValues), pick(gae.returns)),
    valuesMean: mean(pick(oldValues)),
    returnsMean: mean(pick(gae.returns)),
  };
}

// ---------------------------------------------------------------------------------------
// Stage 6: the critic's and the policy's updates

export interface CriticUpdateMetrics {
  valueLoss: number;
  valueClipRatio: number;
  gradNorm: number;
}

/** The clipped value loss of the critic's `values` [n, T] on the minibatch `rows` over its loss-mask tokens, and how often the clip is active. */
export function criticObjective(stats: TokenStats, batch: TokenBatch, returns: Float32Array, rows: readonly number[], valueClip: number): { loss: tf.Scalar; metrics: { valueClipRatio: number } } {
  const T = batch.layout.completionLength;
  return tf.tidy(() => {
    const values = stats['values']!; // [n, T]
    const mask = gatherRows(batch.lossMask, T, rows, 'float32');
    const oldValues = gatherRows(batch.oldValues!, T, rows, 'float32');
    const target = gatherRows(returns, T, rows, 'float32');
    const clip = valueClip > 0 ? valueClip : undefined;
    const lossValue = valueLoss(values, target, { oldValues, clipRange: clip, mask });
    // The clip is active where the clipped term is the larger one.
    const clipped = clip === undefined ? 0 : maskedMean(tf.cast(tf.greater(tf.squaredDifference(tf.add(oldValues, tf.clipByValue(tf.sub(values, oldValues), -clip, clip)), target), tf.squaredDifference(values, target)), 'float32'), mask).dataSync()[0]!;
    return { loss: lossValue, metrics: { valueClipRatio: clipped } };
  });
}

/** One critic step (a tfjs critic, or an engine) on the minibatch `rows`: the clipped value loss over its loss-mask tokens. */
export async function criticUpdate(
  critic: ValueModel | TokenEngine,
  optimizer: AdamW,
  batch: TokenBatch,
  returns: Float32Array,
  rows: readonly number[],
  options: { valueClip: number; learningRate: number; gradClip: number },
): Promise<CriticUpdateMetrics> {
  const engine = asCritic(critic);
  const { loss, gradNorm, metrics } = await engine.step(optimizer, batch.layout, rows, (stats) => criticObjective(stats, batch, returns, rows, options.valueClip), options);
  return { valueLoss: loss, gradNorm, valueClipRatio: metrics.valueClipRatio };
}

export interface PolicyUpdateMetrics {
  loss: number;
  gradNorm: number;
  kl: number;
  approxKl: number;
  entropy: number;
  clipRatioLow: number;
  clipRatioHigh: number;
}

type PolicyOptions = Pick<PpoConfig, 'temperature' | 'epsilon' | 'epsilonHigh' | 'beta' | 'entropyCoef' | 'lossType' | 'maxCompletionLength' | 'gradClip'> & { learningRate: number };

/** The policy's loss on the minibatch `rows` from its log-probs and entropies [n, T]: the clipped surrogate on token advantages, + beta x k3, - entropyCoef x H. */
export function policyObjective(stats: TokenStats, batch: TokenBatch, advantages: Float32Array, rows: readonly number[], options: PolicyOptions): { loss: tf.Scalar; metrics: Omit<PolicyUpdateMetrics, 'loss' | 'gradNorm'> } {
  const T = batch.layout.completionLength;
  return tf.tidy(() => {
    const { logprobs, entropy } = stats as { logprobs: tf.Tensor2D; entropy: tf.Tensor2D }; // [n, T]
    const mask = gatherRows(batch.lossMask, T, rows, 'float32');
    const old = gatherRows(batch.oldLogprobs!, T, rows, 'float32');
    const adv = gatherRows(advantages, T, rows, 'float32');
    const s = clippedSurrogate({ logprobs, oldLogprobs: old, advantages: adv }, { epsilon: options.epsilon, epsilonHigh: options.epsilonHigh ?? options.epsilon });
    let total = aggregateLoss(s.perElement, mask, options.lossType, options.maxCompletionLength);
    let kl = 0;
    if (batch.refLogprobs) {
      const k3 = maskedMean(klK3(logprobs, gatherRows(batch.refLogprobs, T, rows, 'float32')), mask);
      kl = k3.dataSync()[0]!;
      if (options.beta > 0) total = tf.add(total, tf.mul(options.beta, k3)) as tf.Scalar;
    }
    const meanEntropy = maskedMean(entropy, mask);
    if (options.entropyCoef > 0) total = tf.sub(total, tf.mul(options.entropyCoef, meanEntropy)) as tf.Scalar;
    const logRatio = tf.sub(logprobs, old);
    const approxKl = maskedMean(tf.sub(tf.sub(tf.exp(logRatio), 1), logRatio), mask); // k3 of KL(old || new)
    const read = (x: tf.Tensor): number => x.dataSync()[0]!;
    return {
      loss: total,
      metrics: { kl, approxKl: read(approxKl), entropy: read(meanEntropy), clipRatioLow: read(maskedMean(s.clippedLow, mask)), clipRatioHigh: read(maskedMean(s.clippedHigh, mask)) },
    };
  });
}

/** One policy step (a tfjs model, or an engine) on the minibatch `rows` (`policyObjective`). */
export async function policyUpdate(policy: CausalLM | TokenEngine, optimizer: AdamW, batch: TokenBatch, advantages: Float32Array, rows: readonly number[], options: PolicyOptions): Promise<PolicyUpdateMetrics> {
  const engine = asPolicy(policy, options.temperature);
  const { loss, gradNorm, metrics } = await engine.step(optimizer, batch.layout, rows, (stats) => policyObjective(stats, batch, advantages, rows, options), options);
  return { loss, gradNorm, ...metrics };
}

// ---------------------------------------------------------------------------------------
// One step

/** The models and optimizers a PPO step updates. */
export interface PpoModels {
  /** The policy: a tfjs model, or its engine (token-engine.ts). */
  policy: CausalLM | TokenEngine;
  policyOptimizer: AdamW;
  reference: CausalLM | TokenEngine | null;
  /** The critic: a tfjs trunk + head, or its engine. */
  critic: ValueModel | TokenEngine;
  criticOptimizer: AdamW;
}

/** Stages 3-6 on a scored rollout; returns the step's metrics (without the rollout's). */
export async function ppoStep(
  models: PpoModels,
  round: ScoredRollout,
  config: PpoConfig,
  options: { padTokenId: number; learningRate: number; criticLearningRate: number; trainPolicy: boolean; updateRng: Rng },
): Promise<Record<string, number | undefined>> {
  const { rollout, scored } = round;
  const scores = Float32Array.from(scored.rewards, (s, i) => (rollout.truncated[i] ? s - config.missingEosPenalty : s));
  const t0 = performance.now();
  const batch = await buildTokenBatch(rollout, {
    padTokenId: options.padTokenId,
    temperature: config.temperature,
    maskTruncatedCompletions: config.maskTruncatedCompletions,
    oldPolicy: models.policy,
    reference: models.reference,
    critic: models.critic,
  });
  const targets = ppoTargets(batch, scores, config);
  const critics: CriticUpdateMetrics[] = [];
  const policies: PolicyUpdateMetrics[] = [];
  let criticSeconds = 0;
  let policySeconds = 0;
  let peakBytes = tf.memory().numBytes;
  if (batch.lossMask.some((m) => m === 1)) {
    for (let epoch = 0; epoch < config.ppoEpochs; epoch++) {
      for (const mb of shuffledMinibatches(batch.layout.numRows, config.miniBatchSize, options.updateRng)) {
        let t = performance.now();
        critics.push(await criticUpdate(models.critic, models.criticOptimizer, batch, targets.returns, mb, { valueClip: config.valueClip, learningRate: options.criticLearningRate, gradClip: config.gradClip }));
        criticSeconds += (performance.now() - t) / 1000;
        if (options.trainPolicy) {
          t = performance.now();
          policies.push(await policyUpdate(models.policy, models.policyOptimizer, batch, targets.advantages, mb, { ...config, learningRate: options.learningRate }));
          policySeconds += (performance.now() - t) / 1000;
        }
        peakBytes = Math.max(peakBytes, tf.memory().numBytes);
      }
    }
  }
  const c = (f: (u: CriticUpdateMetrics) => number): number | undefined => meanOf(critics, f);
  const p = (f: (u: PolicyUpdateMetrics) => number): number | undefined => meanOf(policies, f);
  const finite = (x: number): number | undefined => (Number.isFinite(x) ? x : undefined);
  return {
    [METRIC_NAMES.train.loss]: p((u) => u.loss),
    [METRIC_NAMES.train.policyLoss]: p((u) => u.loss),
    [METRIC_NAMES.train.kl]: p((u) => u.kl),
    [METRIC_NAMES.train.approxKl]: p((u) => u.approxKl),
    [METRIC_NAMES.train.entropy]: p((u) => u.entropy),
    [METRIC_NAMES.train.clipRatio]: p((u) => u.clipRatioLow + u.clipRatioHigh),
    [METRIC_NAMES.train.clipRatioLow]: p((u) => u.clipRatioLow),
    [METRIC_NAMES.train.clipRatioHigh]: p((u) => u.clipRatioHigh),
    [METRIC_NAMES.train.gradNorm]: p((u) => u.gradNorm),
    [METRIC_NAMES.train.learningRate]: options.trainPolicy ? options.learningRate : 0,
    [METRIC_NAMES.critic.valueLoss]: c((u) => u.valueLoss),
    [METRIC_NAMES.critic.valueClipRatio]: c((u) => u.valueClipRatio),
    [METRIC_NAMES.critic.explainedVariance]: finite(targets.explainedVariance),
    [METRIC_NAMES.critic.valuesMean]: finite(targets.valuesMean),
    [METRIC_NAMES.critic.returnsMean]: finite(targets.returnsMean),
    [METRIC_NAMES.critic.gradNorm]: c((u) => u.gradNorm),
    [METRIC_NAMES.critic.learningRate]: options.criticLearningRate,
    [METRIC_NAMES.time.trainS]: (performance.now() - t0) / 1000,
    [METRIC_NAMES.time.referenceS]: batch.seconds.reference,
    [METRIC_NAMES.time.valuesS]: batch.seconds.old,
    [METRIC_NAMES.time.criticUpdateS]: criticSeconds,
    [METRIC_NAMES.time.policyUpdateS]: policySeconds,
    [METRIC_NAMES.memory.tensorMb]: peakBytes / 2 ** 20,
  };
}

// ---------------------------------------------------------------------------------------
// Checkpoints

export const PPO_STATE_FORMAT = STATE_FORMATS.ppo;
/** The critic's subfolder of a PPO checkpoint. */
export const CRITIC_DIR = 'critic';

/** Contents of a PPO checkpoint's `trainer_state.json`: the fields every RL trainer saves, plus the minibatch order. */
export type PpoTrainerState = RlTrainerState<PpoConfig> & {
  format: typeof PPO_STATE_FORMAT;
  /** The minibatch-order RNG after the last completed step. */
  updateRng: RngState;
};

/** Reads and checks a PPO checkpoint's `trainer_state.json` and that its critic folder is complete. */
export async function readPpoTrainerState(dir: string): Promise<PpoTrainerState> {
  const state = await readRlTrainerState(dir, PPO_STATE_FORMAT, (c, source) => parsePpoConfig(c, { source }), ['updateRng']);
  for (const f of ['config.json', 'model.safetensors', VALUE_HEAD_FILE, OPTIMIZER_FILE]) {
    if (!existsSync(join(dir, CRITIC_DIR, f))) throw new Error(`cannot resume from ${dir}: the critic's ${CRITIC_DIR}/${f} is missing`);
  }
  return state as unknown as PpoTrainerState;
}

/** The critic's files inside a checkpoint folder: its folder and its optimizer under `critic/`. */
async function criticFiles(critic: Critic, optimizer: AdamW): Promise<Record<string, string | Uint8Array>> {
  const files: Record<string, string | Uint8Array> = {};
  for (const [rel, content] of Object.entries(await critic.files())) files[`${CRITIC_DIR}/${rel}`] = content;
  files[`${CRITIC_DIR}/${OPTIMIZER_FILE}`] = optimizerStateBytes(critic, optimizer);
  return files;
}

// ---------------------------------------------------------------------------------------
// The training run

export type PpoRunOptions = RlRunOptions;

export interface PpoRunResult extends Omit<RlRunResult, 'parameters'> {
  /** Parameters of the policy and of the critic. */
  parameters: { policy: number; critic: number };
}

/** The run's independent random streams: prompt order, sampling, minibatch order, value-head init. */
function runRngs(seed: number): { prompts: Rng; sampling: Rng; update: Rng; head: Rng } {
  const root = new Rng(seed);
  return { prompts: new Rng(root.nextUint32()), sampling: new Rng(root.nextUint32()), update: new Rng(root.nextUint32()), head: new Rng(root.nextUint32()) };
}

/**
 * Runs PPO with a critic as `config` describes, or continues the run saved in
 * `options.resumeFrom`; the same outputs as `trainGrpo` plus the critic in each checkpoint.
 */
export async function trainPpo(configInput: PpoConfig, options: PpoRunOptions = {}): Promise<PpoRunResult> {
  const config = parsePpoConfig(configInput, { source: 'trainPpo config' });
  const saved = options.resumeFrom ? await readPpoTrainerState(resolve(options.resumeFrom)) : null;
  const rngs = runRngs(config.seed);
  const needReference = config.klCoef > 0 || config.beta > 0;
  const setup = await setupRlRun(config, saved, { ...options, needReference, promptRng: rngs.prompts, samplingRng: rngs.sampling });
  const { policy, tokenizer, reference, optimizer: policyOptimizer, trainRows, order, resumeFrom } = setup;
  const disposables: Array<{ dispose(): void }> = [setup];
  const closers: Array<() => Promise<void>> = [];
  try {
    // The critic: a trainable copy of the starting policy's trunk with a fresh head, or the checkpoint's.
    const critic = resumeFrom ? await Critic.load(join(resumeFrom, CRITIC_DIR)) : Critic.fromPolicy(policy, rngs.head, config.criticHeadInitStd ?? undefined);
    disposables.push(critic);
    const criticOptimizer = createAdamW(critic.variables, { ...config, learningRate: config.criticLearningRate });
    disposables.push(criticOptimizer);
    if (saved && resumeFrom) {
      const path = join(resumeFrom, CRITIC_DIR, OPTIMIZER_FILE);
      restoreOptimizerState(critic, criticOptimizer, await readFile(path), path);
      rngs.update.setState(saved.updateRng);
    }
    const engines = await openRlEngines({ policy, reference, critic }, config.engine, config.device, { temperature: config.temperature, entropyGradient: config.entropyCoef > 0 });
    closers.push(() => engines.dispose());
    const models: PpoModels = { policy: engines.policy, policyOptimizer, reference: engines.reference, critic: engines.critic!, criticOptimizer };

    // The policy's schedule spans its own steps, those after the critic's warm-up.
    const schedule = makeSchedule({ ...config, steps: config.steps - config.criticWarmupSteps });
    const criticSchedule = constantSchedule(config.criticLearningRate);
    const sampler = await openSampler(policy, config.engine, config.device);
    closers.push(() => sampler.dispose());
    const sampling = samplingOptions(config, rngs.sampling);
    const record = new RlRunRecord(setup);

    const loop = await runLoop({
      command: 'ppo',
      config,
      ...rlLoopOptions(setup, saved, options),
      modelInfo: { ...policy.summary(), critic: `${critic.trunk.config.model_type} + value head`, prompts: trainRows.length, eval: setup.evalRows.length, reference: reference ? 'frozen copy of the start' : 'none (klCoef = beta = 0)' },
      notes: rlRunNotes(setup, [
        `sampling: ${sampler.description}`,
        `updates: ${engines.description}`,
        'critic: a copy of the starting policy\'s trunk with a fresh value head',
        ...(config.criticWarmupSteps > 0 ? [`critic warm-up: the first ${config.criticWarmupSteps} steps train only the critic`] : []),
      ]),
      step: async (done, out) => {
        const tStep = performance.now();
        // The policy's schedule counts its own steps, after the critic's warm-up.
        const learningRate = schedule(Math.max(0, done - config.criticWarmupSteps));
        const round = await collectRollout(sampler, tokenizer, order.next().map((i) => trainRows[i]!), setup.rewards, { sampling, score: setup.scoreOptions });
        record.checkRewards(done + 1, round.scored, out);
        const metrics = await ppoStep(models, round, config, {
          padTokenId: tokenizer.padTokenId,
          learningRate,
          criticLearningRate: criticSchedule(done),
          trainPolicy: done >= config.criticWarmupSteps,
          updateRng: rngs.update,
        });
        const summary = summarizeRollouts([round]);
        record.addStep(summary, metrics[METRIC_NAMES.time.trainS] ?? 0);
        return { ...rolloutMetrics(summary, (performance.now() - tStep) / 1000), ...metrics, [METRIC_NAMES.memory.rssMb]: process.memoryUsage().rss / 2 ** 20 };
      },
      evaluate: promptEvaluator(sampler, setup, config, record.onEval),
      save: async (dir, step) => {
        const state: PpoTrainerState = { format: PPO_STATE_FORMAT, version: 1, ...record.state(step, rngs.sampling, config), updateRng: rngs.update.getState() };
        await saveTrainerCheckpoint(dir, policy, tokenizer, policyOptimizer, state, await criticFiles(critic, criticOptimizer));
      },
    });
    return { ...record.result(config.outDir, loop), parameters: { policy: policy.numParameters(), critic: critic.numParameters() } };
  } finally {
    for (const close of closers.reverse()) await close();
    for (const d of disposables.reverse()) d.dispose();
  }
}
