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
 * global norm (Pascanu et al., 2013). Batches are drawn without replacement in epochs, each
 * epoch a fresh permutation from the seeded RNG; a batch that crosses an epoch boundary is
 * topped up from the next permutation, so every batch has `batchSize` examples.
 *
 * Padding: training batches are right-padded and run without an attention mask. Real
 * tokens never attend to the padding that follows them (causal mask), and their positions
 * are 0..len-1, the same positions the sampler gives a left-padded prompt through its
 * attention mask (cumsum(mask) - 1), so training and generation see identical inputs.
 *
 * Evaluation: on the first `evalSize` held-out examples, the same loss (`eval/loss`) and
 * exact-match accuracy (`eval/accuracy`) of greedy completions from `src/lm/sampler.ts`
 * (see `exactMatch` for the comparison).
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
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { ANSWER_CLOSE, ANSWER_OPEN, makeArithmeticSplits } from '../../datasets/arithmetic/generate.ts';
import { arithmeticTokenizer } from '../../datasets/arithmetic/tokenizer.ts';
import { parseJsonl } from '../../datasets/jsonl.ts';
import { ConfigError } from '../engine/config.ts';
import { AdamW, clipGradNorm, warmupCosine } from '../engine/optim.ts';
import { Rng, type RngState } from '../engine/rng.ts';
import { CharTokenizer } from '../lm/char-tokenizer.ts';
import { loadCausalLM } from '../lm/checkpoint.ts';
import { type CausalLMConfig, parseConfig as parseModelConfig } from '../lm/config.ts';
import { CausalLM } from '../lm/model.ts';
import { generate } from '../lm/sampler.ts';
import { type Tokenizer, loadTokenizer } from '../lm/tokenizer.ts';
import { tokenLogprobs } from '../objectives/logprobs.ts';
import { METRIC_NAMES } from '../report/metric-names.ts';
import type { MetricsWriter, SampleWriter } from '../report/metrics.ts';
import { type ProgressStream, TrainingProgress, printRunHeader } from '../report/progress.ts';
import { OPTIMIZER_FILE, TRAINER_STATE_FILE, openRunLogs, restoreOptimizerState, saveTrainerCheckpoint } from './checkpoint-state.ts';
import { type SftConfig, type SftGenerateConfig, type SftInitConfig, parseSftConfig } from './sft-config.ts';

// ---------------------------------------------------------------------------------------
// Data

/** One supervised example. */
export interface SftExample {
  /** Text the model is given. */
  prompt: string;
  /** Target text after the prompt (EOS is appended by the trainer). */
  completion: string;
  /** The reference answer, when the data has one; evaluation compares against it (else against `completion`). */
  answer?: string;
  /** Where the example came from (`train.jsonl:12`), named in errors. */
  source: string;
}

/** An example with its token ids. */
export interface EncodedSftExample extends SftExample {
  /** Prompt ids as the tokenizer encodes the prompt alone (its BOS included): what the sampler is given. */
  promptIds: number[];
  /** Completion ids followed by EOS. */
  completionIds: number[];
}

/**
 * Reads a JSONL file of examples: each line an object with a string `prompt` and a string
 * `completion` or `answer` (or both; other columns are ignored). Errors name the file and line.
 */
export async function loadSftExamples(path: string): Promise<SftExample[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new Error(`cannot read data file ${path}: ${(e as Error).message}`);
  }
  const rows = parseJsonl(text, { source: path, requiredColumns: { prompt: 'string' } });
  // parseJsonl skips blank lines; recover the line number of each row the same way.
  const lineNumbers: number[] = [];
  text
    .replace(/^\uFEFF/, '')
    .split('\n')
    .forEach((line, i) => {
      if (line.trim() !== '') lineNumbers.push(i + 1);
    });
  if (rows.length === 0) throw new Error(`${path}: no examples (the file is empty)`);
  return rows.map((row, i) => {
    const at = `${path}:${lineNumbers[i]}`;
    const { prompt, completion, answer } = row as { prompt: string; completion?: unknown; answer?: unknown };
    for (const [name, v] of [['completion', completion], ['answer', answer]] as const) {
      if (v !== undefined && v !== null && typeof v !== 'string') throw new Error(`${at}: column "${name}" must be a string, got ${Array.isArray(v) ? 'array' : typeof v}`);
    }
    const c = typeof completion === 'string' ? completion : typeof answer === 'string' ? answer : null;
    if (c === null) throw new Error(`${at}: needs a "completion" or an "answer" column (a string)`);
    const ex: SftExample = { prompt, completion: c, source: at };
    if (typeof answer === 'string') ex.answer = answer;
    return ex;
  });
}

