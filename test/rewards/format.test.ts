import { describe, expect, it } from 'vitest';
import {
  exactMatchReward,
  extractNumbers,
  extractTagContent,
  lastNumber,
  numericAnswerReward,
  overlongPenalty,
  overlongPenaltyValue,
  parseNumber,
  scoreTagFormat,
  tagFormatReward,
  type RewardBatch,
} from '../../rewards/index.ts';

function batch(completions: string[], columns: Record<string, unknown[]> = {}, lengths?: number[]): RewardBatch {
  return {
    prompts: completions.map(() => 'p'),
    completions,
    completionIds: completions.map((_, i) => Array.from({ length: lengths?.[i] ?? 1 }, (_, j) => j)),
    ...columns,
  };
}

describe('tag format', () => {
  const good = '<think>\n2 + 2 is 4\n</think>\n<answer>4</answer>';
  it('strict: only whitespace around and between the tag pairs', () => {
    expect(scoreTagFormat(good)).toBe(1);
    expect(scoreTagFormat(`  ${good}\n`)).toBe(1);
    expect(scoreTagFormat(`Sure! ${good}`)).toBe(0);
    expect(scoreTagFormat('<think>a</think> so <answer>4</answer>')).toBe(0);
    expect(scoreTagFormat('<answer>4</answer><think>a</think>')).toBe(0); // order
    expect(scoreTagFormat('<think>a</think><answer>4</answer><answer>5</answer>')).toBe(0); // twice
    expect(scoreTagFormat('<think>a<answer>4</answer></think>')).toBe(0); // nested
  });

  it('non-strict: each tag once and in order, anything around', () => {
    const opts = { strict: false };
    expect(scoreTagFormat(`Sure! ${good} Done.`, opts)).toBe(1);
    expect(scoreTagFormat('<think>a</think> so <answer>4</answer>', opts)).toBe(1);
    expect(scoreTagFormat('<answer>4</answer><think>a</think>', opts)).toBe(0);
    expect(scoreTagFormat('<think>a</think>', opts)).toBe(0);
  });

  it('partial credit: 0.5 * (tags present once) / (number of tags), always below a full match', () => {
    const opts = { partialCredit: true };
    expect(scoreTagFormat(good, opts)).toBe(1);
    expect(scoreTagFormat('<think>a</think> answer: 4', opts)).toBe(0.25); // 2 of 4 tags
    expect(scoreTagFormat('<think>a</think><answer>4', opts)).toBe(0.375); // 3 of 4
    expect(scoreTagFormat(`x ${good}`, opts)).toBe(0.5); // all tags once, text outside
    expect(scoreTagFormat('nothing', opts)).toBe(0);
  });

  it('configurable tags, as a reward function, and bad tags rejected', () => {
    const fn = tagFormatReward({ tags: ['reasoning', 'final'] });
    expect(fn(batch(['<reasoning>r</reasoning><final>f</final>', good]))).toEqual([1, 0]);
    expect(() => tagFormatReward({ tags: ['a b'] })).toThrow(/tag must match/);
    expect(() => tagFormatReward({ tags: [] })).toThrow(/non-empty array/);
    expect(() => tagFormatReward({ tags: ['x', 'x'] })).toThrow(/duplicates/);
  });
});

describe('answer extraction', () => {
  it('reads the last tag pair', () => {
    expect(extractTagContent('<answer>1</answer> then <answer> 2 </answer>', 'answer')).toBe(' 2 ');
    expect(extractTagContent('<answer></answer>', 'answer')).toBe('');
    expect(extractTagContent('<answer>open only', 'answer')).toBeNull();
    expect(extractTagContent('close only</answer>', 'answer')).toBeNull();
  });

  it('reads numbers with signs, separators and decimals, and subtraction as two numbers', () => {
    expect(extractNumbers('x = -5, then 1,234 and 3.25; 10-3=7, x2')).toEqual([-5, 1234, 3.25, 10, 3, 7]);
    expect(lastNumber('so the answer is 42.')).toBe(42);
    expect(lastNumber('no digits')).toBeNull();
    expect(parseNumber(' -3.50 ')).toBe(-3.5);
    expect(parseNumber('1,000')).toBe(1000);
    expect(parseNumber('1e3')).toBe(1000);
    expect(parseNumber('12 apples')).toBeNull();
    expect(parseNumber(Number.NaN)).toBeNull();
  });
});

