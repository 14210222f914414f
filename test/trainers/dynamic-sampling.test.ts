/**
 * DAPO's dynamic sampling (`collectStep`) on a scripted sampler and scripted rewards, so
 * that which groups are informative (K rewards not all equal) is known in advance: constant
 * groups are dropped, further rounds refill the batch up to `promptsPerStep` groups within
 * `maxSamplingRounds` extra rounds, the kept batch is group-contiguous with its own rewards,
 * and the rollout summary covers every completion of every round. No model is involved.
 */
import { describe, expect, it } from 'vitest';
import { arithmeticTokenizer } from '../../src/trainers/from-scratch.ts';
import type { RewardBatch, RewardSpec } from '../../rewards/types.ts';
import { Rng } from '../../src/core/rng.ts';
import type { GenerateOptions, GenerationResult, Sampler } from '../../src/lm/sampler.ts';
import { collectStep, informativeGroups } from '../../src/trainers/grpo.ts';
import type { EncodedPromptRow } from '../../src/trainers/prompts.ts';

const tokenizer = arithmeticTokenizer();
const K = 4;
const MAX_LEN = 4;

/**
 * Completion k of every prompt: the digit k written k + 1 times, then EOS; the last one
 * (k = 3) is four digits with no EOS, i.e. cut at maxCompletionLength = 4 (truncated).
 * So a group's lengths are [2, 3, 4, 4] tokens and its texts "0", "11", "222", "3333".
 */
function completion(k: number): number[] {
  const digits = tokenizer.encode(String(k).repeat(k + 1), { addSpecialTokens: false });
  return k === K - 1 ? digits : [...digits, tokenizer.eosTokenId];
}

/** A sampler that returns the scripted completions and records every call. */
function scriptedSampler(): Sampler & { calls: Array<{ prompts: number[][]; options: GenerateOptions }> } {
  const calls: Array<{ prompts: number[][]; options: GenerateOptions }> = [];
  return {
    name: 'scripted',
    calls,
    generate: async (prompts, options): Promise<GenerationResult> => {
      calls.push({ prompts, options });
      const n = options.numGenerations;
      const completionIds = prompts.flatMap(() => Array.from({ length: n }, (_, k) => completion(k)));
      return {
        promptIds: prompts.flatMap((p) => Array.from({ length: n }, () => p)),
        completionIds,
        logprobs: completionIds.map((ids) => new Float32Array(ids.length).fill(-1)),
        truncated: completionIds.map((ids) => ids.at(-1) !== tokenizer.eosTokenId),
        finishReasons: completionIds.map((ids) => (ids.at(-1) === tokenizer.eosTokenId ? 'eos' : 'length')),
        numGenerations: n,
        padTokenId: options.padTokenId,
      };
    },
  };
}

/**
 * A row whose group is informative (`mixed`: reward base + k for completion k) or not
 * (`same`: reward base for all K). Distinct bases tell the groups apart in the kept batch.
 */
function row(name: string, kind: 'mixed' | 'same', base: number): EncodedPromptRow {
  const prompt = `${base}=`;
  return { prompt, columns: { name, kind, base }, source: `test:${name}`, promptText: prompt, promptIds: tokenizer.encode(prompt) };
}

/** base + k for mixed rows (k read back from the completion text), base for constant ones. */
function scripted(batch: RewardBatch): number[] {
  return batch.completions.map((text, i) => (batch['base']![i] as number) + (batch['kind']![i] === 'mixed' ? Number(text[0]) : 0));
}
const rewards: RewardSpec[] = [{ name: 'scripted', fn: scripted }];

/** The rewards group `r` gets. */
const groupRewards = (r: EncodedPromptRow): number[] => {
  const base = r.columns['base'] as number;
  return Array.from({ length: K }, (_, k) => base + (r.columns['kind'] === 'mixed' ? k : 0));
};

/** `nextPrompts` handing out the given batches in order, counting its calls. */
function prompter(batches: EncodedPromptRow[][]): { next: () => EncodedPromptRow[]; calls: () => number } {
  let i = 0;
  return {
    next: () => {
      const b = batches[i++];
      if (!b) throw new Error(`nextPrompts called ${i} times; the test scripted ${batches.length} batches`);
      return b;
    },
    calls: () => i,
  };
}

function options(promptsPerStep: number, dynamicSampling: boolean, maxSamplingRounds: number) {
  return {
    sampling: { numGenerations: K, maxCompletionLength: MAX_LEN, temperature: 1, topP: 1, topK: 0, rng: new Rng(0) },
    score: {},
    dynamicSampling,
    maxSamplingRounds,
    promptsPerStep,
  };
}

/** The expected contents of a kept batch made of `rows`, in order. */
function expectBatch(batch: Awaited<ReturnType<typeof collectStep>>['batch'], rows: EncodedPromptRow[]): void {
  expect(batch.rows.map((r) => r.columns['name'])).toEqual(rows.map((r) => r.columns['name']));
  expect(batch.promptIds).toEqual(rows.flatMap((r) => Array.from({ length: K }, () => r.promptIds)));
  expect(batch.completionIds).toEqual(rows.flatMap(() => Array.from({ length: K }, (_, k) => completion(k))));
  expect(batch.truncated).toEqual(rows.flatMap(() => [false, false, false, true]));
  expect([...batch.rewards]).toEqual(rows.flatMap(groupRewards));
}

