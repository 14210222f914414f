/**
 * Hyperparameter schedules for the control algorithms, in Stable-Baselines3's form: a
 * schedule is a function of the *remaining* progress,
 *
 *   progressRemaining = 1 - stepsDone / totalSteps,   1 at the start of training, 0 at the end,
 *
 * so that `linear(3e-4, 0)` starts at 3e-4 and reaches 0 on the last step, exactly like the
 * zoo's `lin_3e-4`. Used for the learning rate, the PPO clip range and the entropy-bonus
 * decay.
 *
 * In a config file a schedule is either a number (constant) or
 * `{ "type": "linear", "start": 3e-4, "end": 0 }`.
 */
import { z } from 'zod';

/** Maps the remaining progress (1 -> 0 over training) to a value. */
export type ProgressSchedule = (progressRemaining: number) => number;

/** The serialisable description of a schedule, as it appears in configs. */
export type ScheduleSpec = number | { type: 'linear'; start: number; end: number };

function checkProgress(fn: string, p: number): number {
  if (!(p >= 0 && p <= 1)) throw new Error(`${fn}: progressRemaining must be in [0, 1], got ${p}`);
  return p;
}

/** The same value at every point of training. */
export function constantSchedule(value: number): ProgressSchedule {
  if (!Number.isFinite(value)) throw new Error(`constantSchedule: value must be finite, got ${value}`);
  return (p) => {
    checkProgress('constantSchedule', p);
    return value;
  };
}

/** `start` at the beginning (progressRemaining = 1), `end` at the end (0), linear in between. */
export function linearSchedule(start: number, end: number): ProgressSchedule {
  if (!Number.isFinite(start) || !Number.isFinite(end)) {
    throw new Error(`linearSchedule: start and end must be finite, got start=${start}, end=${end}`);
  }
  return (p) => end + (start - end) * checkProgress('linearSchedule', p);
}

/** The schedule a spec describes. */
export function makeSchedule(spec: ScheduleSpec): ProgressSchedule {
  if (typeof spec === 'number') return constantSchedule(spec);
  if (spec !== null && typeof spec === 'object' && spec.type === 'linear') return linearSchedule(spec.start, spec.end);
  throw new Error(`makeSchedule: expected a number or { type: 'linear', start, end }, got ${JSON.stringify(spec)}`);
}

/** The value a spec starts training with (progressRemaining = 1). */
export function scheduleStart(spec: ScheduleSpec): number {
  return typeof spec === 'number' ? spec : spec.start;
}

/**
 * A zod schema for a schedule whose values lie in [min, max] (or (min, max] when
 * `minInclusive` is false; a linear schedule may still end at min). `max` may be Infinity.
 */
export function scheduleSchema(min: number, max: number, minInclusive = true) {
  const bounded = (): z.ZodNumber => {
    let n = minInclusive ? z.number().gte(min) : z.number().gt(min);
    if (Number.isFinite(max)) n = n.lte(max);
    return n;
  };
  // A linear schedule may end exactly at the lower bound (e.g. a learning rate decayed to 0).
  const end = Number.isFinite(max) ? z.number().gte(min).lte(max) : z.number().gte(min);
  return z.union([bounded(), z.object({ type: z.literal('linear'), start: bounded(), end }).strict()]);
}
