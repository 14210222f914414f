/**
 * Character-level tokenizer for arithmetic and other small tasks.
 *
 * Every character of the alphabet is one token; a few multi-character "extra tokens"
 * (for example `<answer>`) may be added so that a tiny model emits a tag in one step.
 * Text is encoded left to right: at each position the longest special or extra token
 * that starts there wins, otherwise the single character (one Unicode code point) is
 * looked up, and characters outside the alphabet become `<unk>` (`firstUnknown` finds
 * them; the trainers refuse such data, see src/trainers/text-encoding.ts).
 *
 * Vocabulary layout of `CharTokenizer.fromAlphabet` (fixed, so ids never depend on options):
 *
 * | id | token | role |
 * | -- | ----- | ---- |
 * | 0 | `<pad>` | padding; never predicted |
 * | 1 | `<eos>` | end of sequence; appended by the trainers after a completion |
 * | 2 | `<unk>` | any character outside the alphabet |
 * | 3 | `<bos>` | beginning of sequence, prepended by `encode` (only when `bos: true`, the default) |
 * | next | the alphabet, one id per character, in the order given |
 * | last | the extra tokens, in the order given |
 *
 * `<pad>`, `<eos>`, `<unk>` and `<bos>` are special (dropped by `decode` with
 * `skipSpecialTokens`); extra tokens are ordinary text.
 *
 * `save(dir)` writes a Hugging Face `tokenizer.json` that `@huggingface/transformers` loads
 * and that encodes to the same ids: a BPE model with no merges (BPE splits each word into
 * code points and maps unknown ones to `<unk>`; transformers.js has no WordLevel model),
 * no normalizer and no pre-tokenizer, the special and extra tokens as added tokens (which
 * the HF tokenizer matches longest-first before the model runs, exactly as above), a
 * `TemplateProcessing` post-processor that prepends `<bos>`, and a `Fuse` decoder that
 * concatenates tokens. `tokenizer_config.json` carries `"rlvr_tokenizer": "char"`, so
 * `loadTokenizer` can rebuild this fast native class instead of the generic wrapper.
 *
 * This file uses only node built-ins (no tfjs), so `datasets/` may import it.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../core/atomic.ts';
import type { Tokenizer } from './tokenizer.ts';

export const PAD_TOKEN = '<pad>';
export const EOS_TOKEN = '<eos>';
export const UNK_TOKEN = '<unk>';
export const BOS_TOKEN = '<bos>';

/** Value of `rlvr_tokenizer` in tokenizer_config.json that marks a folder written by `CharTokenizer.save`. */
export const CHAR_TOKENIZER_MARKER = 'char';

export interface CharTokenizerOptions {
  /** Include `<bos>` (id 3) and prepend it in `encode` when special tokens are requested. Default true. */
  bos?: boolean;
  /** Multi-character tokens (at least two characters each), matched longest-first before single characters. Default none. */
  extraTokens?: readonly string[];
}

/** The parts of a saved tokenizer.json that `CharTokenizer` reads and writes. */
interface AddedTokenJson {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

const SPECIALS = [PAD_TOKEN, EOS_TOKEN, UNK_TOKEN, BOS_TOKEN] as const;

/** `"é" (U+00E9)`, or just the code point for a control or space character. */
export function describeChar(ch: string): string {
  const cp = ch.codePointAt(0)!;
  const printable = cp > 0x20 && cp !== 0x7f ? `"${ch}" ` : '';
  return `${printable}(U+${cp.toString(16).toUpperCase().padStart(4, '0')})`;
}

function isLoneSurrogate(ch: string): boolean {
  const c = ch.charCodeAt(0);
  return ch.length === 1 && c >= 0xd800 && c <= 0xdfff;
}

export class CharTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly padTokenId: number;
  readonly eosTokenId: number;
  readonly unkTokenId: number;
  readonly bosTokenId: number | null;
  /** Token string of every id: `tokens[id]`. */
  readonly tokens: readonly string[];

  private readonly charIds = new Map<number, number>(); // code point -> id
  private readonly special: Uint8Array; // 1 where the id is a special token
  // Added tokens (specials and extras) by their first UTF-16 unit, longest first.
  private readonly addedByFirstUnit = new Map<number, Array<[string, number]>>();

