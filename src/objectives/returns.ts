/**
 * Returns, generalised advantage estimation, whitening and explained variance, over plain
 * typed arrays (no tfjs): these run once per rollout on the CPU, before any tensor exists.
 *
 * Discounted reward-to-go (REINFORCE, Williams 1992; Sutton & Barto, ch. 13):
 *   G_t = r_t + gamma * (1 - done_t) * G_{t+1},   G_T = bootstrapValue (0 by default).
 *
 * GAE (Schulman et al., "High-Dimensional Continuous Control Using Generalized Advantage
 * Estimation", 2016), with the terminated / truncated split of Gymnasium >= 0.26 as in
 * Stable-Baselines3's `RolloutBuffer.compute_returns_and_advantage` and CleanRL's `ppo.py`:
 *   delta_t = r_t + gamma * (terminated_t ? 0 : V(s_{t+1})) - V(s_t)
 *   A_t     = delta_t + gamma * lambda * (1 - done_t) * A_{t+1},   done_t = terminated_t || truncated_t
 *   R_t     = A_t + V(s_t)   (the lambda-return, the critic's regression target)
 * A terminated step has no future value; a truncated step (time limit) still bootstraps from
 * the value of its final observation; both cut the recursion, because the next row of the
 * buffer belongs to a new episode. Deliberate difference from SB3: the caller passes
 * V(s_{t+1}) explicitly for every step (`nextValues`) instead of SB3's trick of folding the
 * truncation bootstrap into the reward, so rewards stay the environment's rewards.
 *
 * Whitening (advantage normalisation, as in SB3 / CleanRL `norm_adv`):
 *   x' = (x - mean(x)) / (std(x) + eps), population std.
 *
 * Explained variance (SB3 `explained_variance`): 1 - Var[y - yhat] / Var[y]; NaN when Var[y] = 0.
 *
 * All sums are accumulated in float64; outputs are float32.
 */

/** Flat time-major arrays of length T * numEnvs; element (t, i) sits at index t * numEnvs + i. */
export interface GaeInput {
  /** r_t, the reward received after the action at step t. */
  rewards: ArrayLike<number>;
  /** V(s_t) from the critic at collection time. */
  values: ArrayLike<number>;
  /**
   * V(s_{t+1}) for step t as the caller knows it: the next row's value inside an episode,
   * the value of the final observation (before auto-reset) on a truncated step, and the
   * value of the current observation on the last step of the rollout. Ignored on
   * terminated steps.
   */
  nextValues: ArrayLike<number>;
  /** The episode ended in a terminal state at step t (no bootstrap). */
  terminated: ArrayLike<boolean | number>;
  /** The episode was cut at step t by a time limit (bootstrap from nextValues). */
  truncated: ArrayLike<boolean | number>;
  /** Number of parallel environments (columns); T = length / numEnvs. */
  numEnvs: number;
  /** Discount factor in [0, 1]; typical 0.99 for control, 1.0 for language-model tokens. */
  gamma: number;
  /** GAE lambda in [0, 1]; 0 gives the one-step TD error, 1 the Monte-Carlo advantage. Typical 0.95. */
  lambda: number;
}

export interface GaeOutput {
  /** A_t, same layout as the inputs. */
  advantages: Float32Array;
  /** A_t + V(s_t), the critic's target. */
  returns: Float32Array;
}

function checkUnitInterval(name: string, fn: string, x: number): void {
  if (!(x >= 0 && x <= 1)) throw new Error(`${fn}: ${name} must be in [0, 1], got ${x}`);
}

function checkFinite(name: string, fn: string, a: ArrayLike<number>): void {
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i])) throw new Error(`${fn}: ${name}[${i}] is ${a[i]}; expected a finite number`);
  }
}

function flag(v: boolean | number | undefined): boolean {
  return v === true || (typeof v === 'number' && v !== 0);
}

/**
 * Discounted reward-to-go for one stream of steps (one environment, possibly several
 * episodes back to back). `dones[t]` true (or non-zero) ends an episode at step t, so the
 * sum restarts there. `bootstrapValue` stands in for the return after the last step when
 * the stream ends mid-episode (the value of the next observation), and is ignored when the
 * last step is done.
 */
export function discountedReturns(
  rewards: ArrayLike<number>,
  dones: ArrayLike<boolean | number>,
  gamma: number,
  bootstrapValue = 0,
): Float32Array {
  const fn = 'discountedReturns';
  if (dones.length !== rewards.length) {
    throw new Error(`${fn}: dones has length ${dones.length} but rewards has length ${rewards.length}`);
  }
  checkUnitInterval('gamma', fn, gamma);
  if (!Number.isFinite(bootstrapValue)) throw new Error(`${fn}: bootstrapValue must be finite, got ${bootstrapValue}`);
  checkFinite('rewards', fn, rewards);
  const out = new Float32Array(rewards.length);
  let g = bootstrapValue;
  for (let t = rewards.length - 1; t >= 0; t--) {
    g = rewards[t]! + (flag(dones[t]) ? 0 : gamma * g);
    out[t] = g;
  }
  return out;
}

