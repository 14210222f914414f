import { describe, expect, it } from 'vitest';
import { dedupeByPrompt, splitTrainTest } from '../../datasets/split.ts';

const ex = (prompt: string, tag = '') => ({ prompt, answer: prompt + tag });

describe('dedupeByPrompt', () => {
  it('keeps the first example of each prompt, in order', () => {
    const { unique, duplicates } = dedupeByPrompt([ex('a', '1'), ex('b'), ex('a', '2'), ex('c'), ex('b')]);
    expect(unique).toEqual([ex('a', '1'), ex('b'), ex('c')]);
    expect(duplicates).toBe(2);
  });

  it('names an example without a string prompt', () => {
    expect(() => dedupeByPrompt([ex('a'), { prompt: 3 } as never])).toThrow('dedupeByPrompt: examples[1].prompt must be a string');
  });
});

describe('splitTrainTest', () => {
  const data = Array.from({ length: 50 }, (_, i) => ex(`p${i % 40}`, `#${i}`)); // 40 unique prompts, 10 repeats

  it('never puts a prompt on both sides, and covers every unique prompt once', () => {
    const { train, test, duplicates } = splitTrainTest(data, { testSize: 12, seed: 7 });
    expect(duplicates).toBe(10);
    expect(test).toHaveLength(12);
    expect(train).toHaveLength(28);
    const trainPrompts = new Set(train.map((e) => e.prompt));
    for (const e of test) expect(trainPrompts.has(e.prompt)).toBe(false);
    expect(new Set([...train, ...test].map((e) => e.prompt)).size).toBe(40);
    // the first occurrence is the one kept
    expect([...train, ...test].every((e) => Number(e.answer.split('#')[1]) < 40)).toBe(true);
  });

  it('keeps the input order on both sides', () => {
    const { train, test } = splitTrainTest(data, { testSize: 12, seed: 7 });
    const index = (e: { answer: string }) => Number(e.answer.split('#')[1]);
    for (const side of [train, test]) {
      for (let i = 1; i < side.length; i++) expect(index(side[i]!)).toBeGreaterThan(index(side[i - 1]!));
    }
  });

  it('is deterministic per seed and changes with the seed', () => {
    const a = splitTrainTest(data, { testSize: 10, seed: 1 });
    const b = splitTrainTest(data, { testSize: 10, seed: 1 });
    const c = splitTrainTest(data, { testSize: 10, seed: 2 });
    expect(b).toEqual(a);
    expect(c.test).not.toEqual(a.test);
  });

  it('rounds testFraction over the unique prompts', () => {
    expect(splitTrainTest(data, { testFraction: 0.1, seed: 0 }).test).toHaveLength(4); // 0.1 * 40
    expect(splitTrainTest(data, { testFraction: 0.26, seed: 0 }).test).toHaveLength(10); // round(10.4)
    expect(splitTrainTest(data, { testSize: 0, seed: 0 }).train).toHaveLength(40);
  });

  it('picks every example for the test set equally often across seeds', () => {
    const items = Array.from({ length: 10 }, (_, i) => ex(`q${i}`));
    const hits = new Array<number>(10).fill(0);
    const seeds = 3000;
    for (let s = 0; s < seeds; s++) for (const e of splitTrainTest(items, { testSize: 3, seed: s }).test) hits[Number(e.prompt.slice(1))]!++;
    // each index is in the test set with probability 3/10: mean 900, sd ~25
    for (const h of hits) expect(Math.abs(h - 900)).toBeLessThan(120);
  });

  it('rejects bad sizes with the allowed range', () => {
    expect(() => splitTrainTest(data, { seed: 0 })).toThrow('exactly one of testFraction and testSize');
    expect(() => splitTrainTest(data, { testSize: 3, testFraction: 0.1, seed: 0 })).toThrow('exactly one of testFraction and testSize');
    expect(() => splitTrainTest(data, { testFraction: 1, seed: 0 })).toThrow('testFraction must be in (0, 1), got 1');
    expect(() => splitTrainTest(data, { testSize: 41, seed: 0 })).toThrow('testSize must be an integer in [0, 40] (the number of unique prompts), got 41');
    expect(() => splitTrainTest(data, { testSize: 2.5, seed: 0 })).toThrow(/got 2\.5/);
  });
});
