/**
 * Supervised warm-start (SFT): teach a causal LM to answer prompts with their reference
 * completions before reinforcement learning, so that GRPO starts from a policy that already
 * produces the answer format and is sometimes right.
 *
 * Loss (per batch): the mean next-token cross-entropy over completion tokens only,
 *
 *   L = -(1 / N_c) * sum_{b, t : m[b,t] = 1} log softmax(f(x_b)_t)[y_{b,t}]
 *
 * where x_b = [prompt | completion | EOS] without its last token, y_b the same sequence
 * shifted left by one, m[b,t] = 1 when y_{b,t} is a completion token or the final EOS (so
 * the model learns to stop) and 0 on prompt and padding targets, and N_c = sum m (a token
 * mean over the whole batch, as TRL's SFTTrainer with `completion_only_loss`).
 *
 * Optimisation: AdamW (Loshchilov & Hutter, 2019; decay on matrices and embeddings only),
 * linear warm-up then cosine decay to `minLrRatio * learningRate`, gradient clipping by
 * global norm (Pascanu et al., 2013), one `updateStep` (update.ts) per batch. Batches are
 * drawn without replacement in epochs (`ShuffledBatches`, prompts.ts), so every batch has
 * `batchSize` examples. The loop, logs, Ctrl-C and checkpoints are the shared `runLoop`.
 *
 * Padding: training batches are right-padded and run without an attention mask. Real
 * tokens never attend to the padding that follows them (causal mask), and their positions
 * are 0..len-1, the same positions the sampler gives a left-padded prompt through its
 * attention mask (cumsum(mask) - 1), so training and generation see identical inputs.
 *
 * Evaluation: on the first `evalSize` held-out examples, the same loss (`eval/loss`) and
 * exact-match accuracy (`eval/accuracy`) of greedy completions from `src/lm/sampler.ts`
 * (see `exactMatch` in evaluate.ts for the comparison).
 *
 * Checkpoints are Hugging Face folders (`saveCausalLM`) plus `trainer_state.json` (step,
 * batch-order RNG state, open logging window, last evaluation, config) and
 * `optimizer.safetensors` (the AdamW moments under Hugging Face parameter names, and the
 * step count in the metadata); resuming from one continues the run exactly as if it had
 * not stopped (same batches, same updates, same metrics apart from timings).
 *
 * Deliberate simplifications: no dropout, no gradient accumulation, no sequence packing
 * (batches are padded to their longest sequence), float32 only.
 */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { ConfigError } from '../core/config.ts';
import { type AdamW, warmupCosine } from '../engine/tfjs/optim.ts';
import { Rng } from '../core/rng.ts';
import { CausalLM } from '../lm/model.ts';
import { type Sampler, tfjsSampler } from '../lm/sampler.ts';
import type { OrtTrainer } from '../engine/onnx/trainer.ts';
import { openSampler, openTrainer } from './sampling-engine.ts';
import type { Tokenizer } from '../lm/tokenizer.ts';
import { tokenLogprobs } from '../objectives/logprobs.ts';
import { METRIC_NAMES } from '../report/metric-names.ts';
import type { ProgressStream } from '../report/progress.ts';
import { exactMatch } from './evaluate.ts';
import { prepareSft, sftRunRngs } from './sft-setup.ts';
import { type BatchOrderState, type EncodedSftExample, ShuffledBatches, exampleFingerprint } from './prompts.ts';
import { type InterruptSignal, createAdamW, runLoop } from './run.ts';
import { type SftConfig, parseSftConfig } from './sft-config.ts';
import { OPTIMIZER_FILE, STATE_FORMATS, TRAINER_STATE_FILE, checkOutDirWritable, checkRunFolder, checkStateStep, readTrainerStateJson, restoreOptimizerState, saveTrainerCheckpoint } from './trainer-state.ts';
import { type SftBatch, makeSftBatch } from './token-batch.ts';
import { applyParameterGradients, updateStep } from './update.ts';