/** Generalised advantage estimation over a [T, numEnvs] time-major rollout (see the file header). */
export function computeGae(input: GaeInput): GaeOutput {
  const fn = 'computeGae';
  const { rewards, values, nextValues, terminated, truncated, numEnvs, gamma, lambda } = input;
  if (!Number.isInteger(numEnvs) || numEnvs < 1) throw new Error(`${fn}: numEnvs must be an integer >= 1, got ${numEnvs}`);
  checkUnitInterval('gamma', fn, gamma);
  checkUnitInterval('lambda', fn, lambda);
  const n = rewards.length;
  if (n % numEnvs !== 0) {
    throw new Error(`${fn}: rewards has length ${n}, which is not a multiple of numEnvs = ${numEnvs}`);
  }
  const arrays = { values, nextValues, terminated, truncated } as const;
  for (const [name, a] of Object.entries(arrays)) {
    if (a.length !== n) throw new Error(`${fn}: ${name} has length ${a.length} but rewards has length ${n}`);
  }
  checkFinite('rewards', fn, rewards);
  checkFinite('values', fn, values);
  for (let k = 0; k < n; k++) {
    // nextValues on terminated steps is never read, so a NaN placeholder there is fine.
    if (!flag(terminated[k]) && !Number.isFinite(nextValues[k])) {
      throw new Error(`${fn}: nextValues[${k}] is ${nextValues[k]} on a non-terminated step; expected a finite number`);
    }
  }

  const steps = n / numEnvs;
  const advantages = new Float32Array(n);
  const returns = new Float32Array(n);
  for (let i = 0; i < numEnvs; i++) {
    let nextAdv = 0; // A_{t+1}; the value after the rollout's last step is irrelevant (done or not, see below)
    for (let t = steps - 1; t >= 0; t--) {
      const k = t * numEnvs + i;
      const term = flag(terminated[k]);
      const done = term || flag(truncated[k]);
      const v = values[k]!;
      const delta = rewards[k]! + (term ? 0 : gamma * nextValues[k]!) - v;
      // On the rollout's last step there is no A_{t+1}: nextAdv is 0 there, which is the
      // standard truncation of the GAE sum at the rollout boundary.
      const adv = delta + (done ? 0 : gamma * lambda * nextAdv);
      advantages[k] = adv;
      returns[k] = adv + v;
      nextAdv = adv;
    }
  }
  return { advantages, returns };
}

/**
 * (x - mean) / (std + eps) with the population std. With `mask` (same length, truthy =
 * included) the mean and std come from the masked entries only, masked entries are
 * whitened with them, and unmasked entries are set to 0 (they carry no signal; callers
 * multiply by the mask anyway).
 */
export function whiten(x: Float32Array, eps = 1e-8, mask?: ArrayLike<boolean | number>): Float32Array {
  const fn = 'whiten';
  if (!(eps >= 0) || !Number.isFinite(eps)) throw new Error(`${fn}: eps must be a finite number >= 0, got ${eps}`);
  if (mask !== undefined && mask.length !== x.length) {
    throw new Error(`${fn}: mask has length ${mask.length} but x has length ${x.length}`);
  }
  checkFinite('x', fn, x);
  const out = new Float32Array(x.length);
  if (x.length === 0) return out;
  let count = 0;
  let sum = 0;
  for (let i = 0; i < x.length; i++) {
    if (mask === undefined || flag(mask[i])) {
      sum += x[i]!;
      count++;
    }
  }
  if (count === 0) throw new Error(`${fn}: mask selects no entries, so there is nothing to normalise`);
  const mean = sum / count;
  let sq = 0;
  for (let i = 0; i < x.length; i++) {
    if (mask === undefined || flag(mask[i])) sq += (x[i]! - mean) ** 2;
  }
  const std = Math.sqrt(sq / count);
  const denom = std + eps;
  for (let i = 0; i < x.length; i++) {
    if (mask === undefined || flag(mask[i])) out[i] = denom > 0 ? (x[i]! - mean) / denom : 0;
  }
  return out;
}

/**
 * Fraction of the target's variance that the prediction explains: 1 - Var[y - yhat] / Var[y]
 * (population variances). 1 is perfect, 0 is no better than predicting the mean, negative is
 * worse. NaN when Var[y] = 0 (as Stable-Baselines3), including an empty input.
 */
export function explainedVariance(predicted: ArrayLike<number>, target: ArrayLike<number>): number {
  const fn = 'explainedVariance';
  if (predicted.length !== target.length) {
    throw new Error(`${fn}: predicted has length ${predicted.length} but target has length ${target.length}`);
  }
  const n = target.length;
  if (n === 0) return NaN;
  let my = 0;
  let md = 0;
  for (let i = 0; i < n; i++) {
    my += target[i]!;
    md += target[i]! - predicted[i]!;
  }
  my /= n;
  md /= n;
  let vy = 0;
  let vd = 0;
  for (let i = 0; i < n; i++) {
    vy += (target[i]! - my) ** 2;
    vd += (target[i]! - predicted[i]! - md) ** 2;
  }
  if (vy === 0) return NaN;
  return 1 - vd / vy;
}
