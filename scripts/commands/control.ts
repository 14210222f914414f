/**
 * `rlvr control`: train a classical-control policy, and `rlvr control bench`: several seeds
 * per (environment, algorithm) with a results table and learning-curve plots.
 *
 *   rlvr control --algo ppo --env CartPole-v1 --seed 0 --out runs/ppo-cartpole
 *   rlvr control bench --algos ppo,a2c --envs CartPole-v1 --seeds 3 --out runs/bench --workers 2
 */
import { spawn } from 'node:child_process';
import { Command, InvalidArgumentError, Option } from 'commander';
import { ALGORITHMS, type AlgoName } from '../../src/control/algorithm.ts';
import { ALGORITHM_CONFIGS } from '../../src/control/algorithms/index.ts';
import { benchTable, runControlBench, type BenchJob } from '../../src/control/bench.ts';
import { ENV_IDS } from '../../src/control/envs/index.ts';
import type { EnvId } from '../../src/control/envs/types.ts';
import { presetFor } from '../../src/control/presets.ts';
import { DEFAULT_CONTROL_STEPS, resolveControlConfig, trainControl } from '../../src/control/train.ts';
import { describeConfig } from '../../src/core/config.ts';

function positiveInt(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new InvalidArgumentError(`expected a positive integer, got "${value}"`);
  return Number(value);
}

function nonNegativeInt(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError(`expected a non-negative integer, got "${value}"`);
  return Number(value);
}

function listOf<T extends string>(allowed: readonly T[], what: string): (value: string) => T[] {
  return (value) => {
    const items = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
    if (items.length === 0) throw new InvalidArgumentError(`expected a comma-separated list of ${what}`);
    for (const item of items) {
      if (!(allowed as readonly string[]).includes(item)) throw new InvalidArgumentError(`unknown ${what.replace(/s$/, '')} "${item}"; choose from ${allowed.join(', ')}`);
    }
    if (new Set(items).size !== items.length) throw new InvalidArgumentError(`"${value}" lists an entry twice`);
    return items as T[];
  };
}

interface TrainOptions {
  algo?: AlgoName;
  env?: EnvId;
  seed: number;
  steps?: number;
  config?: string;
  out?: string;
  preset: boolean;
  evalEpisodes: number;
  backend: 'wasm' | 'cpu' | 'auto';
  stopAtThreshold: boolean;
  printConfig: boolean;
  quiet: boolean;
}

interface BenchCliOptions {
  algos: AlgoName[];
  envs: EnvId[];
  seeds: number;
  steps?: number;
  out: string;
  workers: number;
}

