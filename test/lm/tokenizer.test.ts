import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { env } from '@huggingface/transformers';
import { loadTokenizer, TransformersTokenizer, type Tokenizer } from '../../src/lm/tokenizer.ts';
import { CharTokenizer } from '../../src/lm/char-tokenizer.ts';

const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'tokenizers', 'tiny-bpe');

// Ids of the fixture (see its README): hand-derived from its vocab and merge ranks.
const ID = { unk: 0, bos: 1, eos: 2, user: 3, assistant: 4, end: 5, space: 6, d: 8, h: 10, hello: 19, spaceHello: 20, wo: 21, rl: 22 };

let work: string;
const realFetch = env.fetch;
const realGlobalFetch = globalThis.fetch;
const fetchCalls: string[] = [];

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'rlvr-tokenizer-'));
  // Any attempt to reach the network fails loudly and is recorded.
  const refuse = async (input: string | URL | Request) => {
    fetchCalls.push(String(input instanceof Request ? input.url : input));
    throw new Error(`network access attempted: ${String(input)}`);
  };
  env.fetch = refuse;
  globalThis.fetch = refuse as typeof fetch;
});

afterAll(async () => {
  env.fetch = realFetch;
  globalThis.fetch = realGlobalFetch;
  await rm(work, { recursive: true, force: true });
});

async function copyFixture(name: string): Promise<string> {
  const dir = join(work, name);
  await cp(FIXTURE, dir, { recursive: true });
  return dir;
}

describe('TransformersTokenizer on the hand-written BPE fixture', () => {
  let tok: Tokenizer;
  beforeAll(async () => {
    tok = await loadTokenizer(FIXTURE);
  });

  it('loads through transformers.js with the special-token ids of the config', () => {
    expect(tok).toBeInstanceOf(TransformersTokenizer);
    expect(tok.vocabSize).toBe(23);
    expect(tok.bosTokenId).toBe(ID.bos);
    expect(tok.eosTokenId).toBe(ID.eos);
    expect(tok.padTokenId).toBe(ID.eos); // no pad_token in the config: falls back to EOS
  });

  it('encodes by the merge ranks, with and without BOS', () => {
    // "hello world" -> "▁hello▁world" -> ▁hello ▁ wo rl d (worked through in the fixture README)
    expect(tok.encode('hello world')).toEqual([ID.bos, ID.spaceHello, ID.space, ID.wo, ID.rl, ID.d]);
    expect(tok.encode('hello world', { addSpecialTokens: false })).toEqual([ID.spaceHello, ID.space, ID.wo, ID.rl, ID.d]);
    // "z" is not in the vocabulary; no merge applies to "h z"
    expect(tok.encode('hz', { addSpecialTokens: false })).toEqual([ID.space, ID.h, ID.unk]);
    // special tokens written in the text are matched as single tokens
    expect(tok.encode('</s>', { addSpecialTokens: false })).toEqual([ID.eos]);
  });

  it('decodes through the Metaspace decoder and drops special tokens on request', () => {
    const ids = [ID.bos, ID.spaceHello, ID.space, ID.wo, ID.rl, ID.d];
    expect(tok.decode(ids)).toBe('<s> hello world');
    expect(tok.decode(ids, { skipSpecialTokens: true })).toBe('hello world');
    expect(tok.decode(Int32Array.from(ids), { skipSpecialTokens: true })).toBe('hello world');
    expect(tok.decode([])).toBe('');
  });

  it('rejects ids outside the vocabulary, naming the position', () => {
    expect(() => tok.decode([ID.h, 23])).toThrow(/id 23 at position 1 is outside the vocabulary \[0, 23\)/);
    expect(() => tok.decode([-1])).toThrow(/position 0/);
    expect(() => tok.decode([1.5])).toThrow(/position 0/);
  });

  it('renders the chat template, with and without the generation prompt', () => {
    expect(tok.applyChatTemplate).toBeDefined();
    const messages = [{ role: 'user', content: 'hello' }];
    expect(tok.applyChatTemplate!(messages, { addGenerationPrompt: true })).toBe('<s><|user|>hello<|end|><|assistant|>');
    expect(tok.applyChatTemplate!(messages)).toBe('<s><|user|>hello<|end|>');
    const two = [
      { role: 'user', content: 'hello' },
      { role: 'assistant', content: 'world' },
    ];
    expect(tok.applyChatTemplate!(two)).toBe('<s><|user|>hello<|end|><|assistant|>world<|end|>');
    // the rendered text tokenizes with the role markers as single tokens; "hello" is not
    // the first section, so Metaspace ("first") adds no ▁ and the merges give "hello"
    const rendered = tok.applyChatTemplate!(messages, { addGenerationPrompt: true });
    expect(tok.encode(rendered, { addSpecialTokens: false })).toEqual([ID.bos, ID.user, ID.hello, ID.end, ID.assistant]);
  });

  it('rejects malformed chat messages with the index of the bad one', () => {
    expect(() => tok.applyChatTemplate!([{ role: 'user', content: 'a' }, { role: 'user' } as never])).toThrow(/messages\[1\]\.content must be a string/);
  });

  it('never touches the network', () => {
    expect(fetchCalls).toEqual([]);
  });
});

