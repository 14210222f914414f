/**
 * Trainer state and checkpoints, shared by the language-model trainers (SFT, GRPO, PPO).
 *
 * A resumable checkpoint is a Hugging Face folder (`saveCausalLM`) plus:
 * - `optimizer.safetensors`: the AdamW moments under the model's Hugging Face parameter
 *   names (`<name>/m`, `<name>/v`) and the optimizer's step count in the metadata;
 * - `trainer_state.json`: a JSON object with a `format` tag and a `version`, whose other
 *   fields each trainer defines (step, RNG states, config, ...).
 *
 * Float32 moments round-trip exactly, so a resumed run applies the same updates.
 *
 * Each trainer's state has its own `format` tag (`rlvr-grpo-trainer-state`, ...); a checkpoint
 * of one trainer handed to another is refused with the command that resumes it.
 */
import { createHash } from 'node:crypto';
import { accessSync, constants as fsConstants, existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { AdamW } from '../engine/tfjs/optim.ts';
import { parseSafetensors, serializeSafetensors, type SafetensorsTensor } from '../core/safetensors.ts';
import { safetensorsFromTensor, tensorFromSafetensors } from '../engine/tfjs/tensor.ts';
import { saveCausalLM } from '../lm/checkpoint.ts';
import type { CausalLM } from '../lm/model.ts';
import { ConfigError } from '../core/config.ts';
import type { Tokenizer } from '../lm/tokenizer.ts';
import { writeJsonAtomic } from '../core/atomic.ts';
import { MetricsWriter, RUN_FILES, SampleWriter } from '../report/metrics.ts';

/** Each trainer's `format` tag in `trainer_state.json`, by its command name. */
export const STATE_FORMATS = {
  sft: 'rlvr-sft-trainer-state',
  grpo: 'rlvr-grpo-trainer-state',
  ppo: 'rlvr-ppo-trainer-state',
} as const;

function commandOf(format: string): string {
  return Object.entries(STATE_FORMATS).find(([, f]) => f === format)?.[0] ?? format;
}

/** The trainer state inside a resumable checkpoint folder. */
export const TRAINER_STATE_FILE = 'trainer_state.json';
/** The optimizer moments inside a resumable checkpoint folder. */
export const OPTIMIZER_FILE = 'optimizer.safetensors';

/**
 * Writes a resumable checkpoint folder atomically (a crash leaves the previous one intact):
 * the model and tokenizer in the Hugging Face layout, `optimizer.safetensors` and
 * `trainer_state.json` holding `state`.
 */
export async function saveTrainerCheckpoint(
  dir: string,
  model: CausalLM,
  tokenizer: Tokenizer,
  optimizer: AdamW,
  state: object,
  extraFiles: Record<string, string | Uint8Array> = {},
): Promise<void> {
  await saveCausalLM(model, tokenizer, dir, {
    extraFiles: {
      ...extraFiles,
      [TRAINER_STATE_FILE]: `${JSON.stringify(state, null, 2)}\n`,
      [OPTIMIZER_FILE]: optimizerStateBytes(model, optimizer),
    },
  });
}

/** Trainable variables with the names they are saved under (a `CausalLM`, a value head, a critic). */
export interface NamedVariables {
  readonly variables: readonly tf.Variable[];
  readonly variableNames: readonly string[];
}

/** The AdamW moments of `optimizer` (built over `model.variables`) as safetensors bytes. */
export function optimizerStateBytes(model: NamedVariables, optimizer: AdamW): Uint8Array {
  const state = optimizer.getState();
  const tensors = new Map<string, SafetensorsTensor>();
  model.variables.forEach((v, i) => {
    for (const k of ['m', 'v'] as const) {
      const t = state.tensors.get(`${v.name}/${k}`);
      if (t) tensors.set(`${model.variableNames[i]}/${k}`, safetensorsFromTensor(t));
    }
  });
  return serializeSafetensors(tensors, { step: String(state.step) });
}

/** Restores moments written by `optimizerStateBytes` into `optimizer` (built over `model.variables`). */
export function restoreOptimizerState(model: NamedVariables, optimizer: AdamW, bytes: Uint8Array, source: string): void {
  const file = parseSafetensors(bytes, source);
  const step = Number(file.metadata['step']);
  if (!Number.isInteger(step) || step < 0) throw new Error(`${source}: metadata "step" must be a non-negative integer, got ${JSON.stringify(file.metadata['step'])}`);
  const known = new Set(model.variableNames.flatMap((n) => [`${n}/m`, `${n}/v`]));
  for (const name of file.tensors.keys()) {
    if (!known.has(name)) throw new Error(`${source}: tensor "${name}" does not belong to any parameter of the model`);
  }
  const tensors = new Map<string, tf.Tensor>();
  try {
    model.variables.forEach((v, i) => {
      for (const k of ['m', 'v'] as const) {
        const t = file.tensors.get(`${model.variableNames[i]}/${k}`);
        if (t) tensors.set(`${v.name}/${k}`, tensorFromSafetensors(t, `${source}: ${model.variableNames[i]}/${k}`));
      }
    });
    optimizer.setState({ step, tensors });
  } finally {
    tf.dispose([...tensors.values()]);
  }
}

/**
 * Reads `<dir>/<file>` as a trainer state: a JSON object whose `format` is `format` and whose
 * `version` is `version`. Errors name the file and what is wrong; the caller checks the rest.
 */
export async function readTrainerStateJson(dir: string, file: string, format: string, version: number): Promise<Record<string, unknown>> {
  const path = join(dir, file);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new Error(`cannot resume from ${dir}: ${file} is missing or unreadable (${(e as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`${path}: not valid JSON (${(e as Error).message})`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new Error(`${path}: not a ${format} file (expected a JSON object)`);
  const found = (json as Record<string, unknown>)['format'];
  if (found !== format) {
    const other = typeof found === 'string' ? Object.entries(STATE_FORMATS).find(([, f]) => f === found)?.[0] : undefined;
    if (other) {
      throw new ConfigError([`${dir} is a checkpoint of \`rlvr ${other}\`, not of \`rlvr ${commandOf(format)}\`: resume it with \`rlvr ${other} --resume ${dir}\`, or start this run from its weights with --model ${dir}`], 'resume');
    }
    throw new Error(`${path}: not a ${format} file (expected "format": "${format}", got ${JSON.stringify(found)})`);
  }
  const v = (json as Record<string, unknown>)['version'];
  if (v !== version) throw new Error(`${path}: unsupported version ${JSON.stringify(v)} (this build reads version ${version})`);
  return json as Record<string, unknown>;
}

