/**
 * Generalised advantage estimation over the completion tokens of a language-model batch,
 * with separate lambdas for the actor and the critic, over plain typed arrays (no tfjs).
 *
 * Each row i of the [N, T] batch is one completion: len_i real tokens followed by right
 * padding. Token t is the action, the prefix before it is the state s_t, and V_t = V(s_t)
 * is the critic's value read at the position before token t. Per row, backwards over the
 * real tokens t = len_i - 1, ..., 0 (GAE: Schulman et al., "High-Dimensional Continuous
 * Control Using Generalized Advantage Estimation", 2016; the token-level form of verl's
 * `compute_gae_advantage_return` and OpenRLHF's `get_advantages_and_returns`):
 *   delta_t = r_t + gamma * V_{t+1} - V_t,        V_{len_i} = 0
 *   A_t     = delta_t + gamma * lambda * A_{t+1},  A_{len_i} = 0
 *           = sum_{l >= 0} (gamma * lambda)^l * delta_{t+l}
 * V after the last real token is 0: the completion is over (ended by EOS, or cut at the
 * length limit and treated as finished, as verl and OpenRLHF do).
 *
 * Decoupled GAE (VC-PPO: Yuan et al., "What's Behind PPO's Collapse in Long-CoT? Value
 * Optimization Holds the Secret", 2025): the recursion runs twice per row,
 *   advantages = A^{(lambdaActor)}_t                 (the policy's advantage; VC-PPO: < 1, e.g. 0.95)
 *   returns    = R_t = A^{(lambdaCritic)}_t + V_t     (the critic's regression target; VC-PPO: 1)
 * With lambda = 1 and gamma = 1, A_t = (sum_{u >= t} r_u) - V_t: the critic's values
 * telescope away except V_t, so the advantage is the return to the end minus a baseline
 * (Open-Reasoner-Zero's setting), and R_t is the plain undiscounted reward-to-go. With
 * lambdaCritic = 1 the verifier score on the last token reaches every token's target
 * undecayed; with lambda < 1 its weight at token t is (gamma * lambda)^(len_i - 1 - t),
 * VC-PPO's "reward signal decay" over long chains of thought.
 * Using a different lambda for the actor than for the critic adds no bias of its own: the
 * critic enters the actor's advantage only as the function V, and for any V the actor's
 * lambda-weighted TD sum is the ordinary GAE estimator, whose bias for lambda < 1 comes
 * from V differing from V^pi and vanishes when V = V^pi (Schulman et al., Sec. 3; with
 * lambda = 1 there is none whatever V is).
 *
 * Length-adaptive actor lambda (VAPO: Yue et al., "VAPO: Efficient and Reliable
 * Reinforcement Learning for Advanced Reasoning Tasks", 2025), on when
 * `lengthAdaptiveAlpha` is set:
 *   lambda_i = clamp(1 - 1 / (alpha * len_i), 0, 1)       (VAPO: alpha = 0.05)
 * so that sum_l lambda_i^l = 1 / (1 - lambda_i) = alpha * len_i: longer completions look
 * further ahead. A row with len_i = 0 gets 0 (it has no tokens to use it on).
 *
 * Masked whitening (`maskedWhiten`): x' = (x - mean) / (std + eps) over the real tokens,
 * population std. Deliberate difference from verl's `masked_whiten`, which uses the
 * Bessel-corrected variance and rsqrt(var + eps): this keeps the repo's one whitening
 * convention (`whiten` in returns.ts), which it calls.
 *
 * All recursions accumulate in float64; outputs are float32.
 */
import { whiten } from './returns.ts';

