/**
 * Train/test split with no problem on both sides: examples are first deduplicated by
 * prompt (the first occurrence is kept), then a seeded random subset of the unique ones
 * becomes the test set. Both sides keep the input order.
 */
import { Rng } from '../src/core/rng.ts';

export interface SplitOptions {
  /** Fraction of the unique examples held out, in (0, 1); rounded to the nearest count. Give this or `testSize`. */
  testFraction?: number;
  /** Number of unique examples held out, an integer in [0, number of unique examples]. */
  testSize?: number;
  /** Seed of the random choice of the test set. */
  seed: number;
}

export interface Split<T> {
  train: T[];
  test: T[];
  /** How many examples were dropped because an earlier one had the same prompt. */
  duplicates: number;
}

/** The examples with the first occurrence of each prompt, and how many were dropped. */
export function dedupeByPrompt<T extends { prompt: string }>(examples: readonly T[]): { unique: T[]; duplicates: number } {
  const seen = new Set<string>();
  const unique: T[] = [];
  examples.forEach((ex, i) => {
    if (typeof ex !== 'object' || ex === null || typeof ex.prompt !== 'string') {
      throw new Error(`dedupeByPrompt: examples[${i}].prompt must be a string`);
    }
    if (seen.has(ex.prompt)) return;
    seen.add(ex.prompt);
    unique.push(ex);
  });
  return { unique, duplicates: examples.length - unique.length };
}

export function splitTrainTest<T extends { prompt: string }>(examples: readonly T[], options: SplitOptions): Split<T> {
  const { testFraction, testSize, seed } = options;
  if ((testFraction === undefined) === (testSize === undefined)) {
    throw new Error('splitTrainTest: give exactly one of testFraction and testSize');
  }
  if (!Number.isFinite(seed)) throw new Error(`splitTrainTest: seed must be a finite number, got ${seed}`);
  const { unique, duplicates } = dedupeByPrompt(examples);
  let nTest: number;
  if (testFraction !== undefined) {
    if (!(testFraction > 0 && testFraction < 1)) throw new Error(`splitTrainTest: testFraction must be in (0, 1), got ${testFraction}`);
    nTest = Math.round(testFraction * unique.length);
  } else {
    nTest = testSize!;
    if (!Number.isInteger(nTest) || nTest < 0 || nTest > unique.length) {
      throw new Error(`splitTrainTest: testSize must be an integer in [0, ${unique.length}] (the number of unique prompts), got ${nTest}`);
    }
  }
  const perm = new Rng(seed).permutation(unique.length);
  const inTest = new Uint8Array(unique.length);
  for (let i = 0; i < nTest; i++) inTest[perm[i]!] = 1;
  const train: T[] = [];
  const test: T[] = [];
  unique.forEach((ex, i) => (inTest[i] ? test : train).push(ex));
  return { train, test, duplicates };
}
