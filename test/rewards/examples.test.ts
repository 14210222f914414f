import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadRewardFunction, scoreCompletions, type RewardBatch } from '../../rewards/index.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));

describe('rewards/examples/length-penalty.ts through the loader and the combiner', () => {
  const lengths = [10, 20, 30, 40, 80];
  const batch: RewardBatch = {
    prompts: lengths.map(() => 'q'),
    completions: ['<answer>5</answer>', '<answer>5</answer>', '<answer>4</answer>', '<answer>5</answer>', 'x'],
    completionIds: lengths.map((n) => new Array<number>(n).fill(7)),
    answer: ['5', '5', '5', '5', '5'],
    targetLength: [20, 20, 20, 20, null],
  };

  it('loads by path, and its values enter the weighted sum', async () => {
    const length = await loadRewardFunction('./rewards/examples/length-penalty.ts', { baseDir: root });
    expect(length.rewardName).toBe('length-penalty');
    const r = await scoreCompletions(batch, [
      { name: 'numeric', fn: await loadRewardFunction('numeric') },
      { name: 'length', fn: length, weight: 0.5 },
    ]);
    // independent formula: -min(1, (L - T) / T) past the target T = 20; null where T is null
    const penalty = [0, 0, -0.5, -1, null];
    const numeric = [1, 1, 0, 1, 0];
    expect(r.perFunction.length).toEqual(penalty);
    expect(r.perFunction.numeric).toEqual(numeric);
    expect(Array.from(r.rewards)).toEqual(numeric.map((v, i) => v + 0.5 * (penalty[i] ?? 0)));
    expect(r.errors).toEqual([]);
  });

  it('defaults the target to 64 without the column, and reports a bad target as its error', async () => {
    const length = await loadRewardFunction('./rewards/examples/length-penalty.ts', { baseDir: root });
    const { targetLength: _, ...noTarget } = batch;
    expect(await length(noTarget as RewardBatch)).toEqual([0, 0, 0, 0, -0.25]);
    const r = await scoreCompletions({ ...batch, targetLength: [20, 20, 20, 20, 'long'] }, [{ name: 'length', fn: length }]);
    expect(r.errors[0]?.message).toBe('length-penalty: targetLength row 4 must be a positive number, got "long"');
  });
});
