/**
 * Tokenizers: the one interface the sampler and the SFT/GRPO/PPO trainers use, and
 * `loadTokenizer(dir)` for a local Hugging Face tokenizer folder.
 *
 * Two implementations:
 * - `CharTokenizer` (./char-tokenizer.ts): native character-level tokenizer for the
 *   arithmetic and other small tasks. Folders it saved carry `"rlvr_tokenizer": "char"` in
 *   tokenizer_config.json and load back as a `CharTokenizer`.
 * - `TransformersTokenizer`: any other `tokenizer.json` folder, loaded through
 *   `@huggingface/transformers` (`AutoTokenizer`), chat templates included.
 *
 * No network, ever. How transformers.js 4 resolves a path (src/utils/hub.js, read for this):
 * - a string matching its model-id pattern (`name` or `org/name`) is joined onto
 *   `env.localModelPath` and, when missing there, fetched from the Hub. An absolute path
 *   never matches the pattern (it starts with `/`), so we always pass `path.resolve(dir)`:
 *   it is read from exactly that folder.
 * - `get_tokenizer_files` probes tokenizer_config.json *without* passing `local_files_only`,
 *   so `env.allowRemoteModels = false` is what stops a Hub request for a missing file. We set
 *   it, pass `local_files_only: true` as well, and check both files exist before calling.
 * - before reading the folder it looks the same path up in its file cache
 *   (`env.cacheDir`/<path>), where a stale copy would shadow the real file; `env.useFSCache`
 *   and `env.useBrowserCache` are turned off so the folder itself is always what is read.
 * The test suite replaces `env.fetch` with a function that throws, and loads still succeed.
 */
