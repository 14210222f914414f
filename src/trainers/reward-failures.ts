/**
 * Reward failures made visible, for the RL trainers (GRPO, PPO). The combiner
 * (rewards/combine.ts) never stops on a failing reward function: it reports the failure and
 * treats that batch's values as "no value". This stage makes sure a failure is seen:
 *
 * - the first failure of each reward function is printed (message and the head of its stack),
 *   once per run; later ones are counted in `reward/<fn>/errors` and `reward/errors`;
 * - every failure is a line of `reward_failures.jsonl` in the run folder:
 *   `{"step", "phase": "train" | "eval", "reward", "message", "count", "stack"}`
 *   (cut back to the checkpoint's step on resume, like the other logs);
 * - a training step in which no completion got a value because the rewards failed teaches
 *   the policy nothing; after `maxFailedRewardSteps` such steps in a row the run stops with
 *   a `RewardsFailedError` naming the rewards and their messages (0 = never stop).
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { RewardError, ScoreResult } from '../../rewards/combine.ts';
import { writeFileAtomic } from '../core/atomic.ts';
import { RUN_FILES } from '../report/metrics.ts';
import { StopTrainingError } from './run.ts';

/** One line of `reward_failures.jsonl`. */
export interface RewardFailureRecord {
  step: number;
  /** A training step's rollout, or an evaluation's greedy completions. */
  phase: 'train' | 'eval';
  reward: string;
  message: string;
  /** Problems in that call (1 for a throw or timeout; the number of bad values otherwise). */
  count: number;
  stack: string | null;
}

/** The rewards failed on every completion for `maxFailedRewardSteps` consecutive steps. */
export class RewardsFailedError extends StopTrainingError {}

/** Reads `reward_failures.jsonl` (tests, reports). */
export function readRewardFailures(path: string): RewardFailureRecord[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as RewardFailureRecord);
}

/** Where a run's reward failures go (see the file header). One per run. */
export class RewardFailureLog {
  readonly path: string;
  /** Failures recorded by this invocation (the sum of their counts). */
  total = 0;
  private readonly reported = new Set<string>();
  /** Consecutive training steps whose rewards all failed, and the first of them. */
  private failedSteps = 0;
  private firstFailedStep = 0;
  private readonly lastMessages = new Map<string, string>();

  constructor(
    outDir: string,
    private readonly options: { maxFailedSteps: number; resumeFromStep: number | null },
  ) {
    this.path = join(outDir, RUN_FILES.rewardFailures);
    const resume = options.resumeFromStep;
    if (resume !== null && existsSync(this.path)) {
      const kept = readFileSync(this.path, 'utf8')
        .split('\n')
        .filter((l) => l.trim() !== '')
        .filter((l) => {
          try {
            return (JSON.parse(l) as { step?: unknown }).step as number <= resume;
          } catch {
            return false; // a line cut off by a crash
          }
        });
      writeFileAtomic(this.path, kept.map((l) => `${l}\n`).join(''));
    }
  }

  /** Records the failures of one scored batch (or step) at `step`; prints each function's first one. */
  record(step: number, phase: RewardFailureRecord['phase'], errors: readonly RewardError[], log: (line: string) => void): void {
    if (errors.length === 0) return;
    const lines = errors.map((e) => {
      const rec: RewardFailureRecord = { step, phase, reward: e.name, message: e.message, count: e.count, stack: e.stack ?? null };
      return `${JSON.stringify(rec)}\n`;
    });
    try {
      mkdirSync(dirname(this.path), { recursive: true });
      appendFileSync(this.path, lines.join(''));
    } catch (e) {
      throw new Error(`cannot write ${this.path}: ${(e as Error).message}`);
    }
    for (const e of errors) {
      this.total += e.count;
      this.lastMessages.set(e.name, e.message);
      if (this.reported.has(e.name)) continue;
      this.reported.add(e.name);
      const where = phase === 'eval' ? `the evaluation at step ${step}` : `step ${step}`;
      log(`reward "${e.name}" failed in ${where}: ${e.message}`);
      if (e.stack) for (const frame of e.stack.split('\n')) log(`    ${frame}`);
      log(`  (each failure of "${e.name}" is counted in reward/${e.name}/errors and written to ${this.path}; its values count as none)`);
    }
  }

  /**
   * A training step's scores: records their failures, and counts the step as failed when
   * no completion got a value and some reward failed. Throws `RewardsFailedError` at the
   * `maxFailedSteps`-th failed step in a row.
   */
  checkStep(step: number, scored: ScoreResult, log: (line: string) => void): void {
    this.record(step, 'train', scored.errors, log);
    const allFailed = scored.errors.length > 0 && scored.missing.length > 0 && scored.missing.every((m) => m === 1);
    if (!allFailed) {
      this.failedSteps = 0;
      return;
    }
    if (this.failedSteps === 0) this.firstFailedStep = step;
    this.failedSteps++;
    const limit = this.options.maxFailedSteps;
    if (limit > 0 && this.failedSteps >= limit) {
      const which = [...new Set(scored.errors.map((e) => e.name))].map((n) => `"${n}": ${this.lastMessages.get(n)}`).join('; ');
      const steps = this.failedSteps === 1 ? `step ${step}` : `steps ${this.firstFailedStep}-${step}`;
      throw new RewardsFailedError(
        `the rewards failed on every completion for ${this.failedSteps} consecutive step${this.failedSteps === 1 ? '' : 's'} (${steps}), so there was nothing to learn from (${which}); every failure is in ${this.path}`,
        'Fix the reward function, or raise maxFailedRewardSteps (0 = never stop).',
      );
    }
  }
}
