/**
 * Optimisation helpers shared by every trainer: AdamW, global-norm gradient clipping and
 * learning-rate schedules.
 *
 * AdamW (Loshchilov & Hutter, "Decoupled Weight Decay Regularization", 2019), in the form
 * PyTorch's `torch.optim.AdamW` uses, so hyperparameters transfer:
 *   p <- p * (1 - lr * weightDecay)                      (decoupled decay, only where enabled)
 *   m <- b1 m + (1 - b1) g ;  v <- b2 v + (1 - b2) g^2
 *   p <- p - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
 *
 * The optimizer's state (step count, first and second moments) can be read and restored,
 * so a checkpoint resumes bit-for-bit.
 */
import * as tf from '@tensorflow/tfjs';

export interface AdamWOptions {
  /** Learning rate (or a base that a schedule scales per step via `step(grads, lr)`). Typical 1e-5..3e-3. */
  learningRate: number;
  /** Exponential decay of the first moment. Typical 0.9. */
  beta1?: number;
  /** Exponential decay of the second moment. Typical 0.95..0.999. */
  beta2?: number;
  /** Added to the denominator for stability. Typical 1e-8. */
  epsilon?: number;
  /** Decoupled weight decay coefficient. Typical 0..0.1. */
  weightDecay?: number;
  /**
   * Which variables get weight decay. Default: every variable of rank >= 2 (matrices and
   * embeddings), none of the biases and norm gains, as is standard for transformers.
   */
  decay?: (variable: tf.Variable) => boolean;
}

export interface AdamWState {
  step: number;
  /** Moments keyed `<variable name>/m` and `<variable name>/v`. */
  tensors: Map<string, tf.Tensor>;
}

export class AdamW {
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
  readonly weightDecay: number;
  learningRate: number;
  private stepCount = 0;
  private readonly moments = new Map<string, { m: tf.Variable; v: tf.Variable }>();
  private readonly decay: (variable: tf.Variable) => boolean;

  constructor(readonly variables: tf.Variable[], options: AdamWOptions) {
    this.learningRate = options.learningRate;
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.epsilon = options.epsilon ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 0;
    this.decay = options.decay ?? ((v) => v.rank >= 2);
    const names = new Set<string>();
    for (const v of variables) {
      if (names.has(v.name)) throw new Error(`AdamW: duplicate variable name "${v.name}"`);
      names.add(v.name);
    }
    for (const [name, value] of [
      ['learningRate', this.learningRate],
      ['beta1', this.beta1],
      ['beta2', this.beta2],
      ['epsilon', this.epsilon],
      ['weightDecay', this.weightDecay],
    ] as const) {
      if (!Number.isFinite(value) || value < 0) throw new Error(`AdamW: ${name} must be a finite number >= 0, got ${value}`);
    }
    if (this.beta1 >= 1 || this.beta2 >= 1) throw new Error('AdamW: beta1 and beta2 must be < 1');
  }

  get step(): number {
    return this.stepCount;
  }

  /**
   * Apply one update. `grads` maps variable names to gradients (as `tf.variableGrads`
   * returns them); a variable without a gradient is left unchanged. Does not dispose `grads`.
   */
  applyGradients(grads: Record<string, tf.Tensor>, learningRate = this.learningRate): void {
    this.stepCount += 1;
    const t = this.stepCount;
    const b1 = this.beta1;
    const b2 = this.beta2;
    const bc1 = 1 - b1 ** t;
    const bc2 = 1 - b2 ** t;
    for (const variable of this.variables) {
      const g = grads[variable.name];
      if (!g) continue;
      const state = this.momentsFor(variable);
      // Stage by stage, each in its own tidy, so at most a few parameter-sized temporaries
      // are alive at once (a 49k x 576 embedding is 113 MB per temporary).
      const m = tf.tidy(() => state.m.add(g.sub(state.m).mul(1 - b1))); // b1 m + (1 - b1) g
      state.m.assign(m);
      m.dispose();
      const v = tf.tidy(() => state.v.add(g.square().sub(state.v).mul(1 - b2))); // b2 v + (1 - b2) g^2
      state.v.assign(v);
      v.dispose();
      const denom = tf.tidy(() => state.v.div(bc2).sqrt().add(this.epsilon));
      const update = tf.tidy(() => state.m.div(denom).mul(learningRate / bc1));
      denom.dispose();
      const decayed = this.weightDecay > 0 && this.decay(variable);
      const next = tf.tidy(() => (decayed ? variable.mul(1 - learningRate * this.weightDecay) : variable).sub(update));
      update.dispose();
      variable.assign(next);
      next.dispose();
    }
  }