  /**
   * Builds a tokenizer from an id -> token table. `tokens` must hold `<pad>`, `<eos>`,
   * `<unk>` (and `<bos>` when `bos`); every other entry is either a single code point
   * (a character) or a multi-character extra token.
   */
  private constructor(tokens: readonly string[], where: string) {
    const ids = new Map<string, number>();
    tokens.forEach((t, id) => {
      if (typeof t !== 'string' || t.length === 0) throw new Error(`${where}: token ${id} is empty or not a string`);
      const prev = ids.get(t);
      if (prev !== undefined) throw new Error(`${where}: token ${JSON.stringify(t)} has two ids (${prev} and ${id})`);
      ids.set(t, id);
    });
    const need = (t: string): number => {
      const id = ids.get(t);
      if (id === undefined) throw new Error(`${where}: the vocabulary has no ${t} token`);
      return id;
    };
    this.tokens = Object.freeze([...tokens]);
    this.vocabSize = tokens.length;
    this.padTokenId = need(PAD_TOKEN);
    this.eosTokenId = need(EOS_TOKEN);
    this.unkTokenId = need(UNK_TOKEN);
    this.bosTokenId = ids.get(BOS_TOKEN) ?? null;
    this.special = new Uint8Array(tokens.length);
    const added: Array<[string, number]> = [];
    tokens.forEach((t, id) => {
      if ((SPECIALS as readonly string[]).includes(t)) {
        this.special[id] = 1;
        added.push([t, id]);
      } else if ([...t].length === 1) {
        if (isLoneSurrogate(t)) throw new Error(`${where}: token ${id} is a lone UTF-16 surrogate`);
        this.charIds.set(t.codePointAt(0)!, id);
      } else {
        added.push([t, id]);
      }
    });
    added.sort((x, y) => y[0].length - x[0].length);
    for (const entry of added) {
      const first = entry[0].charCodeAt(0);
      const list = this.addedByFirstUnit.get(first);
      if (list) list.push(entry);
      else this.addedByFirstUnit.set(first, [entry]);
    }
  }

  /**
   * The standard layout described in the file header: `<pad>`, `<eos>`, `<unk>`, `<bos>`?,
   * then one id per character of `chars` (in order), then `options.extraTokens`.
   */
  static fromAlphabet(chars: string, options: CharTokenizerOptions = {}): CharTokenizer {
    const where = 'CharTokenizer.fromAlphabet';
    if (typeof chars !== 'string' || chars.length === 0) throw new Error(`${where}: the alphabet must be a non-empty string`);
    const { bos = true, extraTokens = [] } = options;
    const tokens: string[] = bos ? [PAD_TOKEN, EOS_TOKEN, UNK_TOKEN, BOS_TOKEN] : [PAD_TOKEN, EOS_TOKEN, UNK_TOKEN];
    const seenAt = new Map<string, number>();
    [...chars].forEach((ch, i) => {
      if (isLoneSurrogate(ch)) throw new Error(`${where}: alphabet character ${i} is a lone UTF-16 surrogate ${describeChar(ch)}`);
      const prev = seenAt.get(ch);
      if (prev !== undefined) {
        throw new Error(`${where}: character ${describeChar(ch)} appears twice in the alphabet (characters ${prev} and ${i})`);
      }
      seenAt.set(ch, i);
      tokens.push(ch);
    });
    extraTokens.forEach((t, i) => {
      if (typeof t !== 'string' || [...t].length < 2) {
        throw new Error(`${where}: extraTokens[${i}] = ${JSON.stringify(t)} must have at least two characters (single characters belong in the alphabet)`);
      }
      if ((SPECIALS as readonly string[]).includes(t)) throw new Error(`${where}: extraTokens[${i}] = ${t} is a reserved special token`);
      if (tokens.includes(t)) throw new Error(`${where}: extraTokens[${i}] = ${JSON.stringify(t)} is listed twice`);
      tokens.push(t);
    });
    return new CharTokenizer(tokens, where);
  }

