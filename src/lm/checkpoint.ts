/**
 * Causal LM checkpoints in the Hugging Face layout: a folder with `config.json`, the
 * weights in `model.safetensors` (or `model.safetensors.index.json` + shards), and
 * optionally `generation_config.json` and the tokenizer files.
 *
 * Tensor names and layouts are Hugging Face's: GPT-2 Conv1D weights are [in, out] (ours
 * too); Llama/Qwen2/Qwen3 Linear weights are [out, in] and are transposed to our [in, out] at
 * load and back at save. F32, F16, BF16 (and F64) weights load as float32; we save F32.
 * Non-parameter buffers that some checkpoints carry (`attn.bias`, `attn.masked_bias`,
 * `rotary_emb.inv_freq`) and a tied `lm_head.weight` are ignored.
 *
 * Saving is atomic at the folder level: everything is written into a sibling temporary
 * folder (`.<name>.saving-<pid>-<time>-<n>`), each file flushed to disk and then the folder,
 * then the old folder is renamed aside (`.<name>.old-...`), the new one renamed into place,
 * the parent folder flushed, and the old one removed. A crash at any point before the swap
 * leaves the previous checkpoint untouched, and a power cut after it cannot undo it.
 * `recoverInterruptedSaves` tidies what a killed save leaves behind.
 */
import { existsSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, normalize, resolve, sep } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import {
  type SafetensorsTensor,
  fromFloat32,
  readSafetensors,
  toFloat32,
  serializeSafetensors,
} from '../core/safetensors.ts';
import { fsyncDir, makeDirs, writeFileDurable } from '../core/atomic.ts';
import { type CausalLMConfig, type ModelDims, modelDims, parseConfig, toHfConfigJson } from './config.ts';
import { CausalLM, type ParamSpec, parameterSpecs } from './model.ts';

export interface LoadedCausalLM {
  model: CausalLM;
  config: CausalLMConfig;
  /** Folder holding the tokenizer files (the checkpoint folder itself, in the Hugging Face layout). */
  tokenizerDir: string;
}

/** Buffers (not parameters) found in some checkpoints; skipped at load. */
const IGNORED_BUFFERS = [/\.attn\.bias$/, /\.attn\.masked_bias$/, /\.rotary_emb\.inv_freq$/];
const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16', 'F64']);

/** The parsed config.json of a Hugging Face causal LM folder; errors name the file. */
async function readModelConfig(dir: string): Promise<CausalLMConfig> {
  const configPath = join(dir, 'config.json');
  if (!existsSync(configPath)) throw new Error(`loadCausalLM ${dir}: missing config.json`);
  let json: unknown;
  try {
    json = JSON.parse(await readFile(configPath, 'utf8'));
  } catch (e) {
    throw new Error(`${configPath}: not valid JSON (${(e as Error).message})`);
  }
  return parseConfig(json, configPath);
}

/** A model folder's dimensions (context, vocabulary, ...) from its config.json alone: checks that need them run before the weights load. */
export async function readModelDims(dir: string): Promise<ModelDims> {
  return modelDims(await readModelConfig(dir));
}

/** Load a Hugging Face causal LM folder (gpt2, llama, qwen2 or qwen3; `SUPPORTED_MODEL_TYPES`). */
export async function loadCausalLM(dir: string): Promise<LoadedCausalLM> {
  const where = `loadCausalLM ${dir}`;
  const config = await readModelConfig(dir);
  const { tensors, fileOf } = await readWeights(dir, where);

  const weights = convertTensors(config, tensors, fileOf, dir);
  try {
    // The model's variables take their own references to the data; free ours.
    const model = CausalLM.fromWeights(config, weights, { source: where });
    return { model, config, tokenizerDir: dir };
  } finally {
    for (const t of weights.values()) t.dispose();
  }
}

