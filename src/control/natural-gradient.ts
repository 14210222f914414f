/**
 * The natural-gradient policy step shared by NPG and TRPO (Spinning Up's structure: TRPO
 * is NPG plus a backtracking line search that enforces the KL limit).
 *
 * Surrogate at the rollout's policy pi_old (Kakade 2001; Schulman et al. 2015):
 *   L(theta) = mean_b[ pi_theta(a_b|s_b) / pi_old(a_b|s_b) * A_b ] + c_e mean_b[ H(pi_theta(.|s_b)) ]
 *   g = grad L(theta_old),   x = F^{-1} g by conjugate gradient,
 *   full step  s = sqrt(2 delta / (x^T F x)) x       (the step whose quadratic KL model is delta)
 *   NPG:  theta_new = theta_old + s
 *   TRPO: theta_new = theta_old + beta^j s for the first j = 0, 1, ... whose exact mean
 *         KL(pi_old || pi_new) <= delta and whose surrogate improves; no step if none does.
 *
 * The Fisher-vector product. The usual route — the Hessian-vector product of the mean KL by
 * double backpropagation — does not work in tfjs 4.22: nested gradients of this network
 * silently come back as ~0 (measured: ~1e-8 against ~1 from finite differences), so it is
 * not used. The Fisher is instead computed analytically, which at theta_old equals the KL
 * Hessian exactly (the KL's gradient vanishes there, leaving the Gauss–Newton term):
 *   F v = (1/B) sum_b J_b^T M_b J_b v + damping v,   J_b = d(head output of s_b)/d theta
 *   Categorical (head = logits):        M_b = diag(p_b) - p_b p_b^T
 *   Gaussian (head = mean):             M_b = diag(1 / sigma^2); the log-std block adds 2 v_logstd
 * J v is the exact forward-mode product that `ActorCritic.actorJvp` propagates through the
 * tanh layers; J^T u is one reverse-mode gradient of sum(head * u). Both are exact, so the
 * product costs about two forward passes and one backward pass, with no finite differences.
 */
import * as tf from '@tensorflow/tfjs';
import { approxKlTensor, logProbOf, type BatchTensors } from './algorithm.ts';
import { CategoricalDistribution, DiagGaussianDistribution, type ActionDistribution } from './distributions.ts';
import type { ActorCritic } from './policy.ts';

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

export interface CgResult {
  x: Float64Array;
  iterations: number;
  /** Squared norm of the final residual b - A x. */
  residual: number;
}

/**
 * Conjugate gradient for A x = b with a symmetric positive-definite A given only through
 * `avp(v) = A v` (Hestenes & Stiefel 1952). Stops after `maxIters` products or when the
 * squared residual drops below `residualTol`.
 */
export function conjugateGradient(avp: (v: Float64Array) => Float64Array, b: Float64Array, maxIters = 10, residualTol = 1e-10): CgResult {
  if (!Number.isInteger(maxIters) || maxIters < 1) throw new Error(`conjugateGradient: maxIters must be a positive integer, got ${maxIters}`);
  const n = b.length;
  const x = new Float64Array(n);
  const r = Float64Array.from(b);
  const p = Float64Array.from(b);
  let rr = dot(r, r);
  let it = 0;
  while (it < maxIters && rr >= residualTol) {
    const ap = avp(p);
    if (ap.length !== n) throw new Error(`conjugateGradient: avp returned ${ap.length} values for a ${n}-vector`);
    const pap = dot(p, ap);
    if (!(pap > 0)) {
      if (it === 0) throw new Error(`conjugateGradient: p^T A p = ${pap}; the operator is not positive definite`);
      break;
    }
    const alpha = rr / pap;
    for (let i = 0; i < n; i++) {
      x[i] = x[i]! + alpha * p[i]!;
      r[i] = r[i]! - alpha * ap[i]!;
    }
    const rrNew = dot(r, r);
    const beta = rrNew / rr;
    for (let i = 0; i < n; i++) p[i] = r[i]! + beta * p[i]!;
    rr = rrNew;
    it++;
  }
  return { x, iterations: it, residual: rr };
}

