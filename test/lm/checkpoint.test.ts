import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.ts';
import { fromFloat32, readSafetensors, toFloat32, writeSafetensors } from '../../src/core/safetensors.ts';
import { loadCausalLM, saveCausalLM } from '../../src/lm/checkpoint.ts';
import { type CausalLMConfig, tinyGpt2Config, tinyLlamaConfig, tinyQwen3Config } from '../../src/lm/config.ts';
import { CausalLM } from '../../src/lm/model.ts';
import { maxAbsDiff, useCpu } from './lm-helpers.ts';

let root: string;
beforeAll(async () => {
  await useCpu();
  root = await mkdtemp(join(tmpdir(), 'rlvr-lm-ckpt-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const IDS = [[3, 17, 9, 40, 22, 5]];

function logitsOf(model: CausalLM): tf.Tensor3D {
  return model.forward(tf.tensor2d(IDS, [1, 6], 'int32'));
}

/** Snapshot of a folder: file name -> bytes. */
async function snapshot(dir: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const name of (await readdir(dir)).sort()) out.set(name, await readFile(join(dir, name)));
  return out;
}

const CONFIGS: Array<[string, CausalLMConfig]> = [
  ['gpt2', tinyGpt2Config({ bos_token_id: 1, eos_token_id: 2 })],
  ['llama', tinyLlamaConfig({ eos_token_id: [2, 3] })],
  ['qwen2 untied', tinyLlamaConfig({ model_type: 'qwen2', tie_word_embeddings: false })],
  ['llama with attention_bias', tinyLlamaConfig({ attention_bias: true, num_key_value_heads: 4 })],
  ['qwen3 (head_dim 16 != 32/4, GQA, tied)', tinyQwen3Config({ eos_token_id: [2, 3] })],
  ['qwen3 with attention_bias, untied', tinyQwen3Config({ attention_bias: true, tie_word_embeddings: false, head_dim: 8 })],
];

describe.each(CONFIGS)('save and load (%s)', (name, config) => {
  it('round-trips to identical logits in the Hugging Face layout', async () => {
    const model = CausalLM.create(config, new Rng(31));
    // Non-trivial norms and biases, so a dropped or misplaced one would show.
    const rng = new Rng(32);
    const perturbed = new Map<string, tf.Tensor>();
    for (const [n, v] of model.getWeights()) {
      perturbed.set(n, tf.add(v, tf.tensor(rng.fillNormal(new Float32Array(v.size), 0, 0.1), v.shape)));
    }
    model.setWeights(perturbed);
    tf.dispose([...perturbed.values()]);
    const dir = join(root, `rt-${name.replace(/\W+/g, '-')}`);
    const saved: string[] = [];
    await saveCausalLM(model, { save: async (d) => { saved.push(d); await writeFile(join(d, 'tokenizer.json'), '{"tok":1}'); } }, dir, {
      extraFiles: { 'trainer_state.json': '{"step": 3}', 'sub/notes.bin': new Uint8Array([1, 2, 3]) },
    });
    expect(saved).toHaveLength(1);
    expect(saved[0]).not.toBe(dir); // the tokenizer writes into the temporary folder
    expect((await readdir(dir)).sort()).toEqual(
      ['config.json', 'generation_config.json', 'model.safetensors', 'sub', 'tokenizer.json', 'trainer_state.json'].sort(),
    );
    expect(await readFile(join(dir, 'sub/notes.bin'))).toEqual(Buffer.from([1, 2, 3]));

    const loaded = await loadCausalLM(dir);
    expect(loaded.tokenizerDir).toBe(dir);
    expect(loaded.config).toEqual(config);
    expect(maxAbsDiff(logitsOf(loaded.model), logitsOf(model))).toBe(0);

    // Hugging Face names and layouts in the file.
    const file = await readSafetensors(join(dir, 'model.safetensors'));
    expect(file.metadata['format']).toBe('pt');
    expect([...file.tensors.keys()].sort()).toEqual([...model.variableNames].sort());
    const gen = JSON.parse(await readFile(join(dir, 'generation_config.json'), 'utf8'));
    expect(gen.eos_token_id ?? null).toEqual(config.eos_token_id);
    if (config.model_type === 'gpt2') {
      expect(file.tensors.get('transformer.h.0.attn.c_attn.weight')!.shape).toEqual([32, 96]); // Conv1D [in, out]
    } else {
      const q = file.tensors.get('model.layers.0.self_attn.q_proj.weight')!;
      const k = file.tensors.get('model.layers.0.self_attn.k_proj.weight')!;
      const kv = config.num_key_value_heads * config.head_dim;
      expect(q.shape).toEqual([config.num_attention_heads * config.head_dim, 32]); // Linear [out, in]
      expect(k.shape).toEqual([kv, 32]);
      // The stored matrix is the transpose of the variable (ours is [in, out]).
      const ours = model.getWeights().get('model.layers.0.self_attn.k_proj.weight')!.arraySync() as number[][];
      const stored = toFloat32(k);
      expect(stored[1 * 32 + 5]).toBe(ours[5]![1]);
      expect(stored[(kv - 1) * 32 + 31]).toBe(ours[31]![kv - 1]);
      expect(file.tensors.has('lm_head.weight')).toBe(!config.tie_word_embeddings);
      const qkNorm = config.model_type === 'qwen3';
      expect(file.tensors.get('model.layers.1.self_attn.q_norm.weight')?.shape).toEqual(qkNorm ? [config.head_dim] : undefined);
      expect(file.tensors.get('model.layers.1.self_attn.k_norm.weight')?.shape).toEqual(qkNorm ? [config.head_dim] : undefined);
      const oBias = config.attention_bias && config.model_type !== 'qwen2';
      expect(file.tensors.has('model.layers.0.self_attn.o_proj.bias')).toBe(oBias);
      expect(file.tensors.has('model.layers.0.self_attn.q_proj.bias')).toBe(config.attention_bias);
    }
    loaded.model.dispose();
    model.dispose();
  });
});

describe('atomic save', () => {
  it('leaves the previous checkpoint untouched when a write fails mid-save', async () => {
    const dir = join(root, 'atomic');
    const a = CausalLM.create(tinyGpt2Config(), new Rng(41));
    const b = CausalLM.create(tinyGpt2Config(), new Rng(42));
    await saveCausalLM(a, null, dir, { extraFiles: { 'trainer_state.json': '{"step": 1}' } });
    const before = await snapshot(dir);

    // "config.json/x" needs config.json to be a folder; it is a file, so this write throws
    // after config.json and model.safetensors have been written.
    await expect(saveCausalLM(b, null, dir, { extraFiles: { 'config.json/x': 'boom' } })).rejects.toThrow(
      /saveCausalLM .*atomic.*previous checkpoint, if any, is unchanged/,
    );
    // A failing tokenizer is the same.
    const failing = { save: async (): Promise<void> => { throw new Error('tokenizer exploded'); } };
    await expect(saveCausalLM(b, failing, dir)).rejects.toThrow(/tokenizer exploded/);
    await expect(saveCausalLM(b, null, dir, { extraFiles: { '../escape.txt': 'x' } })).rejects.toThrow(
      /"..\/escape.txt" must be a relative path inside the checkpoint folder/,
    );

    expect(await snapshot(dir)).toEqual(before);
    expect((await readdir(root)).filter((n) => n.includes('atomic') && n !== 'atomic')).toEqual([]); // no temp folders left
    expect(existsSync(join(root, 'escape.txt'))).toBe(false);
    const still = await loadCausalLM(dir);
    expect(maxAbsDiff(logitsOf(still.model), logitsOf(a))).toBe(0);

    // A successful save replaces the folder as a whole.
    await saveCausalLM(b, null, dir);
    expect((await readdir(dir)).sort()).toEqual(['config.json', 'generation_config.json', 'model.safetensors']);
    const now = await loadCausalLM(dir);
    expect(maxAbsDiff(logitsOf(now.model), logitsOf(b))).toBe(0);
    expect((await readdir(root)).filter((n) => n.includes('atomic') && n !== 'atomic')).toEqual([]);
    for (const m of [a, b, still.model, now.model]) m.dispose();
  });
});

describe('load errors', () => {
  async function writeCheckpoint(name: string, config: CausalLMConfig): Promise<string> {
    const dir = join(root, name);
    const m = CausalLM.create(config, new Rng(51));
    await saveCausalLM(m, null, dir);
    m.dispose();
    return dir;
  }

  it('names a missing config.json or model.safetensors', async () => {
    const empty = join(root, 'empty');
    await expect(loadCausalLM(empty)).rejects.toThrow(/loadCausalLM .*empty: missing config\.json/);
    const dir = await writeCheckpoint('no-weights', tinyGpt2Config());
    await rm(join(dir, 'model.safetensors'));
    await expect(loadCausalLM(dir)).rejects.toThrow(/missing model\.safetensors/);
  });

  it('names an unsupported model_type and a bad field', async () => {
    const dir = await writeCheckpoint('bad-type', tinyGpt2Config());
    const cfg = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'));
    await writeFile(join(dir, 'config.json'), JSON.stringify({ ...cfg, model_type: 'mistral', architectures: ['MistralForCausalLM'], sliding_window: 4096 }));
    await expect(loadCausalLM(dir)).rejects.toThrow(
      /bad-type\/config\.json: unsupported model_type "mistral" \(architectures \["MistralForCausalLM"\]\); supported: gpt2, llama, qwen2, qwen3 \(GPT2LMHeadModel, LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM\)/,
    );
    await writeFile(join(dir, 'config.json'), JSON.stringify({ ...cfg, architectures: ['GPT2ForSequenceClassification'] }));
    await expect(loadCausalLM(dir)).rejects.toThrow(/architectures \["GPT2ForSequenceClassification"\] is not supported for model_type "gpt2"/);
    await writeFile(join(dir, 'config.json'), JSON.stringify({ ...cfg, n_head: 5 }));
    await expect(loadCausalLM(dir)).rejects.toThrow(/config\.json: config field "n_head" must be a divisor of n_embd \(32\), got 5/);
  });

  it('names the q/k norm gains a Qwen3 config needs when the weights lack them (a Qwen2 checkpoint relabelled)', async () => {
    const dir = await writeCheckpoint('relabelled', tinyLlamaConfig({ model_type: 'qwen2', head_dim: 16 }));
    const cfg = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'));
    await writeFile(join(dir, 'config.json'), JSON.stringify({ ...cfg, model_type: 'qwen3', architectures: ['Qwen3ForCausalLM'], attention_bias: true }));
    await expect(loadCausalLM(dir)).rejects.toThrow(/model\.safetensors: missing tensor model\.layers\.0\.self_attn\.o_proj\.bias \(needed by this qwen3 config\)/);
    await writeFile(join(dir, 'config.json'), JSON.stringify({ ...cfg, model_type: 'qwen3', architectures: ['Qwen3ForCausalLM'], attention_bias: false }));
    await expect(loadCausalLM(dir)).rejects.toThrow(/missing tensor model\.layers\.0\.self_attn\.q_norm\.weight \(needed by this qwen3 config\)/);
  });

  it('names a missing tensor, a shape that disagrees with the config, and an unexpected tensor', async () => {
    const dir = await writeCheckpoint('bad-tensors', tinyLlamaConfig());
    const path = join(dir, 'model.safetensors');
    const file = await readSafetensors(path);
    const without = new Map(file.tensors);
    without.delete('model.layers.1.mlp.up_proj.weight');
    await writeSafetensors(path, without);
    await expect(loadCausalLM(dir)).rejects.toThrow(/model\.safetensors: missing tensor model\.layers\.1\.mlp\.up_proj\.weight/);

    const wrong = new Map(file.tensors);
    wrong.set('model.layers.1.mlp.up_proj.weight', fromFloat32(new Float32Array(48 * 32), [48, 32], 'F32'));
    await writeSafetensors(path, wrong);
    await expect(loadCausalLM(dir)).rejects.toThrow(
      /tensor model\.layers\.1\.mlp\.up_proj\.weight has shape \[48,32\], expected \[64,32\] from config\.json/,
    );

    const extra = new Map(file.tensors);
    extra.set('model.layers.2.mlp.up_proj.weight', fromFloat32(new Float32Array(64 * 32), [64, 32], 'F32'));
    await writeSafetensors(path, extra);
    await expect(loadCausalLM(dir)).rejects.toThrow(/unexpected tensor model\.layers\.2\.mlp\.up_proj\.weight/);
  });

  it('loads F16/BF16 weights, unprefixed GPT-2 names, and ignores buffers and a tied lm_head', async () => {
    const dir = await writeCheckpoint('variants', tinyGpt2Config());
    const path = join(dir, 'model.safetensors');
    const file = await readSafetensors(path);
    const ref = await loadCausalLM(dir);
    const renamed = new Map<string, ReturnType<typeof fromFloat32>>();
    let i = 0;
    for (const [n, t] of file.tensors) {
      const dtype = i++ % 2 === 0 ? 'BF16' : 'F16';
      renamed.set(n.replace(/^transformer\./, ''), fromFloat32(toFloat32(t), t.shape, dtype));
    }
    renamed.set('h.0.attn.bias', fromFloat32(new Float32Array(64 * 64), [1, 1, 64, 64], 'F32'));
    renamed.set('h.0.attn.masked_bias', fromFloat32(new Float32Array([-1e4]), [], 'F32'));
    renamed.set('lm_head.weight', file.tensors.get('transformer.wte.weight')!);
    await writeSafetensors(path, renamed);
    const half = await loadCausalLM(dir);
    const d = maxAbsDiff(logitsOf(half.model), logitsOf(ref.model));
    expect(d).toBeGreaterThan(0); // the weights were rounded...
    expect(d).toBeLessThan(0.05); // ...but only to 8 (BF16) or 11 (F16) bits
    ref.model.dispose();
    half.model.dispose();
  });
});

describe('loadCausalLM memory', () => {
  useCpu();

  it('holds no tensors beyond the model it returns', async () => {
    for (const name of ['gpt2-tiny', 'llama-f16-sharded']) {
      const before = tf.memory().numTensors;
      const { model } = await loadCausalLM(join(import.meta.dirname, '..', 'fixtures', 'lm', name));
      model.dispose();
      expect(tf.memory().numTensors, name).toBe(before);
    }
  });
});