import { mkdir, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { PreTrainedTokenizer } from '@huggingface/transformers';
import { writeFileAtomic } from '../core/atomic.ts';
import { CHAR_TOKENIZER_MARKER, CharTokenizer } from './char-tokenizer.ts';

export interface ChatMessage {
  role: string;
  content: string;
}

/** Options of `Tokenizer.applyChatTemplate`. */
export interface ChatTemplateOptions {
  /** End with the header of an assistant turn (what a prompt for generation needs). Default false. */
  addGenerationPrompt?: boolean;
  /** Extra variables the template reads, e.g. `{ enable_thinking: false }` for Qwen3. */
  variables?: Record<string, unknown>;
}

/**
 * What the sampler and trainers need from a tokenizer.
 * - `vocabSize`: number of ids the tokenizer can produce (largest id + 1); a model's
 *   embedding may have more rows, and a sampler must not emit ids at or above this.
 * - `encode`: `addSpecialTokens` (default true) adds what the tokenizer adds around a
 *   text (its BOS, for tokenizers that prepend one); EOS is never appended: trainers
 *   append `eosTokenId` to targets themselves.
 * - `decode`: `skipSpecialTokens` (default false) drops special tokens (pad/bos/eos/unk
 *   and the like); ids outside [0, vocabSize) are an error.
 * - `bosTokenId`: the beginning-of-sequence id, or null when the vocabulary has none.
 * - `applyChatTemplate`: present only when the tokenizer has a chat template. `variables`
 *   are extra values the template reads, e.g. Qwen3's `{ enable_thinking: false }`.
 */
export interface Tokenizer {
  readonly vocabSize: number;
  readonly eosTokenId: number;
  readonly padTokenId: number;
  readonly bosTokenId: number | null;
  encode(text: string, options?: { addSpecialTokens?: boolean }): number[];
  decode(ids: ArrayLike<number>, options?: { skipSpecialTokens?: boolean }): string;
  applyChatTemplate?(messages: ChatMessage[], options?: ChatTemplateOptions): string;
  /** Writes tokenizer.json + tokenizer_config.json (+ special_tokens_map.json) into `dir`. */
  save(dir: string): Promise<void>;
}

/** Files of a Hugging Face tokenizer folder that `TransformersTokenizer.save` carries over when present. */
export const TOKENIZER_FILES = [
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'chat_template.jinja',
  'added_tokens.json',
  'vocab.json',
  'merges.txt',
  'vocab.txt',
  'tokenizer.model',
] as const;

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

async function readJsonObject(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new Error(`cannot read ${path}: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`${path} is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error(`${path} must hold a JSON object`);
  return json as Record<string, unknown>;
}

let transformersModule: Promise<typeof import('@huggingface/transformers')> | null = null;

/** Imports transformers.js once (it takes ~0.25 s) and locks it to local files. */
async function localTransformers(): Promise<typeof import('@huggingface/transformers')> {
  transformersModule ??= import('@huggingface/transformers');
  const mod = await transformersModule;
  mod.env.allowRemoteModels = false;
  mod.env.allowLocalModels = true;
  mod.env.useFSCache = false;
  mod.env.useBrowserCache = false;
  return mod;
}

function checkMessages(messages: unknown): ChatMessage[] {
  if (!Array.isArray(messages)) throw new Error('applyChatTemplate: messages must be an array of { role, content }');
  messages.forEach((m, i) => {
    if (typeof m !== 'object' || m === null) throw new Error(`applyChatTemplate: messages[${i}] is not an object`);
    const { role, content } = m as Record<string, unknown>;
    if (typeof role !== 'string') throw new Error(`applyChatTemplate: messages[${i}].role must be a string, got ${typeof role}`);
    if (typeof content !== 'string') throw new Error(`applyChatTemplate: messages[${i}].content must be a string, got ${typeof content}`);
  });
  return messages as ChatMessage[];
}

/** A Hugging Face tokenizer folder loaded through `@huggingface/transformers`. */
export class TransformersTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly eosTokenId: number;
  readonly padTokenId: number;
  readonly bosTokenId: number | null;
  /** Defined only when the folder has a chat template (tokenizer_config.json or chat_template.jinja). */
  readonly applyChatTemplate?: (messages: ChatMessage[], options?: ChatTemplateOptions) => string;

  private constructor(
    /** The underlying transformers.js tokenizer, for anything the interface does not cover. */
    readonly hf: PreTrainedTokenizer,
    /** The folder's tokenizer files as read at load time, written back by `save`. */
    private readonly files: ReadonlyMap<string, Buffer>,
    chatTemplateFile: string | null,
    where: string,
  ) {
    let maxId = -1;
    for (const id of hf.get_vocab().values()) if (id > maxId) maxId = id;
    this.vocabSize = maxId + 1;
    const eos = hf.eos_token_id as number | null | undefined;
    if (eos == null) throw new Error(`${where}: the tokenizer has no eos_token (set "eos_token" in tokenizer_config.json); generation needs one to stop`);
    this.eosTokenId = eos;
    // transformers.js already falls back to the EOS token when pad_token is not set.
    this.padTokenId = (hf.pad_token_id as number | null | undefined) ?? eos;
    this.bosTokenId = (hf.bos_token_id as number | null | undefined) ?? null;
    if (hf.chat_template != null || chatTemplateFile !== null) {
      this.applyChatTemplate = (messages, options = {}) =>
        hf.apply_chat_template(checkMessages(messages), {
          ...options.variables,
          tokenize: false,
          add_generation_prompt: options.addGenerationPrompt ?? false,
          ...(hf.chat_template == null ? { chat_template: chatTemplateFile } : {}),
        }) as string;
    }
  }

  /** Loads `dir` (tokenizer.json + tokenizer_config.json) from disk only. */
  static async load(dir: string): Promise<TransformersTokenizer> {
    const abs = resolve(dir);
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) {
      if (!(await isFile(join(abs, f)))) {
        throw new Error(`loadTokenizer: ${join(abs, f)} not found; a Hugging Face tokenizer folder needs tokenizer.json and tokenizer_config.json`);
      }
    }
    // Parse both here first so that a broken file is reported with its path.
    await readJsonObject(join(abs, 'tokenizer.json'));
    await readJsonObject(join(abs, 'tokenizer_config.json'));
    const files = new Map<string, Buffer>();
    for (const f of TOKENIZER_FILES) {
      if (await isFile(join(abs, f))) files.set(f, await readFile(join(abs, f)));
    }
    const { AutoTokenizer } = await localTransformers();
    let hf: PreTrainedTokenizer;
    try {
      hf = await AutoTokenizer.from_pretrained(abs, { local_files_only: true });
    } catch (e) {
      throw new Error(`loadTokenizer: @huggingface/transformers could not load ${abs}: ${(e as Error).message}`);
    }
    const jinja = files.get('chat_template.jinja');
    return new TransformersTokenizer(hf, files, jinja ? jinja.toString('utf8') : null, abs);
  }

  encode(text: string, options: { addSpecialTokens?: boolean } = {}): number[] {
    if (typeof text !== 'string') throw new TypeError(`TransformersTokenizer.encode: expected a string, got ${typeof text}`);
    return this.hf.encode(text, { add_special_tokens: options.addSpecialTokens ?? true });
  }

  decode(ids: ArrayLike<number>, options: { skipSpecialTokens?: boolean } = {}): string {
    const arr = Array.from(ids);
    arr.forEach((id, i) => {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new RangeError(`TransformersTokenizer.decode: id ${id} at position ${i} is outside the vocabulary [0, ${this.vocabSize})`);
      }
    });
    if (arr.length === 0) return ''; // transformers.js rejects an empty list
    return this.hf.decode(arr, { skip_special_tokens: options.skipSpecialTokens ?? false });
  }

  /** Writes the tokenizer files read at load time into `dir` (each through a temp file + rename). */
  async save(dir: string): Promise<void> {
    const abs = resolve(dir);
    await mkdir(abs, { recursive: true });
    for (const [name, bytes] of this.files) writeFileAtomic(join(abs, name), bytes);
  }
}

/**
 * Loads the tokenizer in `dir`: a `CharTokenizer` when tokenizer_config.json carries
 * `"rlvr_tokenizer": "char"`, otherwise a `TransformersTokenizer`. Reads local files only.
 */
export async function loadTokenizer(dir: string): Promise<Tokenizer> {
  const abs = resolve(dir);
  if (!(await isFile(join(abs, 'tokenizer.json')))) {
    throw new Error(`loadTokenizer: no tokenizer.json in ${abs} (expected a Hugging Face tokenizer folder)`);
  }
  const configPath = join(abs, 'tokenizer_config.json');
  if (await isFile(configPath)) {
    const config = await readJsonObject(configPath);
    if (config['rlvr_tokenizer'] === CHAR_TOKENIZER_MARKER) return CharTokenizer.load(abs);
    if (config['rlvr_tokenizer'] !== undefined) {
      throw new Error(`loadTokenizer: ${configPath} has rlvr_tokenizer = ${JSON.stringify(config['rlvr_tokenizer'])}; the only known value is "${CHAR_TOKENIZER_MARKER}"`);
    }
  }
  return TransformersTokenizer.load(abs);
}
