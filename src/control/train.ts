/**
 * The control training loop, the same for every algorithm (SB3's `OnPolicyAlgorithm.learn`):
 *
 *   repeat until `steps` environment steps:
 *     collect numEnvs x numSteps transitions into the rollout buffer (one batched forward per step)
 *     fill advantages: GAE(gamma, lambda), or Monte-Carlo reward-to-go for REINFORCE
 *     algorithm.update(buffer, progressRemaining)          (the algorithm file's rule)
 *     log one metrics.jsonl line (METRIC_NAMES), advance the progress bar
 *   evaluate the final policy on 100 episodes with deterministic actions
 *   save policy.safetensors + policy.json, config.json, metrics.jsonl, eval.json in `out`
 *
 * Config layers: the algorithm's defaults < the preset for (env, algorithm) < a JSON config
 * file < `config` values given in code; validated once, errors name the field.
 *
 * Backend: the wasm backend is the default for control. Measured on this project's 2-vCPU
 * machines (tfjs 4.22, 64x64 tanh MLPs): a PPO minibatch step on 256 samples took ~3.5-10 ms
 * on wasm against ~50-110 ms on the pure-JS cpu backend, and the per-step rollout forward
 * over 8 copies ~0.35-0.7 ms against ~1.2 ms. Even at these sizes the cpu backend's matmul
 * dominates its per-op overhead advantage, so wasm wins both phases (scripts/bench-control.ts
 * re-measures).
 *
 * "Solved": the first iteration at which the mean return of the last 20 finished training
 * episodes reaches the environment's reward threshold (475 for CartPole-v1); recorded as
 * environment steps and wall-clock seconds since the start of training.
 */
import { join } from 'node:path';
import { describeEngine, initEngine, type EngineBackend } from '../engine/tfjs/backend.ts';
import { loadConfigFile, mergeConfig, parseConfig } from '../core/config.ts';
import { Rng } from '../core/rng.ts';
import { explainedVariance } from '../objectives/index.ts';
import { writeJsonAtomic } from '../core/atomic.ts';
import { METRIC_NAMES } from '../report/metric-names.ts';
import { MetricsWriter, RUN_FILES } from '../report/metrics.ts';
import { printRunHeader, TrainingProgress, type ProgressStream } from '../report/progress.ts';
import { ALGORITHMS, type AlgoName } from './algorithm.ts';
import { ALGORITHM_CONFIGS, createAlgorithm, type AnyControlConfig, type ControlConfigOf } from './algorithms/index.ts';
import { RolloutBuffer, RolloutCollector } from './buffer.ts';
import { ENV_IDS, makeVecEnv } from './envs/index.ts';
import type { EnvId } from './envs/types.ts';
import { evaluatePolicy, type EvalResult } from './evaluate.ts';
import { ObsNormalizer, RewardNormalizer } from './normalize.ts';
import { ActorCritic, policyActionSpace, savePolicy } from './policy.ts';
import { presetFor } from './presets.ts';

/** Default step budget when neither the caller nor a preset gives one. */
export const DEFAULT_CONTROL_STEPS = 100_000;
/** Episodes averaged for the "solved" test. */
export const SOLVED_WINDOW = 20;

export interface ResolveControlConfigOptions {
  /** Start from the (env, algo) preset (default true). */
  usePreset?: boolean;
  /** A JSON config file, over the preset. */
  configFile?: string;
  /** Values over the file. */
  config?: Record<string, unknown>;
}

export interface ResolvedControlConfig<A extends AlgoName = AlgoName> {
  config: ControlConfigOf<A>;
  /** The preset's step budget, if a preset was used. */
  presetSteps: number | null;
  /** The preset's provenance, or null. */
  presetSource: string | null;
}

function checkAlgo(algo: string, where: string): asserts algo is AlgoName {
  if (!(ALGORITHMS as readonly string[]).includes(algo)) {
    throw new Error(`${where}: unknown algorithm ${JSON.stringify(algo)}; choose one of ${ALGORITHMS.join(', ')}`);
  }
}

