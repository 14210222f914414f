/**
 * A causal LM on onnxruntime: the graph of `causal-lm-graph.ts` in a session, a full
 * forward (logits at every position) and a `DecodeBackend` with the KV cache held as
 * Float32Arrays, for the shared generation loop of `src/lm/sampler.ts`.
 *
 * Weights come from a tfjs `CausalLM` (the reference engine, which trains) and follow it by
 * one of two routes, chosen when the model is created:
 *   'initializers'  weights are constants of the session (onnxruntime pre-packs them for
 *                   MatMul); a weight change rebuilds the session from in-memory weights
 *                   (external data: no protobuf pass over the weights);
 *   'inputs'        weights are graph inputs fed on every run (inputs are zero-copy): one
 *                   session for the whole run, no pre-packing.
 * `scripts/bench-onnx.ts` measures both; the sampler's default is the faster one there.
 *
 * Cache layout per layer: key and value [B, Hkv, P, Dh] (the graph's present outputs, kept
 * as the next step's past inputs), the attention mask [B, P] and each row's count of real
 * tokens (its next position id). Dropping or fanning out rows copies whole row blocks.
 */
import type * as tf from '@tensorflow/tfjs';
import { type CausalLMConfig, type ModelDims, modelDims } from '../../lm/config.ts';
import { type CausalLM, parameterSpecs } from '../../lm/model.ts';
import type { DecodeBackend, DecoderLimits } from '../../lm/sampler.ts';
import { serializeCausalLM, pastName, presentName } from './causal-lm-graph.ts';
import { type Ort, type OrtSession, type OrtTensor, type SessionOptions, createSession, floatTensor, int64Tensor, loadOrt } from './runtime.ts';

export type WeightRoute = 'initializers' | 'inputs';

export interface OrtCausalLMOptions extends SessionOptions {
  /** How weights reach the session (see the file header). Default 'initializers'. */
  route?: WeightRoute;
  /** Fused com.microsoft operators in the graph (`CausalLMGraphOptions.fused`). Default false. */
  fused?: boolean;
}

/** The weights of a tfjs model as Float32Arrays (our layout, Hugging Face names). */
export function readWeights(model: CausalLM): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  model.variables.forEach((v, i) => out.set(model.variableNames[i]!, v.dataSync() as Float32Array));
  return out;
}

/** Identity of a tfjs model's current weight buffers: `assign` (every optimizer step) replaces them. */
function weightVersion(model: CausalLM): unknown[] {
  return model.variables.map((v) => (v as tf.Variable & { dataId: unknown }).dataId);
}

export class OrtCausalLM {
  readonly dims: ModelDims;
  readonly route: WeightRoute;
  /** Seconds spent bringing weights into the engine (reads, and session builds on the 'initializers' route). */
  syncSeconds = 0;
  /** How many times weights were brought in. */
  syncs = 0;
  private sampling: OrtSession | null = null; // last-position logits
  private full: OrtSession | null = null; // logits at every position (built on demand)
  private weights: Map<string, Float32Array>;
  private weightFeeds: Record<string, OrtTensor> = {};
  private version: unknown[] | null = null;

  private constructor(
    private readonly ort: Ort,
    readonly config: CausalLMConfig,
    weights: Map<string, Float32Array>,
    private readonly options: OrtCausalLMOptions,
  ) {
    this.dims = modelDims(config);
    this.route = options.route ?? 'initializers';
    this.weights = weights;
  }

  /** An onnxruntime copy of `model` (weights read now; `sync` follows later changes). */
  static async fromModel(model: CausalLM, options: OrtCausalLMOptions = {}): Promise<OrtCausalLM> {
    const ort = await loadOrt();
    const m = new OrtCausalLM(ort, model.config, readWeights(model), options);
    m.version = weightVersion(model);
    await m.rebuild();
    return m;
  }

