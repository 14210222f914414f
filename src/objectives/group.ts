/**
 * Group-relative advantages (GRPO: Shao et al., "DeepSeekMath", 2024, section 4.1.2;
 * TRL `GRPOTrainer._generate_and_score_completions`).
 *
 * Rewards arrive flat, numGroups * groupSize, group-contiguous (the K completions of one
 * prompt sit next to each other). For completion j of group g:
 *   A_{g,j} = (r_{g,j} - mean_g(r)) / (s + eps)
 * where s is
 *   - 'group' (default, GRPO): the population std of group g's rewards;
 *   - 'batch' (Liu et al., "Tricks or Traps? A Deep Dive into RL for LLM Reasoning", 2025,
 *     "Lite PPO"; TRL `scale_rewards="batch"`): the population std of all rewards in the batch;
 *   - 'none' (Liu et al., "Understanding R1-Zero-Like Training", 2025, Dr. GRPO): no division.
 * Deliberate difference from TRL: TRL uses `torch.std`, which is Bessel-corrected (divides by
 * n - 1); we use the population std (divide by n), the plain definition of a z-score. With
 * binary rewards and K = 8 the two differ by a factor sqrt(8/7) ~ 1.07 on every advantage.
 *
 * A group whose rewards are all equal has zero std and advantages exactly 0: it carries no
 * learning signal. `groupStats` reports the fraction of such groups (`reward/frac_zero_std`),
 * which DAPO's dynamic sampling (Yu et al., 2025) filters out. "Zero std" is decided by exact
 * equality of the group's rewards, not by a floating-point threshold on a computed std.
 */

export type GroupScale = 'group' | 'batch' | 'none';

export interface GroupAdvantageOptions {
  /** Which std divides the centred rewards; default 'group'. */
  scale?: GroupScale;
  /** Added to the std before dividing; default 1e-4 (TRL's value). */
  eps?: number;
}

export interface GroupStats {
  /** Per-group mean reward, length numGroups. */
  mean: Float32Array;
  /** Per-group population std, length numGroups (exactly 0 for constant groups). */
  std: Float32Array;
  /** Fraction of groups whose rewards are all equal, in [0, 1]. */
  fracZeroStd: number;
}

function checkGroups(fn: string, rewards: ArrayLike<number>, groupSize: number): number {
  if (!Number.isInteger(groupSize) || groupSize < 1) {
    throw new Error(`${fn}: groupSize must be an integer >= 1, got ${groupSize}`);
  }
  if (rewards.length % groupSize !== 0) {
    throw new Error(
      `${fn}: rewards has length ${rewards.length}, which is not a multiple of groupSize = ${groupSize}`,
    );
  }
  for (let i = 0; i < rewards.length; i++) {
    const r = rewards[i]!;
    if (!Number.isFinite(r)) {
      throw new Error(
        `${fn}: reward at index ${i} (group ${Math.floor(i / groupSize)}, member ${i % groupSize}) is ${r}; ` +
          'rewards must be finite numbers (map a failed verifier to a number before this step)',
      );
    }
  }
  return rewards.length / groupSize;
}

/** Mean and population std of rewards[start, start + n), float64; constant slices give exactly (r, 0). */
function sliceStats(rewards: ArrayLike<number>, start: number, n: number): { mean: number; std: number; constant: boolean } {
  const first = rewards[start]!;
  let constant = true;
  let sum = 0;
  for (let j = 0; j < n; j++) {
    const r = rewards[start + j]!;
    if (r !== first) constant = false;
    sum += r;
  }
  if (constant) return { mean: first, std: 0, constant };
  const mean = sum / n;
  let sq = 0;
  for (let j = 0; j < n; j++) sq += (rewards[start + j]! - mean) ** 2;
  return { mean, std: Math.sqrt(sq / n), constant };
}

/** Per-group mean and std of flat, group-contiguous rewards, and the fraction of constant groups. */
export function groupStats(rewards: ArrayLike<number>, groupSize: number): GroupStats {
  const numGroups = checkGroups('groupStats', rewards, groupSize);
  const mean = new Float32Array(numGroups);
  const std = new Float32Array(numGroups);
  let zero = 0;
  for (let g = 0; g < numGroups; g++) {
    const s = sliceStats(rewards, g * groupSize, groupSize);
    mean[g] = s.mean;
    std[g] = s.std;
    if (s.constant) zero++;
  }
  return { mean, std, fracZeroStd: numGroups === 0 ? 0 : zero / numGroups };
}

/** Group-relative advantages of flat, group-contiguous rewards (see the file header). */
export function groupAdvantages(
  rewards: ArrayLike<number>,
  groupSize: number,
  options: GroupAdvantageOptions = {},
): Float32Array {
  const fn = 'groupAdvantages';
  const scale = options.scale ?? 'group';
  const eps = options.eps ?? 1e-4;
  if (scale !== 'group' && scale !== 'batch' && scale !== 'none') {
    throw new Error(`${fn}: options.scale must be 'group', 'batch' or 'none', got ${JSON.stringify(scale)}`);
  }
  if (!(eps >= 0) || !Number.isFinite(eps)) throw new Error(`${fn}: options.eps must be a finite number >= 0, got ${eps}`);
  const numGroups = checkGroups(fn, rewards, groupSize);
  const out = new Float32Array(rewards.length);
  if (rewards.length === 0) return out;

  const batchStd = scale === 'batch' ? sliceStats(rewards, 0, rewards.length).std : 0;
  for (let g = 0; g < numGroups; g++) {
    const start = g * groupSize;
    const s = sliceStats(rewards, start, groupSize);
    if (s.constant) continue; // exactly zero advantage; avoids 0 / eps round-off
    const denom = scale === 'group' ? s.std + eps : scale === 'batch' ? batchStd + eps : 1;
    for (let j = 0; j < groupSize; j++) out[start + j] = (rewards[start + j]! - s.mean) / denom;
  }
  return out;
}
