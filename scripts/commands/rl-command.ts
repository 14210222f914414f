/**
 * What `rlvr grpo` and `rlvr ppo` share on the command line: the options for model, data,
 * rewards, run folder, steps, resume and backend; the config layering; the resume lookup;
 * and the closing summary. Each command adds its own name, description and trainer.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { backendOption, deviceOption, engineOption } from './engine-options.ts';
import { describeEngine, initEngine } from '../../src/engine/tfjs/backend.ts';
import { SUPPORTED_MODEL_TYPES } from '../../src/lm/config.ts';
import type { ResolveOptions } from '../../src/core/config.ts';
import { PROMPT_FORMATS, parseColumnMap } from '../../datasets/prompts.ts';
import { formatDuration } from '../../src/report/format.ts';
import type { WarmStartResult } from '../../src/trainers/warm-start.ts';
import { type InterruptSignal, signalExitCode } from '../../src/trainers/run.ts';
import { latestCheckpoint } from '../../src/trainers/trainer-state.ts';

export function positiveInt(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new InvalidArgumentError(`expected a positive integer, got "${value}"`);
  return Number(value);
}

export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** `--map new=old,...`, repeatable: the entries of every flag, merged. */
export function collectColumnMap(value: string, previous: Record<string, string> | undefined): Record<string, string> {
  let map: Record<string, string>;
  try {
    map = parseColumnMap(value);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
  for (const k of Object.keys(map)) if (previous && Object.hasOwn(previous, k)) throw new InvalidArgumentError(`column "${k}" is mapped twice`);
  return { ...previous, ...map };
}

/** `name`, `./file.ts` or either with `:weight` (a number after the last colon). */
export function parseRewardFlag(flag: string): { reward: string; weight: number } {
  const colon = flag.lastIndexOf(':');
  const tail = colon > 0 ? flag.slice(colon + 1) : '';
  if (colon > 0 && /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(tail)) {
    return { reward: flag.slice(0, colon), weight: Number(tail) };
  }
  if (flag.trim() === '') throw new InvalidArgumentError('--reward needs a built-in name or a module path');
  return { reward: flag, weight: 1 };
}

export interface RlOptions {
  config?: string;
  set: string[];
  model?: string;
  data?: string;
  evalData?: string;
  split?: string;
  evalSplit?: string;
  map?: Record<string, string>;
  format?: string;
  chat?: boolean;
  system?: string;
  thinking?: boolean;
  maxRows?: number;
  reward: string[];
  out?: string;
  steps?: number;
  resume?: string | boolean;
  engine?: 'auto' | 'onnxruntime' | 'tfjs';
  device?: 'cpu' | 'cuda';
  backend: 'auto' | 'wasm' | 'cpu' | 'tensorflow' | 'tensorflow-gpu';
  quiet: boolean;
  overwrite: boolean;
}

/** What a trainer's run returns that the summary prints. */
export interface RlRunSummary {
  step: number;
  interrupted: boolean;
  signal: InterruptSignal | null;
  seconds: number;
  evals: Array<{ step: number; accuracy: number }>;
  time: { generate: number; reward: number; train: number; eval: number; checkpoint: number };
  generatedTokensPerSecond: number;
  warmStart: WarmStartResult | null;
  checkpointDir: string;
  reportPath: string | null;
  rewardFailures: { count: number; path: string };
}

export interface RlCommandSpec<C> {
  name: string;
  description: string;
  /** The settings table of `--help` (`Config.describe()`). */
  describe(): string;
  /** Examples shown after the options. */
  examples: string;
  resolve(options: ResolveOptions): C & { outDir: string };
  /** Reads a checkpoint's saved config (and checks the checkpoint is this trainer's). */
  savedConfig(dir: string): Promise<unknown>;
  train(config: C, options: { resumeFrom?: string; engine: string; quiet: boolean; overwrite: boolean }): Promise<RlRunSummary>;
}

/** Registers an RL training command (`rlvr grpo`, `rlvr ppo`). */
export function registerRlCommand<C>(program: Command, spec: RlCommandSpec<C>): void {
  program
    .command(spec.name)
    .description(spec.description)
    .option('--config <file>', 'JSON config file (see the settings below)')
    .option('--set <key=value>', 'override one setting, e.g. --set beta=0 (repeatable)', collect, [] as string[])
    .option('--model <dir>', `starting policy: a Hugging Face folder, model_type ${SUPPORTED_MODEL_TYPES.join(', ')} (sets model.modelDir; without it the SFT warm-start of the demo is used)`)
    .option('--data <path>', 'training prompts: a .jsonl, .json or .parquet file or a Hugging Face dataset folder; a "prompt" column (text or chat messages) plus the columns the rewards read, e.g. "answer" (sets data.trainFile)')
    .option('--eval-data <path>', 'held-out prompts, same columns, for eval/accuracy (sets data.testFile; default: the --data folder\'s test or validation split)')
    .option('--split <name>', 'split of a dataset folder to train on (sets data.split; default train)')
    .option('--eval-split <name>', 'split of a dataset folder to evaluate on (sets data.evalSplit; default test, else validation)')
    .option('--map <new=old,...>', 'rename columns, e.g. --map prompt=question,answer=solution (sets data.columns; repeatable)', collectColumnMap, undefined)
    .addOption(new Option('--format <name>', 'row format (sets data.format): prompt, or gsm8k = { question, answer ending in "#### <number>" }').choices([...PROMPT_FORMATS]))
    .option('--chat', 'render plain-text prompts as one user message through the chat template (sets data.chat)')
    .option('--system <text>', 'a system message first in every prompt (sets data.system; plain prompts then go through the chat template)')
    .option('--thinking', 'turn the chat template\'s thinking switch on (Qwen3 enable_thinking; sets data.enableThinking)')
    .option('--no-thinking', 'turn it off: the template writes an empty <think></think> block')
    .option('--max-rows <n>', 'read only the first n training rows (sets data.maxRows)', positiveInt)
    .option('--reward <spec>', 'a reward: a built-in name (exact_match, numeric, math, format, code, overlong) or a module path (./my-reward.ts), optionally with :weight; repeatable (replaces the config\'s rewards)', collect, [] as string[])
    .option('--out <dir>', 'run folder (sets outDir)')
    .option('--steps <n>', 'training steps (sets steps)', positiveInt)
    .option('--resume [checkpoint]', 'continue a run: from the given checkpoint folder, or the newest one in the run folder')
    .addOption(engineOption("engine that samples completions and trains the warm start (sets engine); the GRPO/PPO update runs on tfjs"))
    .addOption(deviceOption())
    .addOption(backendOption())
    .option('--overwrite', 'replace an earlier run in the run folder (its logs and checkpoints are deleted); without it such a folder is refused', false)
    .option('--quiet', 'print nothing but the final summary', false)
    .addHelpText(
      'after',
      `
${spec.examples}

Layers, later ones winning: defaults (the demo) < the checkpoint's config (with --resume) < --config < --set < flags.

A custom reward is a module whose default export (or export named "reward") takes the batch
{ prompts, completions, completionIds, ...dataset columns } and returns one number (or null)
per completion; see rewards/README.md ("A custom reward, end to end") for a runnable example.
A data file must have the columns the rewards read; a missing column is an error naming the line.

Data: --data takes a .jsonl, .json or .parquet file, or a folder laid out as the Hugging Face Hub
does (data/train-00000-of-00001.parquet, data/test-*.parquet, train/*.parquet, train.jsonl); --split
picks the training split and the held-out one is --eval-split, else test, else validation. A
"prompt" is plain text, or a list of { role, content } messages (TRL's conversational form) that
the model's chat template renders with the generation prompt; reward functions then get each
completion as [{ role: "assistant", content }] and the prompt's messages (the built-in rewards
read either form). samples.jsonl shows prompts as the template rendered them. A bad row is an
error naming its file and row (file:line, file row N counting from 0); a file too big for memory
is an error naming its size before it is read (--max-rows, or NODE_OPTIONS=--max-old-space-size).

Outputs in the run folder: metrics.jsonl (names in docs/metrics.md), samples.jsonl, config.json,
checkpoint-<step>/ (every saveEvery steps, and on Ctrl-C, SIGTERM or SIGHUP: the run saves, then exits
with 130, 143 or 129), final/, reward_failures.jsonl, report.html.

Settings (dotted keys for --set and the JSON config):
${spec
  .describe()
  .split('\n')
  .map((l) => `  ${l}`)
  .join('\n')}
`,
    )
    .action(async (opts: RlOptions) => {
      const flags: Record<string, unknown> = {
        'model.modelDir': opts.model,
        'data.trainFile': opts.data,
        'data.testFile': opts.evalData,
        'data.split': opts.split,
        'data.evalSplit': opts.evalSplit,
        'data.columns': opts.map,
        'data.format': opts.format,
        'data.chat': opts.chat,
        'data.system': opts.system,
        'data.enableThinking': opts.thinking,
        'data.maxRows': opts.maxRows,
        outDir: opts.out,
        steps: opts.steps,
        engine: opts.engine,
        device: opts.device,
      };
      if (opts.reward.length) flags['rewards'] = opts.reward.map(parseRewardFlag);
      const layers = { file: opts.config, set: opts.set, flags };
      let resumeFrom: string | undefined;
      let values: Record<string, unknown> | undefined;
      if (opts.resume) {
        if (typeof opts.resume === 'string') resumeFrom = opts.resume;
        else {
          const outDir = spec.resolve(layers).outDir;
          const latest = latestCheckpoint(outDir);
          if (!latest) throw new Error(`--resume: no checkpoint in ${outDir} (checkpoint-<step>/ or final/ with trainer_state.json); pass the folder: --resume <dir>`);
          resumeFrom = latest;
        }
        values = (await spec.savedConfig(resumeFrom)) as Record<string, unknown>;
      }
      const config = spec.resolve({ values, ...layers });
      const engine = await initEngine({ backend: opts.backend, quiet: true });
      const result = await spec.train(config, { resumeFrom, engine: describeEngine(engine).replace(/^engine: /, ''), quiet: opts.quiet, overwrite: opts.overwrite });
      process.stdout.write(`${summaryLines(spec.name, result).join('\n')}\n`);
      if (result.signal) process.exitCode = signalExitCode(result.signal); // an interrupted run is not a success
    });
}

/** The closing summary of a run. */
function summaryLines(name: string, result: RlRunSummary): string[] {
  const first = result.evals[0];
  const last = result.evals[result.evals.length - 1];
  const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
  const lines = [`${name} ${result.interrupted ? `interrupted${result.signal ? ` (${result.signal})` : ''}` : 'done'}: ${result.step} steps in ${formatDuration(result.seconds)}`];
  if (first && last && first !== last) {
    lines.push(`  held-out accuracy: ${pct(first.accuracy)} at step ${first.step} -> ${pct(last.accuracy)} at step ${last.step} (${last.accuracy >= first.accuracy ? '+' : ''}${(100 * (last.accuracy - first.accuracy)).toFixed(1)} points)`);
  }
  const t = result.time;
  lines.push(
    `  time: generation ${formatDuration(t.generate)}, rewards ${formatDuration(t.reward)}, training ${formatDuration(t.train)}, evaluation ${formatDuration(t.eval)}, checkpoints ${formatDuration(t.checkpoint)}`,
    `  sampling throughput: ${Math.round(result.generatedTokensPerSecond)} completion tokens/s`,
  );
  if (result.warmStart) {
    const w = result.warmStart;
    lines.push(`  warm start: ${w.cached ? 'reused' : `trained in ${formatDuration(w.seconds)}`} ${w.modelDir} (SFT ${w.sftConfig.steps} steps)`);
  }
  if (result.rewardFailures.count > 0) lines.push(`  reward failures: ${result.rewardFailures.count} (listed in ${result.rewardFailures.path})`);
  lines.push(`  checkpoint: ${result.checkpointDir}`);
  if (result.reportPath) lines.push(`  report: ${result.reportPath}`);
  return lines;
}