/** The generated train and test splits of a `data.generate` config. */
export function generateSftExamples(g: SftGenerateConfig): { train: SftExample[]; test: SftExample[] } {
  const { train, test } = makeArithmeticSplits({
    trainSize: g.trainSize,
    testSize: g.testSize,
    seed: g.seed,
    digits: [g.digits[0]!, g.digits[1]!],
    operations: g.operations,
    allowNegative: g.allowNegative,
    format: g.format,
  });
  const convert = (split: string) => (e: (typeof train)[number], i: number): SftExample => ({
    prompt: e.prompt,
    completion: e.completion,
    answer: e.answer,
    source: `generated ${split} example ${i} (${JSON.stringify(e.prompt)})`,
  });
  return { train: train.map(convert('train')), test: test.map(convert('test')) };
}

/**
 * Token ids of each example: the prompt encoded alone (with the tokenizer's BOS), the
 * completion without special tokens plus EOS. Every sequence must fit `maxPositions` and
 * the model's vocabulary; errors name the example's source.
 */
export function encodeSftExamples(examples: readonly SftExample[], tokenizer: Tokenizer, limits: { maxPositions: number; vocabSize: number }): EncodedSftExample[] {
  return examples.map((ex) => {
    const promptIds = tokenizer.encode(ex.prompt);
    const completionIds = [...tokenizer.encode(ex.completion, { addSpecialTokens: false }), tokenizer.eosTokenId];
    if (promptIds.length === 0) throw new Error(`${ex.source}: the prompt encodes to no tokens (an empty prompt needs a tokenizer that adds BOS)`);
    const total = promptIds.length + completionIds.length;
    if (total > limits.maxPositions) {
      throw new Error(`${ex.source}: prompt + completion + EOS is ${total} tokens, more than the model's context of ${limits.maxPositions} positions`);
    }
    for (const id of [...promptIds, ...completionIds]) {
      if (id >= limits.vocabSize) throw new Error(`${ex.source}: token id ${id} is outside the model's vocabulary of ${limits.vocabSize}`);
    }
    return { ...ex, promptIds, completionIds };
  });
}

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

/** One optimizer update on `batch`: loss, gradients, global-norm clipping, AdamW at `learningRate`. */
export function sftTrainStep(
  model: CausalLM,
  optimizer: AdamW,
  batch: SftBatch,
  options: { learningRate: number; gradClip: number },
): { loss: number; gradNorm: number } {
  const { value, grads } = tf.variableGrads(() => sftLoss(model, batch), model.variables);
  const clipped = clipGradNorm(grads, options.gradClip);
  try {
    // Inside tidy: the optimizer creates its moment variables from temporary zero tensors on
    // the first update; tidy frees those temporaries (the variables keep their data).
    tf.tidy(() => optimizer.applyGradients(clipped.grads, options.learningRate));
    return { loss: value.dataSync()[0]!, gradNorm: clipped.norm };
  } finally {
    tf.dispose([value, ...Object.values(grads), ...Object.values(clipped.grads)]);
  }
}

/** The text inside the last `<answer>...</answer>` of `text`, or null when there is none. */
export function extractTaggedAnswer(text: string): string | null {
  const open = text.lastIndexOf(ANSWER_OPEN);
  if (open < 0) return null;
  const close = text.indexOf(ANSWER_CLOSE, open + ANSWER_OPEN.length);
  return close < 0 ? null : text.slice(open + ANSWER_OPEN.length, close);
}

/**
 * Whether a generated completion (decoded, special tokens dropped) matches the example.
 * When the reference completion uses `<answer>` tags, the generated one must too, and the
 * text inside its last tag pair is compared; otherwise the whole completion is. The
 * reference is the example's `answer` when it has one, else its completion (the inside of
 * its tags when tagged). Both sides are compared after trimming surrounding white space.
 */
