/**
 * The start of a GRPO or PPO run, the same for both: read and check the checkpoint to resume
 * (its trainer state), check that the run folder can be written, load the rewards and data
 * and encode the prompts for the starting model from its config.json and tokenizer (their
 * errors come before any model work: a warm-start takes minutes), find the starting policy,
 * load the policy, its tokenizer and the frozen reference, and restore the optimizer and the
 * prompt order. Also the run options and result both trainers share.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { ScoreResult } from '../../rewards/combine.ts';
import type { RewardSpec } from '../../rewards/types.ts';
import { ConfigError } from '../core/config.ts';
import type { AdamW } from '../engine/tfjs/optim.ts';
import type { Rng, RngState } from '../core/rng.ts';
import { loadCausalLM, readModelDims } from '../lm/checkpoint.ts';
import type { CausalLM } from '../lm/model.ts';
import { type Tokenizer, loadTokenizer } from '../lm/tokenizer.ts';
import type { ProgressStream } from '../report/progress.ts';
import { type BatchOrderState, type EncodedPromptRow, ShuffledBatches, encodePromptRows, promptFingerprint } from './prompts.ts';
import type { RlConfig } from './rl-config.ts';
import { RewardFailureLog } from './reward-failures.ts';
import { type RewardsAndData, prepareRewardsAndData } from './rollout.ts';
import { getBackend } from '@tensorflow/tfjs';
import { type InterruptSignal, type RunLoopOptions, type RunLoopResult, type RunOutput, createAdamW } from './run.ts';
import { OPTIMIZER_FILE, TRAINER_STATE_FILE, checkOutDirWritable, checkRunFolder, checkStateStep, readTrainerStateJson, restoreOptimizerState } from './trainer-state.ts';
import { type WarmStartResult, startingPolicy, warmStartShape } from './warm-start.ts';

export interface RlRunOptions {
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
  /** Finish the current step, save a checkpoint and return on Ctrl-C (SIGINT), SIGTERM or SIGHUP. Default true. */
  handleSigint?: boolean;
  /** A fresh run replaces an earlier run in its folder instead of refusing it. Default false. */
  overwrite?: boolean;
}

export interface RlRunResult {
  outDir: string;
  /** `<outDir>/final`, or the checkpoint written on interruption. */
  checkpointDir: string;
  /** Steps completed (the config's `steps` unless interrupted). */
  step: number;
  interrupted: boolean;
  /** The signal that interrupted the run (SIGINT, SIGTERM, SIGHUP), or null. */
  signal: InterruptSignal | null;
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
  /** Parameters of the policy. */
  parameters: number;
  reportPath: string | null;
  /** Failed reward-function calls of this invocation, and the file that lists them. */
  rewardFailures: { count: number; path: string };
}

/** The fields of a GRPO or PPO `trainer_state.json`; each trainer adds its own. */
export interface RlTrainerState<C> {
  format: string;
  version: 1;
  /** Steps completed. */
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
  config: C;
}

/** Reads and checks an RL checkpoint's `trainer_state.json` of `format`; `rngs` names further 4-word RNG states it must hold. */
export async function readRlTrainerState<C>(dir: string, format: string, parse: (config: unknown, source: string) => C, rngs: readonly string[] = []): Promise<RlTrainerState<C> & Record<string, unknown>> {
  const json = await readTrainerStateJson(dir, TRAINER_STATE_FILE, format, 1);
  const path = join(dir, TRAINER_STATE_FILE);
  checkStateStep(json, path, 0);
  const order = json['promptOrder'] as BatchOrderState | undefined;
  if (!order || typeof order !== 'object' || !Array.isArray(order.epochRngState)) throw new Error(`${path}: "promptOrder" must hold { epoch, cursor, epochRngState }`);
  for (const k of ['samplingRng', ...rngs]) {
    if (!Array.isArray(json[k]) || (json[k] as unknown[]).length !== 4) throw new Error(`${path}: "${k}" must be the 4-word RNG state`);
  }
  const init = json['initialModel'] as { dir?: unknown; sha256?: unknown } | undefined;
  if (!init || typeof init.dir !== 'string' || typeof init.sha256 !== 'string') throw new Error(`${path}: "initialModel" must hold { dir, sha256 }`);
  if (typeof json['dataFingerprint'] !== 'string') throw new Error(`${path}: "dataFingerprint" must be a string`);
  parse(json['config'], `${path} "config"`);
  return json as unknown as RlTrainerState<C> & Record<string, unknown>;
}