export interface TokenGaeInput {
  /** [N, T] row-major per-token rewards r_t (e.g. -klCoef*(logp-logref) on every token, plus the verifier score on the last real token). */
  rewards: ArrayLike<number>;
  /** [N, T] row-major critic values V(s_t), read at the position before token t. */
  values: ArrayLike<number>;
  /** [N, T] row-major, 1 on real completion tokens, 0 on right padding. Each row's 1s must be a prefix (right padding only). */
  mask: ArrayLike<number>;
  /** N, the number of completions (rows); T = length / N. */
  numRows: number;
  /** Discount factor in [0, 1]; 1 for language-model tokens (verl, OpenRLHF, VC-PPO, VAPO). */
  gamma: number;
  /** Lambda of the critic's return targets, in [0, 1]; VC-PPO and VAPO use 1. */
  lambdaCritic: number;
  /** Lambda of the actor's advantages, in [0, 1]; VC-PPO: < 1 (0.95). Ignored when lengthAdaptiveAlpha is set. */
  lambdaActor: number;
  /**
   * VAPO's length-adaptive actor lambda: when set (alpha > 0), row i uses
   * lambda_i = clamp(1 - 1/(alpha * len_i), 0, 1) instead of lambdaActor, len_i = number of
   * real tokens of row i. null/undefined = off. VAPO uses 0.05.
   */
  lengthAdaptiveAlpha?: number | null;
}

export interface TokenGaeOutput {
  /** [N, T] actor advantages (GAE with the actor lambda), 0 on padding. */
  advantages: Float32Array;
  /** [N, T] critic targets R_t = A^critic_t + V_t (GAE with lambdaCritic), 0 on padding. */
  returns: Float32Array;
  /** The actor lambda used per row, [N]. */
  actorLambdas: Float32Array;
}

function checkUnitInterval(fn: string, name: string, x: number): void {
  if (!(x >= 0 && x <= 1)) throw new Error(`${fn}: ${name} must be in [0, 1], got ${x}`);
}

function checkFinite(fn: string, name: string, a: ArrayLike<number>): void {
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i])) throw new Error(`${fn}: ${name}[${i}] is ${a[i]}; expected a finite number`);
  }
}

function checkBinary(fn: string, name: string, a: ArrayLike<number>): void {
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== 0 && a[i] !== 1) throw new Error(`${fn}: ${name}[${i}] is ${a[i]}; expected 0 or 1`);
  }
}

/** Generalised advantage estimation over the completion tokens of an [N, T] batch (see the file header). */
export function tokenGae(input: TokenGaeInput): TokenGaeOutput {
  const fn = 'tokenGae';
  const { rewards, values, mask, numRows, gamma, lambdaCritic, lambdaActor } = input;
  const alpha = input.lengthAdaptiveAlpha ?? null;
  if (!Number.isInteger(numRows) || numRows < 1) throw new Error(`${fn}: numRows must be an integer >= 1, got ${numRows}`);
  checkUnitInterval(fn, 'gamma', gamma);
  checkUnitInterval(fn, 'lambdaCritic', lambdaCritic);
  checkUnitInterval(fn, 'lambdaActor', lambdaActor);
  if (alpha !== null && !(Number.isFinite(alpha) && alpha > 0)) {
    throw new Error(`${fn}: lengthAdaptiveAlpha must be a finite number > 0 (or null to turn it off), got ${alpha}`);
  }
  const n = rewards.length;
  for (const [name, a] of [['values', values], ['mask', mask]] as const) {
    if (a.length !== n) throw new Error(`${fn}: ${name} has length ${a.length} but rewards has length ${n}`);
  }
  if (n % numRows !== 0) throw new Error(`${fn}: rewards has length ${n}, which is not a multiple of numRows = ${numRows}`);
  checkFinite(fn, 'rewards', rewards);
  checkFinite(fn, 'values', values);
  checkBinary(fn, 'mask', mask);

  const steps = n / numRows; // T
  const lengths = new Int32Array(numRows);
  for (let i = 0; i < numRows; i++) {
    const base = i * steps;
    let len = 0;
    while (len < steps && mask[base + len] === 1) len++;
    for (let t = len + 1; t < steps; t++) {
      if (mask[base + t] === 1) {
        throw new Error(
          `${fn}: mask row ${i} has a 1 at column ${t} after a 0 at column ${len} (mask[${base + t}]); ` +
            'each row must be its real tokens followed by right padding only',
        );
      }
    }
    lengths[i] = len;
  }

  const advantages = new Float32Array(n);
  const returns = new Float32Array(n);
  const actorLambdas = new Float32Array(numRows);
  for (let i = 0; i < numRows; i++) {
    const base = i * steps;
    const len = lengths[i]!;
    // len = 0 gives 1 - Infinity = -Infinity, clamped to 0.
    const lambdaI = alpha === null ? lambdaActor : Math.min(1, Math.max(0, 1 - 1 / (alpha * len)));
    actorLambdas[i] = lambdaI;
    let nextValue = 0; // V_{t+1}; 0 after the last real token
    let nextActor = 0; // A^{actor}_{t+1}
    let nextCritic = 0; // A^{critic}_{t+1}
    for (let t = len - 1; t >= 0; t--) {
      const k = base + t;
      const v = values[k]!;
      const delta = rewards[k]! + gamma * nextValue - v;
      nextActor = delta + gamma * lambdaI * nextActor;
      nextCritic = delta + gamma * lambdaCritic * nextCritic;
      advantages[k] = nextActor;
      returns[k] = nextCritic + v;
      nextValue = v;
    }
  }
  return { advantages, returns, actorLambdas };
}

