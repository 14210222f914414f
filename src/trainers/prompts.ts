/**
 * The rows the language-model trainers read, and the order they read them in.
 *
 * - A prompt row (GRPO, PPO): a `prompt` plus every other column of the data set, which the
 *   reward functions receive (`answer`, tests, ...), and where it came from (`file:line`)
 *   for error messages. The prompt is plain text, or (conversational, as TRL has it) a list
 *   of `{ role, content }` messages that `encodePromptRows` renders with the tokenizer's chat
 *   template and its generation prompt. Files, folders, column maps and formats:
 *   datasets/prompts.ts. `encodePromptRows` checks that each prompt plus the completion budget
 *   fits the model; `promptFingerprint` is checked on resume.
 * - A supervised example (SFT): a `prompt` and its target `completion` (and an `answer`).
 * - `ShuffledBatches`: batches drawn without replacement in epochs, each epoch a fresh
 *   permutation from a seeded RNG; a batch that crosses an epoch boundary is topped up from
 *   the next permutation, so every batch has `batchSize` rows. Its state resumes exactly.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { makeArithmeticSplits } from '../../datasets/arithmetic/generate.ts';
import { parseJsonl } from '../../datasets/jsonl.ts';
import { loadPromptTable, type PromptTableOptions } from '../../datasets/prompts.ts';
import type { Rng, RngState } from '../core/rng.ts';
import type { ChatMessage, Tokenizer } from '../lm/tokenizer.ts';
import type { SftGenerateConfig } from './sft-config.ts';
import { DataEncoder, type Warn } from './text-encoding.ts';

/** The objects of a JSONL file (each with a string `prompt`) and the line number of each; errors name the file. */
async function readJsonlRows(path: string, what: string): Promise<{ rows: Record<string, unknown>[]; at: (row: number) => number }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new Error(`cannot read data file ${path}: ${(e as Error).message}`);
  }
  const rows = parseJsonl(text, { source: path, requiredColumns: { prompt: 'string' } }) as Record<string, unknown>[];
  if (rows.length === 0) throw new Error(`${path}: no ${what} (the file is empty)`);
  // parseJsonl skips blank lines; recover the line number of each row the same way.
  const lines: number[] = [];
  text
    .replace(/^\uFEFF/, '')
    .split('\n')
    .forEach((line, i) => {
      if (line.trim() !== '') lines.push(i + 1);
    });
  return { rows, at: (row) => lines[row]! };
}

// ---------------------------------------------------------------------------------------
// Prompt rows (GRPO, PPO)

/** One prompt with the dataset columns the reward functions may read. */
export interface PromptRow {
  /** Plain text, or (conversational) the messages the chat template renders. */
  prompt: string | ChatMessage[];
  /** Every other column of the row (e.g. `answer`), passed to the reward functions. */
  columns: Record<string, unknown>;
  /** Where the row came from (`train.jsonl:12`), named in errors. */
  source: string;
  /** Extra chat-template variables for a conversational prompt (TRL's `chat_template_kwargs`), e.g. `{ enable_thinking: false }`. */
  templateVariables?: Record<string, unknown>;
}

/** A row with the text the model is given and its token ids. */
export interface EncodedPromptRow extends PromptRow {
  /** The prompt itself, or the chat template's rendering of its messages with the generation prompt. */
  promptText: string;
  /** Token ids of `promptText` (the tokenizer's BOS included for plain text; as the template writes it for messages). */
  promptIds: number[];
}

/**
 * Reads prompts: a .jsonl, .json or .parquet file or a Hugging Face dataset folder (see
 * datasets/prompts.ts for the options); each row has a `prompt` (text or messages) and the
 * columns the reward functions read. Errors name the file, the row and the column.
 */
export async function loadPromptRows(path: string, options: PromptTableOptions = {}): Promise<PromptRow[]> {
  return (await loadPromptTable(path, options)).rows;
}

/** A row's prompt as plain text, for commands that take only plain prompts; a conversational one is an error naming the row. */
export function plainPromptText(row: PromptRow, what: string): string {
  if (typeof row.prompt !== 'string') throw new Error(`${row.source}: ${what} takes plain-text prompts; this one is a list of chat messages`);
  return row.prompt;
}