/** Everything a GRPO or PPO run starts from. */
export interface RlSetup extends RewardsAndData {
  /** The resolved checkpoint folder being resumed, or undefined. */
  resumeFrom: string | undefined;
  initialModelDir: string;
  initialSha: string;
  warm: WarmStartResult | null;
  policy: CausalLM;
  tokenizer: Tokenizer;
  /** The frozen starting policy, when `needReference`; else null. */
  reference: CausalLM | null;
  optimizer: AdamW;
  trainRows: EncodedPromptRow[];
  evalRows: EncodedPromptRow[];
  fingerprint: string;
  order: ShuffledBatches;
  lastEval: RlTrainerState<unknown>['lastEval'];
  /** Where the run's reward failures are printed, written and counted. */
  failures: RewardFailureLog;
  /** Frees the policy, the reference and the optimizer. */
  dispose(): void;
}

/**
 * Prepares a run (see the file header). `saved` is the checkpoint's state (read with
 * `readRlTrainerState`) when resuming; the prompt order draws from `promptRng`, and on
 * resume `samplingRng` is restored too. The caller disposes the result.
 */
export async function setupRlRun(
  config: RlConfig & { steps: number },
  saved: RlTrainerState<unknown> | null,
  options: RlRunOptions & { needReference: boolean; promptRng: Rng; samplingRng: Rng },
): Promise<RlSetup> {
  const quiet = options.quiet ?? false;
  const stream = options.stream ?? process.stdout;
  const resumeFrom = options.resumeFrom ? resolve(options.resumeFrom) : undefined;
  if (saved && config.steps <= saved.step) {
    throw new ConfigError([`"steps" (${config.steps}) must be greater than the checkpoint's step (${saved.step}) to continue training`], 'resume');
  }
  if (saved) checkOutDirWritable(resolve(config.outDir));
  else checkRunFolder(resolve(config.outDir), options.overwrite ?? false);
  const data = await prepareRewardsAndData(config, options);
  const early = await encodeBeforeLoading(config, data, resumeFrom);
  const { initialModelDir, initialSha, warm } = await startingPolicy(config.model, saved?.initialModel ?? null, { engine: options.engine, trainEngine: config.engine, device: config.device, quiet, stream });
  const modelDir = resolve(resumeFrom ?? initialModelDir);
  const { model: policy } = await loadCausalLM(modelDir);
  const encoded = early.dir === modelDir ? early : null; // the same folder: its tokenizer and rows are the ones just checked
  const tokenizer = encoded?.tokenizer ?? (await loadTokenizer(modelDir));
  const optimizer = createAdamW(policy.variables, config);
  let reference: CausalLM | null = null;
  const dispose = (): void => {
    optimizer.dispose();
    reference?.dispose();
    policy.dispose();
  };
  try {
    if (options.needReference) reference = saved ? (await loadCausalLM(initialModelDir)).model : policy.clone({ trainable: false });
    if (tokenizer.vocabSize > policy.dims.vocabSize) {
      throw new Error(`${initialModelDir}: the tokenizer has ${tokenizer.vocabSize} ids but the model's vocabulary only ${policy.dims.vocabSize}`);
    }
    const limits = { maxPositions: policy.dims.maxPositions, vocabSize: policy.dims.vocabSize, maxCompletionLength: config.maxCompletionLength };
    const trainRows = encoded?.trainRows ?? encodePromptRows(data.train, tokenizer, limits);
    const evalRows = encoded?.evalRows ?? encodePromptRows(data.test.slice(0, config.evalSize), tokenizer, limits);
    const fingerprint = promptFingerprint(data.train);
    const order = new ShuffledBatches(trainRows.length, config.promptsPerStep, options.promptRng);
    if (saved && resumeFrom) {
      if (saved.dataFingerprint !== fingerprint) {
        throw new Error(`cannot resume from ${resumeFrom}: the training prompts differ from the ones the checkpoint was trained on (fingerprint mismatch); check "data" in the config`);
      }
      restoreOptimizerState(policy, optimizer, await readFile(join(resumeFrom, OPTIMIZER_FILE)), join(resumeFrom, OPTIMIZER_FILE));
      order.setState(saved.promptOrder);
      options.samplingRng.setState(saved.samplingRng);
    } else if (config.optimizerFromStart) {
      const path = join(initialModelDir, OPTIMIZER_FILE);
      if (!existsSync(path)) throw new ConfigError([`"optimizerFromStart" is true but the starting model ${initialModelDir} has no ${OPTIMIZER_FILE}`]);
      restoreOptimizerState(policy, optimizer, await readFile(path), path);
    }
    const failures = new RewardFailureLog(resolve(config.outDir), { maxFailedSteps: config.maxFailedRewardSteps, resumeFromStep: saved?.step ?? null });
    return { ...data, resumeFrom, initialModelDir, initialSha, warm, policy, tokenizer, reference, optimizer, trainRows, evalRows, fingerprint, order, lastEval: saved?.lastEval ?? null, failures, dispose };
  } catch (e) {
    dispose();
    throw e;
  }
}

