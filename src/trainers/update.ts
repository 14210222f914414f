/**
 * One gradient step, shared by every trainer: the loss and its gradient with respect to
 * `variables`, global-norm clipping (Pascanu et al., 2013), the non-finite check, then the
 * AdamW update at the step's learning rate. A non-finite loss or gradient norm throws
 * `NonFiniteLossError` before anything is applied, so the weights stay those of the last
 * good step; the run loop turns it into an error naming the last good checkpoint.
 */
import * as tf from '@tensorflow/tfjs';
import { type AdamW, clipGradNorm } from '../engine/tfjs/optim.ts';

/** The loss diverged: the update was not applied. */
export class NonFiniteLossError extends Error {
  constructor(
    message: string,
    readonly metrics: { loss: number; gradNorm: number },
  ) {
    super(message);
    this.name = 'NonFiniteLossError';
  }
}

export interface UpdateStepOptions {
  learningRate: number;
  /** Clip the global gradient norm to this; 0 = no clipping. */
  gradClip: number;
}

/**
 * Minimises `objective` by one AdamW step over `variables`. `objective` runs inside
 * `tf.variableGrads` and returns the scalar loss plus metrics already read back as numbers.
 * Returns the loss, the gradient norm before clipping, and those metrics.
 */
export function updateStep<M>(
  variables: tf.Variable[],
  optimizer: AdamW,
  objective: () => { loss: tf.Scalar; metrics: M },
  options: UpdateStepOptions,
): { loss: number; gradNorm: number; metrics: M } {
  let metrics: M | undefined;
  const { value, grads } = tf.variableGrads(() => {
    const out = objective();
    metrics = out.metrics;
    return out.loss;
  }, variables);
  try {
    const loss = value.dataSync()[0]!;
    const { gradNorm } = applyGradientUpdate(optimizer, loss, grads, options);
    return { loss, gradNorm, metrics: metrics! };
  } finally {
    tf.dispose([value, ...Object.values(grads)]);
  }
}

/**
 * The second half of `updateStep` for gradients computed elsewhere (another engine):
 * global-norm clipping, the non-finite check (throws `NonFiniteLossError` before anything
 * is applied), the AdamW update. `grads` maps tfjs variable names to gradients; they are
 * not disposed.
 */
export function applyGradientUpdate(optimizer: AdamW, loss: number, grads: Record<string, tf.Tensor>, options: UpdateStepOptions): { gradNorm: number } {
  const clipped = clipGradNorm(grads, options.gradClip);
  try {
    if (!Number.isFinite(loss) || !Number.isFinite(clipped.norm)) {
      throw new NonFiniteLossError(`the loss is ${loss} and the gradient norm ${clipped.norm}`, { loss, gradNorm: clipped.norm });
    }
    // Inside tidy: the optimizer's first update creates its moments from temporaries.
    tf.tidy(() => optimizer.applyGradients(clipped.grads, options.learningRate));
    return { gradNorm: clipped.norm };
  } finally {
    tf.dispose(Object.values(clipped.grads));
  }
}

/**
 * `applyGradientUpdate` for gradients held as plain arrays by Hugging Face parameter name
 * (our layout), as another engine returns them: they become tensors for `model`'s
 * variables, are clipped and applied, then freed. Every variable needs a gradient except
 * those named in `noGradient` (left out of the step, as tfjs autodiff leaves a variable the
 * loss does not reach).
 */
export function applyParameterGradients(
  model: { variables: readonly tf.Variable[]; variableNames: readonly string[] },
  optimizer: AdamW,
  loss: number,
  grads: Map<string, Float32Array>,
  options: UpdateStepOptions,
  noGradient: ReadonlySet<string> = new Set(),
): { gradNorm: number } {
  const tensors: Record<string, tf.Tensor> = {};
  model.variableNames.forEach((name, i) => {
    const v = model.variables[i]!;
    if (noGradient.has(name)) return;
    const g = grads.get(name);
    if (!g) throw new Error(`applyParameterGradients: no gradient for ${name}`);
    tensors[v.name] = tf.tensor(g, v.shape, 'float32');
  });
  try {
    return applyGradientUpdate(optimizer, loss, tensors, options);
  } finally {
    tf.dispose(Object.values(tensors));
  }
}