  getState(): AdamWState {
    const tensors = new Map<string, tf.Tensor>();
    for (const variable of this.variables) {
      const s = this.moments.get(variable.name);
      if (!s) continue;
      tensors.set(`${variable.name}/m`, s.m);
      tensors.set(`${variable.name}/v`, s.v);
    }
    return { step: this.stepCount, tensors };
  }

  /** Restore a state produced by `getState` (tensors are copied; the caller keeps ownership). */
  setState(state: { step: number; tensors: Map<string, tf.Tensor> }): void {
    if (!Number.isInteger(state.step) || state.step < 0) throw new Error(`AdamW.setState: invalid step ${state.step}`);
    for (const variable of this.variables) {
      const m = state.tensors.get(`${variable.name}/m`);
      const v = state.tensors.get(`${variable.name}/v`);
      if (!m && !v) continue;
      if (!m || !v) throw new Error(`AdamW.setState: moments of "${variable.name}" are incomplete`);
      for (const [label, x] of [['m', m], ['v', v]] as const) {
        if (x.shape.join(',') !== variable.shape.join(',')) {
          throw new Error(
            `AdamW.setState: "${variable.name}/${label}" has shape [${x.shape}] but the variable has [${variable.shape}]`,
          );
        }
      }
      const s = this.momentsFor(variable);
      s.m.assign(m);
      s.v.assign(v);
    }
    this.stepCount = state.step;
  }

  dispose(): void {
    for (const { m, v } of this.moments.values()) {
      m.dispose();
      v.dispose();
    }
    this.moments.clear();
  }

  private momentsFor(variable: tf.Variable): { m: tf.Variable; v: tf.Variable } {
    let s = this.moments.get(variable.name);
    if (!s) {
      // tf.variable keeps its own reference to the initial data: dispose the temporaries.
      const zeros = tf.zerosLike(variable);
      s = { m: tf.variable(zeros, false), v: tf.variable(zeros, false) };
      zeros.dispose();
      this.moments.set(variable.name, s);
    }
    return s;
  }
}

/**
 * Scale gradients so their global L2 norm is at most `maxNorm` (Pascanu et al., 2013),
 * as `torch.nn.utils.clip_grad_norm_`: scale = maxNorm / (norm + 1e-6) when norm > maxNorm.
 * Returns new gradient tensors (the inputs are not disposed) and the norm before clipping.
 * `maxNorm` of Infinity or <= 0 only measures the norm.
 */
export function clipGradNorm(
  grads: Record<string, tf.Tensor>,
  maxNorm: number,
): { grads: Record<string, tf.Tensor>; norm: number } {
  const names = Object.keys(grads);
  const norm = tf.tidy(() => {
    const sq = names.map((n) => tf.sum(tf.square(grads[n]!)));
    return sq.length === 0 ? 0 : Math.sqrt(tf.addN(sq).dataSync()[0]!);
  });
  const out: Record<string, tf.Tensor> = {};
  const scale = maxNorm > 0 && Number.isFinite(maxNorm) && norm > maxNorm ? maxNorm / (norm + 1e-6) : 1;
  for (const n of names) out[n] = scale === 1 ? grads[n]!.clone() : tf.tidy(() => grads[n]!.mul(scale));
  return { grads: out, norm };
}

/** A learning-rate schedule: the multiplier or value at optimisation step `step` (0-based) of `totalSteps`. */
export type Schedule = (step: number) => number;

/**
 * Linear warm-up from 0 to `peak` over `warmupSteps`, then cosine decay to `peak * minRatio`
 * at `totalSteps` (the schedule of most LM fine-tuning recipes).
 */
export function warmupCosine(peak: number, warmupSteps: number, totalSteps: number, minRatio = 0): Schedule {
  return (step) => {
    if (warmupSteps > 0 && step < warmupSteps) return (peak * (step + 1)) / warmupSteps;
    const span = Math.max(1, totalSteps - warmupSteps);
    const progress = Math.min(1, Math.max(0, (step - warmupSteps) / span));
    return peak * (minRatio + (1 - minRatio) * 0.5 * (1 + Math.cos(Math.PI * progress)));
  };
}

/** Linear warm-up then a linear decay to `peak * minRatio` at `totalSteps`. */
export function warmupLinear(peak: number, warmupSteps: number, totalSteps: number, minRatio = 0): Schedule {
  return (step) => {
    if (warmupSteps > 0 && step < warmupSteps) return (peak * (step + 1)) / warmupSteps;
    const span = Math.max(1, totalSteps - warmupSteps);
    const progress = Math.min(1, Math.max(0, (step - warmupSteps) / span));
    return peak * (1 - (1 - minRatio) * progress);
  };
}

/** A constant schedule (after an optional linear warm-up). */
export function constantSchedule(value: number, warmupSteps = 0): Schedule {
  return (step) => (warmupSteps > 0 && step < warmupSteps ? (value * (step + 1)) / warmupSteps : value);
}