// ---------------------------------------------------------------------------------------
// Batches, loss and update

/** Mean cross-entropy over the batch's completion targets (a scalar tensor; differentiable). */
export function sftLoss(model: CausalLM, batch: SftBatch): tf.Scalar {
  if (batch.numTargets === 0) throw new Error('sftLoss: the batch has no completion tokens to learn');
  return tf.tidy(() => {
    const shape: [number, number] = [batch.size, batch.length];
    const logits = model.forward(tf.tensor2d(batch.inputIds, shape, 'int32')); // [B, T, V]
    const logp = tokenLogprobs(logits, tf.tensor2d(batch.targets, shape, 'int32')); // [B, T]
    const masked = tf.mul(logp, tf.tensor2d(batch.lossMask, shape)); // [B, T]
    return tf.div(tf.neg(tf.sum(masked)), batch.numTargets) as tf.Scalar;
  });
}

/**
 * `sftTrainStep` with the forward and backward on onnxruntime: the upstream gradient on
 * the targets' log-probs is -mask / count (the loss is their negated mean), the engine
 * returns the log-probs and the parameter gradients, and the update is the same clipping
 * and AdamW on tfjs (`applyGradientUpdate`).
 */
export async function sftTrainStepOrt(model: CausalLM, trainer: OrtTrainer, optimizer: AdamW, batch: SftBatch, options: { learningRate: number; gradClip: number }): Promise<{ loss: number; gradNorm: number }> {
  if (batch.numTargets === 0) throw new Error('sftLoss: the batch has no completion tokens to learn');
  const dlogprobs = Float32Array.from(batch.lossMask, (m) => -m / batch.numTargets);
  const { outputs, grads } = await trainer.gradients(model, { ids: batch.inputIds, labels: batch.targets, B: batch.size, S: batch.length, N: batch.length }, { logprobs: dlogprobs });
  const logprobs = outputs['logprobs']!;
  let loss = 0;
  for (let i = 0; i < logprobs.length; i++) loss -= batch.lossMask[i]! * logprobs[i]!;
  loss /= batch.numTargets;
  return { loss, gradNorm: applyParameterGradients(model, optimizer, loss, grads, options).gradNorm };
}

/** One optimizer update on `batch`: loss, gradients, global-norm clipping, AdamW at `learningRate` (`updateStep`). */
export function sftTrainStep(model: CausalLM, optimizer: AdamW, batch: SftBatch, options: { learningRate: number; gradClip: number }): { loss: number; gradNorm: number } {
  const { loss, gradNorm } = updateStep(model.variables, optimizer, () => ({ loss: sftLoss(model, batch), metrics: null }), options);
  return { loss, gradNorm };
}

// ---------------------------------------------------------------------------------------
// Evaluation

export interface SftEvalSample {
  prompt: string;
  completion: string;
  correct: boolean;
}

export interface SftEvalResult {
  /** Mean cross-entropy per completion token over the evaluated examples. */
  loss: number;
  /** Fraction of examples whose greedy completion is an exact match. */
  accuracy: number;
  numExamples: number;
  /** Every evaluated example's greedy completion, in order. */
  samples: SftEvalSample[];
}

/**
 * Loss and greedy exact-match accuracy on `examples` (all of them; the caller picks the
 * subset). Greedy generation runs `maxNewTokens` = the longest reference completion (EOS
 * included), enough to tell whether a completion matches, limited by the context left after
 * the longest prompt.
 */