/** SHA-256 (hex) of a file's bytes. */
export function fileSha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/**
 * SHA-256 (hex) of a Hugging Face folder's weights: `model.safetensors`, or the shard index
 * and every `model-*.safetensors` shard (sorted by name), to check that a recorded folder
 * still holds the same model. Errors name the folder when it has no weights.
 */
export function modelWeightsSha256(dir: string): string {
  const names = existsSync(dir) ? readdirSync(dir).filter((n) => /^model.*\.safetensors(\.index\.json)?$/.test(n)).sort() : [];
  if (names.length === 0) throw new Error(`${dir}: no model weights (model.safetensors or a sharded model.safetensors.index.json)`);
  if (names.includes('model.safetensors')) return fileSha256(join(dir, 'model.safetensors'));
  const h = createHash('sha256');
  for (const n of names) h.update(`${n}\n${fileSha256(join(dir, n))}\n`);
  return h.digest('hex');
}

/**
 * The checkpoint folders of a run folder that hold `stateFile`: `checkpoint-<step>` and
 * `final`, with the step read from the state's `"step"` field, sorted by step (then with
 * `final` after a `checkpoint-<step>` of the same step).
 */
export function listCheckpoints(outDir: string, stateFile: string): Array<{ dir: string; step: number }> {
  if (!existsSync(outDir)) return [];
  const out: Array<{ dir: string; step: number; final: boolean }> = [];
  for (const name of readdirSync(outDir)) {
    if (name !== 'final' && !/^checkpoint-\d+$/.test(name)) continue;
    const dir = join(outDir, name);
    const statePath = join(dir, stateFile);
    if (!existsSync(statePath)) continue;
    let step: unknown;
    try {
      step = (JSON.parse(readFileSync(statePath, 'utf8')) as { step?: unknown }).step;
    } catch {
      continue; // not a readable state: not a checkpoint to resume from
    }
    if (typeof step === 'number' && Number.isInteger(step) && step >= 0) out.push({ dir, step, final: name === 'final' });
  }
  out.sort((a, b) => a.step - b.step || Number(a.final) - Number(b.final));
  return out.map(({ dir, step }) => ({ dir, step }));
}

/**
 * Open a run folder's logs: write the resolved `config.json`, and open `metrics.jsonl` and
 * `samples.jsonl` for appending — on resume, cut back to the checkpoint's step so the
 * resumed run's lines replace those written after it.
 */
export function openRunLogs(
  outDir: string,
  config: unknown,
  resumeFromStep: number | null,
): { metrics: MetricsWriter; samples: SampleWriter } {
  writeJsonAtomic(join(outDir, RUN_FILES.config), config);
  const options = resumeFromStep === null ? {} : { resumeFromStep };
  return {
    metrics: MetricsWriter.open(join(outDir, RUN_FILES.metrics), options),
    samples: SampleWriter.open(join(outDir, RUN_FILES.samples), options),
  };
}