function checkEnv(env: string, where: string): asserts env is EnvId {
  if (!(ENV_IDS as readonly string[]).includes(env)) {
    throw new Error(`${where}: unknown environment ${JSON.stringify(env)}; choose one of ${ENV_IDS.join(', ')}`);
  }
}

/** Merges defaults < preset < file < values and validates them against the algorithm's schema. */
export function resolveControlConfig<A extends AlgoName>(algo: A, env: EnvId, options: ResolveControlConfigOptions = {}): ResolvedControlConfig<A> {
  checkAlgo(algo, 'resolveControlConfig');
  checkEnv(env, 'resolveControlConfig');
  const preset = options.usePreset === false ? null : presetFor(env, algo);
  const layers: Array<Record<string, unknown>> = [];
  const labels: string[] = [`${algo} defaults`];
  if (preset) {
    layers.push(preset.config);
    labels.push(`preset ${env}`);
  }
  if (options.configFile) {
    layers.push(loadConfigFile(options.configFile));
    labels.push(options.configFile);
  }
  if (options.config) {
    layers.push(options.config);
    labels.push('given values');
  }
  const schema = ALGORITHM_CONFIGS[algo].schema;
  const config = parseConfig(schema, mergeConfig(...layers), { source: `${algo} config (${labels.join(' + ')})` }) as ControlConfigOf<A>;
  if ((algo === 'npg' || algo === 'trpo') && (config as AnyControlConfig).policy.sharedNetwork) {
    throw new Error(`${algo} config: "policy.sharedNetwork" must be false (the natural-gradient step needs a separate actor)`);
  }
  return { config, presetSteps: preset?.steps ?? null, presetSource: preset?.source ?? null };
}

export interface TrainControlOptions {
  algo: AlgoName;
  env: EnvId;
  /** Seeds the environments (copy i: seed + i), the initial weights, sampling and shuffling. Default 0. */
  seed?: number;
  /** Environment steps (rounded up to whole rollouts). Default: the preset's, else 100000. */
  steps?: number;
  /** Config values over the preset (and over `configFile`). */
  config?: Record<string, unknown>;
  /** A JSON config file over the preset. */
  configFile?: string;
  /** Start from the (env, algo) preset (default true). */
  usePreset?: boolean;
  /** Output folder; nothing is written when absent. */
  out?: string;
  /** No header, progress or summary on the console. */
  quiet?: boolean;
  /** tfjs backend (default 'wasm', see the file header). */
  backend?: 'auto' | EngineBackend;
  /** Evaluation episodes after training (default 100; 0 skips evaluation). */
  evalEpisodes?: number;
  /** End training at the first iteration that meets the reward threshold. */
  stopAtThreshold?: boolean;
  /** Where the header and progress go (default stdout). */
  stream?: ProgressStream;
  /** Called after every iteration with its metrics row. */
  onIteration?: (row: ControlMetricsRow) => void;
}

export interface ControlMetricsRow {
  /** Iteration (1-based). */
  step: number;
  /** Environment steps so far. */
  envSteps: number;
  metrics: Record<string, number | undefined>;
}

export interface TrainControlResult {
  algo: AlgoName;
  env: EnvId;
  seed: number;
  config: AnyControlConfig;
  presetSource: string | null;
  /** Environment steps taken. */
  envSteps: number;
  iterations: number;
  /** Training wall-clock seconds (without evaluation and saving). */
  trainSeconds: number;
  /** First iteration at which the last 20 training episodes averaged the reward threshold. */
  solved: { envSteps: number; seconds: number } | null;
  rewardThreshold: number | null;
  /** Final evaluation, or null when evalEpisodes is 0. */
  eval: EvalResult | null;
  /** Per-iteration rows, as logged. */
  history: ControlMetricsRow[];
  out: string | null;
  engine: string;
}

const M = METRIC_NAMES;

function mean(xs: number[]): number | undefined {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : undefined;
}