/**
 * Whitening over the masked entries only: (x - mean) / (std + eps), with the mean and the
 * population std taken over the entries whose mask is 1; entries whose mask is 0 become 0.
 * When std is 0 the masked entries are x - mean (all 0), never a division by zero. The mask
 * must hold only 0 and 1 and select at least one entry. The arithmetic is `whiten`'s
 * (returns.ts) on a float32 copy of x; this adds the strict 0/1 mask check that token
 * batches want.
 */
export function maskedWhiten(x: ArrayLike<number>, mask: ArrayLike<number>, eps = 1e-8): Float32Array {
  const fn = 'maskedWhiten';
  if (mask.length !== x.length) throw new Error(`${fn}: mask has length ${mask.length} but x has length ${x.length}`);
  if (!(Number.isFinite(eps) && eps >= 0)) throw new Error(`${fn}: eps must be a finite number >= 0, got ${eps}`);
  checkFinite(fn, 'x', x);
  checkBinary(fn, 'mask', mask);
  let count = 0;
  for (let i = 0; i < mask.length; i++) count += mask[i]!;
  if (count < 1) throw new Error(`${fn}: mask selects no entries, so there is nothing to normalise`);
  return whiten(Float32Array.from(x), eps, mask);
}

/** What `tokenRewards` reads of a token batch: its completion mask [N, T] and the no-gradient log-probs. */
export interface TokenRewardInput {
  layout: { numRows: number; completionLength: number; completionMask: ArrayLike<number> };
  /** [N, T] log-probs of the policy that sampled the completions, or null. */
  oldLogprobs: ArrayLike<number> | null;
  /** [N, T] log-probs of the frozen reference, or null (no KL penalty). */
  refLogprobs: ArrayLike<number> | null;
}

/**
 * Per-token rewards [N, T]: -klCoef * (logp_old - logp_ref) on every completion token (when
 * there is a reference) plus the completion's score on its last token (verl, OpenRLHF, TRL:
 * the verifier's score sits on the last real token, the KL penalty on every token).
 */
export function tokenRewards(batch: TokenRewardInput, scores: ArrayLike<number>, klCoef: number): Float32Array {
  const { numRows: N, completionLength: T, completionMask } = batch.layout;
  if (scores.length !== N) throw new Error(`tokenRewards: ${N} completions but ${scores.length} scores`);
  const out = new Float32Array(N * T);
  const { oldLogprobs: old, refLogprobs: ref } = batch;
  for (let i = 0; i < N; i++) {
    let last = -1;
    for (let t = 0; t < T; t++) {
      const k = i * T + t;
      if (completionMask[k] === 0) break;
      last = k;
      if (klCoef > 0 && old && ref) out[k] = -klCoef * (old[k]! - ref[k]!);
    }
    if (last >= 0) out[last]! += scores[i]!;
  }
  return out;
}