export async function evaluateSft(
  model: CausalLM,
  tokenizer: Tokenizer,
  examples: readonly EncodedSftExample[],
  options: { batchSize: number; sampler?: Sampler },
): Promise<SftEvalResult> {
  if (examples.length === 0) throw new Error('evaluateSft: no examples to evaluate');
  const bs = options.batchSize;
  let lossSum = 0;
  let targets = 0;
  for (let i = 0; i < examples.length; i += bs) {
    const batch = makeSftBatch(examples.slice(i, i + bs), tokenizer.padTokenId);
    const loss = sftLoss(model, batch);
    lossSum += loss.dataSync()[0]! * batch.numTargets;
    targets += batch.numTargets;
    loss.dispose();
  }
  let longestCompletion = 0;
  let longestPrompt = 0;
  for (const ex of examples) {
    longestCompletion = Math.max(longestCompletion, ex.completionIds.length);
    longestPrompt = Math.max(longestPrompt, ex.promptIds.length);
  }
  const maxNewTokens = Math.max(1, Math.min(longestCompletion, model.dims.maxPositions - longestPrompt));
  const sampler = options.sampler ?? tfjsSampler(model);
  const gen = await sampler.generate(
    examples.map((e) => e.promptIds),
    {
      numGenerations: 1,
      maxNewTokens,
      temperature: 0,
      eosTokenId: tokenizer.eosTokenId,
      padTokenId: tokenizer.padTokenId,
      vocabLimit: Math.min(tokenizer.vocabSize, model.dims.vocabSize),
      rng: new Rng(0), // greedy: no draw depends on it
      batchSize: bs,
    },
  );
  let correct = 0;
  const samples = examples.map((ex, i) => {
    const completion = tokenizer.decode(gen.completionIds[i]!, { skipSpecialTokens: true });
    const ok = exactMatch(completion, ex);
    if (ok) correct++;
    return { prompt: ex.prompt, completion, correct: ok };
  });
  return { loss: lossSum / targets, accuracy: correct / examples.length, numExamples: examples.length, samples };
}

// ---------------------------------------------------------------------------------------
// Checkpoints

/** The statistics of an unfinished logging window, carried across a checkpoint. */
interface LogWindow {
  steps: number;
  lossSum: number;
  gradNormSum: number;
  tokens: number;
  seconds: number;
}

/** Contents of `trainer_state.json`. */
export interface SftTrainerState {
  format: typeof STATE_FORMATS.sft;
  version: 1;
  /** Optimizer steps completed. */
  step: number;
  /** Batch order: the data RNG state and the position in the current epoch. */
  rng: BatchOrderState;
  logWindow: LogWindow;
  lastEval: { step: number; loss: number; accuracy: number } | null;
  /** SHA-256 of the training examples (prompt, completion), checked on resume. */
  dataFingerprint: string;
  config: SftConfig;
}

/** Reads and checks `trainer_state.json` of a checkpoint folder. */
export async function readSftTrainerState(dir: string): Promise<SftTrainerState> {
  const json = await readTrainerStateJson(dir, TRAINER_STATE_FILE, STATE_FORMATS.sft, 1);
  const path = join(dir, TRAINER_STATE_FILE);
  checkStateStep(json, path, 1);
  const rng = json['rng'] as BatchOrderState | undefined;
  if (!rng || typeof rng !== 'object' || !Array.isArray(rng.epochRngState)) throw new Error(`${path}: "rng" must hold the batch-order state { epoch, cursor, epochRngState }`);
  const w = json['logWindow'] as LogWindow | undefined;
  if (!w || typeof w !== 'object' || (['steps', 'lossSum', 'gradNormSum', 'tokens', 'seconds'] as const).some((k) => typeof w[k] !== 'number')) {
    throw new Error(`${path}: "logWindow" must hold numbers steps, lossSum, gradNormSum, tokens, seconds`);
  }
  if (typeof json['dataFingerprint'] !== 'string') throw new Error(`${path}: "dataFingerprint" must be a string`);
  parseSftConfig(json['config'], { source: `${path} "config"` });
  return json as unknown as SftTrainerState;
}

// ---------------------------------------------------------------------------------------
// The training run

