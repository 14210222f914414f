/**
 * A custom reward function: penalise completions longer than a target length.
 *
 *   r = 0                              if L <= T
 *     = -min(1, (L - T) / T)           otherwise
 *
 * with L the completion's length in tokens and T the row's `targetLength` column when the
 * dataset has one, else 64. Rows whose target is `null` get `null` (not applicable).
 *
 * Load it by path: `loadRewardFunction('./rewards/examples/length-penalty.ts')`.
 */
import type { RewardBatch, RewardValue } from '../index.ts';

const DEFAULT_TARGET = 64;

export default function lengthPenalty(batch: RewardBatch): RewardValue[] {
  const targets = batch.targetLength; // undefined when the dataset has no such column
  return batch.completionIds.map((ids, i) => {
    const target = targets === undefined ? DEFAULT_TARGET : targets[i];
    if (target === null) return null;
    if (typeof target !== 'number' || !(target > 0)) {
      throw new Error(`length-penalty: targetLength row ${i} must be a positive number, got ${JSON.stringify(target)}`);
    }
    return ids.length <= target ? 0 : -Math.min(1, (ids.length - target) / target);
  });
}
