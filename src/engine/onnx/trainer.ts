/**
 * Forward and backward on onnxruntime for tfjs models: the graphs of `train-graph.ts` in
 * two sessions built on first use (the forward alone, and the forward with its backward),
 * fed with the weights of tfjs variables (graph inputs, read again only when an optimizer
 * step has replaced their buffers, so the optimizer and the checkpoint format stay on tfjs).
 *
 *   forward    per-token log-probs and entropies (head 'lm') or values (head 'value') of
 *              the last N positions, [B, N] each, without gradient;
 *   gradients  the same outputs plus d loss / d parameter for upstream gradients
 *              d loss / d output (dlogprobs, dentropy, dvalues).
 *
 * One `OrtTrainer` serves every model of one shape: the policy, its frozen reference and
 * the old policy share the 'lm' graphs (only the weights fed differ); a critic has its own
 * 'value' trainer.
 */
import type * as tf from '@tensorflow/tfjs';
import type { CausalLMConfig } from '../../lm/config.ts';
import { positionsOf } from './causal-lm.ts';
import { type OrtSession, type SessionOptions, createSession, floatTensor, int64Tensor, loadOrt, type Ort, type OrtTensor } from './runtime.ts';
import { causalLMTrainGraph, gradName, trainGraphParams } from './train-graph.ts';

/** Where a model's weights live: tfjs variables with the graph's parameter names (Hugging Face names, our layout). */
export interface WeightSource {
  variables: readonly tf.Variable[];
  variableNames: readonly string[];
}

/** Rows to score: [B, S] inputs; the last N positions of each row are scored. */
export interface ScoreBatch {
  /** Token ids [B, S]. */
  ids: Int32Array;
  /** 1 = real, 0 = padding [B, S]; default all real (positions 0..S-1). */
  mask?: ArrayLike<number>;
  /** The token scored at each of the last N positions [B, N] (head 'lm'). */
  labels?: Int32Array;
  B: number;
  S: number;
  N: number;
}

/** Per-token outputs [B, N] by name: logprobs and entropy (head 'lm'), or values (head 'value'). */
export type TokenOutputs = Record<string, Float32Array>;

export interface TrainResult {
  outputs: TokenOutputs;
  /** Gradients by parameter name, our layout; only the parameters the outputs reach. */
  grads: Map<string, Float32Array>;
}

export interface OrtTrainerOptions extends SessionOptions {
  /** Log-probs and entropies of softmax(logits / temperature). Default 1. */
  temperature?: number;
  head?: 'lm' | 'value';
  /** Output entropies (head 'lm'). Default false. */
  entropy?: boolean;
  /** Back-propagate an upstream gradient on the entropies too. Default false. */
  entropyGradient?: boolean;
}

/** Identity of tfjs variables' current buffers: `assign` (every optimizer step) replaces them. */
function bufferIds(source: WeightSource): unknown[] {
  return source.variables.map((v) => (v as tf.Variable & { dataId: unknown }).dataId);
}

export class OrtTrainer {
  private forwardSession: Promise<OrtSession> | null = null;
  private trainSession: Promise<OrtSession> | null = null;
  private readonly params: { name: string; shape: number[] }[];
  private readonly feedCache = new WeakMap<WeightSource, { ids: unknown[]; feeds: Record<string, OrtTensor> }>();

  private constructor(
    private readonly ort: Ort,
    readonly config: CausalLMConfig,
    private readonly options: OrtTrainerOptions,
  ) {
    this.params = trainGraphParams(config, options.head ?? 'lm');
  }

  static async create(config: CausalLMConfig, options: OrtTrainerOptions = {}): Promise<OrtTrainer> {
    const trainer = new OrtTrainer(await loadOrt(), config, options);
    // A device other than the CPU is checked now, not at the first step: a missing CUDA build
    // fails before any work is done.
    if (options.device && options.device !== 'cpu') await (trainer.forwardSession = trainer.build(false));
    return trainer;
  }

  /** The parameters the graphs take (and return gradients for), by name. */
  get parameterNames(): string[] {
    return this.params.map((p) => p.name);
  }

  get head(): 'lm' | 'value' {
    return this.options.head ?? 'lm';
  }

  /** The outputs of `batch` under `weights`, without gradient. */
  async forward(weights: WeightSource, batch: ScoreBatch): Promise<TokenOutputs> {
    this.forwardSession ??= this.build(false);
    const out = await (await this.forwardSession).run({ ...this.inputs(batch), ...this.weightFeeds(weights) });
    return this.outputs(out);
  }