export interface LineSearchOptions {
  /** KL limit delta. */
  maxKl: number;
  /** Step shrink factor beta per backtrack. SB3 0.8; typical 0.5-0.9. */
  shrinkFactor: number;
  /** Number of step sizes tried (1, beta, beta^2, ...). SB3 10. */
  maxBacktracks: number;
}

export interface LineSearchResult {
  accepted: boolean;
  /** beta^j of the accepted step (0 when none was accepted). */
  fraction: number;
  /** The accepted parameters, or theta0 when no step was accepted. */
  theta: Float64Array;
  /** KL and surrogate improvement at the accepted step (at the last one tried when none was). */
  kl: number;
  improvement: number;
  /** Steps tried. */
  tries: number;
}

/**
 * Backtracking line search (TRPO, Schulman et al. 2015, appendix C): tries theta0 + beta^j
 * fullStep for j = 0, 1, ... and accepts the first whose KL is within the limit and whose
 * surrogate improves on `surrogate0`. `evaluate` returns the surrogate (higher is better)
 * and the mean KL(old || new) at a parameter vector.
 */
export function backtrackingLineSearch(
  theta0: Float64Array,
  fullStep: Float64Array,
  surrogate0: number,
  evaluate: (theta: Float64Array) => { surrogate: number; kl: number },
  options: LineSearchOptions,
): LineSearchResult {
  const { maxKl, shrinkFactor, maxBacktracks } = options;
  if (!(maxKl > 0)) throw new Error(`backtrackingLineSearch: maxKl must be > 0, got ${maxKl}`);
  if (!(shrinkFactor > 0 && shrinkFactor < 1)) throw new Error(`backtrackingLineSearch: shrinkFactor must be in (0, 1), got ${shrinkFactor}`);
  if (!Number.isInteger(maxBacktracks) || maxBacktracks < 1) throw new Error(`backtrackingLineSearch: maxBacktracks must be a positive integer, got ${maxBacktracks}`);
  if (fullStep.length !== theta0.length) throw new Error(`backtrackingLineSearch: fullStep has ${fullStep.length} values, theta0 has ${theta0.length}`);
  const theta = new Float64Array(theta0.length);
  let kl = NaN;
  let improvement = NaN;
  for (let j = 0; j < maxBacktracks; j++) {
    const fraction = shrinkFactor ** j;
    for (let i = 0; i < theta.length; i++) theta[i] = theta0[i]! + fraction * fullStep[i]!;
    const r = evaluate(theta);
    kl = r.kl;
    improvement = r.surrogate - surrogate0;
    if (Number.isFinite(kl) && kl <= maxKl && improvement > 0) return { accepted: true, fraction, theta, kl, improvement, tries: j + 1 };
  }
  return { accepted: false, fraction: 0, theta: Float64Array.from(theta0), kl, improvement, tries: maxBacktracks };
}

/** The head output the Fisher is expressed in: logits, or the Gaussian mean. */
function headOf(dist: ActionDistribution): tf.Tensor2D {
  return dist.kind === 'categorical' ? dist.logits : dist.mean;
}

/**
 * F v + damping v for the actor's flat parameters at their current values (see the file
 * header), over the observations `obs` [B, obsDim].
 */
export type FisherVectorProduct = ((v: Float64Array) => Float64Array) & { dispose(): void };