  /** A model from weights in our layout (names as `parameterSpecs`). */
  static async fromWeights(config: CausalLMConfig, weights: Map<string, Float32Array>, options: OrtCausalLMOptions = {}): Promise<OrtCausalLM> {
    const ort = await loadOrt();
    const m = new OrtCausalLM(ort, config, weights, options);
    await m.rebuild();
    return m;
  }

  get limits(): DecoderLimits {
    return {
      vocabSize: this.dims.vocabSize,
      maxPositions: this.dims.maxPositions,
      positionsField: this.config.model_type === 'gpt2' ? 'n_positions' : 'max_position_embeddings',
    };
  }

  /** Bring in `model`'s weights if they changed since the last call (after an optimizer step). Returns whether they had. */
  async sync(model: CausalLM): Promise<boolean> {
    const version = weightVersion(model);
    if (this.version && version.length === this.version.length && version.every((v, i) => v === this.version![i])) return false;
    const t0 = performance.now();
    this.weights = readWeights(model);
    this.version = version;
    await this.rebuild();
    this.syncSeconds += (performance.now() - t0) / 1000;
    this.syncs++;
    return true;
  }

  private async build(lastOnly: boolean): Promise<OrtSession> {
    const asInputs = this.route === 'inputs';
    const { model, externalData } = serializeCausalLM(this.config, this.weights, { lastOnly, weightsAsInputs: asInputs, fused: this.options.fused ?? false, externalData: asInputs ? undefined : 'weights.bin' });
    return createSession(model, externalData, this.options);
  }

  private async rebuild(): Promise<void> {
    if (this.route === 'inputs') {
      this.weightFeeds = {};
      for (const [name, data] of this.weights) this.weightFeeds[name] = floatTensor(this.ort, data, this.shapeOf(name));
      if (!this.sampling) this.sampling = await this.build(true);
      return;
    }
    await this.release();
    this.sampling = await this.build(true);
  }

  private shapes: Map<string, number[]> | null = null;
  private shapeOf(name: string): number[] {
    if (!this.shapes) {
      this.shapes = new Map();
      for (const s of parameterSpecs(this.config)) this.shapes.set(s.name, s.shape);
    }
    return this.shapes.get(name)!;
  }

  private async release(): Promise<void> {
    const sessions = [this.sampling, this.full].filter((s): s is OrtSession => s !== null);
    this.sampling = null;
    this.full = null;
    await Promise.all(sessions.map((s) => s.release()));
  }

  async dispose(): Promise<void> {
    await this.release();
  }

  /** Feeds for one run: ids/mask/positions [B, S] / [B, P + S] / [B, S], the past [B, Hkv, P, Dh] per layer. */
  private feeds(ids: ArrayLike<number>, mask: ArrayLike<number>, positions: ArrayLike<number>, B: number, S: number, past: LayerCache[] | null, P: number): Record<string, OrtTensor> {
    const { numLayers: L, numKvHeads: Hkv, headDim: Dh } = this.dims;
    const f: Record<string, OrtTensor> = {
      ...this.weightFeeds,
      input_ids: int64Tensor(this.ort, ids, [B, S]),
      attention_mask: int64Tensor(this.ort, mask, [B, P + S]),
      position_ids: int64Tensor(this.ort, positions, [B, S]),
    };
    const empty = new Float32Array(0);
    for (let i = 0; i < L; i++) {
      f[pastName(i, 'key')] = floatTensor(this.ort, past ? past[i]!.key : empty, [B, Hkv, P, Dh]);
      f[pastName(i, 'value')] = floatTensor(this.ort, past ? past[i]!.value : empty, [B, Hkv, P, Dh]);
    }
    return f;
  }

  /** Logits at every position for ids/mask [B, T] (mask 1 = real; positions as the tfjs model): [B * T * V]. */
  async forward(ids: Int32Array, B: number, T: number, mask?: Int32Array): Promise<Float32Array> {
    if (!this.full) this.full = await this.build(false);
    const m = mask ?? new Int32Array(B * T).fill(1);
    const out = await this.full.run(this.feeds(ids, m, positionsOf(m, B, T), B, T, null, 0), ['logits']);
    return out['logits']!.data as Float32Array;
  }

