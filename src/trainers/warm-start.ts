/**
 * The starting policy of the GRPO and PPO demos: an SFT warm-start from a preset, trained once and
 * cached, optionally on the demonstrations of an imperfect teacher.
 *
 * Imperfect teacher (`teacherCarryErrors` = f): of the training problems whose sum needs a
 * carry, a fraction f (drawn with a fixed seed) is answered the way a pupil who forgets to
 * carry would, digit by digit modulo 10 (`47+38=` -> `75` instead of `85`). The held-out
 * split stays correct. SFT imitates the teacher, errors included; with f > 1/2 the wrong,
 * carry-free answer is the more likely one for most carry problems, while the right answer
 * keeps a probability of about 1 - f. An exact-match verifier knows better than the
 * demonstrations, which is the situation reinforcement learning with verifiable rewards is
 * for: GRPO can move the policy to the correct mode, and more SFT on the same data cannot.
 *
 * The cache folder is `<cacheDir>/<preset>-<hash>`, the hash covering the resolved SFT config
 * and the teacher setting, so any change trains a new warm-start. SFT writes `final/`
 * atomically after its last step; a folder with `final/trainer_state.json` is complete.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { makeArithmeticSplits, type ArithmeticExample } from '../../datasets/arithmetic/generate.ts';
import { writeJsonl } from '../../datasets/jsonl.ts';
import { Rng } from '../core/rng.ts';
import { readModelDims } from '../lm/checkpoint.ts';
import { type Tokenizer, loadTokenizer } from '../lm/tokenizer.ts';
import type { ProgressStream } from '../report/progress.ts';
import { taskTokenizer } from './from-scratch.ts';
import { ArithmeticGenerateSchema, type RlConfig } from './rl-config.ts';
import { presetWithSteps, sftPreset } from './presets.ts';
import { TRAINER_STATE_FILE, modelWeightsSha256 } from './trainer-state.ts';
import { RunInterruptedError } from './run.ts';
import { trainSft } from './sft.ts';
import { type DeviceChoice, type EngineChoice, parseSftConfig, type SftConfig, type SftGenerateConfig } from './sft-config.ts';

export type WarmStartConfig = RlConfig['model']['warmStart'];

/** Seed of the teacher's mistakes (fixed, so the data is a function of the settings). */
const TEACHER_SEED = 20240601;

/** `a + b` added digit by digit modulo 10, dropping every carry (`47 + 38` -> `75`). */
export function carryFreeSum(a: number, b: number): number {
  let out = 0;
  let place = 1;
  for (let x = a, y = b; x > 0 || y > 0; x = Math.floor(x / 10), y = Math.floor(y / 10)) {
    out += ((x % 10) + (y % 10)) % 10 * place;
    place *= 10;
  }
  return out;
}

/**
 * Examples as an imperfect teacher writes them: each addition whose carry-free sum differs
 * from the true sum gets the carry-free answer with probability `rate` (draws from `rng`,
 * one per such example, in order). Other operations are left as they are.
 */
export function withCarryErrors(examples: readonly ArithmeticExample[], rate: number, rng: Rng): ArithmeticExample[] {
  if (!(rate >= 0 && rate <= 1)) throw new Error(`withCarryErrors: rate must be in [0, 1], got ${rate}`);
  return examples.map((e) => {
    if (e.op !== '+') return e;
    const wrong = String(carryFreeSum(e.a, e.b));
    if (wrong === e.answer || rng.uniform() >= rate) return e;
    return { ...e, completion: e.completion.replace(e.answer, wrong) };
  });
}

/** The preset's generated-data settings (the GRPO demo's prompts and held-out split). */
export function warmStartGenerate(warm: WarmStartConfig): SftGenerateConfig {
  const generate = (sftPreset(warm.preset) as { data?: { generate?: unknown } }).data?.generate;
  if (!generate) throw new Error(`warm-start preset "${warm.preset}" has no generated data (data.generate)`);
  return ArithmeticGenerateSchema.parse(generate);
}