describe('informativeGroups', () => {
  it('returns the groups whose rewards are not all equal', () => {
    expect(informativeGroups(Float32Array.from([1, 1, 1, 0, 1, 0, 2, 2, 2, -1, 3, 3]), 3)).toEqual([1, 3]);
    expect(informativeGroups(Float32Array.from([0, 0, 5, 5, 7, 7]), 2)).toEqual([]);
    expect(informativeGroups(Float32Array.from([0, 1e-6, 4, 4, 4, -4]), 2)).toEqual([0, 2]);
    expect(informativeGroups(Float32Array.from([3, 2, 1]), 1)).toEqual([]); // one completion per group: no spread
    expect(informativeGroups(new Float32Array(0), 4)).toEqual([]);
  });
});

describe('collectStep with dynamic sampling (DAPO)', () => {
  it('drops constant groups and samples further rounds until promptsPerStep groups are kept', async () => {
    const a = row('A', 'mixed', 10);
    const b = row('B', 'same', 20);
    const c = row('C', 'mixed', 30);
    const d = row('D', 'mixed', 40);
    const e = row('E', 'mixed', 50);
    const f = row('F', 'same', 60);
    // Round 1 keeps A and C (2 of 3); round 2 has two informative groups but only one slot: D.
    const prompts = prompter([
      [a, b, c],
      [d, e, f],
      [row('unused', 'mixed', 70), row('unused2', 'mixed', 80), row('unused3', 'mixed', 90)],
    ]);
    const sampler = scriptedSampler();
    const out = await collectStep(sampler, tokenizer, prompts.next, rewards, options(3, true, 3));

    expect(prompts.calls()).toBe(2);
    expect(sampler.calls.map((call) => call.prompts)).toEqual([[a, b, c].map((r) => r.promptIds), [d, e, f].map((r) => r.promptIds)]);
    expect(sampler.calls.every((call) => call.options.numGenerations === K && call.options.maxNewTokens === MAX_LEN)).toBe(true);
    expectBatch(out.batch, [a, c, d]);

    // The summary covers every sampled completion of both rounds, dropped groups included.
    expect([...out.all.rewards]).toEqual([a, b, c, d, e, f].flatMap(groupRewards));
    expect(out.all.perFunction['scripted']).toEqual([a, b, c, d, e, f].flatMap(groupRewards));
    expect(out.all.errors).toEqual([]);
    expect(out.lengths).toEqual(Array.from({ length: 6 }, () => [2, 3, 4, 4]).flat());
    expect(out.truncated).toBe(6);
  });

  it('stops after maxSamplingRounds extra rounds, keeping what it found', async () => {
    const x = row('X', 'mixed', 1);
    const constant = (name: string, base: number): EncodedPromptRow[] => [row(`${name}1`, 'same', base), row(`${name}2`, 'same', base + 1)];
    const prompts = prompter([constant('r1', 0), [row('r2', 'same', 5), x], constant('r3', 7), constant('too-many', 9)]);
    const out = await collectStep(scriptedSampler(), tokenizer, prompts.next, rewards, options(2, true, 2));
    expect(prompts.calls()).toBe(3); // the first round and 2 extra
    expectBatch(out.batch, [x]);
    expect(out.all.rewards.length).toBe(3 * 2 * K);
    expect(out.lengths.length).toBe(3 * 2 * K);
    expect(out.truncated).toBe(3 * 2);
  });

  it('returns an empty batch when every round is constant', async () => {
    const prompts = prompter([[row('p', 'same', 1)], [row('q', 'same', 2)], [row('r', 'same', 3)]]);
    const out = await collectStep(scriptedSampler(), tokenizer, prompts.next, rewards, options(1, true, 1));
    expect(prompts.calls()).toBe(2);
    expectBatch(out.batch, []);
    expect([...out.all.rewards]).toEqual([1, 1, 1, 1, 2, 2, 2, 2]);
  });

  it('a first round with promptsPerStep informative groups needs no second round', async () => {
    const rows = [row('A', 'mixed', 1), row('B', 'mixed', 2)];
    const prompts = prompter([rows, [row('never', 'mixed', 3), row('never2', 'mixed', 4)]]);
    const out = await collectStep(scriptedSampler(), tokenizer, prompts.next, rewards, options(2, true, 3));
    expect(prompts.calls()).toBe(1);
    expectBatch(out.batch, rows);
  });
});

describe('collectStep without dynamic sampling', () => {
  it('samples exactly one round and keeps every group, constant ones included', async () => {
    const rows = [row('A', 'same', 1), row('B', 'mixed', 2), row('C', 'same', 3)];
    const prompts = prompter([rows, [row('never', 'mixed', 4), row('never2', 'mixed', 5), row('never3', 'mixed', 6)]]);
    const sampler = scriptedSampler();
    const out = await collectStep(sampler, tokenizer, prompts.next, rewards, options(3, false, 3));
    expect(prompts.calls()).toBe(1);
    expect(sampler.calls.length).toBe(1);
    expectBatch(out.batch, rows);
    expect([...out.all.rewards]).toEqual(rows.flatMap(groupRewards));
    expect(out.lengths).toEqual([2, 3, 4, 4, 2, 3, 4, 4, 2, 3, 4, 4]);
    expect(out.truncated).toBe(3);
  });
});
