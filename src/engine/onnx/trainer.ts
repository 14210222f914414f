/**
 * Gradients on onnxruntime for a tfjs `CausalLM`: the training graph of `train-graph.ts`
 * in one session (weights fed as inputs, read from the tfjs variables at every call, so the
 * optimizer can stay where the checkpoint format lives), returning the per-token log-probs
 * of the labels and d loss / d parameter for an upstream gradient d loss / d logprob.
 */
import type { CausalLM } from '../../lm/model.ts';
import { positionsOf, readWeights } from './causal-lm.ts';
import { type OrtSession, type SessionOptions, createSession, floatTensor, int64Tensor, loadOrt, type Ort, type OrtTensor } from './runtime.ts';
import { causalLMTrainGraph, gradName } from './train-graph.ts';

export interface TrainBatch {
  /** Token ids [B, T]. */
  ids: Int32Array;
  /** Label of each position [B, T] (the next token); any id where dlogprobs is 0. */
  labels: Int32Array;
  /** d loss / d logprob of each label [B, T]; 0 ignores a position. */
  dlogprobs: Float32Array;
  /** 1 = real, 0 = left padding [B, T]; default all real (positions 0..T-1). */
  mask?: Int32Array;
  B: number;
  T: number;
}

export interface TrainResult {
  /** log softmax(logits / temperature)[label], [B, T]. */
  logprobs: Float32Array;
  /** Gradients by Hugging Face parameter name, our layout. */
  grads: Map<string, Float32Array>;
}

export class OrtTrainer {
  private constructor(
    private readonly ort: Ort,
    private readonly model: CausalLM,
    private readonly session: OrtSession,
  ) {}

  static async create(model: CausalLM, options: SessionOptions & { temperature?: number } = {}): Promise<OrtTrainer> {
    const ort = await loadOrt();
    const { model: bytes } = causalLMTrainGraph(model.config, { temperature: options.temperature });
    return new OrtTrainer(ort, model, await createSession(bytes, null, options));
  }

  async gradients(batch: TrainBatch): Promise<TrainResult> {
    const { B, T } = batch;
    const n = B * T;
    for (const [name, a] of [['ids', batch.ids], ['labels', batch.labels], ['dlogprobs', batch.dlogprobs]] as const) {
      if (a.length !== n) throw new Error(`OrtTrainer.gradients: ${name} has ${a.length} entries, expected B x T = ${n}`);
    }
    const mask = batch.mask ?? new Int32Array(n).fill(1);
    const pos = positionsOf(mask, B, T);
    const feeds: Record<string, OrtTensor> = {
      input_ids: int64Tensor(this.ort, batch.ids, [B, T]),
      attention_mask: int64Tensor(this.ort, mask, [B, T]),
      position_ids: int64Tensor(this.ort, pos, [B, T]),
      labels: int64Tensor(this.ort, batch.labels, [B, T]),
      dlogprobs: floatTensor(this.ort, batch.dlogprobs, [B, T]),
    };
    const weights = readWeights(this.model);
    const specs = this.model.parameterSpecs();
    for (const s of specs) feeds[s.name] = floatTensor(this.ort, weights.get(s.name)!, s.shape);
    const out = await this.session.run(feeds);
    const grads = new Map<string, Float32Array>();
    for (const s of specs) grads.set(s.name, out[gradName(s.name)]!.data as Float32Array);
    return { logprobs: out['logprobs']!.data as Float32Array, grads };
  }

  dispose(): Promise<void> {
    return this.session.release();
  }
}