  /** Rebuilds a tokenizer from the tokenizer.json that `save` wrote; `where` names the source in errors. */
  static fromTokenizerJson(json: unknown, where = 'tokenizer.json'): CharTokenizer {
    const fail = (problem: string): never => {
      throw new Error(`${where}: not a character tokenizer written by CharTokenizer.save: ${problem}`);
    };
    if (typeof json !== 'object' || json === null || Array.isArray(json)) return fail('the file is not a JSON object');
    const j = json as Record<string, unknown>;
    const model = j['model'] as Record<string, unknown> | null | undefined;
    if (typeof model !== 'object' || model === null) return fail('it has no "model" object');
    if (model['type'] !== 'BPE') return fail(`model.type is ${JSON.stringify(model['type'])}, expected "BPE"`);
    if (!Array.isArray(model['merges']) || model['merges'].length !== 0) return fail('model.merges must be an empty array');
    if (model['unk_token'] !== UNK_TOKEN) return fail(`model.unk_token is ${JSON.stringify(model['unk_token'])}, expected "${UNK_TOKEN}"`);
    if (j['normalizer'] != null) return fail('it has a normalizer');
    if (j['pre_tokenizer'] != null) return fail('it has a pre_tokenizer');
    const decoder = j['decoder'] as Record<string, unknown> | null | undefined;
    if (decoder?.['type'] !== 'Fuse') return fail('decoder.type must be "Fuse"');
    const vocab = model['vocab'];
    if (typeof vocab !== 'object' || vocab === null || Array.isArray(vocab)) return fail('model.vocab is not an object');
    const entries = Object.entries(vocab as Record<string, unknown>);
    const tokens: string[] = new Array<string>(entries.length);
    for (const [tok, id] of entries) {
      if (!Number.isInteger(id) || (id as number) < 0 || (id as number) >= entries.length) {
        return fail(`model.vocab[${JSON.stringify(tok)}] = ${JSON.stringify(id)} is not an id in [0, ${entries.length})`);
      }
      if (tokens[id as number] !== undefined) return fail(`id ${id} is used by ${JSON.stringify(tokens[id as number])} and ${JSON.stringify(tok)}`);
      tokens[id as number] = tok;
    }
    const added = j['added_tokens'];
    if (!Array.isArray(added)) return fail('added_tokens is not an array');
    for (const a of added as AddedTokenJson[]) {
      if (typeof a !== 'object' || a === null) return fail('added_tokens holds an entry that is not an object');
      if (tokens[a.id] !== a.content) return fail(`added token ${JSON.stringify(a.content)} has id ${a.id}, but model.vocab gives that id to ${JSON.stringify(tokens[a.id])}`);
      const shouldBeSpecial = (SPECIALS as readonly string[]).includes(a.content);
      if (a.special !== shouldBeSpecial) return fail(`added token ${a.content} must have special: ${shouldBeSpecial}`);
    }
    const tok = new CharTokenizer(tokens, where);
    for (const [id, t] of tokens.entries()) {
      if ([...t].length > 1 && !(added as AddedTokenJson[]).some((a) => a.id === id)) {
        return fail(`multi-character token ${JSON.stringify(t)} (id ${id}) is not listed in added_tokens`);
      }
    }
    const hasBosTemplate = j['post_processor'] != null;
    if (hasBosTemplate !== (tok.bosTokenId !== null)) {
      return fail(tok.bosTokenId !== null ? 'it has <bos> but no post_processor that prepends it' : 'it has a post_processor but no <bos>');
    }
    return tok;
  }

