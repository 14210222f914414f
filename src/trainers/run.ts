/**
 * The training loop every language-model trainer runs (SFT, GRPO, PPO). It knows no
 * algorithm: the trainer hands it a `step` function and what to evaluate and save, and the
 * loop does the rest the same way for all of them:
 *
 *   open the run folder's logs (config.json; metrics.jsonl and samples.jsonl cut back to the
 *   checkpoint's step on resume) -> header (and the config fields changed since the
 *   checkpoint) -> [evaluate at step 0] -> for each step: `step()`, metrics line every
 *   `logEvery` steps, progress bar, evaluation every `evalEvery` steps and after the last,
 *   `checkpoint-<step>/` every `saveEvery` steps and on a signal (the oldest deleted beyond
 *   `saveTotalLimit`), `final/` after the last -> report.html. A killed save's temporary
 *   folders are tidied at the start (`recoverInterruptedSaves`).
 *
 * A fresh run refuses a folder that already holds a run (it would mix the two runs' logs and
 * checkpoints) unless told to overwrite it. A non-finite loss (`NonFiniteLossError`, thrown
 * before the update is applied) or a step's `StopTrainingError` (the rewards failed for too
 * many steps, say) stops the run with an error naming the last good checkpoint. So does user
 * code that calls process.exit() or leaves an error unhandled (containment.ts), after saving
 * the step it happened in. Ctrl-C, SIGTERM and SIGHUP finish the current step, save a
 * checkpoint and return with the signal (a second one exits at once; the command then exits
 * with 130, 143 or 129). A plain function, no class and no hooks: the trainer owns its
 * models and disposes them.
 */
import { basename, join } from 'node:path';
import type { Variable } from '@tensorflow/tfjs';
import { AdamW, constantSchedule, type Schedule, warmupCosine, warmupLinear } from '../engine/tfjs/optim.ts';
import { reportFromMetricsFile } from '../report/html.ts';
import type { MetricsWriter, SampleWriter } from '../report/metrics.ts';
import { type ProgressStream, TrainingProgress, printRunHeader } from '../report/progress.ts';
import { UserCodeGuard, describeIncident } from './containment.ts';
import { recoverInterruptedSaves } from '../lm/checkpoint.ts';
import { changedFields, openRunLogs, prepareRunFolder, pruneCheckpoints } from './trainer-state.ts';
import { NonFiniteLossError } from './update.ts';

/** The optimizer settings the trainers' configs share. */
export interface OptimizerSettings {
  learningRate: number;
  beta1: number;
  beta2: number;
  adamEpsilon?: number;
  weightDecay: number;
}

/** AdamW over `variables` with a config's settings. */
export function createAdamW(variables: Variable[], settings: OptimizerSettings): AdamW {
  return new AdamW(variables, {
    learningRate: settings.learningRate,
    beta1: settings.beta1,
    beta2: settings.beta2,
    ...(settings.adamEpsilon === undefined ? {} : { epsilon: settings.adamEpsilon }),
    weightDecay: settings.weightDecay,
  });
}

/** The learning-rate schedule of a config: linear warm-up, then constant, cosine or linear decay to `minLrRatio`. */
export function makeSchedule(c: { lrSchedule: 'constant' | 'cosine' | 'linear'; learningRate: number; warmupSteps: number; steps: number; minLrRatio: number }): Schedule {
  if (c.lrSchedule === 'cosine') return warmupCosine(c.learningRate, c.warmupSteps, c.steps, c.minLrRatio);
  if (c.lrSchedule === 'linear') return warmupLinear(c.learningRate, c.warmupSteps, c.steps, c.minLrRatio);
  return constantSchedule(c.learningRate, c.warmupSteps);
}

/** Where an evaluation writes: the run's logs and the console (through the progress bar). */
export interface RunOutput {
  metrics: MetricsWriter;
  samples: SampleWriter;
  progress: TrainingProgress;
  /** A line on the console (above the progress bar); nothing when quiet. */
  log(line: string): void;
}

