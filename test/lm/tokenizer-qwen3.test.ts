/**
 * The real published Qwen3 tokenizer (test/fixtures/tokenizers/qwen3, see its README) through
 * our `loadTokenizer`, against three references:
 * - transformers.js itself (`AutoTokenizer` on the same local folder, remote loading off):
 *   ids, decoding and the rendered chat template must be identical;
 * - an independent byte-level BPE written below from the tokenizer.json spec (added tokens
 *   split out first, NFC, the pre-tokenizer regex, GPT-2's byte-to-unicode alphabet, merges
 *   by rank): the ids must be identical on a varied sample;
 * - ids and template strings written out by hand from Qwen's published format.
 * Nothing is fetched: `env.fetch` and `globalThis.fetch` throw for the whole file.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AutoTokenizer, env, type PreTrainedTokenizer } from '@huggingface/transformers';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.ts';
import { loadCausalLM, saveCausalLM } from '../../src/lm/checkpoint.ts';
import { tinyQwen3Config } from '../../src/lm/config.ts';
import { CausalLM } from '../../src/lm/model.ts';
import { generateText } from '../../src/lm/sampler.ts';
import { loadTokenizer, TransformersTokenizer, type Tokenizer } from '../../src/lm/tokenizer.ts';
import { maxAbsDiff, useCpu } from './lm-helpers.ts';
import { qwen3TokenizerDir } from './real-tokenizer.ts';

/** Ids fixed by Qwen's published vocabulary (and GPT-2's byte alphabet for the single bytes). */
const ID = { endoftext: 151643, imStart: 151644, imEnd: 151645, think: 151667, thinkEnd: 151668, space: 220, newline: 198, twoNewlines: 271 };

const SAMPLE = [
  'Hello world',
  'The quick brown fox jumps over the lazy dog. I\'m sure YOU\'LL see it\'s DON\'T-proof; they\'ve we\'d',
  'Prices: $1,234.56 (+7.5%) on 2024-03-15, 1000000 items, pi = 3.14159, x^2 + 10x - 42 = 0',
  'naïve café, Straße, Ελληνικά, русский текст, 日本語のテキスト, 中文分词测试, 한국어, عربى',
  'emoji 🤖🚀 👩‍💻 ✓ ★ — “quotes” ‘single’ … ©®™ ½ ²',
  '  leading spaces\n\n\ttabs\t\tand   three   spaces   \n  \n trailing   ',
  'def f(x):\n    return x**2  # square\r\n\r\n}}\n\n\n',
  '<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n4<|im_end|><|endoftext|>',
  'not special: <|im_start| <think > </ think> <|endoftext|>x',
  '',
  ' ',
  '\n',
];

let dir: string;
let tok: Tokenizer;
let hf: PreTrainedTokenizer;
let reference: (text: string) => number[];
const realFetch = env.fetch;
const realGlobalFetch = globalThis.fetch;
const fetchCalls: string[] = [];

beforeAll(async () => {
  const refuse = async (input: string | URL | Request) => {
    fetchCalls.push(String(input instanceof Request ? input.url : input));
    throw new Error(`network access attempted: ${String(input)}`);
  };
  env.fetch = refuse;
  globalThis.fetch = refuse as typeof fetch;
  dir = await qwen3TokenizerDir();
  tok = await loadTokenizer(dir);
  env.allowRemoteModels = false;
  hf = await AutoTokenizer.from_pretrained(dir, { local_files_only: true });
  reference = referenceEncoder(JSON.parse(await readFile(join(dir, 'tokenizer.json'), 'utf8')) as TokenizerJson);
});

afterAll(() => {
  env.fetch = realFetch;
  globalThis.fetch = realGlobalFetch;
});

// ------------------------------------------------------------------ the independent reference

interface TokenizerJson {
  added_tokens: Array<{ id: number; content: string; special: boolean; lstrip: boolean; rstrip: boolean; normalized: boolean }>;
  normalizer: { type: string };
  pre_tokenizer: { type: string; pretokenizers: Array<{ type: string; pattern?: { Regex: string }; behavior?: string; use_regex?: boolean }> };
  model: { type: string; vocab: Record<string, number>; merges: Array<[string, string]> };
}