export async function trainControl(options: TrainControlOptions): Promise<TrainControlResult> {
  const { algo, env: envId } = options;
  checkAlgo(algo, 'trainControl');
  checkEnv(envId, 'trainControl');
  const seed = options.seed ?? 0;
  if (!Number.isSafeInteger(seed) || seed < 0) throw new Error(`trainControl: seed must be a non-negative integer, got ${seed}`);
  const evalEpisodes = options.evalEpisodes ?? 100;
  if (!Number.isInteger(evalEpisodes) || evalEpisodes < 0) throw new Error(`trainControl: evalEpisodes must be a non-negative integer, got ${evalEpisodes}`);
  const resolved = resolveControlConfig(algo, envId, { usePreset: options.usePreset, configFile: options.configFile, config: options.config });
  const cfg = resolved.config as AnyControlConfig;
  const totalSteps = options.steps ?? resolved.presetSteps ?? DEFAULT_CONTROL_STEPS;
  if (!Number.isInteger(totalSteps) || totalSteps < 1) throw new Error(`trainControl: steps must be a positive integer, got ${totalSteps}`);
  const quiet = options.quiet ?? false;
  const stream = options.stream ?? process.stdout;

  const engineInfo = await initEngine({ backend: options.backend ?? 'wasm', quiet: true });
  const engine = describeEngine(engineInfo);

  const rng = new Rng(seed);
  const initRng = rng.fork();
  const sampleRng = rng.fork();
  const updateRng = rng.fork();
  const venv = makeVecEnv(envId, cfg.numEnvs, seed);
  const obsDim = venv.observationSpace.shape[0]!;
  const policy = new ActorCritic(obsDim, policyActionSpace(venv.actionSpace), cfg.policy, initRng);
  const obsNormalizer = cfg.normalizeObs ? new ObsNormalizer(obsDim) : null;
  const rewardNormalizer = cfg.normalizeReward ? new RewardNormalizer(cfg.numEnvs, cfg.gamma) : null;
  const algorithm = createAlgorithm(algo, policy, cfg);
  const metrics = options.out ? MetricsWriter.open(join(options.out, RUN_FILES.metrics)) : null;
  const progress = new TrainingProgress({ total: totalSteps, label: `${algo} ${envId}`, quiet, stream });
  try {
    const collector = new RolloutCollector(venv, policy, obsNormalizer, rewardNormalizer);
    const buffer = new RolloutBuffer({
      numSteps: cfg.numSteps,
      numEnvs: cfg.numEnvs,
      obsDim,
      actionDim: policy.actionSpace.type === 'discrete' ? 1 : policy.actionSpace.dim,
      discrete: policy.actionSpace.type === 'discrete',
    });
    const params = policy.numParams('actor') + (policy.shared ? 0 : policy.numParams('critic'));
    printRunHeader({
      title: `rlvr control: ${algo} on ${envId}, seed ${seed}, ${totalSteps} steps`,
      engine,
      modelInfo: { name: `MLP actor-critic ${cfg.policy.hiddenSizes.join('x')}${cfg.policy.sharedNetwork ? ' (shared)' : ''}`, parameters: params },
      config: { preset: resolved.presetSource ?? 'none', ...cfg },
      stream,
      quiet,
    });

    const recent: number[] = [];
    const history: ControlMetricsRow[] = [];
    let envSteps = 0;
    let iteration = 0;
    let solved: TrainControlResult['solved'] = null;
    const threshold = venv.rewardThreshold;
    const start = performance.now();
    progress.start(0);
    while (envSteps < totalSteps) {
      const t0 = performance.now();
      const rollout = collector.collect(buffer, sampleRng);
      envSteps += rollout.envSteps;
      iteration++;
      const adv = algorithm.advantages;
      if (adv.kind === 'gae') buffer.computeGae(adv.gamma, adv.lambda);
      else buffer.computeMonteCarloReturns(adv.gamma, adv.baseline);
      const progressRemaining = Math.max(0, 1 - envSteps / totalSteps);
      const ev = explainedVarianceOf(buffer);
      const u = algorithm.update(buffer, progressRemaining, updateRng);
      const seconds = (performance.now() - t0) / 1000;
      for (const e of rollout.episodes) {
        recent.push(e.return);
        if (recent.length > SOLVED_WINDOW) recent.shift();
      }
      const row: Record<string, number | undefined> = {
        [M.rollout.epReturn]: mean(rollout.episodes.map((e) => e.return)),
        [M.rollout.epLength]: mean(rollout.episodes.map((e) => e.length)),
        [M.train.policyLoss]: u.policyLoss,
        [M.train.valueLoss]: u.valueLoss,
        [M.train.entropy]: u.entropy,
        [M.train.approxKl]: u.approxKl,
        [M.train.clipFrac]: u.clipFrac,
        [M.train.explainedVariance]: ev,
        [M.train.learningRate]: u.learningRate,
        [M.train.gradNorm]: u.gradNorm,
        [M.time.stepsPerS]: rollout.envSteps / Math.max(seconds, 1e-9),
      };
      metrics?.log(iteration, row);
      const entry = { step: iteration, envSteps, metrics: row };
      history.push(entry);
      options.onIteration?.(entry);
      progress.update(Math.min(envSteps, totalSteps), row);
      if (solved === null && threshold !== null && recent.length === SOLVED_WINDOW && mean(recent)! >= threshold) {
        solved = { envSteps, seconds: (performance.now() - start) / 1000 };
        progress.log(`reached the reward threshold ${threshold} (mean of the last ${SOLVED_WINDOW} episodes) at ${envSteps} steps, ${solved.seconds.toFixed(1)} s`);
        if (options.stopAtThreshold) break;
      }
    }
    progress.stop();
    const trainSeconds = (performance.now() - start) / 1000;

    const evalResult =
      evalEpisodes > 0 ? evaluatePolicy(policy, envId, { episodes: evalEpisodes, seed: seed + 1_000_000, obsNormalizer, deterministic: true }) : null;
    const result: TrainControlResult = {
      algo,
      env: envId,
      seed,
      config: cfg,
      presetSource: resolved.presetSource,
      envSteps,
      iterations: iteration,
      trainSeconds,
      solved,
      rewardThreshold: threshold,
      eval: evalResult,
      history,
      out: options.out ?? null,
      engine,
    };
    if (options.out) {
      await savePolicy(options.out, policy, { envId, algorithm: algo, obsNormalizer });
      writeJsonAtomic(join(options.out, RUN_FILES.config), { algo, env: envId, seed, steps: totalSteps, preset: resolved.presetSource, config: cfg });
      writeJsonAtomic(join(options.out, 'eval.json'), {
        algo,
        env: envId,
        seed,
        envSteps,
        iterations: iteration,
        trainSeconds,
        solved,
        rewardThreshold: threshold,
        engine,
        eval: evalResult,
      });
    }
    if (!quiet) {
      const lines = [`trained ${envSteps} steps in ${trainSeconds.toFixed(1)} s (${iteration} iterations)`];
      if (threshold !== null) {
        lines.push(solved ? `reward threshold ${threshold} reached at ${solved.envSteps} steps after ${solved.seconds.toFixed(1)} s` : `reward threshold ${threshold} not reached`);
      }
      if (evalResult) {
        lines.push(`eval (${evalResult.episodes} episodes, deterministic): return ${evalResult.meanReturn.toFixed(2)} +- ${evalResult.stdReturn.toFixed(2)}, length ${evalResult.meanLength.toFixed(1)}`);
      }
      if (options.out) lines.push(`saved to ${options.out}`);
      stream.write(`${lines.join('\n')}\n`);
    }
    return result;
  } finally {
    progress.stop();
    metrics?.close();
    algorithm.dispose();
    policy.dispose();
  }
}

/** Explained variance of the rollout values for the returns, over the valid steps. */
function explainedVarianceOf(buffer: RolloutBuffer): number {
  const idx = buffer.validIndices();
  const v = new Float32Array(idx.length);
  const r = new Float32Array(idx.length);
  idx.forEach((k, j) => {
    v[j] = buffer.values[k]!;
    r[j] = buffer.returns[k]!;
  });
  return explainedVariance(v, r);
}
