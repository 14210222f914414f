/**
 * Format and shaping rewards: tag format, exact-match and numeric answers, and DAPO's
 * soft overlong penalty.
 *
 * Answer extraction (shared by `exactMatchReward` and `numericAnswerReward`): when the
 * completion contains `<answer>…</answer>` (the tag is configurable), the answer text is
 * the content of the last such pair; otherwise it is the whole completion. A numeric
 * answer is then the last number in that text (`lastNumber`): the final number is where
 * chain-of-thought completions state their result ("… so the total is 42").
 *
 * Overlong penalty (DAPO, Yu et al. 2025, "DAPO: An Open-Source LLM Reinforcement
 * Learning System at Scale", eq. 13), with L the completion length in tokens:
 *
 *   R(L) = 0                              if L <= Lmax - Lcache
 *        = ((Lmax - Lcache) - L) / Lcache if Lmax - Lcache < L <= Lmax
 *        = -1                             if L > Lmax
 */
import { batchColumn, completionTexts, namedReward, type RewardBatch, type RewardFunction, type RewardValue } from './types.ts';

const TAG_NAME = /^[A-Za-z][\w.-]*$/;

function checkTag(tag: string, where: string): void {
  if (!TAG_NAME.test(tag)) {
    throw new Error(`${where}: tag must match ${TAG_NAME} (letters, digits, '_', '.', '-'), got '${tag}'`);
  }
}

/** Every start index of `needle` in `text`. */
function indicesOf(text: string, needle: string): number[] {
  const out: number[] = [];
  for (let i = text.indexOf(needle); i !== -1; i = text.indexOf(needle, i + needle.length)) out.push(i);
  return out;
}

/**
 * Content of the last `<tag>…</tag>` pair in `text` (the last closing tag and the
 * nearest opening tag before it), or `null` when there is none.
 */
export function extractTagContent(text: string, tag: string): string | null {
  const open = `<${tag}>`;
  const close = `</${tag}>`;
  const end = text.lastIndexOf(close);
  if (end === -1) return null;
  const start = text.lastIndexOf(open, end - open.length);
  if (start === -1) return null;
  return text.slice(start + open.length, end);
}