/** GPT-2's bytes_to_unicode: printable bytes map to themselves, the others to 256 + n. */
function bytesToUnicode(): string[] {
  const direct: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) direct.push(b);
  for (let b = 0xa1; b <= 0xac; b++) direct.push(b);
  for (let b = 0xae; b <= 0xff; b++) direct.push(b);
  const map = new Array<string>(256);
  for (const b of direct) map[b] = String.fromCodePoint(b);
  let n = 0;
  for (let b = 0; b < 256; b++) if (map[b] === undefined) map[b] = String.fromCodePoint(256 + n++);
  return map;
}

/**
 * Qwen2/Qwen3's pre-tokenizer regex in JavaScript syntax: the published pattern starts with
 * the scoped case-insensitive group `(?i:'s|'t|'re|'ve|'m|'ll|'d)`, which V8 in Node 20 does
 * not parse, so that group is spelled out with character classes; the rest is unchanged.
 */
const QWEN_SPLIT = /'(?:[sS]|[tT]|[rR][eE]|[vV][eE]|[mM]|[lL][lL]|[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+/gu;

function referenceEncoder(json: TokenizerJson): (text: string) => number[] {
  // Check that the file is the kind this reference implements, so a different tokenizer fails here.
  expect(json.normalizer.type).toBe('NFC');
  expect(json.model.type).toBe('BPE');
  const [split, byteLevel] = json.pre_tokenizer.pretokenizers;
  expect(split?.type).toBe('Split');
  expect(split?.behavior).toBe('Isolated');
  expect(split?.pattern?.Regex).toBe("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+");
  expect(byteLevel).toMatchObject({ type: 'ByteLevel', use_regex: false });
  expect(json.added_tokens.every((t) => !t.lstrip && !t.rstrip && !t.normalized)).toBe(true);

  const byteChar = bytesToUnicode();
  const ranks = new Map(json.model.merges.map(([a, b], i) => [`${a} ${b}`, i]));
  const vocab = new Map(Object.entries(json.model.vocab));
  const added = new Map(json.added_tokens.map((t) => [t.content, t.id]));
  // Added tokens are cut out of the raw text first, longest first.
  const addedRe = new RegExp(
    [...added.keys()].sort((a, b) => b.length - a.length).map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'),
    'g',
  );
  const utf8 = new TextEncoder();

  const bpe = (word: string): string[] => {
    let parts = [...word];
    for (;;) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i + 1 < parts.length; i++) {
        const r = ranks.get(`${parts[i]} ${parts[i + 1]}`);
        if (r !== undefined && r < bestRank) [best, bestRank] = [i, r];
      }
      if (best < 0) return parts;
      parts = [...parts.slice(0, best), parts[best]! + parts[best + 1]!, ...parts.slice(best + 2)];
    }
  };

  const encodePlain = (text: string): number[] => {
    const ids: number[] = [];
    const normalized = text.normalize('NFC');
    // "Isolated": every match is a piece, and so is any text between matches.
    let last = 0;
    const pieces: string[] = [];
    for (const m of normalized.matchAll(QWEN_SPLIT)) {
      if (m.index > last) pieces.push(normalized.slice(last, m.index));
      pieces.push(m[0]);
      last = m.index + m[0].length;
    }
    if (last < normalized.length) pieces.push(normalized.slice(last));
    for (const piece of pieces) {
      const word = Array.from(utf8.encode(piece), (b) => byteChar[b]!).join('');
      for (const sym of bpe(word)) {
        const id = vocab.get(sym);
        if (id === undefined) throw new Error(`reference BPE: ${JSON.stringify(sym)} is not in the vocabulary`);
        ids.push(id);
      }
    }
    return ids;
  };

  return (text: string): number[] => {
    const ids: number[] = [];
    let last = 0;
    for (const m of text.matchAll(addedRe)) {
      ids.push(...encodePlain(text.slice(last, m.index)));
      ids.push(added.get(m[0])!);
      last = m.index + m[0].length;
    }
    ids.push(...encodePlain(text.slice(last)));
    return ids;
  };
}

// ------------------------------------------------------------------ the tests