/** All tensors of the checkpoint, and for each name the file it came from (for error messages). */
async function readWeights(
  dir: string,
  where: string,
): Promise<{ tensors: Map<string, SafetensorsTensor>; fileOf: (name: string) => string }> {
  const single = join(dir, 'model.safetensors');
  const indexPath = join(dir, 'model.safetensors.index.json');
  if (existsSync(single)) {
    const file = await readSafetensors(single);
    return { tensors: file.tensors, fileOf: () => single };
  }
  if (!existsSync(indexPath)) {
    throw new Error(`${where}: missing model.safetensors (and no sharded model.safetensors.index.json)`);
  }
  let index: unknown;
  try {
    index = JSON.parse(await readFile(indexPath, 'utf8'));
  } catch (e) {
    throw new Error(`${indexPath}: not valid JSON (${(e as Error).message})`);
  }
  const weightMap = (index as { weight_map?: unknown } | null)?.weight_map;
  if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) {
    throw new Error(`${indexPath}: "weight_map" must be an object mapping tensor names to shard files`);
  }
  const shardOf = new Map<string, string>();
  for (const [name, file] of Object.entries(weightMap)) {
    if (typeof file !== 'string' || file.includes('/') || file.includes('\\') || file === '..') {
      throw new Error(`${indexPath}: weight_map["${name}"] must be a file name in the same folder, got ${JSON.stringify(file)}`);
    }
    shardOf.set(name, join(dir, file));
  }
  const tensors = new Map<string, SafetensorsTensor>();
  for (const shard of new Set(shardOf.values())) {
    if (!existsSync(shard)) throw new Error(`${indexPath}: shard ${basename(shard)} is missing`);
    const file = await readSafetensors(shard);
    for (const [name, t] of file.tensors) {
      if (shardOf.get(name) === shard) tensors.set(name, t);
    }
  }
  for (const [name, shard] of shardOf) {
    if (!tensors.has(name)) throw new Error(`${indexPath}: tensor ${name} is not in its shard ${basename(shard)}`);
  }
  return { tensors, fileOf: (name) => shardOf.get(name) ?? indexPath };
}

/**
 * Hugging Face tensors -> float32 tensors in our layout, keyed by our parameter names.
 * GPT-2 names are accepted with or without the `transformer.` prefix.
 */
function convertTensors(
  config: CausalLMConfig,
  tensors: Map<string, SafetensorsTensor>,
  fileOf: (name: string) => string,
  dir: string,
): Map<string, tf.Tensor> {
  const specs = parameterSpecs(config);
  const fileName = (spec: ParamSpec): string | undefined => {
    if (tensors.has(spec.name)) return spec.name;
    if (config.model_type === 'gpt2') {
      const bare = spec.name.replace(/^transformer\./, '');
      if (tensors.has(bare)) return bare;
    }
    return undefined;
  };
  const used = new Set<string>();
  const out = new Map<string, tf.Tensor>();
  try {
    for (const spec of specs) {
      const name = fileName(spec);
      if (name === undefined) {
        throw new Error(`${fileOf(spec.name)}: missing tensor ${spec.name} (needed by this ${config.model_type} config)`);
      }
      used.add(name);
      const t = tensors.get(name)!;
      const hfShape = spec.transposed ? [...spec.shape].reverse() : spec.shape;
      if (t.shape.length !== hfShape.length || t.shape.some((n, i) => n !== hfShape[i])) {
        throw new Error(
          `${fileOf(name)}: tensor ${name} has shape [${t.shape}], expected [${hfShape}] from config.json`,
        );
      }
      if (!FLOAT_DTYPES.has(t.dtype)) {
        throw new Error(`${fileOf(name)}: tensor ${name} has dtype ${t.dtype}; weights must be F32, F16, BF16 or F64`);
      }
      let data = toFloat32(t);
      checkFinite(data, () => `the model folder ${dir} holds broken weights: tensor ${name} in ${fileOf(name)}`);
      if (spec.transposed) data = transpose2d(data, hfShape[0]!, hfShape[1]!);
      out.set(spec.name, tf.tensor(data, spec.shape, 'float32'));
    }
  } catch (e) {
    for (const t of out.values()) t.dispose();
    throw e;
  }
  for (const name of tensors.keys()) {
    if (used.has(name) || IGNORED_BUFFERS.some((re) => re.test(name))) continue;
    if (config.tie_word_embeddings && name === 'lm_head.weight') continue; // tied: same values as the embedding
    for (const t of out.values()) t.dispose();
    throw new Error(`${fileOf(name)}: unexpected tensor ${name}, not part of a ${config.model_type} model with this config.json`);
  }
  return out;
}

