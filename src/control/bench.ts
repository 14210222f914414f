/**
 * The control benchmark: several seeds of each (environment, algorithm) pair, trained one
 * after another (or in worker processes supplied by the caller), then summarised:
 *
 *   <out>/<env>/<algo>/seed<i>/   each run's folder (policy, config, metrics.jsonl, eval.json)
 *   <out>/results.json            every run and the per-pair summary
 *   <out>/results.md              the summary table: final evaluation return (mean and spread
 *                                 across seeds, min / max), the seeds whose final evaluation
 *                                 meets the target, and separately the seeds whose training
 *                                 return reached it, with the median steps and wall-clock
 *   <out>/curves-<env>.png (.svg) training episode return against environment steps, the
 *                                 mean across seeds with a +- std band (cut to the seeds'
 *                                 min / max and the return's possible range), one line per algorithm
 *
 * Two different questions, kept apart in the table: "final eval >= target" judges the policy
 * training ended with (100 deterministic episodes); "training reached target" is the first
 * iteration at which the mean return of the last 20 training episodes met the environment's
 * reward threshold — a policy can pass that and then degrade.
 *
 * The summary is built from the run folders alone (`summarizeBench`), so it works the same
 * whether the runs were trained in this process or by worker processes.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AlgoName } from './algorithm.ts';
import type { EnvId } from './envs/types.ts';
import { writeFileAtomic, writeJsonAtomic } from '../core/atomic.ts';
import { readMetrics, RUN_FILES } from '../report/metrics.ts';
import { METRIC_NAMES } from '../report/metric-names.ts';
import { aggregateSeeds, lineChartSvg, svgToPng } from '../report/plot.ts';
import { presetFor } from './presets.ts';
import { DEFAULT_CONTROL_STEPS, trainControl } from './train.ts';

/**
 * The return a final evaluation must reach: Gymnasium's reward threshold where the
 * environment has one; Pendulum-v1 has none, and -200 is the level usually quoted as solved
 * (rl-baselines3-zoo's tuned agents score about -170 to -200).
 */
export const BENCH_TARGETS: Readonly<Record<EnvId, number>> = {
  'CartPole-v1': 475,
  'Acrobot-v1': -100,
  'MountainCar-v0': -110,
  'MountainCarContinuous-v0': 90,
  'Pendulum-v1': -200,
};

/** The possible range of an episode's return, where it is bounded and known (for the chart band). */
export const RETURN_RANGES: Readonly<Partial<Record<EnvId, readonly [number, number]>>> = {
  'CartPole-v1': [0, 500],
  'Acrobot-v1': [-500, 0],
  'MountainCar-v0': [-200, 0],
};

export interface BenchJob {
  algo: AlgoName;
  env: EnvId;
  seed: number;
  steps: number;
  /** The run's folder. */
  out: string;
}

export interface BenchOptions {
  algos: AlgoName[];
  envs: EnvId[];
  /** Seeds per pair: 0 .. seeds-1. */
  seeds: number;
  /** Steps per run; default each pair's preset budget. */
  steps?: number;
  out: string;
  /** Runs one job; default: `trainControl` in this process. */
  runJob?: (job: BenchJob) => Promise<void>;
  /** Jobs run at once (only useful with a `runJob` that starts worker processes). Default 1. */
  concurrency?: number;
  /** Progress lines (one per finished run). */
  log?: (line: string) => void;
  /** Points per learning curve. Default 60. */
  curvePoints?: number;
}

export interface BenchRun {
  algo: AlgoName;
  env: EnvId;
  seed: number;
  envSteps: number;
  trainSeconds: number;
  evalMean: number;
  evalStd: number;
  /** Environment steps at which the training return first reached the reward threshold (null: never, or no threshold). */
  solvedAtSteps: number | null;
  /** Training wall-clock seconds at that point. */
  solvedAtSeconds: number | null;
  /** The environment's reward threshold that training was checked against (null: it has none). */
  rewardThreshold: number | null;
  /** [environment steps, mean episode return of the iteration] for iterations that finished episodes. */
  curve: Array<[number, number]>;
}