/** The text the model is given for a row: the prompt, or its messages rendered by the chat template (see `encodePromptRows`). */
export function renderPrompt(row: PromptRow, tokenizer: Tokenizer): string {
  if (typeof row.prompt === 'string') return row.prompt;
  if (!tokenizer.applyChatTemplate) {
    throw new Error(`${row.source}: the prompt is a list of chat messages, but the tokenizer has no chat template (tokenizer_config.json "chat_template" or chat_template.jinja)`);
  }
  return tokenizer.applyChatTemplate(row.prompt, { addGenerationPrompt: true, ...(row.templateVariables ? { variables: row.templateVariables } : {}) });
}

/** A template variable the rows set (enable_thinking, say) must change what the template writes; else it is not the template's switch. */
function checkTemplateVariables(rows: readonly PromptRow[], tokenizer: Tokenizer): void {
  const row = rows.find((r) => typeof r.prompt !== 'string' && r.templateVariables);
  if (!row || !tokenizer.applyChatTemplate) return;
  for (const [name, value] of Object.entries(row.templateVariables!)) {
    if (typeof value !== 'boolean') continue;
    const flipped = renderPrompt({ ...row, templateVariables: { ...row.templateVariables, [name]: !value } }, tokenizer);
    if (flipped === renderPrompt(row, tokenizer)) {
      throw new Error(`${row.source}: ${name} = ${value} is set, but this tokenizer's chat template does not read "${name}" (it renders the same either way); unset it`);
    }
  }
}

/**
 * Prompt token ids of each row. The prompt plus `maxCompletionLength` new tokens must fit the
 * model's context, every id its vocabulary, and every character must be one the tokenizer can
 * encode (text-encoding.ts); errors name the row's source. A plain prompt
 * is encoded with the tokenizer's special tokens (its BOS); a conversational one is rendered
 * by the chat template with the generation prompt and encoded as written (the template adds
 * what it needs, as TRL does with add_special_tokens=False).
 */
export function encodePromptRows(rows: readonly PromptRow[], tokenizer: Tokenizer, limits: { maxPositions: number; vocabSize: number; maxCompletionLength: number; warn?: Warn }): EncodedPromptRow[] {
  checkTemplateVariables(rows, tokenizer);
  const encoder = new DataEncoder(tokenizer, limits.warn);
  return rows.map((row) => {
    const promptText = renderPrompt(row, tokenizer);
    const promptIds = encoder.encode(promptText, row.source, 'prompt', { addSpecialTokens: typeof row.prompt === 'string' });
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
    return { ...row, promptText, promptIds };
  });
}

/** SHA-256 of the prompts and columns, recorded in a checkpoint and checked on resume. */
export function promptFingerprint(rows: readonly PromptRow[]): string {
  const h = createHash('sha256');
  for (const r of rows) h.update(JSON.stringify([r.prompt, r.columns])).update('\n');
  return h.digest('hex');
}

/** The generated arithmetic splits as prompt rows whose `answer` column the verifiers read. */
export function generatedPromptRows(g: SftGenerateConfig): { train: PromptRow[]; test: PromptRow[] } {
  const { train, test } = generateSftExamples(g);
  const toRow = (e: SftExample): PromptRow => ({ prompt: e.prompt, columns: { answer: e.answer ?? e.completion }, source: e.source });
  return { train: train.map(toRow), test: test.map(toRow) };
}

// ---------------------------------------------------------------------------------------
// Supervised examples (SFT)

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
  const { rows, at: lineOf } = await readJsonlRows(path, 'examples');
  return rows.map((row, i) => {
    const at = `${path}:${lineOf(i)}`;
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
 * the model's vocabulary, and every character must be one the tokenizer can encode
 * (text-encoding.ts); errors name the example's source.
 */
export function encodeSftExamples(examples: readonly SftExample[], tokenizer: Tokenizer, limits: { maxPositions: number; vocabSize: number; warn?: Warn }): EncodedSftExample[] {
  const encoder = new DataEncoder(tokenizer, limits.warn);
  return examples.map((ex) => {
    const promptIds = encoder.encode(ex.prompt, ex.source, 'prompt');
    const completionIds = [...encoder.encode(ex.completion, ex.source, 'completion', { addSpecialTokens: false }), tokenizer.eosTokenId];
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

/** SHA-256 of the examples (prompt, completion), recorded in a checkpoint and checked on resume. */
export function exampleFingerprint(examples: readonly SftExample[]): string {
  const h = createHash('sha256');
  for (const ex of examples) h.update(JSON.stringify([ex.prompt, ex.completion])).update('\n');
  return h.digest('hex');
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
