/**
 * `mathReward`: a reward function (see `rewards/types.ts`) scoring 1 when a completion's
 * final answer equals the row's reference answer, 0 when it does not, and `null` when the
 * row has no reference answer. Checks run through `verifyMathAsync` (worker threads, hard
 * time limit), all completions of a batch concurrently up to the pool size.
 */
import { verifyMathAsync } from './async.ts';
import { resolveVerifyOptions, type VerifyMathOptions } from './verify.ts';
import { MissingColumnError, type RewardBatch, completionTexts } from '../types.ts';

export interface MathRewardOptions extends VerifyMathOptions {
  /** Dataset column holding the reference answer (a string or a number). Default `answer`. */
  column?: string;
}

/** The batch shape read here: the reward contract's batch, with the answer column. */
export interface MathRewardBatch {
  prompts: unknown[];
  /** Completion texts, or conversational completions (`[{ role: 'assistant', content }]`: the content is read). */
  completions: RewardBatch['completions'];
  completionIds?: number[][];
  [column: string]: unknown[] | undefined;
}

export type MathRewardFunction = ((
  batch: MathRewardBatch,
  context?: { signal?: AbortSignal },
) => Promise<(number | null)[]>) & { rewardName?: string };

/** A finite number as a plain decimal (`1e-7` -> `0.0000001`, `1e+21` -> `1000...0`). */
export function plainDecimal(x: number): string {
  const s = String(x);
  const m = /^(-?)(\d)(?:\.(\d+))?e([-+]\d+)$/.exec(s);
  if (!m) return s;
  const digits = m[2]! + (m[3] ?? '');
  const point = 1 + Number(m[4]); // position of the decimal point within `digits`
  const body = point <= 0
    ? '0.' + '0'.repeat(-point) + digits
    : point >= digits.length
      ? digits + '0'.repeat(point - digits.length)
      : digits.slice(0, point) + '.' + digits.slice(point);
  return m[1]! + body;
}

/** Reads a reference answer cell: null when missing, else its text. */
function goldText(cell: unknown, row: number, column: string): string | null {
  if (cell === null || cell === undefined) return null;
  if (typeof cell === 'string') return cell.trim() === '' ? null : cell;
  if (typeof cell === 'bigint') return cell.toString();
  if (typeof cell === 'number') {
    if (!Number.isFinite(cell)) throw new TypeError(`math reward: row ${row} of column '${column}' is ${cell}; expected a finite number`);
    return plainDecimal(cell);
  }
  throw new TypeError(`math reward: row ${row} of column '${column}' is ${Array.isArray(cell) ? 'an array' : `a ${typeof cell}`}; expected a string or a number`);
}

export function mathReward(options: MathRewardOptions = {}): MathRewardFunction {
  const { column = 'answer', ...verifyOptions } = options;
  if (typeof column !== 'string' || column === '') {
    throw new TypeError(`mathReward: options.column must be a non-empty string, got ${JSON.stringify(column)}`);
  }
  const opts = resolveVerifyOptions(verifyOptions, 'mathReward');

  const fn: MathRewardFunction = async (batch, context) => {
    if (!Array.isArray(batch.completions)) throw new TypeError('math reward: batch.completions must be an array of strings or assistant messages');
    const completions = completionTexts(batch);
    const golds = batch[column];
    if (golds === undefined) {
      throw new MissingColumnError('math reward', column, Object.keys(batch));
    }
    if (!Array.isArray(golds) || golds.length !== completions.length) {
      throw new Error(
        `math reward: column '${column}' must have one entry per completion (${completions.length}), got ${Array.isArray(golds) ? golds.length : typeof golds}`,
      );
    }
    const signal = context?.signal;
    signal?.throwIfAborted();
    const checks = completions.map(async (completion, i) => {
      const gold = goldText(golds[i], i, column);
      if (gold === null) return null;
      if (typeof completion !== 'string') {
        throw new TypeError(`math reward: completion ${i} is a ${typeof completion}, expected a string`);
      }
      return (await verifyMathAsync(gold, completion, opts)) ? 1 : 0;
    });
    if (!signal) return Promise.all(checks);
    return new Promise<(number | null)[]>((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      Promise.all(checks).then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  };
  fn.rewardName = 'math';
  return fn;
}