  /** Loads a folder written by `save` (tokenizer.json). */
  static async load(dir: string): Promise<CharTokenizer> {
    const path = join(dir, 'tokenizer.json');
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      throw new Error(`CharTokenizer.load: cannot read ${path}: ${(e as Error).message}`);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new Error(`CharTokenizer.load: ${path} is not valid JSON: ${(e as Error).message}`);
    }
    return CharTokenizer.fromTokenizerJson(json, path);
  }

  /** The single-character tokens in id order. */
  get alphabet(): string {
    return this.tokens.filter((t, id) => !this.special[id] && [...t].length === 1).join('');
  }

  /** The multi-character, non-special tokens in id order. */
  get extraTokens(): string[] {
    return this.tokens.filter((t, id) => !this.special[id] && [...t].length > 1);
  }

  /** Id of a token string, or undefined when it is not in the vocabulary. */
  tokenToId(token: string): number | undefined {
    if ([...token].length === 1) {
      const id = this.charIds.get(token.codePointAt(0)!);
      if (id !== undefined) return id;
    }
    const list = this.addedByFirstUnit.get(token.charCodeAt(0));
    return list?.find(([t]) => t === token)?.[1];
  }

  /** True for `<pad>`, `<eos>`, `<unk>` and `<bos>`. */
  isSpecial(id: number): boolean {
    return this.special[id] === 1;
  }

  /** Token ids of `text`; `addSpecialTokens` (default true) prepends `<bos>` when the vocabulary has one. */
  encode(text: string, options: { addSpecialTokens?: boolean } = {}): number[] {
    if (typeof text !== 'string') throw new TypeError(`CharTokenizer.encode: expected a string, got ${typeof text}`);
    const out: number[] = [];
    if ((options.addSpecialTokens ?? true) && this.bosTokenId !== null) out.push(this.bosTokenId);
    const n = text.length;
    let i = 0;
    outer: while (i < n) {
      const candidates = this.addedByFirstUnit.get(text.charCodeAt(i));
      if (candidates) {
        for (const [t, id] of candidates) {
          if (text.startsWith(t, i)) {
            out.push(id);
            i += t.length;
            continue outer;
          }
        }
      }
      const cp = text.codePointAt(i)!;
      out.push(this.charIds.get(cp) ?? this.unkTokenId);
      i += cp > 0xffff ? 2 : 1;
    }
    return out;
  }

  /**
   * The first character of `text` that `encode` would turn into `<unk>` (outside the
   * alphabet and not part of a special or extra token), with its UTF-16 index; null when
   * every character is known.
   */
  firstUnknown(text: string): { char: string; index: number } | null {
    const n = text.length;
    let i = 0;
    outer: while (i < n) {
      const candidates = this.addedByFirstUnit.get(text.charCodeAt(i));
      if (candidates) {
        for (const [t] of candidates) {
          if (text.startsWith(t, i)) {
            i += t.length;
            continue outer;
          }
        }
      }
      const cp = text.codePointAt(i)!;
      if (!this.charIds.has(cp)) return { char: String.fromCodePoint(cp), index: i };
      i += cp > 0xffff ? 2 : 1;
    }
    return null;
  }

  /** Concatenation of the tokens of `ids`; throws on an id outside [0, vocabSize). */
  decode(ids: ArrayLike<number>, options: { skipSpecialTokens?: boolean } = {}): string {
    const skip = options.skipSpecialTokens ?? false;
    let s = '';
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new RangeError(`CharTokenizer.decode: id ${id} at position ${i} is outside the vocabulary [0, ${this.vocabSize})`);
      }
      if (skip && this.special[id] === 1) continue;
      s += this.tokens[id]!;
    }
    return s;
  }

  /** The Hugging Face tokenizer.json (see the file header for its structure). */
  toTokenizerJson(): Record<string, unknown> {
    const vocab: Record<string, number> = {};
    this.tokens.forEach((t, id) => (vocab[t] = id));
    const added: AddedTokenJson[] = [];
    this.tokens.forEach((t, id) => {
      if (this.special[id] || [...t].length > 1) {
        added.push({ id, content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: this.special[id] === 1 });
      }
    });
    const bos = this.bosTokenId;
    const postProcessor =
      bos === null
        ? null
        : {
            type: 'TemplateProcessing',
            single: [{ SpecialToken: { id: BOS_TOKEN, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
            pair: [{ SpecialToken: { id: BOS_TOKEN, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
            special_tokens: { [BOS_TOKEN]: { id: BOS_TOKEN, ids: [bos], tokens: [BOS_TOKEN] } },
          };
    return {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: added,
      normalizer: null,
      pre_tokenizer: null,
      post_processor: postProcessor,
      decoder: { type: 'Fuse' },
      model: {
        type: 'BPE',
        dropout: null,
        unk_token: UNK_TOKEN,
        continuing_subword_prefix: null,
        end_of_word_suffix: null,
        fuse_unk: false,
        byte_fallback: false,
        ignore_merges: false,
        vocab,
        merges: [],
      },
    };
  }

  /** tokenizer_config.json: special tokens, no clean-up of spaces, and the `rlvr_tokenizer` marker. */
  toTokenizerConfig(): Record<string, unknown> {
    const addedTokensDecoder: Record<string, unknown> = {};
    this.tokens.forEach((t, id) => {
      if (this.special[id] || [...t].length > 1) {
        addedTokensDecoder[String(id)] = { content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: this.special[id] === 1 };
      }
    });
    return {
      tokenizer_class: 'PreTrainedTokenizerFast',
      rlvr_tokenizer: CHAR_TOKENIZER_MARKER,
      ...this.specialTokensMap(),
      add_bos_token: this.bosTokenId !== null,
      add_eos_token: false,
      // transformers' default clean-up rewrites " ," -> "," and similar; characters must round-trip.
      clean_up_tokenization_spaces: false,
      added_tokens_decoder: addedTokensDecoder,
    };
  }

  private specialTokensMap(): Record<string, string> {
    return {
      ...(this.bosTokenId !== null ? { bos_token: BOS_TOKEN } : {}),
      eos_token: EOS_TOKEN,
      pad_token: PAD_TOKEN,
      unk_token: UNK_TOKEN,
    };
  }

  /** Writes tokenizer.json, tokenizer_config.json and special_tokens_map.json into `dir` (created if missing). */
  async save(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true });
    writeFileAtomic(join(dir, 'tokenizer.json'), JSON.stringify(this.toTokenizerJson(), null, 2) + '\n');
    writeFileAtomic(join(dir, 'tokenizer_config.json'), JSON.stringify(this.toTokenizerConfig(), null, 2) + '\n');
    writeFileAtomic(join(dir, 'special_tokens_map.json'), JSON.stringify(this.specialTokensMap(), null, 2) + '\n');
  }
}