export function fisherVectorProduct(policy: ActorCritic, obs: tf.Tensor2D, damping: number): FisherVectorProduct {
  if (!(damping >= 0)) throw new Error(`fisherVectorProduct: damping must be >= 0, got ${damping}`);
  const B = obs.shape[0];
  const n = policy.numParams('actor');
  // M's ingredients at theta_old: probabilities, or 1 / sigma^2.
  const weights = tf.tidy(() => {
    const { dist } = policy.forward(obs, { critic: false });
    return dist.kind === 'categorical' ? tf.softmax(dist.logits) : tf.exp(tf.mul(-2, dist.logStd));
  });
  const categorical = policy.actionSpace.type === 'discrete';
  const fvp = (v: Float64Array): Float64Array => {
    if (v.length !== n) throw new Error(`fisherVectorProduct: expected ${n} values, got ${v.length}`);
    const res = tf.tidy(() => {
      const vt = tf.tensor1d(Float32Array.from(v));
      const { dOut, dLogStd } = policy.actorJvp(obs, vt); // J v [B, A]
      let u: tf.Tensor; // M J v / B
      if (categorical) {
        const pjv = tf.mul(weights, dOut); // [B, A]
        u = tf.sub(pjv, tf.mul(weights, tf.sum(pjv, -1, true)));
      } else {
        u = tf.mul(dOut, weights); // [B, A] * [A]
      }
      u = tf.div(u, B);
      const logStdCotangent = dLogStd ? tf.mul(2, dLogStd) : null; // [A]
      const { grads, value } = tf.variableGrads(() => {
        const { dist } = policy.forward(obs, { critic: false });
        let s = tf.sum(tf.mul(headOf(dist), u));
        if (logStdCotangent && dist.kind === 'gaussian') s = tf.add(s, tf.sum(tf.mul(dist.logStd, logStdCotangent)));
        return s as tf.Scalar;
      }, [policy.actorVariable]);
      value.dispose();
      return tf.add(grads[policy.actorVariable.name]!, tf.mul(vt, damping));
    });
    const out = Float64Array.from(res.dataSync());
    res.dispose();
    return out;
  };
  return Object.assign(fvp, { dispose: () => weights.dispose() });
}

export interface NaturalStepOptions {
  /** KL limit delta (the trust region). Typical 0.005-0.05; SB3 0.01. */
  maxKl: number;
  /** Fisher damping. Typical 1e-3..0.1. */
  damping: number;
  /** Conjugate-gradient iterations. Typical 10-20. */
  cgIters: number;
  /** Entropy-bonus coefficient in the surrogate. */
  entCoef: number;
  /** TRPO's line search; null for NPG (the full step is taken). */
  lineSearch: Omit<LineSearchOptions, 'maxKl'> | null;
}

export interface NaturalStepResult {
  surrogateBefore: number;
  surrogateAfter: number;
  /** Exact mean KL(pi_old || pi_new) over the batch after the step. */
  kl: number;
  /** k3 estimate of the same KL from the batch's actions. */
  approxKl: number;
  /** Mean entropy before the step. */
  entropy: number;
  /** sqrt(2 delta / x^T F x). */
  stepSize: number;
  /** Fraction of the full step taken (1 for NPG, beta^j or 0 for TRPO). */
  fraction: number;
  accepted: boolean;
  cgIterations: number;
}

/** The current actor's distribution over `obs`, as tensors that stay fixed when the parameters change. */
function frozenDistribution(policy: ActorCritic, obs: tf.Tensor2D): ActionDistribution {
  const parts = tf.tidy(() => {
    const { dist } = policy.forward(obs, { critic: false });
    return dist.kind === 'categorical' ? [dist.logits] : [dist.mean, dist.logStd];
  });
  return parts.length === 1
    ? new CategoricalDistribution(parts[0] as tf.Tensor2D)
    : new DiagGaussianDistribution(parts[0] as tf.Tensor2D, parts[1] as tf.Tensor1D);
}

/**
 * One natural-gradient policy step on the batch (NPG when `lineSearch` is null, TRPO
 * otherwise). The batch's advantages are used as given (whiten them first if wanted).
 * Changes only the actor's parameters.
 */