/**
 * The prompts encoded for the starting model before any model loads, so that a prompt too
 * long for its context (or a character its tokenizer lacks) is an error now, not after
 * minutes of warm start: the model's config.json and tokenizer (the checkpoint's on resume),
 * or, for a warm start not trained yet, the ones it will have. `dir` is the folder they came
 * from (null when the model does not exist yet): `setupRlRun` reuses the rows when it loads
 * that same folder.
 */
async function encodeBeforeLoading(
  config: RlConfig,
  data: RewardsAndData,
  resumeFrom: string | undefined,
): Promise<{ dir: string | null; tokenizer: Tokenizer; trainRows: EncodedPromptRow[]; evalRows: EncodedPromptRow[] }> {
  const from = resumeFrom ?? (config.model.modelDir ? resolve(config.model.modelDir) : null);
  let shape: { dir: string | null; tokenizer: Tokenizer; maxPositions: number; vocabSize: number };
  if (from) {
    const dims = await readModelDims(from);
    shape = { dir: from, tokenizer: await loadTokenizer(from), maxPositions: dims.maxPositions, vocabSize: dims.vocabSize };
  } else {
    shape = await warmStartShape(config.model.warmStart, config.engine, config.device);
  }
  if (shape.tokenizer.vocabSize > shape.vocabSize) {
    throw new Error(`${shape.dir ?? 'the warm start'}: the tokenizer has ${shape.tokenizer.vocabSize} ids but the model's vocabulary only ${shape.vocabSize}`);
  }
  const limits = { maxPositions: shape.maxPositions, vocabSize: shape.vocabSize, maxCompletionLength: config.maxCompletionLength };
  return {
    dir: shape.dir === null ? null : resolve(shape.dir),
    tokenizer: shape.tokenizer,
    trainRows: encodePromptRows(data.train, shape.tokenizer, limits),
    evalRows: encodePromptRows(data.test.slice(0, config.evalSize), shape.tokenizer, limits),
  };
}

/** The run-loop options every RL run sets the same way: resume point, engine, output, Ctrl-C, overwrite, evaluation at step 0. */
export function rlLoopOptions(
  setup: RlSetup,
  saved: RlTrainerState<unknown> | null,
  options: RlRunOptions,
): Pick<RunLoopOptions, 'resumed' | 'engine' | 'quiet' | 'stream' | 'handleSigint' | 'overwrite' | 'evaluateAtStart'> {
  return {
    resumed: saved && setup.resumeFrom ? { dir: setup.resumeFrom, step: saved.step, config: saved.config } : null,
    engine: options.engine ?? getBackend(),
    quiet: options.quiet ?? false,
    stream: options.stream ?? process.stdout,
    handleSigint: options.handleSigint,
    overwrite: options.overwrite,
    evaluateAtStart: true,
  };
}

