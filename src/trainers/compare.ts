/**
 * GRPO against PPO with a critic on one task, under a matched budget, over several seeds.
 *
 * Matched budget (what a fair comparison holds equal; see docs/ppo.md): the same starting
 * policy, prompts, held-out set, reward functions, sampling settings (temperature, top-p,
 * top-k, maximum completion length), prompts per step and completions per prompt (so the
 * same number of generated completions per step), the same number of steps and the same
 * evaluation cadence. `checkMatchedBudget` refuses a pair of configs that differ in any of
 * these. Everything else is each algorithm's own (its learning rates, KL placement, ...).
 *
 * Each (algorithm, seed) trains in its own run folder `<outDir>/<algorithm>-seed<seed>/`;
 * a run that throws is recorded as a crash and the comparison goes on. The report
 * (`comparison.html`, `comparison.md`, src/report/compare.ts) is written at the end, and
 * also after a Ctrl-C with the runs finished so far.
 */
import { join, resolve } from 'node:path';
import { ConfigError } from '../core/config.ts';
import { type ComparisonRun, writeComparison } from '../report/compare.ts';
import type { ProgressStream } from '../report/progress.ts';
import type { GrpoConfig } from './grpo-config.ts';
import { trainGrpo } from './grpo.ts';
import type { PpoConfig } from './ppo-config.ts';
import { trainPpo } from './ppo.ts';
import { type InterruptSignal, RunInterruptedError } from './run.ts';
import { checkRunFolder } from './trainer-state.ts';

/** The settings the two algorithms must share for the comparison to be fair. */
export const MATCHED_SETTINGS = [
  'model',
  'data',
  'rewards',
  'evalReward',
  'steps',
  'promptsPerStep',
  'numGenerations',
  'maxCompletionLength',
  'temperature',
  'topP',
  'topK',
  'evalEvery',
  'evalSize',
] as const;

/** Throws a `ConfigError` naming every matched setting on which the two configs differ. */
export function checkMatchedBudget(grpo: GrpoConfig, ppo: PpoConfig): void {
  const problems = MATCHED_SETTINGS.filter((k) => JSON.stringify(grpo[k]) !== JSON.stringify(ppo[k])).map(
    (k) => `"${k}" differs between the GRPO (${JSON.stringify(grpo[k])}) and the PPO (${JSON.stringify(ppo[k])}) configs; a matched comparison needs the same value (set it for both with --set)`,
  );
  if (problems.length) throw new ConfigError(problems, 'rlvr compare');
}

export interface ComparisonOptions {
  grpo: GrpoConfig;
  ppo: PpoConfig;
  seeds: number[];
  /** The comparison folder: one run folder per algorithm and seed, comparison.html, comparison.md. */
  outDir: string;
  /** Accuracy whose first crossing is reported (steps, seconds, tokens); null = chosen by the report. */
  targetAccuracy?: number | null;
  /** Machine description printed in the report. */
  machine?: string;
  engine?: string;
  quiet?: boolean;
  stream?: ProgressStream;
  /** Replace the run folders of an earlier comparison (else they are refused before any run). */
  overwrite?: boolean;
}

export interface ComparisonResult {
  runs: ComparisonRun[];
  htmlPath: string;
  mdPath: string;
  interrupted: boolean;
  /** The signal that interrupted the comparison (see `signalExitCode`), or null. */
  signal: InterruptSignal | null;
}

/** Runs every (algorithm, seed) pair in turn, then writes the report (see the file header). */
export async function runComparison(options: ComparisonOptions): Promise<ComparisonResult> {
  checkMatchedBudget(options.grpo, options.ppo);
  if (options.seeds.length === 0) throw new ConfigError(['"seeds" needs at least one seed'], 'rlvr compare');
  const outDir = resolve(options.outDir);
  const stream = options.stream ?? process.stdout;
  const quiet = options.quiet ?? false;
  const plan = options.seeds.flatMap((seed) => [
    { algorithm: 'grpo', seed },
    { algorithm: 'ppo', seed },
  ]);
  // Refuse an earlier comparison's run folders before the first run, not after the first hour.
  if (!options.overwrite) for (const { algorithm, seed } of plan) checkRunFolder(join(outDir, `${algorithm}-seed${seed}`), false);
  const runs: ComparisonRun[] = [];
  let interrupted = false;
  let signal: InterruptSignal | null = null;
  for (const [i, { algorithm, seed }] of plan.entries()) {
    const runDir = join(outDir, `${algorithm}-seed${seed}`);
    if (!quiet) stream.write(`\n[compare] run ${i + 1}/${plan.length}: ${algorithm}, seed ${seed} -> ${runDir}\n`);
    let peakRss = process.memoryUsage().rss;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 200);
    const t0 = performance.now();
    let error: string | null = null;
    try {
      const common = { engine: options.engine, quiet, stream, overwrite: options.overwrite ?? false };
      const result =
        algorithm === 'grpo'
          ? await trainGrpo({ ...options.grpo, seed, outDir: runDir }, common)
          : await trainPpo({ ...options.ppo, seed, outDir: runDir }, common);
      interrupted = result.interrupted;
      signal = result.signal;
    } catch (e) {
      if (e instanceof RunInterruptedError) ({ interrupted, signal } = { interrupted: true, signal: e.signal });
      error = e instanceof Error ? e.message : String(e);
      if (!quiet) stream.write(`[compare] ${algorithm} seed ${seed} failed: ${error}\n`);
    } finally {
      clearInterval(sampler);
    }
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
    runs.push({ algorithm, seed, outDir: runDir, error, seconds: (performance.now() - t0) / 1000, peakRssMb: peakRss / 2 ** 20 });
    if (interrupted) {
      if (!quiet) stream.write('[compare] interrupted: writing the report of the runs so far\n');
      break;
    }
  }
  const settings: Record<string, string | number> = {};
  for (const k of MATCHED_SETTINGS) {
    const v = options.grpo[k];
    settings[k] = typeof v === 'number' || typeof v === 'string' ? v : JSON.stringify(v);
  }
  settings['seeds'] = options.seeds.join(', ');
  const written = await writeComparison(outDir, runs, {
    title: 'rlvr compare: GRPO vs PPO with a critic',
    ...(options.targetAccuracy != null ? { targetAccuracy: options.targetAccuracy } : {}),
    ...(options.machine ? { machine: options.machine } : {}),
    settings,
  });
  return { runs, htmlPath: written.htmlPath, mdPath: written.mdPath, interrupted, signal };
}
