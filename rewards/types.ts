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
 * Conversational data (TRL's form): when a row's prompt is a list of `{ role, content }`
 * messages, `prompts` holds those messages and each completion is a list of messages too,
 * `[{ role: 'assistant', content }]`; otherwise both are plain strings. One batch is one
 * form throughout. `completionText` / `completionTexts` read the text of either form.
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

/** One chat message: a conversational prompt is a list of these, a conversational completion `[{ role: 'assistant', content }]`. */
export interface RewardMessage {
  role: string;
  content: string;
}

/**
 * One batch of completions. `prompts`, `completions` and `completionIds` always exist;
 * every other key is a dataset column passed through, with one entry per completion.
 * All arrays have the same length. `prompts` and `completions` are strings for plain
 * prompts and message lists for conversational ones (see the file header).
 */
export interface RewardBatch {
  prompts: string[] | RewardMessage[][];
  completions: string[] | RewardMessage[][];
  completionIds: number[][];
  [column: string]: unknown[];
}

/**
 * The text of one completion: the string itself, or the content of its assistant messages
 * (joined with newlines when there are several). Anything else is an error naming `where`.
 */
export function completionText(completion: unknown, where = 'completion'): string {
  if (typeof completion === 'string') return completion;
  if (!Array.isArray(completion)) throw new TypeError(`${where} must be a string or a list of { role, content } messages, got ${completion === null ? 'null' : typeof completion}`);
  const parts: string[] = [];
  completion.forEach((m: unknown, j) => {
    const { role, content } = (typeof m === 'object' && m !== null ? m : {}) as Record<string, unknown>;
    if (typeof role !== 'string' || typeof content !== 'string') throw new TypeError(`${where}[${j}] must be a { role, content } message with string fields`);
    if (role === 'assistant') parts.push(content);
  });
  return parts.join('\n');
}

/** The text of every completion of a batch (see `completionText`); errors name the completion's index. */
export function completionTexts(batch: Pick<RewardBatch, 'completions'>): string[] {
  if (!Array.isArray(batch.completions)) throw new TypeError('reward batch: completions must be an array');
  return (batch.completions as unknown[]).map((c, i) => completionText(c, `completions[${i}]`));
}

/**
 * A reward function written for text completions, made to accept conversational batches
 * too: it receives the batch with each completion replaced by its text (`completionText`).
 * The name, if any, is kept.
 */
export function withTextCompletions<F extends (batch: never, context?: RewardContext) => RewardValue[] | Promise<RewardValue[]>>(fn: F & { rewardName?: string }): RewardFunction {
  const wrapped: RewardFunction = (batch, context) => {
    const text = (batch.completions as unknown[]).every((c) => typeof c === 'string') ? batch : { ...batch, completions: completionTexts(batch) };
    return (fn as unknown as RewardFunction)(text, context);
  };
  if (fn.rewardName !== undefined) wrapped.rewardName = fn.rewardName;
  return wrapped;
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