export function exactMatch(generated: string, example: Pick<SftExample, 'completion' | 'answer'>): boolean {
  const tagged = example.completion.includes(ANSWER_OPEN);
  const predicted = tagged ? extractTaggedAnswer(generated) : generated;
  if (predicted === null) return false;
  const gold = example.answer ?? (tagged ? (extractTaggedAnswer(example.completion) ?? example.completion) : example.completion);
  return predicted.trim() === gold.trim();
}

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
export function evaluateSft(
  model: CausalLM,
  tokenizer: Tokenizer,
  examples: readonly EncodedSftExample[],
  options: { batchSize: number },
): SftEvalResult {
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
  const gen = generate(
    model,
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
// Batch order

/** Where the batch order stands: the RNG state the current epoch's permutation was drawn from, and how far into it. */
export interface BatchOrderState {
  epoch: number;
  cursor: number;
  epochRngState: RngState;
}

/** Shuffled epochs of example indices; see the file header. */
export class ShuffledBatches {
  private order: Int32Array = new Int32Array(0);
  private cursor = 0;
  private epoch = 0;
  private epochRngState: RngState;

  constructor(
    readonly numExamples: number,
    readonly batchSize: number,
    private readonly rng: Rng,
  ) {
    if (!Number.isInteger(numExamples) || numExamples < 1) throw new Error(`ShuffledBatches: numExamples must be a positive integer, got ${numExamples}`);
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`ShuffledBatches: batchSize must be a positive integer, got ${batchSize}`);
    this.epochRngState = rng.getState();
    this.startEpoch();
  }

  /** The next `batchSize` indices. */
  next(): number[] {
    const out: number[] = [];
    while (out.length < this.batchSize) {
      if (this.cursor === this.numExamples) {
        this.epoch++;
        this.startEpoch();
      }
      out.push(this.order[this.cursor++]!);
    }
    return out;
  }

  getState(): BatchOrderState {
    return { epoch: this.epoch, cursor: this.cursor, epochRngState: [...this.epochRngState] as RngState };
  }

  setState(state: BatchOrderState): void {
    const { epoch, cursor, epochRngState } = state;
    if (!Number.isInteger(epoch) || epoch < 0) throw new Error(`ShuffledBatches.setState: epoch must be a non-negative integer, got ${epoch}`);
    if (!Number.isInteger(cursor) || cursor < 0 || cursor > this.numExamples) {
      throw new Error(`ShuffledBatches.setState: cursor must be an integer in [0, ${this.numExamples}], got ${cursor}`);
    }
    this.rng.setState(epochRngState);
    this.epoch = epoch;
    this.startEpoch();
    this.cursor = cursor;
  }

  private startEpoch(): void {
    this.epochRngState = this.rng.getState();
    this.order = this.rng.permutation(this.numExamples);
    this.cursor = 0;
  }
}

// ---------------------------------------------------------------------------------------
// Model, tokenizer and checkpoints

/** The Hugging Face config of a from-scratch model with `tokenizer`'s vocabulary and special ids. */
export function initModelConfig(init: SftInitConfig, tokenizer: Tokenizer): CausalLMConfig {
  const special = { bos_token_id: tokenizer.bosTokenId, eos_token_id: tokenizer.eosTokenId, pad_token_id: tokenizer.padTokenId };
  if (init.architecture === 'gpt2') {
    return parseModelConfig(
      {
        model_type: 'gpt2',
        vocab_size: tokenizer.vocabSize,
        n_positions: init.contextLength,
        n_embd: init.hiddenSize,
        n_layer: init.layers,
        n_head: init.heads,
        n_inner: init.intermediateSize,
        initializer_range: init.initializerRange,
        ...special,
      },
      'model.init',
    );
  }
  return parseModelConfig(
    {
      model_type: 'llama',
      vocab_size: tokenizer.vocabSize,
      max_position_embeddings: init.contextLength,
      hidden_size: init.hiddenSize,
      num_hidden_layers: init.layers,
      num_attention_heads: init.heads,
      num_key_value_heads: init.kvHeads ?? init.heads,
      intermediate_size: init.intermediateSize ?? Math.ceil((8 * init.hiddenSize) / 3 / 8) * 8,
      rope_theta: init.ropeTheta,
      tie_word_embeddings: true,
      initializer_range: init.initializerRange,
      ...special,
    },
    'model.init',
  );
}

/**
 * The tokenizer of a from-scratch model: the arithmetic tokenizer for generated arithmetic,
 * otherwise a character tokenizer over every character of the examples (in code-point
 * order), with `<answer>`/`</answer>` as single tokens when the data uses them.
 */
export function taskTokenizer(data: SftConfig['data'], examples: readonly SftExample[]): Tokenizer {
  if (data.generate) return arithmeticTokenizer();
  const chars = new Set<string>();
  let tagged = false;
  for (const ex of examples) {
    for (const text of [ex.prompt, ex.completion]) {
      if (text.includes(ANSWER_OPEN) || text.includes(ANSWER_CLOSE)) tagged = true;
      for (const ch of text.replaceAll(ANSWER_OPEN, '').replaceAll(ANSWER_CLOSE, '')) chars.add(ch);
    }
  }
  const alphabet = [...chars].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!).join('');
  if (alphabet.length === 0) throw new Error('taskTokenizer: the examples contain no characters to build a vocabulary from');
  return CharTokenizer.fromAlphabet(alphabet, { extraTokens: tagged ? [ANSWER_OPEN, ANSWER_CLOSE] : [] });
}

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
  format: 'rlvr-sft-trainer-state';
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