describe('TransformersTokenizer files', () => {
  it('save writes the files it loaded, byte for byte, and they load back the same', async () => {
    const tok = await loadTokenizer(FIXTURE);
    const out = join(work, 'saved', 'nested');
    await tok.save(out);
    for (const f of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json']) {
      expect((await readFile(join(out, f))).equals(await readFile(join(FIXTURE, f)))).toBe(true);
    }
    const again = await loadTokenizer(out);
    expect(again.encode('hello world!')).toEqual(tok.encode('hello world!'));
    expect(fetchCalls).toEqual([]);
  });

  it('loads from a relative path', async () => {
    const dir = await copyFixture('relative');
    const tok = await loadTokenizer(relative(process.cwd(), dir));
    expect(tok.encode('hello', { addSpecialTokens: false })).toEqual([ID.spaceHello]);
  });

  it('takes the chat template from chat_template.jinja when the config has none', async () => {
    const dir = await copyFixture('jinja');
    const config = JSON.parse(await readFile(join(dir, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
    const template = config['chat_template'] as string;
    delete config['chat_template'];
    await writeFile(join(dir, 'tokenizer_config.json'), JSON.stringify(config));
    await writeFile(join(dir, 'chat_template.jinja'), template.replace('<|end|>', '<|end|>!'));
    const tok = await loadTokenizer(dir);
    expect(tok.applyChatTemplate!([{ role: 'user', content: 'hi' }], { addGenerationPrompt: true })).toBe('<s><|user|>hi<|end|>!<|assistant|>');
    const saved = join(work, 'jinja-saved');
    await tok.save(saved);
    expect(await readFile(join(saved, 'chat_template.jinja'), 'utf8')).toContain('<|end|>!');
  });

  it('has no applyChatTemplate when there is no template', async () => {
    const dir = await copyFixture('no-template');
    const config = JSON.parse(await readFile(join(dir, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
    delete config['chat_template'];
    await writeFile(join(dir, 'tokenizer_config.json'), JSON.stringify(config));
    const tok = await loadTokenizer(dir);
    expect(tok.applyChatTemplate).toBeUndefined();
  });
});

describe('loadTokenizer errors', () => {
  it('names a folder without tokenizer.json', async () => {
    await expect(loadTokenizer(join(work, 'does-not-exist'))).rejects.toThrow(/no tokenizer\.json in .*does-not-exist/);
  });

  it('names a missing tokenizer_config.json', async () => {
    const dir = await copyFixture('no-config');
    await rm(join(dir, 'tokenizer_config.json'));
    await expect(loadTokenizer(dir)).rejects.toThrow(/tokenizer_config\.json not found/);
  });

  it('names a file that is not valid JSON', async () => {
    const dir = await copyFixture('bad-json');
    await writeFile(join(dir, 'tokenizer.json'), '{"model": ');
    await expect(loadTokenizer(dir)).rejects.toThrow(/bad-json\/tokenizer\.json is not valid JSON/);
  });

  it('requires an EOS token', async () => {
    const dir = await copyFixture('no-eos');
    const config = JSON.parse(await readFile(join(dir, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
    delete config['eos_token'];
    await writeFile(join(dir, 'tokenizer_config.json'), JSON.stringify(config));
    await expect(loadTokenizer(dir)).rejects.toThrow(/no eos_token/);
  });

  it('rejects an unknown rlvr_tokenizer marker', async () => {
    const dir = await copyFixture('bad-marker');
    const config = JSON.parse(await readFile(join(dir, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
    config['rlvr_tokenizer'] = 'word';
    await writeFile(join(dir, 'tokenizer_config.json'), JSON.stringify(config));
    await expect(loadTokenizer(dir)).rejects.toThrow(/rlvr_tokenizer = "word"/);
  });

  it('rejects a char-marked folder whose tokenizer.json was changed', async () => {
    const dir = join(work, 'char-edited');
    await CharTokenizer.fromAlphabet('abc').save(dir);
    const json = JSON.parse(await readFile(join(dir, 'tokenizer.json'), 'utf8')) as { model: { merges: string[] } };
    json.model.merges = ['a b'];
    await writeFile(join(dir, 'tokenizer.json'), JSON.stringify(json));
    await expect(loadTokenizer(dir)).rejects.toThrow(/char-edited\/tokenizer\.json: not a character tokenizer .*merges must be an empty array/);
  });
});
