/**
 * Gradient steps for the control algorithms: one loss evaluation with autodiff, global-norm
 * clipping (src/engine/tfjs/optim.ts `clipGradNorm`) and an optimizer update, with the
 * minibatch statistics read back in one transfer.
 *
 * Optimizers: AdamW from src/engine/tfjs/optim.ts (weight decay 0: plain Adam, as SB3's
 * policies), and RMSprop in PyTorch's form for A2C (SB3's default optimizer for A2C,
 * `th.optim.RMSprop(alpha=0.99, eps=1e-5)`; Tieleman & Hinton, 2012):
 *   v <- alpha v + (1 - alpha) g^2;   p <- p - lr g / (sqrt(v) + eps)
 * Note that TensorFlow's RMSprop puts eps inside the square root; this one follows PyTorch.
 */
import * as tf from '@tensorflow/tfjs';
import { AdamW, clipGradNorm } from '../engine/tfjs/optim.ts';

/** PyTorch-form RMSprop (no momentum, not centred) with readable and restorable state. */
export class RmsProp {
  readonly alpha: number;
  readonly epsilon: number;
  learningRate: number;
  private stepCount = 0;
  private readonly squares = new Map<string, tf.Variable>();

  constructor(
    readonly variables: tf.Variable[],
    options: { learningRate: number; alpha?: number; epsilon?: number },
  ) {
    this.learningRate = options.learningRate;
    this.alpha = options.alpha ?? 0.99;
    this.epsilon = options.epsilon ?? 1e-5;
    if (!(this.learningRate >= 0) || !Number.isFinite(this.learningRate)) throw new Error(`RmsProp: learningRate must be a finite number >= 0, got ${this.learningRate}`);
    if (!(this.alpha >= 0 && this.alpha < 1)) throw new Error(`RmsProp: alpha must be in [0, 1), got ${this.alpha}`);
    if (!(this.epsilon >= 0) || !Number.isFinite(this.epsilon)) throw new Error(`RmsProp: epsilon must be a finite number >= 0, got ${this.epsilon}`);
  }

  get step(): number {
    return this.stepCount;
  }

  /** One update; `grads` maps variable names to gradients (not disposed). */
  applyGradients(grads: Record<string, tf.Tensor>, learningRate = this.learningRate): void {
    this.stepCount++;
    for (const variable of this.variables) {
      const g = grads[variable.name];
      if (!g) continue;
      let sq = this.squares.get(variable.name);
      if (!sq) {
        sq = tf.variable(tf.zerosLike(variable), false);
        this.squares.set(variable.name, sq);
      }
      const s = sq;
      tf.tidy(() => {
        const v = tf.add(tf.mul(s, this.alpha), tf.mul(tf.square(g), 1 - this.alpha));
        s.assign(v);
        variable.assign(tf.sub(variable, tf.div(tf.mul(g, learningRate), tf.add(tf.sqrt(v), this.epsilon))));
      });
    }
  }

  getState(): { step: number; tensors: Map<string, tf.Tensor> } {
    const tensors = new Map<string, tf.Tensor>();
    for (const [name, v] of this.squares) tensors.set(`${name}/square_avg`, v);
    return { step: this.stepCount, tensors };
  }

  dispose(): void {
    for (const v of this.squares.values()) v.dispose();
    this.squares.clear();
  }
}

export type Optimizer = AdamW | RmsProp;

export interface GradientStepResult {
  /** The loss before the update. */
  loss: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** The statistics the loss function returned, read back. */
  stats: Float32Array;
  /** False when `accept` vetoed the update (nothing was changed). */
  applied: boolean;
}

/**
 * Evaluates `lossFn` (which returns the scalar loss and a 1-D tensor of statistics to read
 * back), differentiates the loss with respect to `variables`, clips the gradient's global
 * norm to `maxGradNorm` (null: no clipping) and applies `optimizer` with `learningRate`.
 * `accept(stats)` can veto the update after the statistics are known (PPO's target-KL stop).
 * No tensor outlives the call.
 */
export function gradientStep(
  optimizer: Optimizer,
  variables: tf.Variable[],
  lossFn: () => { loss: tf.Scalar; stats: tf.Tensor1D },
  maxGradNorm: number | null,
  learningRate: number,
  accept?: (stats: Float32Array) => boolean,
): GradientStepResult {
  return tf.tidy(() => {
    let statsT: tf.Tensor | null = null;
    const { value, grads } = tf.variableGrads(() => {
      const out = lossFn();
      statsT = tf.keep(tf.concat([tf.reshape(out.loss, [1]), out.stats]));
      return out.loss;
    }, variables);
    const packed = (statsT as tf.Tensor | null)!;
    const all = packed.dataSync() as Float32Array;
    packed.dispose();
    value.dispose();
    const stats = all.slice(1);
    if (accept && !accept(stats)) return { loss: all[0]!, gradNorm: NaN, stats, applied: false };
    const clipped = clipGradNorm(grads, maxGradNorm ?? Infinity);
    optimizer.applyGradients(clipped.grads, learningRate);
    return { loss: all[0]!, gradNorm: clipped.norm, stats, applied: true };
  });
}
