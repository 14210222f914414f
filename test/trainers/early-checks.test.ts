/**
 * Errors come early and say what is wrong where:
 * - an unwritable run folder is refused before any model is looked at (GRPO and SFT);
 * - a prompt too long for the starting model is found before a warm start of minutes trains
 *   anything (the warm start's tokenizer and context are known without training it);
 * - a tokenizer that fails on a huge text names the row and the text's size;
 * - a model folder with NaN weights names the folder and the tensor;
 * - silent coercion: a character the character tokenizer lacks, or bytes that are not
 *   UTF-8, are an error naming the file and line; with another tokenizer, one warning.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/core/config.ts';
import { Rng } from '../../src/core/rng.ts';
import { loadCausalLM, saveCausalLM } from '../../src/lm/checkpoint.ts';
import { tinyGpt2Config } from '../../src/lm/config.ts';
import { CausalLM } from '../../src/lm/model.ts';
import { type Tokenizer, loadTokenizer } from '../../src/lm/tokenizer.ts';
import { arithmeticTokenizer } from '../../src/trainers/from-scratch.ts';
import { parseGrpoConfig } from '../../src/trainers/grpo-config.ts';
import { trainGrpo } from '../../src/trainers/grpo.ts';
import { type PromptRow, encodePromptRows, encodeSftExamples } from '../../src/trainers/prompts.ts';
import { parseSftConfig } from '../../src/trainers/sft-config.ts';
import { trainSft } from '../../src/trainers/sft.ts';
import { useCpu } from '../lm/lm-helpers.ts';

let root: string;
let modelDir: string;
beforeAll(async () => {
  await useCpu();
  root = mkdtempSync(join(tmpdir(), 'rlvr-early-checks-'));
  modelDir = join(root, 'model');
  const model = CausalLM.create(tinyGpt2Config({ vocab_size: 22, n_positions: 16, n_embd: 16, n_layer: 1, n_head: 2 }), new Rng(1));
  await saveCausalLM(model, arithmeticTokenizer(), modelDir);
  model.dispose();
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

function jsonl(name: string, rows: object[] | string): string {
  const path = join(root, name);
  writeFileSync(path, typeof rows === 'string' ? rows : rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return path;
}

const quiet = { quiet: true, handleSigint: false } as const;

describe('early checks', () => {
  it('an unwritable run folder is refused first, before the (missing) model is even looked at', async () => {
    const aFile = join(root, 'a-file');
    writeFileSync(aFile, 'not a folder');
    const outDir = join(aFile, 'run');
    const train = jsonl('ok.jsonl', [{ prompt: '1+1=', answer: '2' }]);
    const grpo = parseGrpoConfig({ model: { modelDir: join(root, 'no-such-model') }, data: { trainFile: train }, outDir });
    const error = await trainGrpo(grpo, quiet).catch((e: unknown) => e as Error);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toContain(`the run folder ${outDir} cannot be written: ${aFile} is a file, not a folder; choose another folder with --out`);

    const sft = parseSftConfig({ model: { modelDir: join(root, 'no-such-model') }, data: { trainFile: jsonl('sft.jsonl', [{ prompt: '1+1=', completion: '2' }]) }, steps: 2, warmupSteps: 0, outDir });
    await expect(trainSft(sft, quiet)).rejects.toThrow(`the run folder ${outDir} cannot be written`);
  });

  it('a prompt too long for the warm start\'s model is an error naming its line before the warm start trains anything', async () => {
    const cacheDir = join(root, 'cache');
    const train = jsonl('long.jsonl', [{ prompt: '1+1=', answer: '2' }, { prompt: `${'1+'.repeat(20)}1=`, answer: '21' }]);
    const config = parseGrpoConfig({ model: { warmStart: { cacheDir, steps: 2 } }, data: { trainFile: train }, outDir: join(root, 'long-run') });
    await expect(trainGrpo(config, quiet)).rejects.toThrow(`${train}:2: the prompt is 43 tokens; with maxCompletionLength 6 that is 49 positions, more than the model's context of 32`);
    expect(existsSync(cacheDir) ? readdirSync(cacheDir) : []).toEqual([]); // no warm start was trained
  });

  it('a prompt the tokenizer fails on (a 300 MB line overflows an array) is an error naming the row and its size', () => {
    const failing: Tokenizer = {
      ...arithmeticTokenizer(),
      vocabSize: 22,
      eosTokenId: 1,
      padTokenId: 0,
      bosTokenId: 3,
      encode: () => {
        throw new RangeError('Invalid array length');
      },
      decode: () => '',
      save: async () => undefined,
    };
    const rows: PromptRow[] = [{ prompt: '7'.repeat(1000), columns: {}, source: 'big.jsonl:2' }];
    expect(() => encodePromptRows(rows, failing, { maxPositions: 16, vocabSize: 22, maxCompletionLength: 2 })).toThrow('big.jsonl:2: the prompt (1,000 characters) could not be tokenized: Invalid array length');
    expect(() => encodeSftExamples([{ prompt: '1=', completion: '2'.repeat(5000), source: 'sft.jsonl:9' }], { ...failing, encode: (t: string) => (t.length > 10 ? failing.encode(t) : [3]) }, { maxPositions: 16, vocabSize: 22 })).toThrow(
      'sft.jsonl:9: the completion (5,000 characters) could not be tokenized: Invalid array length',
    );
  });

  it('NaN weights are an error naming the model folder and the tensor, when the model loads', async () => {
    const broken = join(root, 'nan-model');
    const model = CausalLM.create(tinyGpt2Config({ vocab_size: 22, n_positions: 16, n_embd: 16, n_layer: 1, n_head: 2 }), new Rng(2));
    const v = model.variables[0]!;
    v.assign(tf.tidy(() => tf.mul(tf.onesLike(v), NaN)));
    await saveCausalLM(model, arithmeticTokenizer(), broken);
    const name = model.parameterSpecs()[0]!.name;
    model.dispose();
    await expect(loadCausalLM(broken)).rejects.toThrow(new RegExp(`^the model folder ${broken} holds broken weights: tensor ${name.replace(/\./g, '\\.')} in ${join(broken, 'model.safetensors')}: \\d+ of its \\d+ values are NaN or infinite \\(the first, at index 0, is NaN\\)$`));
    const train = jsonl('nan.jsonl', [{ prompt: '1+1=', answer: '2' }]);
    await expect(trainGrpo(parseGrpoConfig({ model: { modelDir: broken }, data: { trainFile: train }, outDir: join(root, 'nan-run') }), quiet)).rejects.toThrow(`the model folder ${broken} holds broken weights`);
  });

  it('a character outside the character tokenizer\'s alphabet, or bytes that are not UTF-8, are an error naming the line (not a silent <unk>)', async () => {
    const letters = jsonl('letters.jsonl', [{ prompt: '1+1=', answer: '2' }, { prompt: 'deux+2=', answer: '4' }]);
    const config = (trainFile: string) => parseGrpoConfig({ model: { modelDir }, data: { trainFile }, maxCompletionLength: 3, outDir: join(root, `coercion-${trainFile.length}`) });
    await expect(trainGrpo(config(letters), quiet)).rejects.toThrow(`${letters}:2: the prompt has the character "d" (U+0064) at position 0, which is not in the character tokenizer's alphabet`);
    const badBytes = join(root, 'latin1.jsonl');
    writeFileSync(badBytes, Buffer.concat([Buffer.from('{"prompt": "1+1=", "answer": "2"}\n{"prompt": "2+2'), Buffer.from([0xe9]), Buffer.from('=", "answer": "4"}\n')]));
    await expect(trainGrpo(config(badBytes), quiet)).rejects.toThrow(/latin1\.jsonl:2: the prompt has the character "\uFFFD" \(U\+FFFD\) at position 3, .*not valid UTF-8/);
  });

  it('with another tokenizer, unknown characters and invalid bytes are one warning each, naming the first row', async () => {
    const tokenizer = await loadTokenizer(join(import.meta.dirname, '..', 'fixtures', 'tokenizers', 'tiny-bpe'));
    const warnings: string[] = [];
    const rows: PromptRow[] = ['hello', 'hello zz', 'hello q', 'hel\uFFFDlo', 'h\uFFFD'].map((prompt, i) => ({ prompt, columns: {}, source: `chat.jsonl:${i + 1}` }));
    const limits = { maxPositions: 64, vocabSize: tokenizer.vocabSize, maxCompletionLength: 4, warn: (m: string) => warnings.push(m) };
    encodePromptRows(rows, tokenizer, limits);
    expect(warnings).toEqual([
      'chat.jsonl:2: the prompt has characters the tokenizer cannot encode (the first: "z" (U+007A)); they become its unknown token (later rows are not reported)',
      "chat.jsonl:4: the prompt has U+FFFD, the character bytes that are not valid UTF-8 are read as: check the file's encoding (later rows are not reported)",
    ]);
  });
});