export function naturalGradientStep(policy: ActorCritic, batch: BatchTensors, options: NaturalStepOptions): NaturalStepResult {
  if (policy.shared) throw new Error('naturalGradientStep: NPG and TRPO need separate actor and critic networks (policy.sharedNetwork: false)');
  const { maxKl, damping, cgIters, entCoef, lineSearch } = options;
  if (!(maxKl > 0)) throw new Error(`naturalGradientStep: maxKl must be > 0, got ${maxKl}`);
  const actorVar = policy.actorVariable;
  const theta0 = Float64Array.from(policy.getFlat('actor'));
  // pi_old, frozen: tensors that keep their values when the variable changes.
  const old = frozenDistribution(policy, batch.obs);
  const oldTensors = old.kind === 'categorical' ? [old.logits] : [old.mean, old.logStd];
  const fvp = fisherVectorProduct(policy, batch.obs, damping);
  try {
    // Surrogate, its gradient and the entropy at theta_old.
    const surrogateOf = (dist: ActionDistribution): { surrogate: tf.Scalar; entropy: tf.Scalar } => {
      const ratio = tf.exp(tf.sub(logProbOf(dist, batch.actions), batch.oldLogProbs)); // [B]
      const entropy = tf.mean(dist.entropy()) as tf.Scalar;
      const surrogate = tf.add(tf.mean(tf.mul(ratio, batch.advantages)), tf.mul(entCoef, entropy)) as tf.Scalar;
      return { surrogate, entropy };
    };
    const [valueT, entropyT, gradT] = tf.tidy(() => {
      let ent: tf.Tensor | null = null;
      const { value, grads } = tf.variableGrads(() => {
        const { dist } = policy.forward(batch.obs, { critic: false });
        const s = surrogateOf(dist);
        ent = tf.keep(s.entropy);
        return s.surrogate;
      }, [actorVar]);
      return [value, (ent as tf.Tensor | null)!, grads[actorVar.name]!];
    });
    const first = { surrogate: valueT.dataSync()[0]!, entropy: entropyT.dataSync()[0]!, grad: Float64Array.from(gradT.dataSync()) };
    tf.dispose([valueT, entropyT, gradT]);
    const evaluate = (theta: Float64Array): { surrogate: number; kl: number; approxKl: number } => {
      policy.setFlat('actor', Float32Array.from(theta));
      const t = tf.tidy(() => {
        const { dist } = policy.forward(batch.obs, { critic: false });
        const { surrogate } = surrogateOf(dist);
        const kl = old.kind === 'categorical' ? old.kl(dist as CategoricalDistribution) : old.kl(dist as DiagGaussianDistribution);
        const logRatio = tf.sub(logProbOf(dist, batch.actions), batch.oldLogProbs);
        return tf.stack([surrogate, tf.mean(kl), approxKlTensor(logRatio)]);
      });
      const [surrogate, kl, approxKl] = t.dataSync() as Float32Array;
      t.dispose();
      return { surrogate: surrogate!, kl: kl!, approxKl: approxKl! };
    };

    const gNorm = Math.sqrt(dot(first.grad, first.grad));
    if (!(gNorm > 0) || !Number.isFinite(gNorm)) {
      return { surrogateBefore: first.surrogate, surrogateAfter: first.surrogate, kl: 0, approxKl: 0, entropy: first.entropy, stepSize: 0, fraction: 0, accepted: false, cgIterations: 0 };
    }
    const cg = conjugateGradient(fvp, first.grad, cgIters);
    const xFx = dot(cg.x, fvp(cg.x));
    const stepSize = xFx > 0 ? Math.sqrt((2 * maxKl) / xFx) : 0;
    const fullStep = cg.x.map((v) => v * stepSize);
    if (lineSearch === null) {
      const theta = theta0.map((v, i) => v + fullStep[i]!);
      const r = evaluate(theta);
      return { surrogateBefore: first.surrogate, surrogateAfter: r.surrogate, kl: r.kl, approxKl: r.approxKl, entropy: first.entropy, stepSize, fraction: 1, accepted: true, cgIterations: cg.iterations };
    }
    let lastApprox = 0;
    const ls = backtrackingLineSearch(
      theta0,
      fullStep,
      first.surrogate,
      (theta) => {
        const r = evaluate(theta);
        lastApprox = r.approxKl;
        return r;
      },
      { maxKl, ...lineSearch },
    );
    if (!ls.accepted) {
      policy.setFlat('actor', Float32Array.from(theta0));
      return { surrogateBefore: first.surrogate, surrogateAfter: first.surrogate, kl: 0, approxKl: 0, entropy: first.entropy, stepSize, fraction: 0, accepted: false, cgIterations: cg.iterations };
    }
    // The last evaluation was at the accepted parameters, which the policy now holds.
    return {
      surrogateBefore: first.surrogate,
      surrogateAfter: first.surrogate + ls.improvement,
      kl: ls.kl,
      approxKl: lastApprox,
      entropy: first.entropy,
      stepSize,
      fraction: ls.fraction,
      accepted: true,
      cgIterations: cg.iterations,
    };
  } finally {
    fvp.dispose();
    tf.dispose(oldTensors);
  }
}
