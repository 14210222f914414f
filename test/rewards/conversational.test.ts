/**
 * Conversational batches (TRL's form): prompts as message lists and each completion as
 * [{ role: 'assistant', content }]. Every built-in reward scores them exactly as it scores
 * the same completions as plain text, and the combiner rejects a batch that mixes forms.
 */
import { afterAll, describe, expect, it } from 'vitest';
import {
  closeMathWorkers,
  completionText,
  completionTexts,
  loadRewardFunction,
  mathReward,
  scoreCompletions,
  withTextCompletions,
  type RewardBatch,
  type RewardMessage,
} from '../../rewards/index.ts';

afterAll(async () => {
  await closeMathWorkers();
});

const texts = ['<think>6*7</think><answer>42</answer>', 'the answer is \\boxed{41}', '<answer> 42 </answer>', 'I do not know'];
const asMessages = (t: string): RewardMessage[] => [{ role: 'assistant', content: t }];
const question: RewardMessage[] = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'What is 6*7?' }];

const plain: RewardBatch = {
  prompts: texts.map(() => 'What is 6*7?'),
  completions: texts,
  completionIds: texts.map((t) => Array.from(t, (_, i) => i)),
  answer: ['42', '42', '42', '42'],
};
const chat: RewardBatch = { ...plain, prompts: texts.map(() => question), completions: texts.map(asMessages) };

describe('completion text', () => {
  it('reads a string, or the assistant messages of a list (joined), and names a bad entry', () => {
    expect(completionText('abc')).toBe('abc');
    expect(completionText(asMessages('abc'))).toBe('abc');
    expect(completionText([{ role: 'assistant', content: 'a' }, { role: 'tool', content: 'x' }, { role: 'assistant', content: 'b' }])).toBe('a\nb');
    expect(completionTexts(chat)).toEqual(texts);
    expect(() => completionText(42, 'completions[3]')).toThrow('completions[3] must be a string or a list of { role, content } messages, got number');
    expect(() => completionTexts({ completions: [asMessages('a'), [{ role: 'assistant' }]] as never })).toThrow('completions[1][0] must be a { role, content } message');
  });

  it('withTextCompletions hands a text-only function the texts, and a plain batch unchanged', async () => {
    const seen: unknown[] = [];
    const fn = Object.assign((b: { completions: string[] }) => {
      seen.push(b.completions);
      return b.completions.map((c) => c.length);
    }, { rewardName: 'len' });
    const wrapped = withTextCompletions(fn);
    expect(wrapped.rewardName).toBe('len');
    expect(await wrapped(chat)).toEqual(texts.map((t) => t.length));
    expect(await wrapped(plain)).toEqual(texts.map((t) => t.length));
    expect(seen).toEqual([texts, texts]);
  });
});

describe('built-in rewards on conversational completions', () => {
  for (const [name, expected] of [
    ['exact_match', [1, 0, 1, 0]],
    ['numeric', [1, 0, 1, 0]],
    ['format', [1, 0, 0, 0]],
    ['math', [1, 0, 1, 0]],
  ] as const) {
    it(`${name} scores message completions as it scores the same texts`, async () => {
      const fn = await loadRewardFunction(name);
      const fromText = await fn(plain);
      expect(fromText).toEqual(expected);
      expect(await fn(chat)).toEqual(fromText);
    });
  }

  it('mathReward called directly (not through the loader) reads message completions too', async () => {
    const fn = mathReward();
    expect(await fn(chat as never)).toEqual(await fn(plain as never));
    expect(await fn(chat as never)).toEqual([1, 0, 1, 0]);
  });

  it('overlong reads the token ids, the same for both forms', async () => {
    const fn = await loadRewardFunction('overlong', { config: { maxCompletionLength: 20, cacheLength: 10 } });
    expect(await fn(chat)).toEqual(await fn(plain));
  });

  it('scoreCompletions accepts a conversational batch and rejects one that mixes forms', async () => {
    const r = await scoreCompletions(chat, [{ name: 'exact_match', fn: await loadRewardFunction('exact_match') }]);
    expect(Array.from(r.rewards)).toEqual([1, 0, 1, 0]);
    expect(r.errors).toEqual([]);
    const mixed = { ...chat, completions: [asMessages('a'), 'b', asMessages('c'), asMessages('d')] } as unknown as RewardBatch;
    await expect(scoreCompletions(mixed, [{ name: 'x', fn: () => [0, 0, 0, 0] }])).rejects.toThrow('completions[1] must be a list of { role, content } messages like completions[0], got string');
    const mixed2 = { ...plain, completions: ['a', asMessages('b'), 'c', 'd'] } as unknown as RewardBatch;
    await expect(scoreCompletions(mixed2, [{ name: 'x', fn: () => [0, 0, 0, 0] }])).rejects.toThrow('completions[1] must be a string like completions[0], got a message list');
  });
});