describe('the real Qwen3 tokenizer through loadTokenizer', () => {
  it('loads as a TransformersTokenizer with Qwen3 special ids', () => {
    expect(tok).toBeInstanceOf(TransformersTokenizer);
    expect(tok.vocabSize).toBe(151669); // 151643 BPE entries + 26 added tokens
    expect(tok.eosTokenId).toBe(ID.imEnd);
    expect(tok.padTokenId).toBe(ID.endoftext);
    expect(tok.bosTokenId).toBeNull();
  });

  it('encodes known ids from the published vocabulary', () => {
    expect(tok.encode('Hello world')).toEqual([9707, 1879]);
    expect(tok.encode('0123456789')).toEqual([15, 16, 17, 18, 19, 20, 21, 22, 23, 24]); // single digits
    expect(tok.encode(' ')).toEqual([ID.space]);
    expect(tok.encode('\n')).toEqual([ID.newline]);
    expect(tok.encode('\n\n')).toEqual([ID.twoNewlines]);
    expect(tok.encode('<|endoftext|><|im_start|><|im_end|><think></think>')).toEqual([ID.endoftext, ID.imStart, ID.imEnd, ID.think, ID.thinkEnd]);
    expect(tok.encode('<|im_start|>user\n')).toEqual([ID.imStart, 872, ID.newline]);
  });

  it.each(SAMPLE.map((s) => [JSON.stringify(s).slice(0, 40), s]))('ids match transformers.js and the independent BPE: %s', (_label, text) => {
    const ours = tok.encode(text);
    expect(ours).toEqual(hf.encode(text));
    expect(ours).toEqual(reference(text));
    expect(tok.encode(text, { addSpecialTokens: false })).toEqual(ours); // no BOS, nothing appended
    expect(ours.every((id) => id >= 0 && id < tok.vocabSize)).toBe(true);
    // Byte-level BPE is lossless on NFC text; special tokens are dropped only on request.
    expect(tok.decode(ours)).toBe(text);
    expect(tok.decode(ours)).toBe(ours.length === 0 ? '' : hf.decode(ours));
    expect(tok.decode(ours, { skipSpecialTokens: true })).toBe(ours.length === 0 ? '' : hf.decode(ours, { skip_special_tokens: true }));
  });

  it('splits digits one by one, keeps whitespace runs, and drops only special tokens when decoding', () => {
    expect(reference('  12345  x')).toEqual(tok.encode('  12345  x'));
    const ids = tok.encode('2024');
    expect(ids).toEqual([17, 15, 17, 19]);
    const chat = tok.encode('<|im_start|>assistant\n<think>\nhm\n</think>\n\n4<|im_end|>');
    expect(tok.decode(chat, { skipSpecialTokens: true })).toBe('assistant\n<think>\nhm\n</think>\n\n4'); // <think> is an added, not a special, token
    // NFC: a decomposed "é" (e + combining acute) encodes as the composed one.
    expect(tok.encode('cafe\u0301')).toEqual(tok.encode('caf\u00e9'));
    expect(reference('cafe\u0301')).toEqual(tok.encode('caf\u00e9'));
    expect(tok.encode('cafe\u0301')).not.toEqual(tok.encode('cafe'));
    // Longer runs of spaces are single tokens of the vocabulary, not one id per space.
    expect(tok.encode('a' + ' '.repeat(8) + 'b').length).toBeLessThan(5);
  });

  it('has a vocabulary the model config can be larger than (Qwen3 configs say 151936)', () => {
    expect(tok.vocabSize).toBeLessThan(151936);
    expect(() => tok.decode([tok.vocabSize])).toThrow(/id 151669 at position 0 is outside the vocabulary \[0, 151669\)/);
  });

  it('never touches the network', () => {
    expect(fetchCalls).toEqual([]);
  });
});

