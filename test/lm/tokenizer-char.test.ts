import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AutoTokenizer, env } from '@huggingface/transformers';
import { CharTokenizer } from '../../src/lm/char-tokenizer.ts';
import { loadTokenizer } from '../../src/lm/tokenizer.ts';
import { Rng } from '../../src/core/rng.ts';

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'rlvr-char-tokenizer-'));
  env.allowRemoteModels = false;
  env.useFSCache = false;
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('CharTokenizer layout', () => {
  it('puts <pad> <eos> <unk> <bos> first, then the alphabet, then extra tokens', () => {
    const tok = CharTokenizer.fromAlphabet('ab', { extraTokens: ['<x>'] });
    expect(tok.tokens).toEqual(['<pad>', '<eos>', '<unk>', '<bos>', 'a', 'b', '<x>']);
    expect([tok.padTokenId, tok.eosTokenId, tok.unkTokenId, tok.bosTokenId, tok.vocabSize]).toEqual([0, 1, 2, 3, 7]);
    expect(tok.alphabet).toBe('ab');
    expect(tok.extraTokens).toEqual(['<x>']);
    expect(tok.tokenToId('b')).toBe(5);
    expect(tok.tokenToId('<x>')).toBe(6);
    expect(tok.tokenToId('<eos>')).toBe(1);
    expect(tok.tokenToId('c')).toBeUndefined();
  });

  it('without bos keeps pad/eos/unk ids and shifts the alphabet down', () => {
    const tok = CharTokenizer.fromAlphabet('ab', { bos: false });
    expect(tok.tokens).toEqual(['<pad>', '<eos>', '<unk>', 'a', 'b']);
    expect(tok.bosTokenId).toBeNull();
    expect(tok.encode('ba')).toEqual([4, 3]);
  });

  it('encodes character by character, prepending <bos> unless asked not to', () => {
    const tok = CharTokenizer.fromAlphabet('ab');
    expect(tok.encode('ba')).toEqual([3, 5, 4]);
    expect(tok.encode('ba', { addSpecialTokens: false })).toEqual([5, 4]);
    expect(tok.encode('')).toEqual([3]);
    expect(tok.encode('', { addSpecialTokens: false })).toEqual([]);
  });

  it('maps each unknown code point (astral ones included) to one <unk>', () => {
    const tok = CharTokenizer.fromAlphabet('ab');
    expect(tok.encode('a😀c\nb', { addSpecialTokens: false })).toEqual([4, 2, 2, 2, 5]);
  });

  it('matches special and extra tokens longest-first before single characters', () => {
    const tok = CharTokenizer.fromAlphabet('<ab>', { extraTokens: ['<a', '<ab>'] });
    // ids: <pad>0 <eos>1 <unk>2 <bos>3 '<'4 'a'5 'b'6 '>'7 '<a'8 '<ab>'9
    expect(tok.encode('<ab><a<b<eos>', { addSpecialTokens: false })).toEqual([9, 8, 4, 6, 1]);
    expect(tok.encode('<eo', { addSpecialTokens: false })).toEqual([4, 2, 2]);
  });

  it('decodes by concatenation and skips only the special tokens on request', () => {
    const tok = CharTokenizer.fromAlphabet('12+=', { extraTokens: ['<answer>', '</answer>'] });
    const ids = tok.encode('1+2=<answer>3</answer>');
    ids.push(tok.eosTokenId, tok.padTokenId);
    expect(tok.decode(ids)).toBe('<bos>1+2=<answer><unk></answer><eos><pad>');
    expect(tok.decode(ids, { skipSpecialTokens: true })).toBe('1+2=<answer></answer>');
    expect(tok.decode(new Uint16Array(ids), { skipSpecialTokens: true })).toBe('1+2=<answer></answer>');
  });

  it('round-trips text made of its own characters', () => {
    const tok = CharTokenizer.fromAlphabet('0123456789+-*= \n', { extraTokens: ['<answer>', '</answer>'] });
    for (const s of ['12+34=', '7*8=<answer>56</answer>', ' \n ', '']) {
      expect(tok.decode(tok.encode(s), { skipSpecialTokens: true })).toBe(s);
    }
  });
});