/**
 * Throws when `data` holds NaN or an infinity (a diverged run's weights, a broken
 * conversion): such a model cannot sample, and the error should name its folder, not
 * surface later as a logits row without a finite maximum.
 */
function checkFinite(data: Float32Array, where: () => string): void {
  let bad = 0;
  let first = -1;
  let nan = false;
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (v - v !== 0) {
      // NaN - NaN and Infinity - Infinity are NaN; every finite v gives 0
      if (bad++ === 0) {
        first = i;
        nan = Number.isNaN(v);
      }
    }
  }
  if (bad > 0) throw new Error(`${where()}: ${bad} of its ${data.length} values are NaN or infinite (the first, at index ${first}, is ${nan ? 'NaN' : 'infinite'})`);
}

/** Row-major [rows, cols] -> [cols, rows]. */
function transpose2d(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    for (let c = 0; c < cols; c++) out[c * rows + r] = data[base + c]!;
  }
  return out;
}

export interface SaveOptions {
  /**
   * More files to write into the checkpoint (e.g. `trainer_state.json`), by relative path
   * inside the folder; strings are written as UTF-8.
   */
  extraFiles?: Record<string, string | Uint8Array>;
}

let saveCounter = 0;

/**
 * Write `model` (and the tokenizer, when given) to `dir` as a Hugging Face folder:
 * config.json, generation_config.json, model.safetensors (F32, Hugging Face names and
 * layouts), plus `extraFiles`. Replaces any existing folder at `dir` atomically.
 */
export async function saveCausalLM(
  model: CausalLM,
  tokenizer: { save(dir: string): Promise<void> } | null,
  dir: string,
  options: SaveOptions = {},
): Promise<void> {
  const target = resolve(dir);
  const parent = dirname(target);
  const tag = `${process.pid}-${Date.now()}-${saveCounter++}`;
  const tmp = join(parent, `.${basename(target)}.saving-${tag}`);
  const old = join(parent, `.${basename(target)}.old-${tag}`);
  const folders = new Set<string>([tmp]);
  try {
    makeDirs(tmp);
    const write = (rel: string, content: string | Uint8Array): void => {
      const path = safeJoin(tmp, rel);
      makeDirs(dirname(path));
      folders.add(dirname(path));
      writeFileDurable(path, content);
    };
    for (const [rel, content] of Object.entries(await causalLMFiles(model))) write(rel, content);
    if (tokenizer) await tokenizer.save(tmp);
    for (const [rel, content] of Object.entries(options.extraFiles ?? {})) write(rel, content);
    for (const folder of [...folders].sort().reverse()) fsyncDir(folder); // subfolders first, then the folder itself
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw new Error(`saveCausalLM ${dir}: ${(e as Error).message} (the previous checkpoint, if any, is unchanged)`);
  }
  // Swap: old aside, new into place, the parent flushed, old removed.
  const hadOld = existsSync(target);
  try {
    if (hadOld) renameSync(target, old);
    renameSync(tmp, target);
  } catch (e) {
    if (hadOld && !existsSync(target)) {
      try {
        renameSync(old, target);
      } catch {
        // recoverInterruptedSaves puts it back on the next start
      }
    }
    rmSync(tmp, { recursive: true, force: true });
    throw new Error(`saveCausalLM ${dir}: could not move the new checkpoint into place (${(e as Error).message})`);
  }
  fsyncDir(parent);
  if (hadOld) rmSync(old, { recursive: true, force: true });
}