/**
 * The SFT config of a warm-start: the preset with the budget override, its run folder under
 * the cache, and, with teacher errors, data files inside that folder.
 */
export function warmStartSftConfig(warm: WarmStartConfig, engine: EngineChoice = 'auto', device: DeviceChoice = 'cpu'): SftConfig {
  const preset = sftPreset(warm.preset) as Record<string, unknown> & { steps: number };
  const source = `warm-start preset ${warm.preset}`;
  // The RL run's engine trains its warm start too (`--engine tfjs`: everything on tfjs).
  const values: Record<string, unknown> = { ...presetWithSteps(preset, warm.steps ?? preset.steps), engine, device, outDir: '(cache)' };
  // How many checkpoints are kept does not change what is trained: not part of the key.
  // The engine is part of it only where it changes what is trained (onnxruntime's
  // gradients round differently from tfjs's), so folders trained on tfjs keep their keys.
  const { engine: _engine, device: _device, saveTotalLimit: _kept, ...trained } = parseSftConfig(values, { source });
  const keyed: unknown[] = [trained, warm.teacherCarryErrors];
  if (engine !== 'tfjs') keyed.push('gradients: onnxruntime');
  if (device !== 'cpu') keyed.push(`device: ${device}`);
  const key = createHash('sha256')
    .update(JSON.stringify(keyed))
    .digest('hex')
    .slice(0, 12);
  const dir = join(warm.cacheDir, `${warm.preset}-${key}`);
  if (warm.teacherCarryErrors > 0) {
    warmStartGenerate(warm); // the teacher needs generated arithmetic
    values['data'] = { trainFile: join(dir, 'data', 'train.jsonl'), testFile: join(dir, 'data', 'test.jsonl'), generate: null };
  }
  return parseSftConfig({ ...values, outDir: dir }, { source });
}

export interface WarmStartResult {
  /** The starting policy's folder (`<cache>/<preset>-<hash>/final`). */
  modelDir: string;
  /** True when a finished warm-start was found and reused. */
  cached: boolean;
  sftConfig: SftConfig;
  /** Held-out exact-match accuracy SFT reported after its last step (null if it did not evaluate). */
  sftAccuracy: number | null;
  /** Seconds SFT took in this call (0 when reused). */
  seconds: number;
}

/** The teacher's demonstrations (carries forgotten) and the correct held-out split: the rows of the warm start's data files. */
function teacherData(warm: WarmStartConfig): { train: Array<{ prompt: string; completion: string }>; test: Array<{ prompt: string; completion: string; answer: string }> } {
  const g = warmStartGenerate(warm);
  const { train, test } = makeArithmeticSplits({ ...g, digits: [g.digits[0]!, g.digits[1]!] });
  const taught = withCarryErrors(train, warm.teacherCarryErrors, new Rng(TEACHER_SEED));
  return { train: taught.map((e) => ({ prompt: e.prompt, completion: e.completion })), test: test.map((e) => ({ prompt: e.prompt, completion: e.completion, answer: e.answer })) };
}

/**
 * The tokenizer and the dimensions of the warm start's model without training it: the
 * cached model's, or the ones `trainSft` will give it (a from-scratch model over the same
 * data), so that the prompts can be checked against it before a warm start of minutes.
 */
export async function warmStartShape(warm: WarmStartConfig, engine: EngineChoice = 'auto', device: DeviceChoice = 'cpu'): Promise<{ dir: string | null; tokenizer: Tokenizer; maxPositions: number; vocabSize: number }> {
  const sftConfig = warmStartSftConfig(warm, engine, device);
  const finalDir = resolve(sftConfig.outDir, 'final');
  if (existsSync(join(finalDir, TRAINER_STATE_FILE))) {
    const dims = await readModelDims(finalDir);
    return { dir: finalDir, tokenizer: await loadTokenizer(finalDir), maxPositions: dims.maxPositions, vocabSize: dims.vocabSize };
  }
  const { train, test } = sftConfig.data.generate ? { train: [], test: [] } : teacherData(warm);
  const tokenizer = taskTokenizer(sftConfig.data, [...train, ...test].map((e) => ({ ...e, source: 'warm start' })));
  return { dir: null, tokenizer, maxPositions: sftConfig.model.init!.contextLength, vocabSize: tokenizer.vocabSize };
}