export function register(program: Command): void {
  const control = program
    .command('control')
    .description('train a classical-control policy (REINFORCE, A2C, NPG, TRPO, PPO) on a Gymnasium-exact environment')
    .addOption(new Option('--algo <name>', 'algorithm').choices(ALGORITHMS))
    .addOption(new Option('--env <id>', 'environment').choices(ENV_IDS))
    .option('--seed <n>', 'seed of the environments, initial weights, sampling and shuffling', nonNegativeInt, 0)
    .option('--steps <n>', `environment steps (default: the preset's budget, else ${DEFAULT_CONTROL_STEPS})`, positiveInt)
    .option('--config <file.json>', 'JSON config over the preset (see --print-config for the keys)')
    .option('--out <dir>', 'output folder for policy.safetensors, policy.json, config.json, metrics.jsonl, eval.json')
    .option('--no-preset', 'start from the algorithm defaults instead of the tuned (env, algorithm) preset')
    .option('--eval-episodes <n>', 'deterministic evaluation episodes after training (0 skips)', nonNegativeInt, 100)
    .addOption(new Option('--backend <name>', 'tfjs backend (wasm measured fastest for these small MLPs)').choices(['wasm', 'cpu', 'auto']).default('wasm'))
    .option('--stop-at-threshold', "stop once the last 20 episodes average the environment's reward threshold", false)
    .option('--print-config', 'print the resolved config with every key, its range and default, then exit', false)
    .option('--quiet', 'no header, progress or summary', false)
    .enablePositionalOptions()
    .addHelpText(
      'after',
      `\nConfig layers: algorithm defaults < preset for (env, algorithm) < --config file.\nPresets come from rl-baselines3-zoo (src/control/presets.ts).\n\nExample:\n  rlvr control --algo ppo --env CartPole-v1 --out runs/ppo-cartpole`,
    )
    .action(async (opts: TrainOptions, cmd: Command) => {
      if (!opts.algo) cmd.error(`error: --algo is required (one of ${ALGORITHMS.join(', ')})`);
      if (!opts.env) cmd.error(`error: --env is required (one of ${ENV_IDS.join(', ')})`);
      const algo = opts.algo!;
      const env = opts.env!;
      if (opts.printConfig) {
        const { config, presetSteps, presetSource } = resolveControlConfig(algo, env, { usePreset: opts.preset, configFile: opts.config });
        process.stdout.write(`${algo} on ${env}; preset: ${presetSource ?? 'none'}; steps: ${opts.steps ?? presetSteps ?? DEFAULT_CONTROL_STEPS}\n`);
        process.stdout.write(`${JSON.stringify(config, null, 2)}\n\nkeys:\n${describeConfig(ALGORITHM_CONFIGS[algo].schema)}\n`);
        return;
      }
      await trainControl({
        algo,
        env,
        seed: opts.seed,
        steps: opts.steps,
        configFile: opts.config,
        usePreset: opts.preset,
        out: opts.out,
        quiet: opts.quiet,
        backend: opts.backend,
        evalEpisodes: opts.evalEpisodes,
        stopAtThreshold: opts.stopAtThreshold,
      });
    });

  control
    .command('bench')
    .description('train several seeds of each (environment, algorithm) pair; write results.md/json and a learning-curve PNG per environment')
    .option('--algos <list>', `comma-separated algorithms from ${ALGORITHMS.join(', ')}`, listOf(ALGORITHMS, 'algorithms'), [...ALGORITHMS])
    .option('--envs <list>', `comma-separated environments from ${ENV_IDS.join(', ')}`, listOf(ENV_IDS, 'environments'), ['CartPole-v1'] as EnvId[])
    .option('--seeds <n>', 'seeds per pair (0 .. n-1)', positiveInt, 3)
    .option('--steps <n>', "environment steps per run (default: each pair's preset budget)", positiveInt)
    .option('--out <dir>', 'output folder', 'runs/control-bench')
    .option('--workers <n>', 'runs trained at once, each in its own process (1 or 2 on a 2-core machine)', positiveInt, 1)
    .addHelpText(
      'after',
      '\nThe default (5 algorithms x CartPole-v1 x 3 seeds, preset budgets) trains for about 10-15 minutes one run at a time\non 2 cores (per seed, measured: REINFORCE ~7 s, TRPO ~40 s, NPG ~50 s, A2C ~50 s, PPO ~60-120 s);\n--workers 2 runs two at once. Results: docs/control.md.',
    )
    .action(async (opts: BenchCliOptions) => {
      const runJob =
        opts.workers > 1
          ? (job: BenchJob) => runInChildProcess(['control', '--algo', job.algo, '--env', job.env, '--seed', String(job.seed), '--steps', String(job.steps), '--out', job.out, '--quiet'])
          : undefined;
      const result = await runControlBench({
        algos: opts.algos,
        envs: opts.envs,
        seeds: opts.seeds,
        steps: opts.steps,
        out: opts.out,
        concurrency: opts.workers,
        runJob,
        log: (line) => process.stdout.write(`${line}\n`),
      });
      process.stdout.write(`\n${benchTable(result.cells)}\nwrote ${result.files.join(', ')}\n`);
      for (const { env, algo } of result.cells) {
        if (!presetFor(env, algo)) process.stdout.write(`note: ${algo} on ${env} has no tuned preset (algorithm defaults were used)\n`);
      }
    });
}

/** Runs this CLI again in a child process with `args` (same Node flags, e.g. the tsx loader). */
function runInChildProcess(args: string[]): Promise<void> {
  const entry = process.argv[1];
  if (!entry) return Promise.reject(new Error('cannot find the rlvr entry script to start a worker'));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, entry, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new Error(`worker exited with code ${code}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`));
    });
  });
}