/** `.<name>.saving-<pid>-<time>-<n>` and `.<name>.old-<pid>-<time>-<n>`, the temporary folders of `saveCausalLM`. */
const SAVE_TEMP = /^\.(.+)\.(saving|old)-(\d+)-\d+-\d+$/;

function processAlive(pid: number): boolean {
  if (pid === process.pid) return false; // this process saves nothing while it starts a run
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
}

/**
 * Tidies the temporary folders that killed saves left in `parent` (a run folder): an
 * unfinished `.saving-` folder is removed; an `.old-` folder, the previous checkpoint moved
 * aside just before the swap, is moved back when its checkpoint is missing (the kill came
 * between the two renames) and removed otherwise. Folders of a process that is still
 * running are left alone. Returns what was removed and what was put back, by name.
 */
export function recoverInterruptedSaves(parent: string): { removed: string[]; restored: string[] } {
  const out = { removed: [] as string[], restored: [] as string[] };
  if (!existsSync(parent)) return out;
  const names = readdirSync(parent).sort();
  for (const name of names) {
    const m = SAVE_TEMP.exec(name);
    if (!m || processAlive(Number(m[3]))) continue;
    const path = join(parent, name);
    const target = join(parent, m[1]!);
    if (m[2] === 'old' && !existsSync(target)) {
      renameSync(path, target);
      out.restored.push(m[1]!);
    } else {
      rmSync(path, { recursive: true, force: true });
      out.removed.push(name);
    }
  }
  if (out.removed.length || out.restored.length) fsyncDir(parent);
  return out;
}

/**
 * The files of a model's Hugging Face folder, in memory: config.json, generation_config.json
 * and model.safetensors (F32). `saveCausalLM` writes them; a trainer can also place them in a
 * subfolder of a checkpoint (PPO's critic) through `extraFiles`.
 */
export async function causalLMFiles(model: CausalLM): Promise<Record<string, string | Uint8Array>> {
  const config = model.config;
  const gen: Record<string, unknown> = {};
  if (config.bos_token_id !== null) gen['bos_token_id'] = config.bos_token_id;
  if (config.eos_token_id !== null) gen['eos_token_id'] = config.eos_token_id;
  if (config.pad_token_id !== null) gen['pad_token_id'] = config.pad_token_id;
  return {
    'config.json': JSON.stringify(toHfConfigJson(config), null, 2) + '\n',
    'generation_config.json': JSON.stringify(gen, null, 2) + '\n',
    'model.safetensors': serializeSafetensors(await hfTensors(model), { format: 'pt' }),
  };
}

/** The model's weights as Hugging Face safetensors tensors (F32). */
async function hfTensors(model: CausalLM): Promise<Map<string, SafetensorsTensor>> {
  const weights = model.getWeights();
  const out = new Map<string, SafetensorsTensor>();
  for (const spec of model.parameterSpecs()) {
    let data = (await weights.get(spec.name)!.data()) as Float32Array;
    let shape = spec.shape;
    if (spec.transposed) {
      data = transpose2d(data, shape[0]!, shape[1]!);
      shape = [shape[1]!, shape[0]!];
    }
    out.set(spec.name, fromFloat32(data, shape, 'F32'));
  }
  return out;
}

/** `root/rel`, refusing absolute paths and paths that leave `root`. */
function safeJoin(root: string, rel: string): string {
  const path = normalize(join(root, rel));
  if (rel.length === 0 || isAbsolute(rel) || !path.startsWith(root + sep)) {
    throw new Error(`extraFiles: "${rel}" must be a relative path inside the checkpoint folder`);
  }
  return path;
}