export { OPTIMIZER_FILE, TRAINER_STATE_FILE } from './checkpoint-state.ts';

function fingerprint(examples: readonly SftExample[]): string {
  const h = createHash('sha256');
  for (const ex of examples) h.update(JSON.stringify([ex.prompt, ex.completion])).update('\n');
  return h.digest('hex');
}

/** Writes a resumable checkpoint folder (atomically: a crash leaves the previous one intact). */
export async function saveSftCheckpoint(dir: string, model: CausalLM, tokenizer: Tokenizer, optimizer: AdamW, state: SftTrainerState): Promise<void> {
  await saveTrainerCheckpoint(dir, model, tokenizer, optimizer, state);
}

/** Reads and checks `trainer_state.json` of a checkpoint folder. */
export async function readSftTrainerState(dir: string): Promise<SftTrainerState> {
  const path = join(dir, TRAINER_STATE_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new Error(`cannot resume from ${dir}: ${TRAINER_STATE_FILE} is missing or unreadable (${(e as Error).message})`);
  }
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${path}: not valid JSON (${(e as Error).message})`);
  }
  if (json === null || typeof json !== 'object' || json['format'] !== 'rlvr-sft-trainer-state') {
    throw new Error(`${path}: not an SFT trainer state (expected "format": "rlvr-sft-trainer-state")`);
  }
  if (json['version'] !== 1) throw new Error(`${path}: unsupported version ${JSON.stringify(json['version'])} (this build reads version 1)`);
  const step = json['step'];
  if (typeof step !== 'number' || !Number.isInteger(step) || step < 1) throw new Error(`${path}: "step" must be a positive integer, got ${JSON.stringify(step)}`);
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
}

export interface SftRunResult {
  outDir: string;
  /** The final checkpoint folder (`<outDir>/final`). */
  finalDir: string;
  /** Evaluation after the last step, or null without a held-out split. */
  finalEval: { loss: number; accuracy: number } | null;
  /** Every evaluation of this invocation, in step order. */
  evals: Array<{ step: number; loss: number; accuracy: number }>;
  /** Wall-clock seconds of this invocation's training loop (evaluation and checkpoints included). */
  seconds: number;
  /** Model parameters. */
  parameters: number;
}

/** How many eval completions go to samples.jsonl at each evaluation. */
const SAMPLES_PER_EVAL = 8;

/** The run's independent random streams: weight initialisation and batch order. */
function runRngs(seed: number): { init: Rng; data: Rng } {
  const root = new Rng(seed);
  const init = new Rng(root.nextUint32());
  return { init, data: new Rng(root.nextUint32()) };
}

/** Loads or builds the data, tokenizer and model a config describes (or a checkpoint holds). */
async function prepare(
  config: SftConfig,
  resumeFrom: string | undefined,
): Promise<{ train: SftExample[]; test: SftExample[]; tokenizer: Tokenizer; model: CausalLM }> {
  let train: SftExample[];
  let test: SftExample[];
  if (config.data.generate) {
    ({ train, test } = generateSftExamples(config.data.generate));
  } else {
    train = await loadSftExamples(config.data.trainFile!);
    test = config.data.testFile ? await loadSftExamples(config.data.testFile) : [];
  }
  if (resumeFrom) {
    const { model } = await loadCausalLM(resumeFrom);
    return { train, test, model, tokenizer: await loadTokenizer(resumeFrom) };
  }
  if (config.model.modelDir) {
    const { model, tokenizerDir } = await loadCausalLM(config.model.modelDir);
    const tokenizer = await loadTokenizer(tokenizerDir);
    if (tokenizer.vocabSize > model.dims.vocabSize) {
      model.dispose();
      throw new Error(`model.modelDir ${config.model.modelDir}: the tokenizer has ${tokenizer.vocabSize} ids but the model's vocabulary only ${model.dims.vocabSize}`);
    }
    return { train, test, model, tokenizer };
  }
  const tokenizer = taskTokenizer(config.data, [...train, ...test]);
  const model = CausalLM.create(initModelConfig(config.model.init!, tokenizer), runRngs(config.seed).init);
  return { train, test, model, tokenizer };
}