export type StepRecord = Record<string, number | undefined>;

/**
 * The signals a run treats like Ctrl-C (finish the step, save a checkpoint, stop): SIGINT
 * (Ctrl-C), SIGTERM (`kill`, a container stop, a cluster's preemption) and SIGHUP (the
 * terminal closed). SIGKILL (`kill -9`) cannot be caught: the run dies at once, and resumes
 * from its last checkpoint (saves are atomic).
 */
export const INTERRUPT_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
export type InterruptSignal = (typeof INTERRUPT_SIGNALS)[number];

/** The exit status of a process ended by `signal`, as a shell reports it: 128 + its number (130, 143, 129). */
export function signalExitCode(signal: InterruptSignal): number {
  return 128 + ({ SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as const)[signal];
}

/** A run stopped by a signal somewhere a checkpoint cannot resume it (the demo's warm start, say). */
export class RunInterruptedError extends Error {
  constructor(
    readonly signal: InterruptSignal,
    message: string,
  ) {
    super(message);
    this.name = 'RunInterruptedError';
  }
}

/**
 * Thrown by a step to end the run with an error: the loop reports it as
 * `training stopped at step N: <message>; <the last good checkpoint>. <hint>`.
 */
export class StopTrainingError extends Error {
  constructor(
    message: string,
    /** What the user can do about it. */
    readonly hint: string,
  ) {
    super(message);
    this.name = 'StopTrainingError';
  }
}

export interface RunLoopOptions {
  /** The command name: the progress label and the header title (`rlvr <command>`). */
  command: string;
  /** The resolved config, written to config.json and printed in the header. */
  config: { steps: number; logEvery: number; evalEvery: number; saveEvery: number; saveTotalLimit?: number | null; outDir: string; report?: boolean };
  /** The checkpoint this run continues: its folder, step and config; null for a fresh run. */
  resumed: { dir: string; step: number; config: unknown } | null;
  engine: string;
  modelInfo: Record<string, string | number | boolean>;
  /** Lines printed after the header (starting policy, rewards, ...). */
  notes?: string[];
  quiet: boolean;
  stream: ProgressStream;
  /**
   * On SIGINT (Ctrl-C), SIGTERM or SIGHUP, finish the current step, save a checkpoint and
   * return (`signal` in the result); a second one exits at once. The same as SIGHUP when the
   * parent process goes away (a killed wrapper). Default true.
   */
  handleSigint?: boolean;
  /** A fresh run in a folder that holds an earlier run replaces it (else it is refused). Default false. */
  overwrite?: boolean;
  /**
   * Runs one training step; `done` steps were completed before it; `out` prints above the
   * progress bar. Returns the step's metrics (progress bar and, by default, the metrics line).
   */
  step(done: number, out: RunOutput): Promise<StepRecord>;
  /** The metrics line to write at a logging step, given the step's metrics; default the step's metrics themselves. */
  logRecord?(record: StepRecord): StepRecord;
  /** Evaluates the policy after `step` steps (0 = before training); null when there is nothing to evaluate on. */
  evaluate: ((step: number, out: RunOutput) => Promise<void>) | null;
  /** Evaluate before the first step of a fresh run (not on resume). */
  evaluateAtStart: boolean;
  /** Writes a resumable checkpoint of the state after `step` steps into `dir`. */
  save(dir: string, step: number): Promise<void>;
}

export interface RunLoopResult {
  /** Steps completed (the config's `steps` unless interrupted). */
  step: number;
  interrupted: boolean;
  /** The signal that interrupted the run, or null (the command exits with `signalExitCode` of it). */
  signal: InterruptSignal | null;
  /** The newest checkpoint written (or resumed from): `final/` after a complete run. */
  lastCheckpoint: string;
  /** Wall-clock seconds of the loop (evaluation and checkpoints included). */
  seconds: number;
  time: { eval: number; checkpoint: number };
  reportPath: string | null;
}

/** Runs the loop (see the file header). */
export async function runLoop(options: RunLoopOptions): Promise<RunLoopResult> {
  const { config, resumed, quiet, stream } = options;
  const say = (line: string): void => {
    if (!quiet) stream.write(`${line}\n`);
  };
  let metrics: MetricsWriter | null = null;
  let samples: SampleWriter | null = null;
  let progress: TrainingProgress | null = null;
  let interrupted = false;
  let signal: InterruptSignal | null = null;
  const ignoreWriteErrors = (): void => {}; // after SIGHUP the terminal is gone: writing to it fails
  const onSignal = (received: InterruptSignal): void => {
    const name = received === 'SIGINT' ? 'Ctrl-C' : received;
    if (interrupted) {
      process.stderr.write(`\nsecond ${name}: exiting without saving\n`);
      process.exit(signalExitCode(received));
    }
    interrupted = true;
    signal = received;
    if (received === 'SIGHUP') for (const s of [process.stdout, process.stderr]) s.on('error', ignoreWriteErrors);
    (progress ?? { log: say }).log(`${name}: finishing this step, then saving a checkpoint (${received === 'SIGINT' ? 'Ctrl-C again quits' : 'a second signal quits'} at once)`);
  };
  const handleSigint = options.handleSigint ?? true;
  const handlers = INTERRUPT_SIGNALS.map((s) => [s, () => onSignal(s)] as const);
  if (handleSigint) for (const [s, handler] of handlers) process.on(s, handler);
  // A wrapper that started this process and died without passing a signal on (`kill -9` of
  // tsx, say) leaves it without its parent: stop as if the terminal had closed. (npx starts
  // node through a shell that outlives npm; README, "Stopping a run".)
  const parent = process.ppid;
  const orphaned = handleSigint
    ? setInterval(() => {
        if (process.ppid === parent || interrupted) return;
        (progress ?? { log: say }).log(`the parent process (${parent}) is gone`);
        onSignal('SIGHUP');
      }, 1000)
    : undefined;
  orphaned?.unref();
  const guard = UserCodeGuard.install();
  try {
    if (!resumed) prepareRunFolder(config.outDir, options.overwrite ?? false);
    const leftovers = recoverInterruptedSaves(config.outDir); // of a run killed while saving
    ({ metrics, samples } = openRunLogs(config.outDir, config, resumed ? resumed.step : null));
    printRunHeader({
      title: resumed ? `rlvr ${options.command} (resumed at step ${resumed.step} from ${resumed.dir})` : `rlvr ${options.command}`,
      engine: options.engine,
      modelInfo: options.modelInfo,
      config: config as unknown as Record<string, unknown>,
      stream,
      quiet,
    });
    const changed = resumed ? changedFields(resumed.config, config) : [];
    if (changed.length) say(`changed since the checkpoint: ${changed.join('; ')}`);
    for (const line of options.notes ?? []) say(line);
    if (leftovers.removed.length) say(`removed unfinished checkpoint saves: ${leftovers.removed.join(', ')}`);
    if (leftovers.restored.length) say(`restored ${leftovers.restored.join(', ')} (a save was killed while swapping it)`);

    progress = new TrainingProgress({ total: config.steps, label: options.command, quiet, stream });
    const out: RunOutput = { metrics, samples, progress, log: (line) => progress!.log(line) };
    const time = { eval: 0, checkpoint: 0 };
    const evaluate = async (at: number): Promise<void> => {
      const t0 = performance.now();
      await options.evaluate!(at, out);
      time.eval += (performance.now() - t0) / 1000;
    };
    let lastCheckpoint: string | null = resumed?.dir ?? null;
    let savedAt = -1;
    const save = async (dir: string, at: number): Promise<void> => {
      const t0 = performance.now();
      await options.save(dir, at);
      lastCheckpoint = dir;
      savedAt = at;
      const limit = config.saveTotalLimit ?? null;
      if (limit !== null && basename(dir) !== 'final') {
        const removed = pruneCheckpoints(config.outDir, limit, resumed ? [resumed.dir] : []);
        if (removed.length) out.log(`removed ${removed.join(', ')} (saveTotalLimit ${limit})`);
      }
      time.checkpoint += (performance.now() - t0) / 1000;
    };
    const startStep = resumed?.step ?? 0;
    // User code that exited, or left an error unhandled (containment.ts): keep the state
    // after step `at` (saved unless no step ran, or `stepFailed`), then stop with the story.
    const stopOnIncident = async (at: number, stepFailed = false): Promise<void> => {
      const incident = guard.incident;
      if (!incident) return;
      if (at > startStep && savedAt !== at && !stepFailed) await save(join(config.outDir, `checkpoint-${at}`), at);
      const kept = lastCheckpoint ? `The last checkpoint is ${lastCheckpoint}; continue from it with --resume once this is fixed.` : 'No checkpoint had been written yet.';
      throw new Error(`training stopped after step ${at}: ${describeIncident(incident, kept)}`);
    };

    let step = startStep;
    progress.start(step);
    if (options.evaluate && options.evaluateAtStart && !resumed) await evaluate(0);
    await stopOnIncident(step);
    const t0 = performance.now();
    while (step < config.steps) {
      let record: StepRecord;
      try {
        record = await options.step(step, out);
      } catch (e) {
        await stopOnIncident(step, true);
        const where = lastCheckpoint ? `the last good checkpoint is ${lastCheckpoint}` : 'no checkpoint had been written yet';
        if (e instanceof StopTrainingError) throw new Error(`training stopped at step ${step + 1}: ${e.message}; ${where}. ${e.hint}`);
        if (!(e instanceof NonFiniteLossError)) throw e;
        throw new Error(`training stopped at step ${step + 1}: ${e.message}, so this update was not applied; ${where}. Lower the learning rate, check the rewards' scale, or set gradClip.`);
      }
      step++;
      const last = step === config.steps;
      if (step % config.logEvery === 0 || last) metrics.log(step, options.logRecord ? options.logRecord(record) : record);
      progress.update(step, record);
      // Let the event loop run (a step is otherwise synchronous work and promise callbacks),
      // so that a pending Ctrl-C reaches its handler before the end-of-step checks.
      await new Promise<void>((done) => setImmediate(done));
      if (options.evaluate && ((config.evalEvery > 0 && step % config.evalEvery === 0) || last)) await evaluate(step);
      if (last) await save(join(config.outDir, 'final'), step);
      else if (interrupted || (config.saveEvery > 0 && step % config.saveEvery === 0)) await save(join(config.outDir, `checkpoint-${step}`), step);
      await stopOnIncident(step);
      if (interrupted) break;
    }
    const seconds = (performance.now() - t0) / 1000;
    progress.stop();
    // A Ctrl-C during the last step still ends a complete run: nothing is left to resume.
    if (interrupted) say(step < config.steps ? `interrupted at step ${step}: saved ${lastCheckpoint}; continue with --resume` : `interrupted on the last step: the run is complete, saved ${lastCheckpoint}`);
    metrics.close();
    samples.close();
    let reportPath: string | null = null;
    if (config.report) {
      reportPath = (await reportFromMetricsFile(config.outDir, undefined, { title: `rlvr ${options.command}: ${basename(config.outDir)}` })).outPath;
      say(`report: ${reportPath}`);
    }
    return { step, interrupted, signal, lastCheckpoint: lastCheckpoint ?? join(config.outDir, 'final'), seconds, time, reportPath };
  } finally {
    guard.release();
    clearInterval(orphaned);
    if (handleSigint) for (const [s, handler] of handlers) process.off(s, handler);
    for (const s of [process.stdout, process.stderr]) s.off('error', ignoreWriteErrors);
    progress?.stop();
    metrics?.close();
    samples?.close();
  }
}