/**
 * The config fields whose values differ between a checkpoint's config and the resumed
 * run's, as "a.b: old -> new" lines (outDir left out: a moved run folder changes nothing).
 */
export function changedFields(before: unknown, after: unknown, prefix = ''): string[] {
  if (before !== null && after !== null && typeof before === 'object' && typeof after === 'object' && !Array.isArray(before)) {
    const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
    return [...keys].flatMap((k) => changedFields((before as Record<string, unknown>)[k], (after as Record<string, unknown>)[k], prefix ? `${prefix}.${k}` : k));
  }
  if (prefix === 'outDir') return [];
  return JSON.stringify(before) === JSON.stringify(after) ? [] : [`${prefix}: ${JSON.stringify(before)} -> ${JSON.stringify(after)}`];
}

/**
 * Keeps the newest `limit` `checkpoint-<step>` folders of a run folder (by step) and deletes
 * the older ones, as TRL's `save_total_limit`; `final/` and the folders in `keep` (the
 * checkpoint a run resumed from) are never deleted. Returns the deleted folder names.
 */
export function pruneCheckpoints(outDir: string, limit: number, keep: readonly string[] = []): string[] {
  if (!Number.isInteger(limit) || limit < 1) throw new Error(`pruneCheckpoints: limit must be a positive integer, got ${limit}`);
  if (!existsSync(outDir)) return [];
  const kept = new Set(keep.map((d) => resolve(d)));
  const steps = readdirSync(outDir)
    .map((name) => /^checkpoint-(\d+)$/.exec(name))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ name: m[0], step: Number(m[1]) }))
    .sort((a, b) => b.step - a.step);
  const removed: string[] = [];
  for (const { name } of steps.slice(limit)) {
    if (kept.has(resolve(outDir, name))) continue;
    rmSync(join(outDir, name), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}

/** The newest checkpoint (highest step) with a `trainer_state.json` in a run folder, or null. */
export function latestCheckpoint(outDir: string): string | null {
  const all = listCheckpoints(outDir, TRAINER_STATE_FILE);
  return all.length ? all[all.length - 1]!.dir : null;
}

/** Checks a state's `step` field: an integer >= `min`; errors name the file. */
export function checkStateStep(json: Record<string, unknown>, path: string, min: number): number {
  const step = json['step'];
  if (typeof step !== 'number' || !Number.isInteger(step) || step < min) throw new Error(`${path}: "step" must be an integer >= ${min}, got ${JSON.stringify(step)}`);
  return step;
}

/**
 * The files of an earlier run in `outDir` (logs, report, checkpoints, `final/`), by name;
 * empty when the folder is new or holds none.
 */
export function existingRunFiles(outDir: string): string[] {
  if (!existsSync(outDir)) return [];
  const ours = new Set<string>(Object.values(RUN_FILES));
  return readdirSync(outDir)
    .filter((n) => ours.has(n) || n === 'final' || /^checkpoint-\d+$/.test(n) || /^\.(final|checkpoint-\d+)\.(saving|old)-/.test(n))
    .sort();
}

/**
 * A fresh run must not write over an earlier one: refuses a folder that holds a run, naming
 * `--resume`, `--out` and `--overwrite`; with `overwrite`, removes that run's files first (and
 * nothing else in the folder).
 */
export function prepareRunFolder(outDir: string, overwrite: boolean): void {
  checkRunFolder(outDir, overwrite);
  for (const name of existingRunFiles(outDir)) rmSync(join(outDir, name), { recursive: true, force: true });
}

/**
 * The run folder can be written: it, or the nearest folder above it that exists, is a folder
 * this process may create files in. Errors give the real cause (EROFS for a read-only
 * mount, EACCES, a file in the way), before any model work; nothing is created.
 */
export function checkOutDirWritable(outDir: string): void {
  let dir = resolve(outDir);
  while (!existsSync(dir) && dirname(dir) !== dir) dir = dirname(dir);
  try {
    if (!statSync(dir).isDirectory()) throw new Error(`${dir} is a file, not a folder`);
    accessSync(dir, fsConstants.W_OK | fsConstants.X_OK);
  } catch (e) {
    throw new ConfigError([`the run folder ${outDir} cannot be written: ${(e as Error).message}; choose another folder with --out`], 'outDir');
  }
}

/** The check of `prepareRunFolder` alone, removing nothing: trainers call it before any model work. */
export function checkRunFolder(outDir: string, overwrite: boolean): void {
  checkOutDirWritable(outDir);
  const found = existingRunFiles(outDir);
  if (found.length > 0 && !overwrite) {
    throw new ConfigError(
      [`${outDir} already holds a run (${found.join(', ')}): continue it with --resume, choose another folder with --out, or replace it with --overwrite`],
      'outDir',
    );
  }
}
