/**
 * Where a trainer's per-token quantities and their gradients are computed: tfjs autodiff,
 * or onnxruntime's forward and backward graphs (`src/engine/onnx/trainer.ts`). The
 * objectives stay the same tfjs code over small [n, T] tensors on both engines:
 *
 *   tfjs         the objective runs on the model's differentiable log-probs / entropies /
 *                values inside `tf.variableGrads` (`updateStep`);
 *   onnxruntime  1. forward-only graph: the statistics of the minibatch as plain arrays;
 *                2. the objective on tfjs over those arrays (as variables) gives the loss,
 *                   its metrics and d loss / d statistic;
 *                3. the training graph back-propagates that to every parameter;
 *                4. clipping and AdamW on tfjs (`applyParameterGradients`), so the checkpoint
 *                   and its optimizer state are the same on both engines.
 *
 * A statistic the loss does not use (the entropy when `entropyCoef` = 0) gets no gradient
 * and the backward graph does not compute one.
 */
import * as tf from '@tensorflow/tfjs';
import type { OrtTrainer, ScoreBatch, TokenOutputs, WeightSource } from '../engine/onnx/trainer.ts';
import type { AdamW } from '../engine/tfjs/optim.ts';
import { CausalLM } from '../lm/model.ts';
import { type LogprobBatch, type ValueModel, criticTokenValues, criticValuesNoGrad, logprobsNoGrad, policyTokenStats } from '../lm/token-stats.ts';
import { type UpdateStepOptions, applyParameterGradients, updateStep } from './update.ts';

/** The differentiable per-token statistics of a minibatch, [n, T] each: logprobs and entropy (a policy) or values (a critic). */
export type TokenStats = Record<string, tf.Tensor2D>;

/** A loss over token statistics (call inside a gradient tape), with metrics already read back. */
export type TokenObjective<M> = (stats: TokenStats) => { loss: tf.Scalar; metrics: M };

export interface StepResult<M> {
  loss: number;
  gradNorm: number;
  metrics: M;
}

/** A policy's or a critic's statistics and updates on one engine. */
export interface TokenEngine {
  readonly engine: 'tfjs' | 'onnxruntime';
  readonly kind: 'policy' | 'critic';
  /** The temperature of a policy's distribution (null for a critic). */
  readonly temperature: number | null;
  /**
   * No-gradient statistics of every row, [N, T]: a policy's log-probs (0 off the completion
   * mask, as `logprobsNoGrad`) or a critic's values (as `criticValuesNoGrad`).
   */
  noGrad(layout: LogprobBatch): Promise<Float32Array>;
  /** One AdamW step (clipping, the non-finite check) minimising `objective` on the statistics of `rows`. */
  step<M>(optimizer: AdamW, layout: LogprobBatch, rows: readonly number[], objective: TokenObjective<M>, options: UpdateStepOptions): Promise<StepResult<M>>;
}

/** A policy on tfjs: the trained distribution is softmax(logits / temperature). */
export function tfjsPolicy(model: CausalLM, temperature: number): TokenEngine {
  return {
    engine: 'tfjs',
    kind: 'policy',
    temperature,
    noGrad: async (layout) => logprobsNoGrad(model, layout, temperature),
    step: async (optimizer, layout, rows, objective, options) =>
      updateStep(
        model.variables,
        optimizer,
        () => {
          const { logprobs, entropy } = policyTokenStats(model, layout, rows, temperature);
          return objective({ logprobs, entropy });
        },
        options,
      ),
  };
}

/** A critic (trunk + value head) on tfjs. */
export function tfjsCritic(critic: ValueModel): TokenEngine {
  const variables = [...critic.trunk.variables, ...critic.head.variables];
  return {
    engine: 'tfjs',
    kind: 'critic',
    temperature: null,
    noGrad: async (layout) => criticValuesNoGrad(critic, layout),
    step: async (optimizer, layout, rows, objective, options) => updateStep(variables, optimizer, () => objective({ values: criticTokenValues(critic, layout, rows) }), options),
  };
}

/** A policy on onnxruntime: `trainer` has head 'lm' and the same temperature; `model` holds the weights (and the optimizer's variables). */
export function ortPolicy(trainer: OrtTrainer, model: CausalLM, temperature: number): TokenEngine {
  if (trainer.head !== 'lm') throw new Error('ortPolicy: the trainer has a value head');
  return ortEngine(trainer, model, 'policy', temperature);
}

/** A critic on onnxruntime: `trainer` has head 'value'. */
export function ortCritic(trainer: OrtTrainer, critic: ValueModel): TokenEngine {
  if (trainer.head !== 'value') throw new Error('ortCritic: the trainer has an LM head');
  const source: WeightSource = { variables: [...critic.trunk.variables, ...critic.head.variables], variableNames: [...critic.trunk.variableNames, ...critic.head.variableNames] };
  return ortEngine(trainer, source, 'critic', null);
}

let statCounter = 0;

