/**
 * `rlvr sft`: supervised warm-start of a causal LM on prompt/completion data.
 *
 *   rlvr sft --preset arithmetic-tiny
 *   rlvr sft --preset arithmetic-tiny --steps 200 --out runs/sft-200
 *   rlvr sft --config my-sft.json --set learningRate=3e-4
 *   rlvr sft --resume runs/sft-arithmetic-tiny/checkpoint-200 --steps 1000
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { backendOption, deviceOption, engineOption } from './engine-options.ts';
import { describeEngine, initEngine } from '../../src/engine/tfjs/backend.ts';
import { SFT_PRESETS, presetWithSteps, sftPreset } from '../../src/trainers/presets.ts';
import { signalExitCode } from '../../src/trainers/run.ts';
import { readSftTrainerState, trainSft } from '../../src/trainers/sft.ts';
import { SftConfig, resolveSftConfig } from '../../src/trainers/sft-config.ts';
import { formatDuration } from '../../src/report/format.ts';

function positiveInt(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new InvalidArgumentError(`expected a positive integer, got "${value}"`);
  return Number(value);
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

interface SftOptions {
  preset?: string;
  config?: string;
  set: string[];
  out?: string;
  steps?: number;
  resume?: string;
  engine?: 'auto' | 'onnxruntime' | 'tfjs';
  device?: 'cpu' | 'cuda';
  backend: 'auto' | 'wasm' | 'cpu' | 'tensorflow' | 'tensorflow-gpu';
  quiet: boolean;
  overwrite: boolean;
}

export function register(program: Command): void {
  program
    .command('sft')
    .description('supervised warm-start: fine-tune (or train from scratch) a causal LM on prompt/completion pairs, with completion-only loss')
    .addOption(new Option('--preset <name>', 'start from a named config').choices(Object.keys(SFT_PRESETS)))
    .option('--config <file>', 'JSON config file, layered over the preset (see the settings below)')
    .option('--set <key=value>', 'override one setting, e.g. --set learningRate=3e-4 (repeatable)', collect, [] as string[])
    .option('--out <dir>', 'run folder (sets outDir): metrics.jsonl, samples.jsonl, config.json, checkpoint-<step>/, final/')
    .option('--steps <n>', 'optimizer steps: the training budget (sets steps; with --preset, the preset\'s warmupSteps is capped at it)', positiveInt)
    .option('--resume <dir>', 'continue from a checkpoint folder (checkpoint-<step> or final); its saved config is the base, --config/--set/--out/--steps apply on top')
    .addOption(engineOption("engine of the forward and backward and of the evaluation's sampling (sets engine); AdamW runs on tfjs"))
    .addOption(deviceOption())
    .addOption(backendOption())
    .option('--overwrite', 'replace an earlier run in the run folder (its logs and checkpoints are deleted); without it such a folder is refused', false)
    .option('--quiet', 'print nothing but the final summary', false)
    .addHelpText(
      'after',
      `\nLayers, later ones winning: defaults < --preset (or the checkpoint's config with --resume) < --config < --set < --out/--steps.\n\nSettings (dotted keys for --set and the JSON config):\n${SftConfig.describe()
        .split('\n')
        .map((l) => `  ${l}`)
        .join('\n')}\n`,
    )
    .action(async (opts: SftOptions) => {
      if (opts.resume && opts.preset) {
        throw new Error('--preset cannot be combined with --resume: the checkpoint carries the config of its run (use --config/--set to change settings)');
      }
      let values: Record<string, unknown> | undefined;
      if (opts.resume) values = (await readSftTrainerState(opts.resume)).config as unknown as Record<string, unknown>;
      else if (opts.preset) values = opts.steps === undefined ? sftPreset(opts.preset) : presetWithSteps(sftPreset(opts.preset), opts.steps);
      const config = resolveSftConfig({
        values,
        file: opts.config,
        set: opts.set,
        flags: { outDir: opts.out, steps: opts.steps, engine: opts.engine, device: opts.device },
      });
      const engine = await initEngine({ backend: opts.backend, quiet: true });
      const result = await trainSft(config, {
        resumeFrom: opts.resume,
        engine: describeEngine(engine).replace(/^engine: /, ''),
        quiet: opts.quiet,
        overwrite: opts.overwrite,
      });
      const acc = result.finalEval ? `eval/accuracy ${(100 * result.finalEval.accuracy).toFixed(1)}%, eval/loss ${result.finalEval.loss.toFixed(4)}` : 'no held-out evaluation';
      if (result.signal) {
        process.stdout.write(`sft interrupted (${result.signal}) at step ${result.step}; continue with --resume\n`);
        process.exitCode = signalExitCode(result.signal); // an interrupted run is not a success
        return;
      }
      process.stdout.write(`sft done: ${config.steps} steps, ${acc}, ${formatDuration(result.seconds)} wall-clock; final checkpoint ${result.finalDir}\n`);
    });
}
