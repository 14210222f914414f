/**
 * `rlvr grpo`: GRPO fine-tuning of a causal LM against reward functions.
 *
 *   rlvr grpo                                   # the demo: warm-started tiny model, arithmetic, exact match
 *   rlvr grpo --model my-model --data train.jsonl --eval-data test.jsonl --reward math --reward format:0.2
 *   rlvr grpo --config grpo.json --set beta=0 --set lossType=dapo
 *   rlvr grpo --resume                          # continue the newest checkpoint in the run folder
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { describeEngine, initEngine } from '../../src/engine/backend.ts';
import { formatDuration } from '../../src/report/format.ts';
import { GrpoConfig, resolveGrpoConfig } from '../../src/trainers/grpo-config.ts';
import { readGrpoTrainerState, trainGrpo } from '../../src/trainers/grpo.ts';
import { latestCheckpoint } from '../../src/trainers/trainer-state.ts';

function positiveInt(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new InvalidArgumentError(`expected a positive integer, got "${value}"`);
  return Number(value);
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
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

interface GrpoOptions {
  config?: string;
  set: string[];
  model?: string;
  data?: string;
  evalData?: string;
  reward: string[];
  out?: string;
  steps?: number;
  resume?: string | boolean;
  backend: 'auto' | 'wasm' | 'cpu' | 'tensorflow' | 'tensorflow-gpu';
  quiet: boolean;
}

export function register(program: Command): void {
  program
    .command('grpo')
    .description('GRPO: sample K completions per prompt, score them with reward functions, update the policy on group-relative advantages. With no options: the arithmetic demo.')
    .option('--config <file>', 'JSON config file (see the settings below)')
    .option('--set <key=value>', 'override one setting, e.g. --set beta=0 (repeatable)', collect, [] as string[])
    .option('--model <dir>', 'starting policy: a Hugging Face folder (sets model.modelDir; without it the SFT warm-start of the demo is used)')
    .option('--data <file>', 'training prompts, JSONL: "prompt" plus the columns the rewards read, e.g. "answer" (sets data.trainFile)')
    .option('--eval-data <file>', 'held-out prompts, same columns, for eval/accuracy (sets data.testFile)')
    .option('--reward <spec>', 'a reward: a built-in name (exact_match, numeric, math, format, code, overlong) or a module path (./my-reward.ts), optionally with :weight; repeatable (replaces the config\'s rewards)', collect, [] as string[])
    .option('--out <dir>', 'run folder (sets outDir)')
    .option('--steps <n>', 'GRPO steps (sets steps)', positiveInt)
    .option('--resume [checkpoint]', 'continue a run: from the given checkpoint folder, or the newest one in the run folder')
    .addOption(new Option('--backend <name>', 'tfjs backend').choices(['auto', 'wasm', 'cpu', 'tensorflow', 'tensorflow-gpu']).default('auto'))
    .option('--quiet', 'print nothing but the final summary', false)
    .addHelpText(
      'after',
      `
Layers, later ones winning: defaults (the demo) < the checkpoint's config (with --resume) < --config < --set < flags.

A custom reward is a module whose default export (or export named "reward") takes the batch
{ prompts, completions, completionIds, ...dataset columns } and returns one number (or null)
per completion; see rewards/README.md ("A custom reward, end to end") for a runnable example.
A data file must have the columns the rewards read; a missing column is an error naming the line.

Outputs in the run folder: metrics.jsonl (names in docs/metrics.md), samples.jsonl, config.json,
checkpoint-<step>/ (every saveEvery steps and on Ctrl-C), final/, report.html.

Settings (dotted keys for --set and the JSON config):
${GrpoConfig.describe()
  .split('\n')
  .map((l) => `  ${l}`)
  .join('\n')}
`,
    )
    .action(async (opts: GrpoOptions) => {
      const flags: Record<string, unknown> = {
        'model.modelDir': opts.model,
        'data.trainFile': opts.data,
        'data.testFile': opts.evalData,
        outDir: opts.out,
        steps: opts.steps,
      };
      if (opts.reward.length) flags['rewards'] = opts.reward.map(parseRewardFlag);
      const layers = { file: opts.config, set: opts.set, flags };
      let resumeFrom: string | undefined;
      let values: Record<string, unknown> | undefined;
      if (opts.resume) {
        if (typeof opts.resume === 'string') resumeFrom = opts.resume;
        else {
          const outDir = resolveGrpoConfig(layers).outDir;
          const latest = latestCheckpoint(outDir);
          if (!latest) throw new Error(`--resume: no checkpoint in ${outDir} (checkpoint-<step>/ or final/ with trainer_state.json); pass the folder: --resume <dir>`);
          resumeFrom = latest;
        }
        values = (await readGrpoTrainerState(resumeFrom)).config as unknown as Record<string, unknown>;
      }
      const config = resolveGrpoConfig({ values, ...layers });
      const engine = await initEngine({ backend: opts.backend, quiet: true });
      const result = await trainGrpo(config, { resumeFrom, engine: describeEngine(engine).replace(/^engine: /, ''), quiet: opts.quiet });

      const first = result.evals[0];
      const last = result.evals[result.evals.length - 1];
      const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
      const lines = [`grpo ${result.interrupted ? 'interrupted' : 'done'}: ${result.step} steps in ${formatDuration(result.seconds)}`];
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
      lines.push(`  checkpoint: ${result.checkpointDir}`);
      if (result.reportPath) lines.push(`  report: ${result.reportPath}`);
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}