// A number: optional minus sign, digits with optional thousands separators ("1,234"),
// optional decimal part. Not preceded by a word character, so "x2" and the "3" of
// "5-3" (a minus between digits is subtraction, not a sign) are read correctly.
const NUMBER = /(?<![\w.])-?\d+(?:,\d{3})*(?:\.\d+)?(?!\d)/g;
const NUMBER_ALONE = /^[+-]?(?:\d+(?:,\d{3})*(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

/** Every number in `text`, in order ("1,234" reads as 1234; "5-3" as 5 and 3). */
export function extractNumbers(text: string): number[] {
  const out: number[] = [];
  for (const m of text.matchAll(NUMBER)) out.push(Number(m[0].replaceAll(',', '')));
  return out;
}

/** The last number in `text`, or `null` when it holds none. */
export function lastNumber(text: string): number | null {
  const all = extractNumbers(text);
  return all.length === 0 ? null : (all[all.length - 1] as number);
}

/**
 * Parses a reference answer: a finite number, or a string holding exactly one number
 * ("42", " -3.5 ", "1,234", "1e3"). Returns `null` for anything else.
 */
export function parseNumber(value: unknown): number | null {
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (typeof value === 'bigint') return Number(value);
  if (typeof value !== 'string') return null;
  const s = value.trim();
  if (!NUMBER_ALONE.test(s)) return null;
  const n = Number(s.replaceAll(',', ''));
  return Number.isFinite(n) ? n : null;
}

// ---------------------------------------------------------------------------------------
// Tag format

export interface TagFormatOptions {
  /** Tags that must appear, in this order. Default `['think', 'answer']`. */
  tags?: string[];
  /**
   * `true` (default): the completion, after trimming, must be exactly the tag pairs in
   * order, separated only by whitespace. `false`: each opening and closing tag must appear
   * exactly once and in order; other text may surround them.
   */
  strict?: boolean;
  /**
   * When the pattern does not match, give `0.5 * (tags present exactly once) / (2 * tags)`
   * instead of 0, counting opening and closing tags separately. A full match (1) always
   * scores above any partial credit (at most 0.5). Default false.
   */
  partialCredit?: boolean;
}

/** 1 when `text` has the tag format described by `options`, else 0 (or partial credit). */
export function scoreTagFormat(text: string, options: TagFormatOptions = {}): number {
  const tags = options.tags ?? ['think', 'answer'];
  const strict = options.strict ?? true;
  const markers = tags.flatMap((t) => [`<${t}>`, `</${t}>`]);
  const positions = markers.map((m) => indicesOf(text, m));
  const once = positions.filter((p) => p.length === 1).length;

  let match = once === markers.length;
  if (match) {
    const at = positions.map((p) => p[0] as number);
    for (let i = 1; i < at.length; i++) if ((at[i] as number) <= (at[i - 1] as number)) match = false;
    if (match && strict) {
      // Only whitespace before the first tag, between a closing tag and the next opening
      // tag, and after the last closing tag.
      const t = text;
      if (t.slice(0, at[0]).trim() !== '') match = false;
      for (let k = 1; k + 1 < markers.length; k += 2) {
        const closeEnd = (at[k] as number) + (markers[k] as string).length;
        if (t.slice(closeEnd, at[k + 1]).trim() !== '') match = false;
      }
      const last = markers.length - 1;
      if (t.slice((at[last] as number) + (markers[last] as string).length).trim() !== '') match = false;
    }
  }
  if (match) return 1;
  return options.partialCredit ? (0.5 * once) / markers.length : 0;
}

/** Tag-format reward (`<think>…</think><answer>…</answer>` by default); see `TagFormatOptions`. */
export function tagFormatReward(options: TagFormatOptions = {}): RewardFunction {
  const tags = options.tags ?? ['think', 'answer'];
  if (!Array.isArray(tags) || tags.length === 0) {
    throw new Error('tagFormatReward: options.tags must be a non-empty array of tag names');
  }
  for (const t of tags) checkTag(t, 'tagFormatReward: options.tags');
  if (new Set(tags).size !== tags.length) throw new Error(`tagFormatReward: options.tags has duplicates: ${tags.join(', ')}`);
  const opts = { ...options, tags };
  return namedReward('format', (batch: RewardBatch): RewardValue[] => completionTexts(batch).map((c) => scoreTagFormat(c, opts)));
}

// ---------------------------------------------------------------------------------------
// Exact match and numeric answers

/** Default normalisation for exact match: trim and collapse runs of whitespace. */
export function defaultNormalise(s: string): string {
  return s.trim().replace(/\s+/g, ' ');
}

/** The answer text of a completion: the last `<tag>…</tag>` content, else the whole completion. */
export function answerText(completion: string, tag: string | null): string {
  if (tag === null) return completion;
  return extractTagContent(completion, tag) ?? completion;
}

export interface ExactMatchOptions {
  /** Dataset column holding the reference answer. Default `'answer'`. */
  column?: string;
  /** Applied to both sides before comparing. Default `defaultNormalise`. */
  normalise?: (s: string) => string;
  /** Tag whose content is the answer when present; `null` compares the whole completion. Default `'answer'`. */
  tag?: string | null;
}

/**
 * 1 when the normalised answer text equals the normalised reference, else 0. Rows whose
 * reference is `null`/`undefined` get `null` (not applicable). References may be strings
 * or numbers (compared as `String(value)`).
 */
export function exactMatchReward(options: ExactMatchOptions = {}): RewardFunction {
  const column = options.column ?? 'answer';
  const normalise = options.normalise ?? defaultNormalise;
  const tag = options.tag === undefined ? 'answer' : options.tag;
  if (tag !== null) checkTag(tag, 'exactMatchReward: options.tag');
  return namedReward('exact_match', (batch: RewardBatch): RewardValue[] => {
    const refs = batchColumn(batch, column, 'exact_match');
    return completionTexts(batch).map((c, i) => {
      const ref = refs[i];
      if (ref === null || ref === undefined) return null;
      if (typeof ref !== 'string' && typeof ref !== 'number' && typeof ref !== 'bigint') {
        throw new Error(`exact_match: column '${column}' row ${i} must be a string or number, got ${typeof ref}`);
      }
      return normalise(answerText(c, tag)) === normalise(String(ref)) ? 1 : 0;
    });
  });
}

export interface NumericAnswerOptions {
  /** Dataset column holding the reference number (number or numeric string). Default `'answer'`. */
  column?: string;
  /** Largest absolute difference still counted correct. Default 1e-6. */
  tolerance?: number;
  /** Tag whose content holds the answer when present; `null` reads the whole completion. Default `'answer'`. */
  tag?: string | null;
}

/**
 * 1 when the last number of the answer text is within `tolerance` of the reference,
 * else 0 (also 0 when the completion holds no number). Rows whose reference is
 * `null`/`undefined` get `null`; a reference that is not a number is an error naming
 * the column and row.
 */
export function numericAnswerReward(options: NumericAnswerOptions = {}): RewardFunction {
  const column = options.column ?? 'answer';
  const tolerance = options.tolerance ?? 1e-6;
  const tag = options.tag === undefined ? 'answer' : options.tag;
  if (!Number.isFinite(tolerance) || tolerance < 0) {
    throw new Error(`numericAnswerReward: options.tolerance must be a finite number >= 0, got ${tolerance}`);
  }
  if (tag !== null) checkTag(tag, 'numericAnswerReward: options.tag');
  return namedReward('numeric', (batch: RewardBatch): RewardValue[] => {
    const refs = batchColumn(batch, column, 'numeric');
    return completionTexts(batch).map((c, i) => {
      const raw = refs[i];
      if (raw === null || raw === undefined) return null;
      const ref = parseNumber(raw);
      if (ref === null) {
        throw new Error(`numeric: column '${column}' row ${i} is not a number: ${JSON.stringify(raw)}`);
      }
      const got = lastNumber(answerText(c, tag));
      return got !== null && Math.abs(got - ref) <= tolerance ? 1 : 0;
    });
  });
}

// ---------------------------------------------------------------------------------------
// Overlong penalty

export interface OverlongOptions {
  /** Lmax: the generation limit in tokens (positive integer). */
  maxCompletionLength: number;
  /** Lcache: length of the soft-penalty window before Lmax (integer in [0, Lmax]). */
  cacheLength: number;
}

/** DAPO soft overlong penalty for one length (see the file header). */
export function overlongPenaltyValue(length: number, maxCompletionLength: number, cacheLength: number): number {
  const soft = maxCompletionLength - cacheLength;
  if (length <= soft) return 0;
  if (length <= maxCompletionLength) return (soft - length) / cacheLength;
  return -1;
}

/** DAPO's soft overlong penalty over `completionIds` lengths: 0, then linear down to -1 at Lmax, -1 beyond. */
export function overlongPenalty(options: OverlongOptions): RewardFunction {
  const { maxCompletionLength, cacheLength } = options ?? ({} as OverlongOptions);
  if (!Number.isInteger(maxCompletionLength) || maxCompletionLength < 1) {
    throw new Error(`overlongPenalty: maxCompletionLength must be a positive integer, got ${maxCompletionLength}`);
  }
  if (!Number.isInteger(cacheLength) || cacheLength < 0 || cacheLength > maxCompletionLength) {
    throw new Error(
      `overlongPenalty: cacheLength must be an integer in [0, maxCompletionLength=${maxCompletionLength}], got ${cacheLength}`,
    );
  }
  return namedReward('overlong', (batch: RewardBatch): RewardValue[] =>
    batch.completionIds.map((ids, i) => {
      if (!Array.isArray(ids)) throw new Error(`overlong: completionIds[${i}] must be an array of token ids`);
      return overlongPenaltyValue(ids.length, maxCompletionLength, cacheLength);
    }),
  );
}