export interface BenchCell {
  env: EnvId;
  algo: AlgoName;
  seeds: number;
  steps: number;
  /** Mean over seeds of the final evaluation's mean return. */
  evalMean: number;
  /** Population std across seeds of the final evaluation's mean return. */
  evalStdAcrossSeeds: number;
  evalMin: number;
  evalMax: number;
  /** The final evaluation's target (BENCH_TARGETS). */
  target: number;
  /** Seeds whose final evaluation mean return is >= target. */
  finalEvalAtTarget: number;
  /** The environment's reward threshold for the training return (null: it has none). */
  rewardThreshold: number | null;
  /** Seeds whose training return (last 20 episodes) reached the environment's reward threshold at some point. */
  reachedInTraining: number;
  /** Median over those seeds of the environment steps / seconds at which it first happened (null when none did). */
  medianStepsToThreshold: number | null;
  medianSecondsToThreshold: number | null;
  trainSecondsMean: number;
}

export interface BenchResult {
  runs: BenchRun[];
  cells: BenchCell[];
  files: string[];
}

/** The jobs of a benchmark, in the order they run (env, then algorithm, then seed). */
export function benchJobs(options: Pick<BenchOptions, 'algos' | 'envs' | 'seeds' | 'steps' | 'out'>): BenchJob[] {
  if (!Number.isInteger(options.seeds) || options.seeds < 1) throw new Error(`bench: seeds must be a positive integer, got ${options.seeds}`);
  if (options.steps !== undefined && (!Number.isInteger(options.steps) || options.steps < 1)) {
    throw new Error(`bench: steps must be a positive integer, got ${options.steps}`);
  }
  if (options.algos.length === 0 || options.envs.length === 0) throw new Error('bench: give at least one algorithm and one environment');
  const jobs: BenchJob[] = [];
  for (const env of options.envs) {
    for (const algo of options.algos) {
      const steps = options.steps ?? presetFor(env, algo)?.steps ?? DEFAULT_CONTROL_STEPS;
      for (let seed = 0; seed < options.seeds; seed++) jobs.push({ algo, env, seed, steps, out: join(options.out, env, algo, `seed${seed}`) });
    }
  }
  return jobs;
}

