/**
 * `verifyMath(gold, prediction)`: is the prediction's final answer equal to the gold answer?
 *
 * Both sides go through the same pipeline: extract the answer (`extract.ts`), normalise
 * it (`normalize.ts`), parse its structure (`parse.ts`), then compare (`compare.ts`).
 * The check is synchronous and bounded: inputs are cut to their last 100,000 characters,
 * texts with brackets nested over 100 levels and answers over 2,000 characters or nested
 * over 64 levels are rejected, exact arithmetic
 * stops at 32768-bit numbers, and `timeoutMs` is checked between steps (a cooperative
 * limit; `verifyMathAsync` adds a hard one by running the check in a worker thread).
 */
import { Deadline, equivalent, VerifyTimeout } from './compare.ts';
import { MathParseError } from './expr.ts';
import { answerCandidates } from './extract.ts';
import { parseAnswer, type Value } from './parse.ts';

export interface VerifyMathOptions {
  /**
   * Time limit for one check, in ms (default 2000, allowed 1..600000). The synchronous
   * `verifyMath` checks it between steps; `verifyMathAsync` enforces it by terminating
   * the worker thread running the check.
   */
  timeoutMs?: number;
  /**
   * Relative tolerance for decimal approximations of exact values (default 1e-6, allowed
   * (0, 0.1]): `0.333333` matches `1/3`, `0.3333` does not; `3.14159` matches `\pi`. A
   * decimal must also be the value rounded or truncated at its last digit. Exact values
   * (integers, fractions, radicals) are always compared exactly.
   */
  relTol?: number;
  /**
   * Also accept an inequality predicted for a gold set (`[1, 4]` answered by
   * `1 \le t \le 4`), like Math-Verify's `allow_set_relation_comp` (default false, as
   * there). A gold inequality always accepts the predicted set (`1 \le t \le 4` answered
   * by `t \in [1, 4]`).
   */
  allowSetRelation?: boolean;
}

export const DEFAULT_TIMEOUT_MS = 2000;
export const DEFAULT_REL_TOL = 1e-6;
/** Bracket nesting beyond which a text is rejected outright (no answer nests this deep). */
export const MAX_TEXT_NESTING = 100;

/** Deepest nesting of ( [ { in `text`, stopping early once past `limit`. */
function nestingExceeds(text: string, limit: number): boolean {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 40 || c === 91 || c === 123) {
      if (++depth > limit) return true;
    } else if ((c === 41 || c === 93 || c === 125) && depth > 0) depth--;
  }
  return false;
}

/** Validates options once, naming the bad field; fills in the defaults. */
export function resolveVerifyOptions(options: VerifyMathOptions | undefined, caller: string): Required<VerifyMathOptions> {
  if (options !== undefined && (typeof options !== 'object' || options === null)) {
    throw new TypeError(`${caller}: options must be an object, got ${options === null ? 'null' : typeof options}`);
  }
  const timeoutMs = options?.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const relTol = options?.relTol ?? DEFAULT_REL_TOL;
  if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs < 1 || timeoutMs > 600_000) {
    throw new RangeError(`${caller}: options.timeoutMs must be a number of milliseconds in [1, 600000], got ${String(timeoutMs)}`);
  }
  if (typeof relTol !== 'number' || !(relTol > 0 && relTol <= 0.1)) {
    throw new RangeError(`${caller}: options.relTol must be a number in (0, 0.1], got ${String(relTol)}`);
  }
  const allowSetRelation = options?.allowSetRelation ?? false;
  if (typeof allowSetRelation !== 'boolean') {
    throw new TypeError(`${caller}: options.allowSetRelation must be a boolean, got ${typeof allowSetRelation}`);
  }
  return { timeoutMs, relTol, allowSetRelation };
}

export function checkText(value: unknown, name: string, caller: string): asserts value is string {
  if (typeof value !== 'string') {
    throw new TypeError(`${caller}: ${name} must be a string, got ${value === null ? 'null' : typeof value}`);
  }
}

/** The first answer candidate of `text` that parses (else the first candidate at all). */
function answerValue(text: string, deadline: Deadline): Value | null {
  let first: Value | null = null;
  for (const c of answerCandidates(text)) {
    deadline.check();
    const v = parseAnswer(c.text, c.plain);
    if (v && v.kind !== 'raw') return v;
    first ??= v;
  }
  return first;
}

/**
 * True when the final answer in `prediction` is mathematically equal to the answer in
 * `gold` (a bare answer like `\frac{1}{3}`, or a full solution with a `\boxed{}` answer).
 * Never throws for any string input; a check past its time limit returns false.
 */
export function verifyMath(gold: string, prediction: string, options?: VerifyMathOptions): boolean {
  const opts = resolveVerifyOptions(options, 'verifyMath');
  checkText(gold, 'gold', 'verifyMath');
  checkText(prediction, 'prediction', 'verifyMath');
  return verifyResolved(gold, prediction, opts);
}

/** verifyMath after validation (the worker thread calls this). */
export function verifyResolved(gold: string, prediction: string, opts: Required<VerifyMathOptions>): boolean {
  const deadline = new Deadline(opts.timeoutMs);
  if (nestingExceeds(gold, MAX_TEXT_NESTING) || nestingExceeds(prediction, MAX_TEXT_NESTING)) return false;
  try {
    const g = answerValue(gold, deadline);
    if (!g) return false;
    const p = answerValue(prediction, deadline);
    if (!p) return false;
    return equivalent(g, p, { relTol: opts.relTol, deadline, allowSetRelation: opts.allowSetRelation });
  } catch (e) {
    // A time-out, an unparseable corner or a stack overflow on a pathological input all
    // mean the same for a reward: not verified.
    if (e instanceof VerifyTimeout || e instanceof MathParseError || e instanceof RangeError) return false;
    throw e;
  }
}