/** The header lines both RL trainers print after the config. */
export function rlRunNotes(setup: RlSetup, extra: string[] = []): string[] {
  return [
    `starting policy: ${setup.initialModelDir}`,
    `rewards: ${setup.rewards.map((r) => `${r.name} x ${r.weight ?? 1}`).join(', ')}; accuracy from "${setup.accuracyReward}"`,
    ...extra,
    ...(setup.evalRows.length === 0 ? ['no held-out prompts (data.testFile is null): evaluation is skipped'] : []),
  ];
}

/**
 * What a GRPO or PPO run accumulates for its checkpoints and its result: the evaluations,
 * the time split, the sampled tokens. One per run.
 */
export class RlRunRecord {
  lastEval: RlTrainerState<unknown>['lastEval'];
  readonly evals: RlRunResult['evals'] = [];
  readonly time = { generate: 0, reward: 0, train: 0 };
  private generatedTokens = 0;

  constructor(private readonly setup: RlSetup) {
    this.lastEval = setup.lastEval;
  }

  /** Records an evaluation (the `onResult` of `promptEvaluator`), and its reward failures. */
  readonly onEval = (at: number, r: { accuracy: number; meanReward: number; errors: ScoreResult['errors'] }, out: RunOutput): void => {
    this.lastEval = { step: at, accuracy: r.accuracy };
    this.evals.push({ step: at, accuracy: r.accuracy, meanReward: r.meanReward });
    this.setup.failures.record(at, 'eval', r.errors, out.log);
  };

  /**
   * A training step's scores (step `step`, counted from 1): prints and writes their reward
   * failures, and stops the run when the rewards failed on every completion for
   * `maxFailedRewardSteps` steps in a row (reward-failures.ts). Call it before the update.
   */
  checkRewards(step: number, scored: ScoreResult, out: RunOutput): void {
    this.setup.failures.checkStep(step, scored, out.log);
  }

  /** Adds a step's sampling, reward and training seconds and its sampled tokens. */
  addStep(summary: { seconds: { generate: number; reward: number }; lengths: readonly number[] }, trainSeconds: number): void {
    this.time.generate += summary.seconds.generate;
    this.time.reward += summary.seconds.reward;
    this.time.train += trainSeconds;
    this.generatedTokens += summary.lengths.reduce((a, b) => a + b, 0);
  }

  /** The trainer-state fields every RL checkpoint holds, after `step` steps. */
  state<C>(step: number, samplingRng: Rng, config: C): Omit<RlTrainerState<C>, 'format' | 'version'> {
    return {
      step,
      promptOrder: this.setup.order.getState(),
      samplingRng: samplingRng.getState(),
      initialModel: { dir: this.setup.initialModelDir, sha256: this.setup.initialSha },
      lastEval: this.lastEval,
      dataFingerprint: this.setup.fingerprint,
      config,
    };
  }

  /** The run's result from the loop's. */
  result(outDir: string, loop: RunLoopResult): Omit<RlRunResult, 'parameters'> {
    return {
      outDir: resolve(outDir),
      checkpointDir: loop.lastCheckpoint,
      step: loop.step,
      interrupted: loop.interrupted,
      signal: loop.signal,
      initialModelDir: this.setup.initialModelDir,
      warmStart: this.setup.warm,
      evals: this.evals,
      seconds: loop.seconds,
      time: { ...this.time, ...loop.time },
      generatedTokensPerSecond: this.generatedTokens / Math.max(this.time.generate, 1e-9),
      reportPath: loop.reportPath,
      rewardFailures: { count: this.setup.failures.total, path: this.setup.failures.path },
    };
  }
}