/** Config fields whose change on resume is reported (they change what the continuation does). */
function changedFields(before: unknown, after: unknown, prefix = ''): string[] {
  if (before !== null && after !== null && typeof before === 'object' && typeof after === 'object' && !Array.isArray(before)) {
    const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
    return [...keys].flatMap((k) =>
      changedFields((before as Record<string, unknown>)[k], (after as Record<string, unknown>)[k], prefix ? `${prefix}.${k}` : k),
    );
  }
  return JSON.stringify(before) === JSON.stringify(after) ? [] : [`${prefix}: ${JSON.stringify(before)} -> ${JSON.stringify(after)}`];
}

/**
 * Runs supervised fine-tuning as `config` describes, or continues the run saved in
 * `options.resumeFrom`. Writes `<outDir>/metrics.jsonl`, `samples.jsonl` (a few greedy eval
 * completions per evaluation), `config.json`, `checkpoint-<step>/` every `saveEvery` steps
 * and `final/` after the last step. Call `initEngine` first to choose the tfjs backend.
 */
export async function trainSft(configInput: SftConfig, options: SftRunOptions = {}): Promise<SftRunResult> {
  const config = parseSftConfig(configInput, { source: 'trainSft config' });
  const resumeFrom = options.resumeFrom ? resolve(options.resumeFrom) : undefined;
  const saved = resumeFrom ? await readSftTrainerState(resumeFrom) : null;
  if (saved && config.steps <= saved.step) {
    throw new ConfigError([`"steps" (${config.steps}) must be greater than the checkpoint's step (${saved.step}) to continue training`], 'resume');
  }
  const { train, test, tokenizer, model } = await prepare(config, resumeFrom);
  const outDir = resolve(config.outDir);
  const quiet = options.quiet ?? false;
  const stream = options.stream ?? process.stdout;
  const optimizer = new AdamW(model.variables, {
    learningRate: config.learningRate,
    beta1: config.beta1,
    beta2: config.beta2,
    weightDecay: config.weightDecay,
  });
  let metrics: MetricsWriter | null = null;
  let sampleLog: SampleWriter | null = null;
  let progress: TrainingProgress | null = null;
  try {
    const limits = { maxPositions: model.dims.maxPositions, vocabSize: model.dims.vocabSize };
    const trainSet = encodeSftExamples(train, tokenizer, limits);
    const evalSet = encodeSftExamples(test.slice(0, config.evalSize), tokenizer, limits);
    const dataFingerprint = fingerprint(train);

    const batches = new ShuffledBatches(trainSet.length, config.batchSize, runRngs(config.seed).data);
    let step = 0;
    let window: LogWindow = { steps: 0, lossSum: 0, gradNormSum: 0, tokens: 0, seconds: 0 };
    let lastEval: SftTrainerState['lastEval'] = null;
    let resumeNote: string[] = [];
    if (saved && resumeFrom) {
      if (saved.dataFingerprint !== dataFingerprint) {
        throw new Error(`cannot resume from ${resumeFrom}: the training data differs from the data the checkpoint was trained on (fingerprint mismatch); check "data" in the config`);
      }
      restoreOptimizerState(model, optimizer, await readFile(join(resumeFrom, OPTIMIZER_FILE)), join(resumeFrom, OPTIMIZER_FILE));
      batches.setState(saved.rng);
      step = saved.step;
      window = { ...saved.logWindow };
      lastEval = saved.lastEval;
      resumeNote = changedFields(saved.config, config).filter((c) => !c.startsWith('outDir'));
    }

    const schedule = warmupCosine(config.learningRate, config.warmupSteps, config.steps, config.minLrRatio);
    ({ metrics, samples: sampleLog } = openRunLogs(outDir, config, saved ? saved.step : null));

    printRunHeader({
      title: saved ? `rlvr sft (resumed at step ${saved.step} from ${resumeFrom})` : 'rlvr sft',
      engine: options.engine ?? tf.getBackend(),
      modelInfo: {
        ...model.summary(),
        train: trainSet.length,
        eval: evalSet.length,
      },
      config: config as unknown as Record<string, unknown>,
      stream,
      quiet,
    });
    if (resumeNote.length && !quiet) stream.write(`changed since the checkpoint: ${resumeNote.join('; ')}\n`);
    if (evalSet.length === 0 && !quiet) stream.write('no held-out split (data.testFile is null): evaluation is skipped\n');

    const evals: SftRunResult['evals'] = [];
    const runEvaluation = (at: number): void => {
      const r = evaluateSft(model, tokenizer, evalSet, { batchSize: config.evalBatchSize });
      lastEval = { step: at, loss: r.loss, accuracy: r.accuracy };
      evals.push(lastEval);
      metrics!.log(at, { [METRIC_NAMES.eval.loss]: r.loss, [METRIC_NAMES.eval.accuracy]: r.accuracy });
      for (const s of r.samples.slice(0, SAMPLES_PER_EVAL)) {
        sampleLog!.log({ step: at, prompt: s.prompt, completion: s.completion, rewards: { exact_match: s.correct ? 1 : 0 } });
      }
      progress?.update(at, { [METRIC_NAMES.eval.accuracy]: r.accuracy });
      progress?.log(`step ${at}: eval/loss ${r.loss.toFixed(4)}  eval/accuracy ${(100 * r.accuracy).toFixed(1)}% (${r.numExamples} examples)`);
    };
    const checkpoint = async (dir: string): Promise<void> => {
      const state: SftTrainerState = {
        format: 'rlvr-sft-trainer-state',
        version: 1,
        step,
        rng: batches.getState(),
        logWindow: window,
        lastEval,
        dataFingerprint,
        config,
      };
      await saveSftCheckpoint(dir, model, tokenizer, optimizer, state);
    };

    progress = new TrainingProgress({ total: config.steps, label: 'sft', quiet, stream });
    progress.start(step);
    const t0 = performance.now();
    while (step < config.steps) {
      const tStep = performance.now();
      const lr = schedule(step);
      const batch = makeSftBatch(batches.next().map((i) => trainSet[i]!), tokenizer.padTokenId);
      const { loss, gradNorm } = sftTrainStep(model, optimizer, batch, { learningRate: lr, gradClip: config.gradClip });
      step++;
      window.steps++;
      window.lossSum += loss;
      window.gradNormSum += gradNorm;
      window.tokens += batch.numTokens;
      window.seconds += (performance.now() - tStep) / 1000;
      const last = step === config.steps;
      progress.update(step, { [METRIC_NAMES.train.loss]: loss });
      if (step % config.logEvery === 0 || last) {
        metrics.log(step, {
          [METRIC_NAMES.train.loss]: window.lossSum / window.steps,
          [METRIC_NAMES.train.gradNorm]: window.gradNormSum / window.steps,
          [METRIC_NAMES.train.learningRate]: lr,
          [METRIC_NAMES.throughput.tokensPerS]: window.tokens / Math.max(window.seconds, 1e-9),
        });
        window = { steps: 0, lossSum: 0, gradNormSum: 0, tokens: 0, seconds: 0 };
      }
      if (evalSet.length > 0 && ((config.evalEvery > 0 && step % config.evalEvery === 0) || last)) runEvaluation(step);
      if (last) await checkpoint(join(outDir, 'final'));
      else if (config.saveEvery > 0 && step % config.saveEvery === 0) await checkpoint(join(outDir, `checkpoint-${step}`));
    }
    const seconds = (performance.now() - t0) / 1000;
    progress.stop();
    const finalEval = lastEval as SftTrainerState['lastEval'];
    return {
      outDir,
      finalDir: join(outDir, 'final'),
      finalEval: finalEval && finalEval.step === config.steps ? { loss: finalEval.loss, accuracy: finalEval.accuracy } : null,
      evals,
      seconds,
      parameters: model.numParameters(),
    };
  } finally {
    progress?.stop();
    metrics?.close();
    sampleLog?.close();
    optimizer.dispose();
    model.dispose();
  }
}
