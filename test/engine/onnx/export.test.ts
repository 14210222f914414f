/**
 * `rlvr export onnx` against an independent consumer: the exported folder loads in
 * transformers.js (local files only) and its greedy `generate` returns exactly the tokens
 * `rlvr generate --greedy` returns, for every architecture; external data too. Also the
 * refusals and `rlvr generate`'s prompt handling.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { AutoModelForCausalLM, AutoTokenizer, env } from '@huggingface/transformers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../../src/core/rng.ts';
import { exportOnnx } from '../../../src/engine/onnx/export.ts';
import { CharTokenizer } from '../../../src/lm/char-tokenizer.ts';
import { saveCausalLM } from '../../../src/lm/checkpoint.ts';
import type { CausalLMConfig } from '../../../src/lm/config.ts';
import { CausalLM } from '../../../src/lm/model.ts';
import { type GenerateCliOptions, runGenerate } from '../../../scripts/commands/generate.ts';
import { TINY_CONFIGS, useCpu } from '../../lm/lm-helpers.ts';

let root: string;
const tok = CharTokenizer.fromAlphabet('0123456789+=abc ');

beforeAll(async () => {
  await useCpu();
  root = await mkdtemp(join(tmpdir(), 'rlvr-export-'));
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A random model of `config`'s architecture with the char tokenizer, saved as a Hugging Face folder. */
async function modelFolder(name: string, config: CausalLMConfig): Promise<string> {
  const dir = join(root, name);
  const special = { vocab_size: tok.vocabSize, bos_token_id: tok.bosTokenId, eos_token_id: tok.eosTokenId, pad_token_id: tok.padTokenId, initializer_range: 0.6 };
  const model = CausalLM.create({ ...config, ...special } as CausalLMConfig, new Rng(3));
  await saveCausalLM(model, tok, dir);
  model.dispose();
  return dir;
}

const cli = (model: string, over: Partial<GenerateCliOptions> = {}): GenerateCliOptions => ({
  model,
  prompt: [],
  num: 1,
  maxNewTokens: 12,
  greedy: true,
  temperature: 1,
  topK: 0,
  topP: 1,
  seed: 0,
  stop: [],
  engine: 'onnxruntime',
  json: false,
  ...over,
});

async function transformersGreedy(folder: string, prompt: string, maxNewTokens: number): Promise<number[]> {
  env.localModelPath = dirname(folder) + '/';
  const model = await AutoModelForCausalLM.from_pretrained(basename(folder), { local_files_only: true, dtype: 'fp32' });
  const tokenizer = await AutoTokenizer.from_pretrained(basename(folder), { local_files_only: true });
  const enc = tokenizer(prompt);
  const promptLen = enc.input_ids.dims[1] as number;
  const out = (await model.generate({ ...enc, max_new_tokens: maxNewTokens, do_sample: false })) as { data: BigInt64Array };
  await model.dispose();
  return Array.from(out.data, Number).slice(promptLen);
}

describe('rlvr export onnx', () => {
  it.each(TINY_CONFIGS)('%s: transformers.js greedy generation equals rlvr generate --greedy', async (label, config) => {
    const src = await modelFolder(`src-${config.model_type}-${label.length}`, config);
    const out = join(root, `onnx-${config.model_type}-${label.length}`);
    const r = await exportOnnx(src, out);
    expect(r.files).toEqual(expect.arrayContaining(['config.json', 'generation_config.json', 'onnx', 'tokenizer.json', 'tokenizer_config.json']));
    expect(r.externalData).toBe(false);
    for (const prompt of ['12+34=', '7+8=']) {
      const ours = await runGenerate(cli(out, { prompt: [prompt] }));
      const theirs = await transformersGreedy(out, prompt, 12);
      // transformers.js stops at EOS (kept) like we do; a run without EOS has 12 tokens.
      expect(theirs).toEqual(ours.completions[0]!.tokens);
      expect(ours.completions[0]!.tokens.length).toBeGreaterThan(2);
    }
  });

  it('external data: weights in onnx/model.onnx_data, announced in config.json, load in transformers.js', async () => {
    const src = await modelFolder('src-ext', TINY_CONFIGS[1]![1]);
    const out = join(root, 'onnx-ext');
    const r = await exportOnnx(src, out, { externalData: true });
    expect(r.externalData).toBe(true);
    expect(existsSync(join(out, 'onnx', 'model.onnx_data'))).toBe(true);
    const config = JSON.parse(await readFile(join(out, 'config.json'), 'utf8'));
    expect(config['transformers.js_config']).toEqual({ use_external_data_format: true });
    const ours = await runGenerate(cli(out, { prompt: ['3+4='] }));
    expect(await transformersGreedy(out, '3+4=', 12)).toEqual(ours.completions[0]!.tokens);
  });

  it('refuses a non-empty --out without overwrite and leaves it untouched', async () => {
    const src = await modelFolder('src-refuse', TINY_CONFIGS[0]![1]);
    const out = join(root, 'occupied');
    await mkdir(out, { recursive: true });
    await writeFile(join(out, 'keep.txt'), 'mine');
    await expect(exportOnnx(src, out)).rejects.toThrow(/already exists and is not empty.*--overwrite/);
    expect(await readFile(join(out, 'keep.txt'), 'utf8')).toBe('mine');
    await expect(exportOnnx(src, src)).rejects.toThrow(/must differ/);
    await exportOnnx(src, out, { overwrite: true });
    expect(existsSync(join(out, 'keep.txt'))).toBe(false);
    expect(existsSync(join(out, 'onnx', 'model.onnx'))).toBe(true);
  });
});

describe('rlvr generate', () => {
  it('reads --prompts JSONL, gives K completions per prompt, and the same seed the same text on both engines', async () => {
    const src = await modelFolder('src-gen', TINY_CONFIGS[2]![1]);
    const file = join(root, 'prompts.jsonl');
    await writeFile(file, '{"prompt": "1+1="}\n{"prompt": "22+3="}\n');
    const opts = cli(src, { prompts: file, num: 3, greedy: false, seed: 5, maxNewTokens: 8 });
    const a = await runGenerate(opts);
    const b = await runGenerate({ ...opts, engine: 'tfjs' });
    expect(a.completions.map((c) => c.prompt)).toEqual(['1+1=', '1+1=', '1+1=', '22+3=', '22+3=', '22+3=']);
    expect(a.completions.map((c) => c.tokens)).toEqual(b.completions.map((c) => c.tokens));
    expect(a.engine).toMatch(/^onnxruntime/);
    expect(b.engine).toBe('tfjs');
    expect(new Set(a.completions.slice(0, 3).map((c) => c.completion)).size).toBeGreaterThan(1); // sampled, not greedy
  });

  it('names what is missing', async () => {
    const src = await modelFolder('src-gen-err', TINY_CONFIGS[0]![1]);
    await expect(runGenerate(cli(src))).rejects.toThrow(/--prompt TEXT.*--prompts FILE/);
    const bad = join(root, 'bad.jsonl');
    await writeFile(bad, '{"text": "1+1="}\n');
    await expect(runGenerate(cli(src, { prompts: bad }))).rejects.toThrow(/bad\.jsonl:1: .*prompt/);
  });
});