describe('exact match and numeric answers', () => {
  it('exact match compares the normalised answer text, null where there is no reference', () => {
    const fn = exactMatchReward();
    const b = batch(['<answer>  Paris </answer>', 'I think Paris', 'paris', 'x'], { answer: ['Paris', 'I  think Paris', 'Paris', null] });
    expect(fn(b)).toEqual([1, 1, 0, null]);
    const lower = exactMatchReward({ normalise: (s) => s.trim().toLowerCase(), column: 'gold' });
    expect(lower(batch(['PARIS'], { gold: ['paris'] }))).toEqual([1]);
  });

  it('numeric reads the answer tag, else the last number, within the tolerance', () => {
    const fn = numericAnswerReward();
    const b = batch(
      ['<think>3 + 4 = 7, minus 2</think><answer>5</answer>', 'first 3 then 4 so 12', 'twelve', '<answer>5.0000001</answer>', '7'],
      { answer: [5, '12', 12, 5, null] },
    );
    expect(fn(b)).toEqual([1, 1, 0, 1, null]);
    const exact = numericAnswerReward({ tolerance: 0 });
    expect(exact(batch(['<answer>5.0000001</answer>'], { answer: [5] }))).toEqual([0]);
    const noTag = numericAnswerReward({ tag: null });
    expect(noTag(batch(['<answer>5</answer> (or 6)'], { answer: [5] }))).toEqual([0]);
  });

  it('names the column and row of a bad reference, and a missing column', () => {
    const fn = numericAnswerReward();
    expect(() => fn(batch(['1', '2'], { answer: [1, 'two'] }))).toThrow(/column 'answer' row 1 is not a number: "two"/);
    expect(() => fn(batch(['1']))).toThrow(/no column 'answer'/);
    expect(() => numericAnswerReward({ tolerance: -1 })).toThrow(/tolerance must be a finite number >= 0/);
  });
});

describe('overlong penalty (DAPO eq. 13)', () => {
  it('matches the piecewise formula at and around the breakpoints', () => {
    // Lmax = 20, Lcache = 8: soft region (12, 20]
    const ref = (L: number) => (L <= 12 ? 0 : L <= 20 ? (12 - L) / 8 : -1);
    for (const L of [0, 11, 12, 13, 16, 19, 20, 21, 100]) expect(overlongPenaltyValue(L, 20, 8)).toBeCloseTo(ref(L), 12);
    expect(overlongPenaltyValue(16, 20, 8)).toBe(-0.5);
    expect(overlongPenaltyValue(20, 20, 8)).toBe(-1);
    expect(overlongPenaltyValue(20, 20, 0)).toBe(0); // no soft window
    expect(overlongPenaltyValue(21, 20, 0)).toBe(-1);
  });

  it('uses completionIds lengths and validates its config', () => {
    const fn = overlongPenalty({ maxCompletionLength: 10, cacheLength: 4 });
    expect(fn(batch(['a', 'b', 'c', 'd'], {}, [6, 7, 10, 11]))).toEqual([0, -0.25, -1, -1]);
    expect(() => overlongPenalty({ maxCompletionLength: 0, cacheLength: 0 })).toThrow(/maxCompletionLength must be a positive integer/);
    expect(() => overlongPenalty({ maxCompletionLength: 10, cacheLength: 11 })).toThrow(/cacheLength must be an integer in \[0, maxCompletionLength=10\]/);
  });
});
