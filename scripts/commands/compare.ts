/**
 * `rlvr compare`: GRPO and PPO with a critic on the same task under a matched budget, several
 * seeds each, then comparison.html and comparison.md (src/trainers/compare.ts,
 * src/report/compare.ts).
 */
import { cpus } from 'node:os';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { describeEngine, initEngine } from '../../src/engine/tfjs/backend.ts';
import { formatDuration } from '../../src/report/format.ts';
import { MATCHED_SETTINGS, runComparison } from '../../src/trainers/compare.ts';
import { resolveGrpoConfig } from '../../src/trainers/grpo-config.ts';
import { resolvePpoConfig } from '../../src/trainers/ppo-config.ts';
import { signalExitCode } from '../../src/trainers/run.ts';
import { collect, positiveInt } from './rl-command.ts';

interface CompareOptions {
  seeds: number[];
  steps?: number;
  out: string;
  set: string[];
  grpoSet: string[];
  ppoSet: string[];
  grpoConfig?: string;
  ppoConfig?: string;
  target?: number;
  backend: 'auto' | 'wasm' | 'cpu' | 'tensorflow' | 'tensorflow-gpu';
  quiet: boolean;
  overwrite: boolean;
}

function seedList(value: string): number[] {
  const seeds = value.split(',').map((s) => s.trim());
  if (seeds.length === 0 || seeds.some((s) => !/^\d+$/.test(s))) throw new InvalidArgumentError(`expected comma-separated non-negative integers, got "${value}"`);
  const out = seeds.map(Number);
  if (new Set(out).size !== out.length) throw new InvalidArgumentError(`a seed appears twice in "${value}"`);
  return out;
}

function accuracy(value: string): number {
  const x = Number(value);
  if (!(x > 0 && x <= 1)) throw new InvalidArgumentError(`expected an accuracy in (0, 1], got "${value}"`);
  return x;
}

export function register(program: Command): void {
  program
    .command('compare')
    .description('GRPO vs PPO with a critic on one task: the same prompts, reward, sampling and completions per step, several seeds each; writes comparison.html and comparison.md. With no options: the arithmetic demo, 3 seeds.')
    .option('--seeds <list>', 'seeds, comma-separated', seedList, [0, 1, 2])
    .option('--steps <n>', 'training steps of every run (sets steps for both)', positiveInt)
    .option('--out <dir>', 'comparison folder (a run folder per algorithm and seed, the two reports)', 'runs/compare-arithmetic')
    .option('--set <key=value>', 'a setting for both algorithms, e.g. --set numGenerations=4 (repeatable)', collect, [] as string[])
    .option('--grpo-set <key=value>', 'a GRPO-only setting, e.g. --grpo-set beta=0 (repeatable)', collect, [] as string[])
    .option('--ppo-set <key=value>', 'a PPO-only setting, e.g. --ppo-set criticLearningRate=5e-5 (repeatable)', collect, [] as string[])
    .option('--grpo-config <file>', 'JSON config for the GRPO runs (see rlvr grpo --help)')
    .option('--ppo-config <file>', 'JSON config for the PPO runs (see rlvr ppo --help)')
    .option('--target <accuracy>', 'held-out accuracy whose first crossing is reported (steps, seconds, tokens); default chosen from the runs', accuracy)
    .addOption(new Option('--backend <name>', 'tfjs backend').choices(['auto', 'wasm', 'cpu', 'tensorflow', 'tensorflow-gpu']).default('auto'))
    .option('--overwrite', 'replace the run folders of an earlier comparison in --out (without it they are refused)', false)
    .option('--quiet', 'print only the summary', false)
    .addHelpText(
      'after',
      `
Examples:
  rlvr compare                                    # the arithmetic demo, seeds 0,1,2, 100 steps each
  rlvr compare --seeds 0 --steps 30               # a quick look
  rlvr compare --ppo-set lambdaActor=1 --ppo-set klCoef=0   # Open-Reasoner-Zero's PPO against GRPO

Matched settings (the same for both; a difference is an error): ${MATCHED_SETTINGS.join(', ')}.
Each run folder is a normal run (metrics.jsonl, report.html, checkpoints): open one with rlvr report.
`,
    )
    .action(async (opts: CompareOptions) => {
      // 100 steps for both unless a config, --set or --steps says otherwise; each run's outDir is set per seed.
      const layers = (file: string | undefined, own: string[]) => ({ values: { steps: 100 }, file, set: [...opts.set, ...own], flags: { steps: opts.steps, outDir: opts.out } });
      const grpo = resolveGrpoConfig(layers(opts.grpoConfig, opts.grpoSet));
      const ppo = resolvePpoConfig(layers(opts.ppoConfig, opts.ppoSet));
      const engine = describeEngine(await initEngine({ backend: opts.backend, quiet: true })).replace(/^engine: /, '');
      const cpu = cpus();
      const machine = `${cpu.length} x ${cpu[0]?.model ?? 'unknown CPU'}, Node ${process.versions.node}, ${engine.split(' (')[0]}`;
      const t0 = performance.now();
      const result = await runComparison({ grpo, ppo, seeds: opts.seeds, outDir: opts.out, targetAccuracy: opts.target ?? null, machine, engine, quiet: opts.quiet, overwrite: opts.overwrite });
      const crashed = result.runs.filter((r) => r.error !== null);
      const lines = [
        `compare ${result.interrupted ? 'interrupted' : 'done'}: ${result.runs.length} runs in ${formatDuration((performance.now() - t0) / 1000)}${crashed.length ? `, ${crashed.length} crashed` : ''}`,
        ...crashed.map((r) => `  ${r.algorithm} seed ${r.seed}: ${r.error}`),
        `  table:  ${result.mdPath}`,
        `  charts: ${result.htmlPath}`,
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
      if (crashed.length) process.exitCode = 1;
      if (result.signal) process.exitCode = signalExitCode(result.signal); // an interrupted comparison is not a success
    });
}