async function runAll(jobs: BenchJob[], run: (job: BenchJob) => Promise<void>, concurrency: number, log: (line: string) => void): Promise<void> {
  let next = 0;
  let done = 0;
  const failures: string[] = [];
  const worker = async (): Promise<void> => {
    while (next < jobs.length) {
      const job = jobs[next++]!;
      const t0 = performance.now();
      try {
        await run(job);
        done++;
        log(`[${done + failures.length}/${jobs.length}] ${job.env} ${job.algo} seed ${job.seed}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      } catch (e) {
        failures.push(`${job.env} ${job.algo} seed ${job.seed}: ${(e as Error).message}`);
        log(`[${done + failures.length}/${jobs.length}] ${job.env} ${job.algo} seed ${job.seed} FAILED: ${(e as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, jobs.length)) }, worker));
  if (failures.length) throw new Error(`bench: ${failures.length} of ${jobs.length} runs failed:\n  ${failures.join('\n  ')}`);
}

/** Reads one finished run folder. */
export function readBenchRun(job: BenchJob): BenchRun {
  const evalPath = join(job.out, 'eval.json');
  let summary: { envSteps: number; trainSeconds: number; solved: { envSteps: number; seconds: number } | null; rewardThreshold: number | null; eval: { meanReturn: number; stdReturn: number } | null };
  let saved: { config: { numEnvs: number; numSteps: number } };
  try {
    summary = JSON.parse(readFileSync(evalPath, 'utf8'));
    saved = JSON.parse(readFileSync(join(job.out, RUN_FILES.config), 'utf8'));
  } catch (e) {
    throw new Error(`bench: run ${job.env} ${job.algo} seed ${job.seed} has no readable results in ${job.out}: ${(e as Error).message}`);
  }
  if (!summary.eval) throw new Error(`bench: ${evalPath} has no evaluation (the run was trained with evalEpisodes 0)`);
  const perIteration = saved.config.numEnvs * saved.config.numSteps;
  const curve: Array<[number, number]> = [];
  for (const row of readMetrics(join(job.out, RUN_FILES.metrics))) {
    const r = row[METRIC_NAMES.rollout.epReturn];
    if (typeof r === 'number') curve.push([row.step * perIteration, r]);
  }
  return {
    algo: job.algo,
    env: job.env,
    seed: job.seed,
    envSteps: summary.envSteps,
    trainSeconds: summary.trainSeconds,
    evalMean: summary.eval.meanReturn,
    evalStd: summary.eval.stdReturn,
    solvedAtSteps: summary.solved ? summary.solved.envSteps : null,
    solvedAtSeconds: summary.solved ? summary.solved.seconds : null,
    rewardThreshold: summary.rewardThreshold ?? null,
    curve,
  };
}

/**
 * A run's curve on a fixed grid of `points` x values over (0, maxSteps]: the mean of the
 * iterations that fall in each bucket, the previous value when a bucket has none, NaN
 * before the first episode finished.
 */
export function resampleCurve(curve: ReadonlyArray<readonly [number, number]>, maxSteps: number, points: number): Array<[number, number]> {
  if (!Number.isInteger(points) || points < 1) throw new Error(`resampleCurve: points must be a positive integer, got ${points}`);
  if (!(maxSteps > 0)) throw new Error(`resampleCurve: maxSteps must be > 0, got ${maxSteps}`);
  const out: Array<[number, number]> = [];
  let j = 0;
  let last = NaN;
  for (let g = 1; g <= points; g++) {
    const x = (maxSteps * g) / points;
    let sum = 0;
    let n = 0;
    while (j < curve.length && curve[j]![0] <= x) {
      sum += curve[j]![1];
      n++;
      j++;
    }
    if (n > 0) last = sum / n;
    out.push([x, last]);
  }
  return out;
}

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** The median (mean of the two middle values for an even count), or null for no values. */
export function median(xs: readonly number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const h = Math.floor(s.length / 2);
  return s.length % 2 ? s[h]! : (s[h - 1]! + s[h]!) / 2;
}

/** Groups runs into per-(env, algo) cells, in first-seen order. */
export function summarizeRuns(runs: BenchRun[]): BenchCell[] {
  const groups = new Map<string, BenchRun[]>();
  for (const r of runs) {
    const k = `${r.env}\u0000${r.algo}`;
    const g = groups.get(k);
    if (g) g.push(r);
    else groups.set(k, [r]);
  }
  return [...groups.values()].map((g) => {
    const evals = g.map((r) => r.evalMean);
    const m = mean(evals);
    const env = g[0]!.env;
    const target = BENCH_TARGETS[env];
    const reached = g.filter((r) => r.solvedAtSteps !== null);
    return {
      env: g[0]!.env,
      algo: g[0]!.algo,
      seeds: g.length,
      steps: Math.max(...g.map((r) => r.envSteps)),
      evalMean: m,
      evalStdAcrossSeeds: Math.sqrt(mean(evals.map((e) => (e - m) ** 2))),
      evalMin: Math.min(...evals),
      evalMax: Math.max(...evals),
      target,
      rewardThreshold: g[0]!.rewardThreshold,
      finalEvalAtTarget: evals.filter((e) => e >= target).length,
      reachedInTraining: reached.length,
      medianStepsToThreshold: median(reached.map((r) => r.solvedAtSteps!)),
      medianSecondsToThreshold: median(reached.filter((r) => r.solvedAtSeconds !== null).map((r) => r.solvedAtSeconds!)),
      trainSecondsMean: mean(g.map((r) => r.trainSeconds)),
    };
  });
}

/** The markdown summary table. */
export function benchTable(cells: BenchCell[]): string {
  const lines = [
    '| env | algorithm | seeds | steps | final eval return (mean ± std across seeds) | min / max | target | seeds with final eval ≥ target | seeds whose training return reached the threshold | median steps (wall-clock) to reach it | training wall-clock per run |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const c of cells) {
    const hasThreshold = c.rewardThreshold !== null;
    const reach = hasThreshold ? `${c.reachedInTraining}/${c.seeds}` : 'n/a';
    const when =
      c.medianStepsToThreshold === null ? (hasThreshold ? 'never' : 'n/a') : `${Math.round(c.medianStepsToThreshold)} (${c.medianSecondsToThreshold === null ? '?' : c.medianSecondsToThreshold.toFixed(1)} s)`;
    lines.push(
      `| ${c.env} | ${c.algo} | ${c.seeds} | ${c.steps} | ${c.evalMean.toFixed(1)} ± ${c.evalStdAcrossSeeds.toFixed(1)} | ${c.evalMin.toFixed(1)} / ${c.evalMax.toFixed(1)} | ${c.target} | ${c.finalEvalAtTarget}/${c.seeds} | ${reach} | ${when} | ${c.trainSecondsMean.toFixed(1)} s |`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** The learning-curve chart of one environment (SVG): mean +- std across seeds, one line per algorithm. */
export async function learningCurveSvg(env: EnvId, runs: BenchRun[], points = 60): Promise<string> {
  const mine = runs.filter((r) => r.env === env);
  const algos = [...new Set(mine.map((r) => r.algo))];
  const maxSteps = Math.max(...mine.map((r) => r.envSteps));
  const series = [];
  const band = [];
  const bandBounds = [];
  const range = RETURN_RANGES[env] ?? [-Infinity, Infinity];
  for (const algo of algos) {
    const rs = mine.filter((r) => r.algo === algo);
    const steps = Math.max(...rs.map((r) => r.envSteps));
    const curves = rs.map((r) => resampleCurve(r.curve, steps, points));
    const agg = aggregateSeeds(curves);
    series.push({ name: `${algo} (${rs.length} seed${rs.length === 1 ? '' : 's'})`, points: agg.points });
    band.push(agg.spread);
    // The band never leaves what some seed reached, nor the return's possible range.
    bandBounds.push(
      agg.points.map((_, j): [number, number] => {
        const ys = curves.map((c) => c[j]![1]);
        return [Math.max(range[0], Math.min(...ys)), Math.min(range[1], Math.max(...ys))];
      }),
    );
  }
  return lineChartSvg({
    title: `${env}: training episode return (mean ± std across seeds)`,
    xLabel: 'environment steps',
    yLabel: 'episode return',
    series,
    band,
    bandBounds,
    xDomain: [0, maxSteps],
  });
}

/** The explanation printed under the table in results.md. */
export const BENCH_NOTE =
  'Final eval: the policy training ended with, 100 episodes with deterministic actions; "seeds with final eval ≥ target" counts the seeds whose mean return over those episodes reached the target. ' +
  '"Training return reached the threshold": the mean return of the last 20 training episodes (stochastic actions) met the environment\'s reward threshold at some iteration, which does not mean the final policy still does; ' +
  'the median is over the seeds that got there, in environment steps and training wall-clock seconds. Pendulum-v1 has no reward threshold in Gymnasium (n/a); its target applies to the final eval only.';

/** Writes results.json, results.md and one learning-curve PNG (and SVG) per environment. */
export async function writeBenchReport(out: string, runs: BenchRun[], options: { curvePoints?: number; log?: (line: string) => void } = {}): Promise<BenchResult> {
  const cells = summarizeRuns(runs);
  const files: string[] = [];
  const jsonPath = join(out, 'results.json');
  writeJsonAtomic(jsonPath, { created: new Date().toISOString(), cells, runs: runs.map(({ curve, ...r }) => ({ ...r, curvePoints: curve.length })) });
  const mdPath = join(out, 'results.md');
  writeFileAtomic(mdPath, `# Control benchmark\n\n${benchTable(cells)}\n${BENCH_NOTE}\n`);
  files.push(jsonPath, mdPath);
  for (const env of [...new Set(runs.map((r) => r.env))]) {
    const svg = await learningCurveSvg(env, runs, options.curvePoints ?? 60);
    const svgPath = join(out, `curves-${env}.svg`);
    writeFileAtomic(svgPath, svg);
    files.push(svgPath);
    try {
      const pngPath = join(out, `curves-${env}.png`);
      writeFileAtomic(pngPath, svgToPng(svg));
      files.push(pngPath);
    } catch (e) {
      options.log?.(`warning: no PNG for ${env} (${(e as Error).message}); the SVG is written`);
    }
  }
  return { runs, cells, files };
}

/** Runs the benchmark and writes its report. */
export async function runControlBench(options: BenchOptions): Promise<BenchResult> {
  const jobs = benchJobs(options);
  const log = options.log ?? (() => undefined);
  const run =
    options.runJob ??
    (async (job: BenchJob): Promise<void> => {
      await trainControl({ algo: job.algo, env: job.env, seed: job.seed, steps: job.steps, out: job.out, quiet: true });
    });
  await runAll(jobs, run, options.concurrency ?? 1, log);
  return writeBenchReport(options.out, jobs.map(readBenchRun), { curvePoints: options.curvePoints, log });
}