/**
 * The warm-started policy: reuses the cached folder when a previous run finished it,
 * otherwise writes the teacher's data (when `teacherCarryErrors` > 0) and trains it with
 * `trainSft`.
 */
export async function warmStart(warm: WarmStartConfig, options: { engine?: string; trainEngine?: EngineChoice; device?: DeviceChoice; quiet?: boolean; stream?: ProgressStream } = {}): Promise<WarmStartResult> {
  const sftConfig = warmStartSftConfig(warm, options.trainEngine, options.device);
  const finalDir = resolve(sftConfig.outDir, 'final');
  if (existsSync(join(finalDir, TRAINER_STATE_FILE))) {
    const state = JSON.parse(await readFile(join(finalDir, TRAINER_STATE_FILE), 'utf8')) as { lastEval?: { accuracy?: number } | null };
    return { modelDir: finalDir, cached: true, sftConfig, sftAccuracy: state.lastEval?.accuracy ?? null, seconds: 0 };
  }
  if (sftConfig.data.trainFile && sftConfig.data.testFile) {
    const { train, test } = teacherData(warm);
    await writeJsonl(sftConfig.data.trainFile, train);
    await writeJsonl(sftConfig.data.testFile, test);
  }
  // The cache folder is ours: an unfinished warm start in it (interrupted) is replaced.
  const result = await trainSft(sftConfig, { engine: options.engine, quiet: options.quiet, stream: options.stream, overwrite: true });
  if (result.signal) {
    throw new RunInterruptedError(result.signal, `the SFT warm start was interrupted (${result.signal}) at step ${result.step}; its checkpoint is in ${sftConfig.outDir} (run again to train the warm start from the start)`);
  }
  return { modelDir: result.finalDir, cached: false, sftConfig, sftAccuracy: result.finalEval?.accuracy ?? null, seconds: result.seconds };
}

/**
 * The starting policy's folder and the SHA-256 of its weights: the checkpoint's record on
 * resume (checked against the folder, since the reference model and, for PPO, nothing else
 * is re-derived from it), else `model.modelDir`, else the SFT warm-start (trained or reused).
 */
export async function startingPolicy(
  model: RlConfig['model'],
  saved: { dir: string; sha256: string } | null,
  options: { engine?: string; trainEngine?: EngineChoice; device?: DeviceChoice; quiet: boolean; stream: ProgressStream },
): Promise<{ initialModelDir: string; initialSha: string; warm: WarmStartResult | null }> {
  let warm: WarmStartResult | null = null;
  let initialModelDir: string;
  if (saved) initialModelDir = saved.dir;
  else if (model.modelDir) initialModelDir = resolve(model.modelDir);
  else {
    warm = await warmStart(model.warmStart, options);
    initialModelDir = warm.modelDir;
    if (!options.quiet) {
      options.stream.write(
        warm.cached ? `warm start: reusing ${warm.modelDir} (SFT ${warm.sftConfig.steps} steps)\n` : `warm start: SFT finished in ${warm.seconds.toFixed(0)} s -> ${warm.modelDir}\n`,
      );
    }
  }
  const initialSha = modelWeightsSha256(initialModelDir);
  if (saved && saved.sha256 !== initialSha) {
    throw new Error(`cannot resume: the starting model ${initialModelDir} has changed since the run began (its weights' SHA-256 differs), so the reference model cannot be re-derived`);
  }
  return { initialModelDir, initialSha, warm };
}