export interface SftRunOptions {
  /** A checkpoint folder (`checkpoint-<step>` or `final`) to continue from. */
  resumeFrom?: string;
  /** Engine description for the run header (what `describeEngine` returns); default the tfjs backend name. */
  engine?: string;
  /** Print nothing (header, progress, evaluation lines). */
  quiet?: boolean;
  /** Where the header and progress go; default stdout. */
  stream?: ProgressStream;
  /** Finish the current step, save a checkpoint and return on Ctrl-C (SIGINT), SIGTERM or SIGHUP. Default true. */
  handleSigint?: boolean;
  /** A fresh run replaces an earlier run in its folder instead of refusing it. Default false. */
  overwrite?: boolean;
}

export interface SftRunResult {
  outDir: string;
  /** The final checkpoint folder (`<outDir>/final`). */
  finalDir: string;
  /** Evaluation after the last step, or null without a held-out split. */
  finalEval: { loss: number; accuracy: number } | null;
  /** Every evaluation of this invocation, in step order. */
  evals: Array<{ step: number; loss: number; accuracy: number }>;
  /** Steps completed (the config's `steps` unless interrupted by Ctrl-C, SIGTERM or SIGHUP). */
  step: number;
  interrupted: boolean;
  /** The signal that interrupted the run, or null. */
  signal: InterruptSignal | null;
  /** Wall-clock seconds of this invocation's training loop (evaluation and checkpoints included). */
  seconds: number;
  /** Model parameters. */
  parameters: number;
}

/** How many eval completions go to samples.jsonl at each evaluation. */
const SAMPLES_PER_EVAL = 8;

/**
 * Runs supervised fine-tuning as `config` describes, or continues the run saved in
 * `options.resumeFrom`. Writes `<outDir>/metrics.jsonl`, `samples.jsonl` (a few greedy eval
 * completions per evaluation), `config.json`, `checkpoint-<step>/` every `saveEvery` steps
 * and on Ctrl-C, and `final/` after the last step. Call `initEngine` first to choose the
 * tfjs backend.
 */