describe('the real Qwen3 chat template', () => {
  const system = { role: 'system', content: 'You are terse.' };
  const user = { role: 'user', content: 'What is 2+2?' };

  it('renders system + user with the generation prompt as transformers.js does, in ChatML', () => {
    const ours = tok.applyChatTemplate!([system, user], { addGenerationPrompt: true });
    expect(ours).toBe(hf.apply_chat_template([system, user], { tokenize: false, add_generation_prompt: true }));
    expect(ours).toBe('<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n');
    expect(tok.applyChatTemplate!([user])).toBe('<|im_start|>user\nWhat is 2+2?<|im_end|>\n');
  });

  it('strips the reasoning of earlier assistant turns and keeps the last one, as Qwen3 does', () => {
    const history = [
      system,
      user,
      { role: 'assistant', content: '<think>\nadd them\n</think>\n\n4' },
      { role: 'user', content: 'And 3+3?' },
      { role: 'assistant', content: '<think>\nagain\n</think>\n\n6' },
    ];
    const ours = tok.applyChatTemplate!(history);
    expect(ours).toBe(hf.apply_chat_template(history, { tokenize: false }));
    expect(ours).toBe(
      '<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n' +
        '<|im_start|>assistant\n4<|im_end|>\n<|im_start|>user\nAnd 3+3?<|im_end|>\n' +
        '<|im_start|>assistant\n<think>\nagain\n</think>\n\n6<|im_end|>\n',
    );
  });

  it('has the enable_thinking switch (read through transformers.js)', () => {
    const off = hf.apply_chat_template([user], { tokenize: false, add_generation_prompt: true, enable_thinking: false } as never);
    expect(off).toBe('<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n');
  });

  it('tokenizes the rendered prompt to the ids transformers.js gives, with the role markers as single tokens', () => {
    const rendered = tok.applyChatTemplate!([system, user], { addGenerationPrompt: true });
    const ids = tok.encode(rendered);
    const hfIds = hf.apply_chat_template([system, user], { tokenize: true, add_generation_prompt: true, return_tensor: false, return_dict: false });
    expect(ids).toEqual(hfIds);
    expect(ids).toEqual(reference(rendered));
    expect(ids.slice(0, 3)).toEqual([ID.imStart, 8948, ID.newline]); // <|im_start|> system \n
    expect(ids.slice(-3)).toEqual([ID.imStart, 77091, ID.newline]); // <|im_start|> assistant \n
    expect(ids.filter((id) => id === ID.imEnd)).toHaveLength(2);
  });
});

describe('a tiny random Qwen3 with the real tokenizer', () => {
  it('samples a chat-template prompt with the KV cache, emits only ids the tokenizer has, and saves as one folder', async () => {
    await useCpu();
    // Qwen3's real vocabulary size (151936 > the tokenizer's 151669) on a 16-wide, 1-layer trunk.
    const config = tinyQwen3Config({
      vocab_size: 151936, hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, head_dim: 16,
      intermediate_size: 32, max_position_embeddings: 64, eos_token_id: ID.imEnd, pad_token_id: ID.endoftext, initializer_range: 1,
    });
    const model = CausalLM.create(config, new Rng(5));
    const prompt = tok.applyChatTemplate!([{ role: 'user', content: 'Hi' }], { addGenerationPrompt: true });
    const before = tf.memory().numTensors;
    const res = generateText(model, tok, [prompt, prompt], { numGenerations: 2, maxNewTokens: 6, temperature: 1, rng: new Rng(6) });
    expect(tf.memory().numTensors).toBe(before);
    expect(res.completionIds).toHaveLength(4);
    expect(res.prompts).toEqual([prompt, prompt, prompt, prompt]);
    for (const [i, ids] of res.completionIds.entries()) {
      expect(ids.length).toBeGreaterThan(0);
      expect(ids.every((id) => id < tok.vocabSize), `completion ${i}: ${ids}`).toBe(true);
      expect(res.texts[i]).toBe(tok.decode(ids, { skipSpecialTokens: true }));
    }

    // Saved with its tokenizer, the folder loads back as the same model and tokenizer.
    const out = await mkdtemp(join(tmpdir(), 'rlvr-qwen3-real-tok-'));
    try {
      await saveCausalLM(model, tok, join(out, 'ckpt'));
      expect((await readdir(join(out, 'ckpt'))).sort()).toEqual(
        ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'],
      );
      expect((await readFile(join(out, 'ckpt', 'tokenizer.json'))).equals(await readFile(join(dir, 'tokenizer.json')))).toBe(true);
      const loaded = await loadCausalLM(join(out, 'ckpt'));
      const tok2 = await loadTokenizer(loaded.tokenizerDir);
      const ids = tok2.encode(prompt);
      expect(ids).toEqual(tok.encode(prompt));
      const x = tf.tensor2d([ids], [1, ids.length], 'int32');
      expect(maxAbsDiff(loaded.model.forward(x), model.forward(x))).toBe(0);
      loaded.model.dispose();
    } finally {
      await rm(out, { recursive: true, force: true });
    }
    model.dispose();
  });
});