/** Rows per forward of the no-gradient passes (old policy, reference, old values). */
const NO_GRAD_ROWS = 64;

function ortEngine(trainer: OrtTrainer, source: WeightSource, kind: 'policy' | 'critic', temperature: number | null): TokenEngine {
  const primary = kind === 'policy' ? 'logprobs' : 'values';
  const graphParams = new Set(trainer.parameterNames);
  // Variables outside the graph (a critic trunk's untied LM head) get no gradient, as with tfjs autodiff.
  const outside = new Set(source.variableNames.filter((n) => !graphParams.has(n)));
  return {
    engine: 'onnxruntime',
    kind,
    temperature,
    noGrad: async (layout) => {
      const N = layout.numRows;
      const T = layout.completionLength;
      if (T === 0) return new Float32Array(0);
      // In chunks of rows, so the forward's [rows, T, vocab] logits stay bounded on large models.
      const out = new Float32Array(N * T);
      for (let start = 0; start < N; start += NO_GRAD_ROWS) {
        const rows = Array.from({ length: Math.min(NO_GRAD_ROWS, N - start) }, (_, i) => start + i);
        out.set((await trainer.forward(source, scoreBatch(layout, rows)))[primary]!, start * T);
      }
      if (kind === 'policy') for (let i = 0; i < out.length; i++) out[i]! *= layout.completionMask[i]!;
      return out;
    },
    step: async (optimizer, layout, rows, objective, options) => {
      const n = rows.length;
      const T = layout.completionLength;
      if (T === 0) throw new Error('TokenEngine.step: the batch has no completion tokens');
      const batch = scoreBatch(layout, rows);
      const forward = await trainer.forward(source, batch);
      const { loss, upstream, metrics } = objectiveGradient(forward, n, T, objective);
      const { grads } = await trainer.gradients(source, batch, upstream);
      const { gradNorm } = applyParameterGradients(source, optimizer, loss, grads, options, outside);
      return { loss, gradNorm, metrics };
    },
  };
}

/** The loss of `objective` on plain statistics [n, T], its metrics, and d loss / d statistic (only for the statistics it uses). */
function objectiveGradient<M>(stats: TokenOutputs, n: number, T: number, objective: TokenObjective<M>): { loss: number; upstream: TokenOutputs; metrics: M } {
  const names = Object.keys(stats);
  const vars = names.map((k) => tf.tidy(() => tf.variable(tf.tensor2d(stats[k]!, [n, T]), true, `token_stat_${k}_${statCounter++}`)));
  try {
    let metrics: M | undefined;
    const { value, grads } = tf.variableGrads(() => {
      const out = objective(Object.fromEntries(names.map((k, i) => [k, vars[i]! as tf.Tensor2D])));
      metrics = out.metrics;
      return out.loss;
    }, vars);
    try {
      const upstream: TokenOutputs = {};
      names.forEach((k, i) => {
        const g = grads[vars[i]!.name];
        if (g) upstream[k] = g.dataSync() as Float32Array;
      });
      return { loss: value.dataSync()[0]!, upstream, metrics: metrics! };
    } finally {
      tf.dispose([value, ...Object.values(grads)]);
    }
  } finally {
    for (const v of vars) v.dispose();
  }
}

/** Rows `rows` of a layout as the engine's input: the first P + T - 1 columns, the last T positions scored. */
export function scoreBatch(layout: LogprobBatch, rows: readonly number[]): ScoreBatch {
  const { promptLength: P, completionLength: T } = layout;
  const W = P + T;
  const S = W - 1; // the last completion token is only a target
  const n = rows.length;
  const ids = new Int32Array(n * S);
  const mask = new Int32Array(n * S);
  const labels = new Int32Array(n * T);
  rows.forEach((r, i) => {
    ids.set(layout.ids.subarray(r * W, r * W + S), i * S);
    for (let j = 0; j < S; j++) mask[i * S + j] = layout.attentionMask[r * W + j]!;
    labels.set(layout.completionIds.subarray(r * T, (r + 1) * T), i * T);
  });
  return { ids, mask, labels, B: n, S, N: T };
}

/** A policy given as a model (tfjs at `temperature`) or as an engine (its temperature must match). */
export function asPolicy(policy: CausalLM | TokenEngine, temperature: number): TokenEngine {
  if (policy instanceof CausalLM) return tfjsPolicy(policy, temperature);
  if (policy.kind !== 'policy') throw new Error('expected a policy engine, got a critic');
  if (policy.temperature !== temperature) throw new Error(`the policy engine scores softmax(logits / ${policy.temperature}), the run's temperature is ${temperature}`);
  return policy;
}

/** A critic given as a model (tfjs) or as an engine. */
export function asCritic(critic: ValueModel | TokenEngine): TokenEngine {
  if ('trunk' in critic) return tfjsCritic(critic);
  if (critic.kind !== 'critic') throw new Error('expected a critic engine, got a policy');
  return critic;
}