describe('CharTokenizer errors', () => {
  it('names the repeated character and both positions', () => {
    expect(() => CharTokenizer.fromAlphabet('abca')).toThrow(/character "a" \(U\+0061\) appears twice in the alphabet \(characters 0 and 3\)/);
    expect(() => CharTokenizer.fromAlphabet('a  ')).toThrow(/\(U\+0020\) appears twice/);
  });

  it('rejects an empty alphabet and bad extra tokens', () => {
    expect(() => CharTokenizer.fromAlphabet('')).toThrow(/non-empty string/);
    expect(() => CharTokenizer.fromAlphabet('ab', { extraTokens: ['x'] })).toThrow(/extraTokens\[0\] = "x" must have at least two characters/);
    expect(() => CharTokenizer.fromAlphabet('ab', { extraTokens: ['ok', '<eos>'] })).toThrow(/extraTokens\[1\] = <eos> is a reserved special token/);
    expect(() => CharTokenizer.fromAlphabet('ab', { extraTokens: ['ok', 'ok'] })).toThrow(/extraTokens\[1\] = "ok" is listed twice/);
    expect(() => CharTokenizer.fromAlphabet('a\ud800')).toThrow(/lone UTF-16 surrogate/);
  });

  it('rejects ids outside the vocabulary in decode, naming the position', () => {
    const tok = CharTokenizer.fromAlphabet('ab');
    expect(() => tok.decode([4, 6])).toThrow(/id 6 at position 1 is outside the vocabulary \[0, 6\)/);
    expect(() => tok.decode([4, -1])).toThrow(/position 1/);
    expect(() => tok.decode([0.5])).toThrow(/position 0/);
  });
});

/** Strings over the alphabet, a few unknown characters, and literal special/extra tokens. */
function sampleStrings(rng: Rng, count: number): string[] {
  const pieces = ['0', '1', '5', '9', '+', '-', '*', '=', ' ', '\n', '<answer>', '</answer>', '<eos>', '<pad>', '<bos>', '<unk>', '<', '>', 'a', 'x', 'é', '😀', '/', '<answer', 'answer>'];
  const out = ['', '12+34=', '<answer>46</answer>', '<<answer>>', ' , . ! ?', "don't 'm"];
  for (let i = 0; i < count; i++) {
    const len = rng.int(24);
    let s = '';
    for (let j = 0; j < len; j++) s += pieces[rng.int(pieces.length)]!;
    out.push(s);
  }
  return out;
}

describe('parity with @huggingface/transformers on the saved tokenizer.json', () => {
  for (const bos of [true, false]) {
    it(`encodes and decodes to the same ids and text (bos: ${bos})`, async () => {
      const tok = CharTokenizer.fromAlphabet('0123456789+-*= \n', { bos, extraTokens: ['<answer>', '</answer>'] });
      const dir = join(work, `parity-${bos}`);
      await tok.save(dir);
      const hf = await AutoTokenizer.from_pretrained(dir, { local_files_only: true });
      expect(hf.eos_token_id).toBe(tok.eosTokenId);
      expect(hf.pad_token_id).toBe(tok.padTokenId);
      expect(hf.bos_token_id ?? null).toBe(tok.bosTokenId);
      expect(hf.unk_token_id).toBe(tok.unkTokenId);
      let unknownSeen = 0;
      for (const s of sampleStrings(new Rng(bos ? 1 : 2), 200)) {
        for (const addSpecialTokens of [true, false]) {
          const ours = tok.encode(s, { addSpecialTokens });
          expect(ours, JSON.stringify(s)).toEqual(hf.encode(s, { add_special_tokens: addSpecialTokens }));
          if (ours.includes(tok.unkTokenId)) unknownSeen++;
          if (ours.length > 0) {
            for (const skip of [false, true]) {
              expect(tok.decode(ours, { skipSpecialTokens: skip }), JSON.stringify(s)).toBe(hf.decode(ours, { skip_special_tokens: skip }));
            }
          }
        }
      }
      expect(unknownSeen).toBeGreaterThan(50); // the sample does exercise <unk>
    });
  }

  it('loadTokenizer returns the native CharTokenizer for a folder it saved', async () => {
    const tok = CharTokenizer.fromAlphabet('xyz', { extraTokens: ['<t>'] });
    const dir = join(work, 'native');
    await tok.save(dir);
    const loaded = await loadTokenizer(dir);
    expect(loaded).toBeInstanceOf(CharTokenizer);
    expect((loaded as CharTokenizer).tokens).toEqual(tok.tokens);
    expect(loaded.encode('zy<t>q')).toEqual(tok.encode('zy<t>q'));
    const config = JSON.parse(await readFile(join(dir, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
    expect(config['rlvr_tokenizer']).toBe('char');
    expect(config['clean_up_tokenization_spaces']).toBe(false);
    const map = JSON.parse(await readFile(join(dir, 'special_tokens_map.json'), 'utf8')) as Record<string, unknown>;
    expect(map).toEqual({ bos_token: '<bos>', eos_token: '<eos>', pad_token: '<pad>', unk_token: '<unk>' });
  });

  it('fromTokenizerJson rejects a vocabulary that skips an id', () => {
    const json = CharTokenizer.fromAlphabet('ab').toTokenizerJson() as { model: { vocab: Record<string, number> } };
    json.model.vocab['b'] = 9;
    expect(() => CharTokenizer.fromTokenizerJson(json, 'x.json')).toThrow(/x\.json: .*model\.vocab\["b"\] = 9 is not an id in \[0, 6\)/);
  });
});