  /** A fresh decoding backend (one per chunk of the generation loop). */
  decoder(): DecodeBackend {
    return new OrtDecoder(this);
  }

  /** @internal one cached run of the sampling graph. */
  async runCached(ids: ArrayLike<number>, mask: ArrayLike<number>, positions: ArrayLike<number>, B: number, S: number, past: LayerCache[] | null, P: number): Promise<{ logits: Float32Array; present: LayerCache[] }> {
    if (!this.sampling) throw new Error('OrtCausalLM: the model has been disposed');
    const out = await this.sampling.run(this.feeds(ids, mask, positions, B, S, past, P));
    const present: LayerCache[] = [];
    for (let i = 0; i < this.dims.numLayers; i++) {
      present.push({ key: out[presentName(i, 'key')]!.data as Float32Array, value: out[presentName(i, 'value')]!.data as Float32Array });
    }
    return { logits: out['logits']!.data as Float32Array, present };
  }
}

interface LayerCache {
  key: Float32Array; // [B, Hkv, P, Dh]
  value: Float32Array;
}

/** Position ids as the tfjs model: cumsum(mask) - 1, clamped at 0 ([B, T] row-major). */
export function positionsOf(mask: ArrayLike<number>, B: number, T: number): Int32Array {
  const pos = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    let c = 0;
    for (let t = 0; t < T; t++) {
      c += mask[b * T + t]!;
      pos[b * T + t] = Math.max(c - 1, 0);
    }
  }
  return pos;
}

class OrtDecoder implements DecodeBackend {
  private cache: LayerCache[] | null = null;
  private mask = new Int32Array(0); // [B, P]
  private counts = new Int32Array(0); // real tokens per row
  private B = 0;
  private P = 0;

  constructor(private readonly lm: OrtCausalLM) {}

  async prefill(ids: Int32Array, mask: Int32Array, U: number, width: number): Promise<Float32Array> {
    const { logits, present } = await this.lm.runCached(ids, mask, positionsOf(mask, U, width), U, width, null, 0);
    this.cache = present;
    this.mask = mask.slice();
    this.B = U;
    this.P = width;
    this.counts = new Int32Array(U);
    for (let u = 0; u < U; u++) for (let t = 0; t < width; t++) this.counts[u]! += mask[u * width + t]!;
    return logits;
  }

  selectRows(rows: Int32Array): void {
    const { numKvHeads: Hkv, headDim: Dh } = this.lm.dims;
    const P = this.P;
    const block = Hkv * P * Dh;
    const pick = (a: Float32Array): Float32Array => {
      const out = new Float32Array(rows.length * block);
      rows.forEach((r, i) => out.set(a.subarray(r * block, (r + 1) * block), i * block));
      return out;
    };
    this.cache = this.cache!.map((c) => ({ key: pick(c.key), value: pick(c.value) }));
    const mask = new Int32Array(rows.length * P);
    rows.forEach((r, i) => mask.set(this.mask.subarray(r * P, (r + 1) * P), i * P));
    this.mask = mask;
    this.counts = Int32Array.from(rows, (r) => this.counts[r]!);
    this.B = rows.length;
  }

  async step(next: Int32Array): Promise<Float32Array> {
    const B = this.B;
    const P = this.P;
    if (next.length !== B) throw new Error(`OrtDecoder.step: ${next.length} tokens for ${B} rows`);
    const mask = new Int32Array(B * (P + 1));
    for (let b = 0; b < B; b++) {
      mask.set(this.mask.subarray(b * P, (b + 1) * P), b * (P + 1));
      mask[b * (P + 1) + P] = 1;
    }
    const positions = this.counts.slice();
    const { logits, present } = await this.lm.runCached(next, mask, positions, B, 1, this.cache, P);
    this.cache = present;
    this.mask = mask;
    this.P = P + 1;
    for (let b = 0; b < B; b++) this.counts[b]!++;
    return logits;
  }

  dispose(): void {
    this.cache = null;
  }
}