export async function trainSft(configInput: SftConfig, options: SftRunOptions = {}): Promise<SftRunResult> {
  const config = parseSftConfig(configInput, { source: 'trainSft config' });
  const resumeFrom = options.resumeFrom ? resolve(options.resumeFrom) : undefined;
  const saved = resumeFrom ? await readSftTrainerState(resumeFrom) : null;
  if (saved && config.steps <= saved.step) {
    throw new ConfigError([`"steps" (${config.steps}) must be greater than the checkpoint's step (${saved.step}) to continue training`], 'resume');
  }
  if (saved) checkOutDirWritable(resolve(config.outDir));
  else checkRunFolder(resolve(config.outDir), options.overwrite ?? false);
  const { train, trainSet, evalSet, tokenizer, model } = await prepareSft(config, resumeFrom);
  const outDir = resolve(config.outDir);
  const optimizer = createAdamW(model.variables, config);
  let closeSampler = async (): Promise<void> => {};
  try {
    const sampler = await openSampler(model, config.engine, config.device);
    const { trainer, description: trainDescription } = await openTrainer(model, config.engine, config.device);
    closeSampler = async () => {
      await sampler.dispose();
      await trainer?.dispose();
    };
    const dataFingerprint = exampleFingerprint(train);
    const batches = new ShuffledBatches(trainSet.length, config.batchSize, sftRunRngs(config.seed).data);
    let window: LogWindow = { steps: 0, lossSum: 0, gradNormSum: 0, tokens: 0, seconds: 0 };
    let lastEval: SftTrainerState['lastEval'] = null;
    if (saved && resumeFrom) {
      if (saved.dataFingerprint !== dataFingerprint) {
        throw new Error(`cannot resume from ${resumeFrom}: the training data differs from the data the checkpoint was trained on (fingerprint mismatch); check "data" in the config`);
      }
      restoreOptimizerState(model, optimizer, await readFile(join(resumeFrom, OPTIMIZER_FILE)), join(resumeFrom, OPTIMIZER_FILE));
      batches.setState(saved.rng);
      window = { ...saved.logWindow };
      lastEval = saved.lastEval;
    }
    const schedule = warmupCosine(config.learningRate, config.warmupSteps, config.steps, config.minLrRatio);
    const evals: SftRunResult['evals'] = [];
    let learningRate = 0;

    const loop = await runLoop({
      command: 'sft',
      config,
      resumed: saved && resumeFrom ? { dir: resumeFrom, step: saved.step, config: saved.config } : null,
      engine: options.engine ?? tf.getBackend(),
      modelInfo: { ...model.summary(), train: trainSet.length, eval: evalSet.length },
      notes: [`training: ${trainDescription}`, `evaluation sampling: ${sampler.description}`, ...(evalSet.length === 0 ? ['no held-out split (data.testFile is null): evaluation is skipped'] : [])],
      quiet: options.quiet ?? false,
      stream: options.stream ?? process.stdout,
      handleSigint: options.handleSigint,
      overwrite: options.overwrite,
      evaluateAtStart: false,
      step: async (done) => {
        const tStep = performance.now();
        learningRate = schedule(done);
        const batch = makeSftBatch(batches.next().map((i) => trainSet[i]!), tokenizer.padTokenId);
        const stepOptions = { learningRate, gradClip: config.gradClip };
        const { loss, gradNorm } = trainer ? await sftTrainStepOrt(model, trainer, optimizer, batch, stepOptions) : sftTrainStep(model, optimizer, batch, stepOptions);
        window.steps++;
        window.lossSum += loss;
        window.gradNormSum += gradNorm;
        window.tokens += batch.numTokens;
        window.seconds += (performance.now() - tStep) / 1000;
        return { [METRIC_NAMES.train.loss]: loss };
      },
      // The metrics line averages the steps since the last one (the window survives checkpoints).
      logRecord: () => {
        const line = {
          [METRIC_NAMES.train.loss]: window.lossSum / window.steps,
          [METRIC_NAMES.train.gradNorm]: window.gradNormSum / window.steps,
          [METRIC_NAMES.train.learningRate]: learningRate,
          [METRIC_NAMES.throughput.tokensPerS]: window.tokens / Math.max(window.seconds, 1e-9),
        };
        window = { steps: 0, lossSum: 0, gradNormSum: 0, tokens: 0, seconds: 0 };
        return line;
      },
      evaluate:
        evalSet.length === 0
          ? null
          : async (at, out) => {
              const r = await evaluateSft(model, tokenizer, evalSet, { batchSize: config.evalBatchSize, sampler });
              lastEval = { step: at, loss: r.loss, accuracy: r.accuracy };
              evals.push(lastEval);
              out.metrics.log(at, { [METRIC_NAMES.eval.loss]: r.loss, [METRIC_NAMES.eval.accuracy]: r.accuracy });
              for (const s of r.samples.slice(0, SAMPLES_PER_EVAL)) {
                out.samples.log({ step: at, prompt: s.prompt, completion: s.completion, rewards: { exact_match: s.correct ? 1 : 0 } });
              }
              out.progress.update(at, { [METRIC_NAMES.eval.accuracy]: r.accuracy });
              out.log(`step ${at}: eval/loss ${r.loss.toFixed(4)}  eval/accuracy ${(100 * r.accuracy).toFixed(1)}% (${r.numExamples} examples)`);
            },
      save: async (dir, step) => {
        const state: SftTrainerState = { format: STATE_FORMATS.sft, version: 1, step, rng: batches.getState(), logWindow: window, lastEval, dataFingerprint, config };
        await saveTrainerCheckpoint(dir, model, tokenizer, optimizer, state);
      },
    });
    const finalEval = lastEval as SftTrainerState['lastEval'];
    return {
      outDir,
      finalDir: join(outDir, 'final'),
      finalEval: finalEval && finalEval.step === config.steps ? { loss: finalEval.loss, accuracy: finalEval.accuracy } : null,
      evals,
      step: loop.step,
      interrupted: loop.interrupted,
      signal: loop.signal,
      seconds: loop.seconds,
      parameters: model.numParameters(),
    };
  } finally {
    await closeSampler();
    optimizer.dispose();
    model.dispose();
  }
}