  /** The outputs and the gradients of sum over outputs of upstream * output (`upstream` by output name: logprobs, entropy, values). */
  async gradients(weights: WeightSource, batch: ScoreBatch, upstream: TokenOutputs): Promise<TrainResult> {
    this.trainSession ??= this.build(true);
    const feeds = { ...this.inputs(batch), ...this.weightFeeds(weights) };
    const { B, N } = batch;
    const wanted = this.head === 'value' ? ['values'] : this.options.entropyGradient ? ['logprobs', 'entropy'] : ['logprobs'];
    for (const name of wanted) {
      const g = upstream[name] ?? new Float32Array(B * N);
      if (g.length !== B * N) throw new Error(`OrtTrainer.gradients: the upstream gradient of ${name} has ${g.length} entries, expected B x N = ${B * N}`);
      feeds[`d${name}`] = floatTensor(this.ort, g, [B, N]);
    }
    for (const name of Object.keys(upstream)) {
      if (!wanted.includes(name)) throw new Error(`OrtTrainer.gradients: no gradient flows from "${name}" in this graph (it back-propagates ${wanted.join(', ')})`);
    }
    const out = await (await this.trainSession).run(feeds);
    const grads = new Map<string, Float32Array>();
    for (const s of this.params) {
      const g = out[gradName(s.name)];
      if (g) grads.set(s.name, g.data as Float32Array);
    }
    return { outputs: this.outputs(out), grads };
  }

  async dispose(): Promise<void> {
    for (const s of [this.forwardSession, this.trainSession]) if (s) await (await s).release();
    this.forwardSession = this.trainSession = null;
  }

  private build(backward: boolean): Promise<OrtSession> {
    const { temperature, head, entropy, entropyGradient, ...session } = this.options;
    const { model } = causalLMTrainGraph(this.config, { temperature, head, backward, entropy: entropy || entropyGradient, entropyGradient });
    return createSession(model, null, session);
  }

  private inputs(batch: ScoreBatch): Record<string, OrtTensor> {
    const { B, S, N } = batch;
    const w = 'OrtTrainer';
    if (batch.ids.length !== B * S) throw new Error(`${w}: ids has ${batch.ids.length} entries, expected B x S = ${B * S}`);
    if (!(N >= 1 && N <= S)) throw new Error(`${w}: N = ${N} scored positions, expected 1..S = ${S}`);
    const mask = batch.mask ? Int32Array.from(batch.mask) : new Int32Array(B * S).fill(1);
    if (mask.length !== B * S) throw new Error(`${w}: mask has ${mask.length} entries, expected B x S = ${B * S}`);
    const feeds: Record<string, OrtTensor> = {
      input_ids: int64Tensor(this.ort, batch.ids, [B, S]),
      attention_mask: int64Tensor(this.ort, mask, [B, S]),
      position_ids: int64Tensor(this.ort, positionsOf(mask, B, S), [B, S]),
    };
    if (this.head === 'lm') {
      if (!batch.labels || batch.labels.length !== B * N) throw new Error(`${w}: labels has ${batch.labels?.length ?? 0} entries, expected B x N = ${B * N}`);
      feeds['labels'] = int64Tensor(this.ort, batch.labels, [B, N]);
    } else {
      feeds['num_scored'] = int64Tensor(this.ort, [N], [1]);
    }
    return feeds;
  }

  /** The weights as feeds, read from the variables again only when their buffers changed. */
  private weightFeeds(source: WeightSource): Record<string, OrtTensor> {
    const ids = bufferIds(source);
    const cached = this.feedCache.get(source);
    if (cached && cached.ids.length === ids.length && cached.ids.every((id, i) => id === ids[i])) return cached.feeds;
    const byName = new Map(source.variableNames.map((n, i) => [n, source.variables[i]!]));
    const feeds: Record<string, OrtTensor> = {};
    for (const p of this.params) {
      const v = byName.get(p.name);
      if (!v) throw new Error(`OrtTrainer: the model has no parameter ${p.name}`);
      if (v.size !== p.shape.reduce((a, b) => a * b, 1)) throw new Error(`OrtTrainer: ${p.name} has ${v.size} values, the graph expects [${p.shape.join(', ')}]`);
      feeds[p.name] = floatTensor(this.ort, v.dataSync() as Float32Array, p.shape);
    }
    this.feedCache.set(source, { ids, feeds });
    return feeds;
  }

  private outputs(out: Record<string, OrtTensor>): TokenOutputs {
    const names = this.head === 'value' ? ['values'] : ['logprobs', 'entropy'];
    const res: TokenOutputs = {};
    for (const n of names) if (out[n]) res[n] = out[n].data as Float32Array;
    return res;
  }
}
