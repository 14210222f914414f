/**
 * The reward-function contract, modelled on TRL's reward functions.
 *
 * A reward function scores one batch of completions. The batch holds one entry per
 * completion in every array: the prompt it answers, the completion text, its token ids,
 * and every dataset column of the prompt's row repeated for each of its completions
 * (for example `answer` or `tests`). The function returns, or resolves to, one value per
 * completion: a finite number, or `null` when the function does not apply to that
 * completion (a code reward on a math row, say). `null` values are left out of that
 * function's weighted contribution to the combined reward.
 *
 * A reward function is a plain function; its name for metrics and error reports comes
 * from the `{ name, fn, weight }` entry it is registered with in `scoreCompletions`
 * (`rewards/combine.ts`), or from its optional `rewardName` property when the entry is
 * built by `loadRewardFunction`.
 *
 * Functions may be async (a remote verifier, the sandboxed code runner). They receive an
 * optional context whose `signal` aborts when the combiner gives up on them (timeout);
 * long-running functions should stop work when it fires.
 */

/** One value per completion: a finite number, or `null` for "not applicable". */
export type RewardValue = number | null;

/**
 * One batch of completions. `prompts`, `completions` and `completionIds` always exist;
 * every other key is a dataset column passed through, with one entry per completion.
 * All arrays have the same length.
 */
export interface RewardBatch {
  prompts: string[];
  completions: string[];
  completionIds: number[][];
  [column: string]: unknown[];
}

/** What the combiner passes besides the batch. */
export interface RewardContext {
  /** Aborted when the combiner stops waiting for this function (timeout). */
  signal?: AbortSignal;
}

/** A reward function: one value per completion of the batch, sync or async. */
export type RewardFunction = ((
  batch: RewardBatch,
  context?: RewardContext,
) => RewardValue[] | Promise<RewardValue[]>) & {
  /** Default name used in metrics (`reward/<name>/mean`) when the function is loaded by name. */
  rewardName?: string;
};

/** A reward function registered for scoring, with its name and weight. */
export interface RewardSpec {
  /** Unique within one scoring call; used in `perFunction`, error reports and metric names. */
  name: string;
  fn: RewardFunction;
  /** Multiplies the function's values in the combined reward. Default 1. */
  weight?: number;
}

/** Attaches a metric name to a reward function (returns the same function). */
export function namedReward<F extends RewardFunction>(name: string, fn: F): F {
  fn.rewardName = name;
  return fn;
}

/** A reward function asked for a dataset column the batch does not have. */
export class MissingColumnError extends Error {
  constructor(
    readonly reward: string,
    readonly column: string,
    have: readonly string[],
  ) {
    super(`${reward}: the batch has no column '${column}' (columns: ${have.join(', ')})`);
    this.name = 'MissingColumnError';
  }
}

/**
 * Reads one dataset column from a batch, checking that it exists and has one entry per
 * completion. Errors name the column and the reward function asking for it.
 */
export function batchColumn(batch: RewardBatch, column: string, reward: string): unknown[] {
  const values = batch[column];
  if (values === undefined) {
    throw new MissingColumnError(reward, column, Object.keys(batch));
  }
  if (!Array.isArray(values) || values.length !== batch.completions.length) {
    const len = Array.isArray(values) ? values.length : typeof values;
    throw new Error(
      `${reward}: column '${column}' must be an array with one entry per completion (${batch.completions.length}), got ${len}`,
    );
  }
  return values;
}
