/**
 * Decoder-only transformer language model in TensorFlow.js: GPT-2 and Llama/Qwen2/Qwen3
 * behind one class.
 *
 * GPT-2 block (pre-norm):   x += Attn(LN1(x));  x += W2 gelu_tanh(W1 LN2(x))
 * Llama block (pre-norm):   x += Attn(RMS1(x)); x += Wd (silu(Wg RMS2(x)) * Wu RMS2(x))
 * Attention:                softmax(Q K^T / sqrt(Dh) + mask) V, per head; Llama applies
 *                           RoPE to Q and K first, and K/V have Hkv <= H heads shared by
 *                           groups of H/Hkv query heads (grouped-query attention).
 * Qwen3 Q/K norm:           q_h = RMS_q(q_h), k_h = RMS_k(k_h) over each head's Dh values
 *                           (one gain vector [Dh] shared by all heads), before RoPE.
 * LM head:                  logits = norm(x) E^T when tied, else norm(x) W_lm.
 *
 * Sources: Radford et al. 2019 (GPT-2); Touvron et al. 2023 (Llama); Su et al. 2021 (RoPE,
 * applied in Hugging Face's "rotate_half" layout: the two halves of each head vector form
 * the rotated pairs); Ainslie et al. 2023 (GQA); Qwen team 2025 (Qwen3 Technical Report,
 * QK-norm); Hugging Face `modeling_gpt2.py`, `modeling_llama.py`, `modeling_qwen2.py`,
 * `modeling_qwen3.py` for the exact equations and parameter names.
 *
 * Layout choices for the wasm backend (see perf-notes.md):
 * - every projection weight is stored [in, out] so each dense layer is `matMul(x, W)` with no
 *   transpose flag (Hugging Face Linear weights [out, in] are transposed at load and save;
 *   GPT-2's Conv1D weights are already [in, out]);
 * - the residual stream is kept 2-D [B*T, D] so dense layers are plain 2-D products;
 * - Q/K/V are split before reshaping to [B, T, H, Dh], and only 4-D transposes are used; K and
 *   V are kept as [B, Hkv, T, Dh] (also the KV-cache layout, where appending a decoded
 *   position copies whole rows) and scores are matMul(Q, K, transposeB): a training or
 *   prefill product materialises K^T once (engine fix), a one-row decode product reads K in
 *   place;
 * - training with many activations recomputes each block in the backward pass instead of
 *   keeping its intermediates (`gradientCheckpointing`);
 * - grouped-query attention needs no repeat of K/V: the G = H/Hkv query heads of a group
 *   are folded into the row axis, [B, Hkv, G*T, Dh] @ ([B, Hkv, Tk, Dh])^T.
 *
 * Padding and positions follow Hugging Face generation: with an attention mask (1 = real,
 * 0 = left padding) the position of a token is cumsum(mask) - 1, clamped at 0, and padded
 * keys are masked out of attention; without a mask positions are 0..T-1.
 *
 * Deliberate simplifications: no dropout (RLVR fine-tuning runs without it), float32 only.
 */
import * as tf from '@tensorflow/tfjs';
import type { Rng } from '../core/rng.ts';
import { type CausalLMConfig, type ModelDims, hasOProjBias, hasQkNorm, hasQkvBias, modelDims } from './config.ts';
import { KVCache } from './kv-cache.ts';

/** One trainable tensor: its Hugging Face name, our shape, and how it is initialised. */
export interface ParamSpec {
  /** Hugging Face state-dict name (`transformer.h.0.attn.c_attn.weight`, `model.norm.weight`, ...). */
  name: string;
  /** Shape in our layout; projection weights are [in, out]. */
  shape: number[];
  /** Initialisation used by `CausalLM.create`. */
  init: 'normal' | 'zeros' | 'ones';
  /** Std of the normal initialisation (0 for zeros/ones). */
  std: number;
  /** True when Hugging Face stores this matrix as a torch Linear [out, in], the transpose of ours. */
  transposed: boolean;
}

/** Additive score bias for masked attention entries: exp underflows to exactly 0 after the softmax's max-shift. */
const MASKED = -1e9;

/**
 * The parameters of a model in a fixed order, named as in Hugging Face's `*ForCausalLM`
 * state dict. GPT-2 residual output projections (`c_proj`) use std / sqrt(2 * n_layer),
 * as Hugging Face and nanoGPT do; all other matrices use `initializer_range`.
 */
export function parameterSpecs(config: CausalLMConfig): ParamSpec[] {
  const d = modelDims(config);
  const std = config.initializer_range;
  const specs: ParamSpec[] = [];
  const add = (name: string, shape: number[], init: ParamSpec['init'], transposed = false, s = std): void => {
    specs.push({ name, shape, init, std: init === 'normal' ? s : 0, transposed });
  };
  const D = d.hiddenSize;
  if (config.model_type === 'gpt2') {
    const residStd = std / Math.sqrt(2 * d.numLayers);
    add('transformer.wte.weight', [d.vocabSize, D], 'normal');
    add('transformer.wpe.weight', [d.maxPositions, D], 'normal');
    for (let i = 0; i < d.numLayers; i++) {
      const p = `transformer.h.${i}.`;
      add(p + 'ln_1.weight', [D], 'ones');
      add(p + 'ln_1.bias', [D], 'zeros');
      add(p + 'attn.c_attn.weight', [D, 3 * D], 'normal');
      add(p + 'attn.c_attn.bias', [3 * D], 'zeros');
      add(p + 'attn.c_proj.weight', [D, D], 'normal', false, residStd);
      add(p + 'attn.c_proj.bias', [D], 'zeros');
      add(p + 'ln_2.weight', [D], 'ones');
      add(p + 'ln_2.bias', [D], 'zeros');
      add(p + 'mlp.c_fc.weight', [D, d.intermediateSize], 'normal');
      add(p + 'mlp.c_fc.bias', [d.intermediateSize], 'zeros');
      add(p + 'mlp.c_proj.weight', [d.intermediateSize, D], 'normal', false, residStd);
      add(p + 'mlp.c_proj.bias', [D], 'zeros');
    }
    add('transformer.ln_f.weight', [D], 'ones');
    add('transformer.ln_f.bias', [D], 'zeros');
    return specs;
  }
  const qDim = d.numHeads * d.headDim;
  const kvDim = d.numKvHeads * d.headDim;
  const qkvBias = hasQkvBias(config);
  const oBias = hasOProjBias(config);
  const qkNorm = hasQkNorm(config);
  add('model.embed_tokens.weight', [d.vocabSize, D], 'normal');
  for (let i = 0; i < d.numLayers; i++) {
    const p = `model.layers.${i}.`;
    add(p + 'input_layernorm.weight', [D], 'ones');
    add(p + 'self_attn.q_proj.weight', [D, qDim], 'normal', true);
    if (qkvBias) add(p + 'self_attn.q_proj.bias', [qDim], 'zeros');
    add(p + 'self_attn.k_proj.weight', [D, kvDim], 'normal', true);
    if (qkvBias) add(p + 'self_attn.k_proj.bias', [kvDim], 'zeros');
    add(p + 'self_attn.v_proj.weight', [D, kvDim], 'normal', true);
    if (qkvBias) add(p + 'self_attn.v_proj.bias', [kvDim], 'zeros');
    add(p + 'self_attn.o_proj.weight', [qDim, D], 'normal', true);
    if (oBias) add(p + 'self_attn.o_proj.bias', [D], 'zeros');
    if (qkNorm) {
      add(p + 'self_attn.q_norm.weight', [d.headDim], 'ones');
      add(p + 'self_attn.k_norm.weight', [d.headDim], 'ones');
    }
    add(p + 'post_attention_layernorm.weight', [D], 'ones');
    add(p + 'mlp.gate_proj.weight', [D, d.intermediateSize], 'normal', true);
    add(p + 'mlp.up_proj.weight', [D, d.intermediateSize], 'normal', true);
    add(p + 'mlp.down_proj.weight', [d.intermediateSize, D], 'normal', true);
  }
  add('model.norm.weight', [D], 'ones');
  if (!config.tie_word_embeddings) add('lm_head.weight', [D, d.vocabSize], 'normal', true);
  return specs;
}

export interface ForwardOptions {
  /** [B, T] (or [B, pastLen + t] for `forwardCached`): 1 = real token, 0 = left padding. */
  attentionMask?: tf.Tensor2D;
}

export interface CachedForwardOptions extends ForwardOptions {
  /**
   * Return the logits of the last new position only ([B, 1, V]); the cache still receives
   * every position. A prompt prefill needs only those, and skips the LM head over the prompt.
   */
  lastOnly?: boolean;
}

/** What one pass over the blocks produces. */
interface RunResult {
  hidden: tf.Tensor3D; // [B, T, D] after the final norm
  keys: tf.Tensor4D[]; // per layer [B, Hkv, Tk, Dh]
  values: tf.Tensor4D[]; // per layer [B, Hkv, Tk, Dh]
  mask: tf.Tensor2D | null; // [B, Tk] float32
}

let modelCounter = 0;

export class CausalLM {
  readonly config: CausalLMConfig;
  readonly dims: ModelDims;
  /** Trainable variables, in `parameterSpecs` order. */
  readonly variables: tf.Variable[];
  /** Hugging Face names of `variables`, same order. */
  readonly variableNames: string[];
  /**
   * Gradient checkpointing of the transformer blocks while gradients are recorded: each
   * block keeps only its input in the forward pass and runs again in the backward pass
   * (one more forward of the blocks, ~1/3 more compute), so the activations held for the
   * backward pass shrink from all blocks' to one block's. 'auto' turns it on when the
   * blocks' forward intermediates for the batch are estimated above 0.5 GiB
   * (`blockActivationBytes`), e.g. a 135M-parameter model at 4 x 128 tokens, whose step
   * otherwise overflows the 4 GiB heap of the wasm backend. Inference is never affected.
   */
  gradientCheckpointing: 'auto' | boolean = 'auto';
  private readonly byName: Map<string, tf.Variable>;
  private readonly specs: ParamSpec[];
  /** The parameters of each block, in `parameterSpecs` order. */
  private readonly blockParams: tf.Variable[][];
  /** RoPE tables [maxPositions, Dh] (Llama family only). */
  private readonly ropeCos: tf.Tensor2D | null = null;
  private readonly ropeSin: tf.Tensor2D | null = null;
  private disposed = false;

  private constructor(config: CausalLMConfig, weights: Map<string, tf.Tensor>, trainable: boolean, source: string) {
    this.config = config;
    this.dims = modelDims(config);
    this.specs = parameterSpecs(config);
    checkWeights(this.specs, weights, source);
    const id = modelCounter++;
    this.byName = new Map();
    this.variables = [];
    this.variableNames = [];
    for (const s of this.specs) {
      const t = weights.get(s.name)!;
      const init = t.dtype === 'float32' ? t : tf.cast(t, 'float32');
      const v = tf.variable(init, trainable, `causal_lm_${id}/${s.name}`);
      if (init !== t) init.dispose();
      this.byName.set(s.name, v);
      this.variables.push(v);
      this.variableNames.push(s.name);
    }
    this.blockParams = Array.from({ length: this.dims.numLayers }, (_, l) => {
      const prefix = config.model_type === 'gpt2' ? `transformer.h.${l}.` : `model.layers.${l}.`;
      return this.variables.filter((_, i) => this.variableNames[i]!.startsWith(prefix));
    });
    if (config.model_type !== 'gpt2') {
      const { cos, sin } = ropeTables(this.dims.maxPositions, this.dims.headDim, config.rope_theta);
      this.ropeCos = tf.tensor2d(cos, [this.dims.maxPositions, this.dims.headDim]);
      this.ropeSin = tf.tensor2d(sin, [this.dims.maxPositions, this.dims.headDim]);
    }
  }

  /**
   * A freshly initialised model: normal(0, initializer_range) matrices and embeddings drawn
   * from `rng` in `parameterSpecs` order, zero biases, unit norm gains.
   */
  static create(config: CausalLMConfig, rng: Rng): CausalLM {
    const weights = new Map<string, tf.Tensor>();
    for (const s of parameterSpecs(config)) {
      const data = new Float32Array(s.shape.reduce((a, b) => a * b, 1));
      if (s.init === 'normal') rng.fillNormal(data, 0, s.std);
      else if (s.init === 'ones') data.fill(1);
      weights.set(s.name, tf.tensor(data, s.shape, 'float32'));
    }
    try {
      return new CausalLM(config, weights, true, 'CausalLM.create');
    } finally {
      for (const t of weights.values()) t.dispose();
    }
  }

  /**
   * A model holding copies of `weights` (our layout, names as in `parameterSpecs`); every
   * parameter must be present with its exact shape. The caller keeps ownership of `weights`.
   * `source` names where the weights came from in error messages.
   */
  static fromWeights(
    config: CausalLMConfig,
    weights: Map<string, tf.Tensor>,
    options: { trainable?: boolean; source?: string } = {},
  ): CausalLM {
    return new CausalLM(config, weights, options.trainable ?? true, options.source ?? 'CausalLM.fromWeights');
  }

  /** The parameter specs of this model (names, our shapes, whether HF stores the transpose). */
  parameterSpecs(): ParamSpec[] {
    return this.specs.map((s) => ({ ...s, shape: [...s.shape] }));
  }

  numParameters(): number {
    return this.variables.reduce((n, v) => n + v.size, 0);
  }

  /** Architecture, size, vocabulary and context, as run headers print them. */
  summary(): { name: string; parameters: number; vocab: number; context: number } {
    return { name: this.config.model_type, parameters: this.numParameters(), vocab: this.dims.vocabSize, context: this.dims.maxPositions };
  }

  /**
   * The live parameter variables by Hugging Face name, in our layout. Do not dispose them;
   * read them, or pass the map to another model's `setWeights`.
   */
  getWeights(): Map<string, tf.Tensor> {
    return new Map(this.byName);
  }

  /** Copy values into this model's variables; `weights` must name every parameter with its exact shape. */
  setWeights(weights: Map<string, tf.Tensor>): void {
    this.checkLive();
    checkWeights(this.specs, weights, 'CausalLM.setWeights');
    tf.tidy(() => {
      for (const [name, v] of this.byName) {
        const t = weights.get(name)!;
        v.assign(t.dtype === 'float32' ? t : t.toFloat());
      }
    });
  }

  /**
   * An independent copy (same config and values). Pass `trainable: false` for a frozen
   * reference model whose variables `tf.variableGrads` / optimizers leave alone.
   */
  clone(options: { trainable?: boolean } = {}): CausalLM {
    this.checkLive();
    return new CausalLM(this.config, this.byName, options.trainable ?? this.variables[0]?.trainable ?? true, 'CausalLM.clone');
  }

  dispose(): void {
    if (this.disposed) return;
    for (const v of this.variables) v.dispose();
    this.ropeCos?.dispose();
    this.ropeSin?.dispose();
    this.disposed = true;
  }

  /** Logits for every position: ids int32 [B, T] -> [B, T, V]. */
  forward(ids: tf.Tensor2D, options: ForwardOptions = {}): tf.Tensor3D {
    this.checkInputs(ids, options.attentionMask, 0, 'forward');
    return tf.tidy(() => this.logits(this.run(ids, options.attentionMask ?? null, null).hidden));
  }

  /** Final-norm hidden states [B, T, D] (the input of the LM head, and of value heads). */
  hiddenStates(ids: tf.Tensor2D, options: ForwardOptions = {}): tf.Tensor3D {
    this.checkInputs(ids, options.attentionMask, 0, 'hiddenStates');
    return tf.tidy(() => this.run(ids, options.attentionMask ?? null, null).hidden);
  }

  /** LM head: hidden [B, T, D] -> logits [B, T, V]. */
  logits(hidden: tf.Tensor3D): tf.Tensor3D {
    const [B, T, D] = hidden.shape;
    if (D !== this.dims.hiddenSize) {
      throw new Error(`CausalLM.logits: hidden states have width ${D}, the model has hidden size ${this.dims.hiddenSize}`);
    }
    return tf.tidy(() => {
      const h = tf.reshape(hidden, [B * T, D]); // [B*T, D]
      const out =
        this.config.tie_word_embeddings
          ? tf.matMul(h, this.embedding(), false, true) // [B*T, V]
          : tf.matMul(h, this.w('lm_head.weight')); // [B*T, V]
      return tf.reshape(out, [B, T, this.dims.vocabSize]);
    });
  }

  /** An empty KV cache for `batch` rows and at most `maxLength` positions (prompt + completion). */
  createCache(batch: number, maxLength: number): KVCache {
    if (maxLength > this.dims.maxPositions) {
      throw new Error(
        `CausalLM.createCache: maxLength ${maxLength} exceeds the model's ${this.config.model_type === 'gpt2' ? 'n_positions' : 'max_position_embeddings'} (${this.dims.maxPositions})`,
      );
    }
    return new KVCache(batch, maxLength, this.dims.numLayers);
  }

  /**
   * Incremental forward: logits [B, t, V] for `ids` [B, t] following the positions already in
   * `cache`, which is extended by these t positions. `attentionMask`, when given, covers all
   * pastLen + t positions; without it the new tokens count as real and earlier positions keep
   * the mask they were decoded with. The first call (empty cache) is the prompt prefill.
   * With `lastOnly` the result is [B, 1, V], the logits of the last of the t positions.
   */
  forwardCached(ids: tf.Tensor2D, cache: KVCache, options: CachedForwardOptions = {}): tf.Tensor3D {
    if (cache.numLayers !== this.dims.numLayers) {
      throw new Error(`CausalLM.forwardCached: the cache has ${cache.numLayers} layers, the model has ${this.dims.numLayers}`);
    }
    if (ids.shape[0] !== cache.batch) {
      throw new Error(`CausalLM.forwardCached: ids have batch ${ids.shape[0]}, the cache was created for batch ${cache.batch}`);
    }
    cache.checkAppend(ids.shape[1] ?? 0);
    this.checkInputs(ids, options.attentionMask, cache.length, 'forwardCached');
    const out = tf.tidy(() => {
      const T = ids.shape[1];
      let mask: tf.Tensor2D;
      if (options.attentionMask) mask = tf.cast(options.attentionMask, 'float32');
      else if (cache.mask) mask = tf.concat([cache.mask, tf.ones([cache.batch, T])], 1);
      else mask = tf.ones([cache.batch, T]);
      const r = this.run(ids, mask, cache);
      const hidden = options.lastOnly && T > 1 ? tf.slice(r.hidden, [0, T - 1, 0], [-1, 1, -1]) : r.hidden; // [B, 1 or T, D]
      return { logits: this.logits(hidden), keys: r.keys, values: r.values, mask };
    });
    cache.update(out.keys, out.values, out.mask);
    return out.logits;
  }

  // ---------------------------------------------------------------------------------------

  private checkLive(): void {
    if (this.disposed) throw new Error('CausalLM: the model has been disposed');
  }

  private w(name: string): tf.Variable {
    const v = this.byName.get(name);
    if (!v) throw new Error(`CausalLM: no parameter named ${name}`);
    return v;
  }

  private embedding(): tf.Variable {
    return this.w(this.config.model_type === 'gpt2' ? 'transformer.wte.weight' : 'model.embed_tokens.weight');
  }

  private checkInputs(ids: tf.Tensor2D, mask: tf.Tensor2D | undefined, past: number, where: string): void {
    this.checkLive();
    if (ids.rank !== 2) throw new Error(`CausalLM.${where}: ids must be a 2-D [batch, time] tensor, got shape [${ids.shape}]`);
    if (ids.dtype !== 'int32') throw new Error(`CausalLM.${where}: ids must be int32, got ${ids.dtype}`);
    const [B, T] = ids.shape;
    if (T < 1 || B < 1) throw new Error(`CausalLM.${where}: ids must be non-empty, got shape [${ids.shape}]`);
    if (past + T > this.dims.maxPositions) {
      const field = this.config.model_type === 'gpt2' ? 'n_positions' : 'max_position_embeddings';
      throw new Error(`CausalLM.${where}: sequence length ${past + T} exceeds the model's ${field} (${this.dims.maxPositions})`);
    }
    const data = ids.dataSync();
    for (let i = 0; i < data.length; i++) {
      const v = data[i]!;
      if (v < 0 || v >= this.dims.vocabSize) {
        throw new Error(
          `CausalLM.${where}: token id ${v} at [${Math.floor(i / T)}, ${i % T}] is outside the vocabulary [0, ${this.dims.vocabSize})`,
        );
      }
    }
    if (mask) {
      if (mask.rank !== 2 || mask.shape[0] !== B || mask.shape[1] !== past + T) {
        throw new Error(
          `CausalLM.${where}: attentionMask must have shape [${B}, ${past + T}]${past ? ` (${past} cached + ${T} new positions)` : ''}, got [${mask.shape}]`,
        );
      }
    }
  }

  /**
   * The blocks. `mask` [B, Tk] covers the cached and the new positions (Tk = past + T), or
   * is null (all real, positions past..past+T-1). Call inside tf.tidy.
   */
  private run(ids: tf.Tensor2D, maskIn: tf.Tensor2D | null, cache: KVCache | null): RunResult {
    const cfg = this.config;
    const { hiddenSize: D, numLayers, headDim: Dh } = this.dims;
    const [B, T] = ids.shape;
    const past = cache ? cache.length : 0;
    const Tk = past + T;
    const mask = maskIn ? tf.cast(maskIn, 'float32') : null; // [B, Tk]

    // Positions of the new tokens [B*T]: cumsum(mask) - 1 clamped at 0, or past..past+T-1.
    let positions: tf.Tensor1D;
    if (mask) {
      const cum = tf.sub(tf.cumsum(mask, 1), 1); // [B, Tk]
      const newPos = past > 0 ? tf.slice(cum, [0, past], [B, T]) : cum; // [B, T]
      positions = tf.reshape(tf.cast(tf.maximum(newPos, 0), 'int32'), [B * T]);
    } else {
      const row = Int32Array.from({ length: T }, (_, i) => past + i);
      positions = tf.tensor1d(Int32Array.from({ length: B * T }, (_, i) => row[i % T]!), 'int32');
    }

    // Additive attention bias [B or 1, 1, T, Tk]: causal, and padded keys masked out.
    const causal = new Float32Array(T * Tk);
    for (let i = 0; i < T; i++) for (let j = 0; j < Tk; j++) causal[i * Tk + j] = j <= past + i ? 1 : 0;
    const causalT = tf.tensor4d(causal, [1, 1, T, Tk]);
    const allowed = mask ? tf.mul(causalT, tf.reshape(mask, [B, 1, 1, Tk])) : causalT;
    const bias = tf.mul(tf.sub(allowed, 1), -MASKED) as tf.Tensor4D; // 0 where allowed, MASKED elsewhere

    const flatIds = tf.reshape(ids, [B * T]);
    let x: tf.Tensor2D; // residual stream [B*T, D]
    let cos: tf.Tensor4D | null = null; // [B, T, 1, Dh]
    let sin: tf.Tensor4D | null = null;
    if (cfg.model_type === 'gpt2') {
      x = tf.add(tf.gather(this.w('transformer.wte.weight'), flatIds), tf.gather(this.w('transformer.wpe.weight'), positions));
    } else {
      x = tf.gather(this.w('model.embed_tokens.weight'), flatIds) as tf.Tensor2D;
      cos = tf.reshape(tf.gather(this.ropeCos!, positions), [B, T, 1, Dh]);
      sin = tf.reshape(tf.gather(this.ropeSin!, positions), [B, T, 1, Dh]);
    }

    const ctx: BlockContext = { B, T, Tk, bias, cos, sin, cache, keys: [], values: [] };
    const checkpoint = cache === null && this.checkpointBlocks(B, T);
    for (let l = 0; l < numLayers; l++) x = checkpoint ? this.checkpointedBlock(l, x, ctx) : this.block(l, x, ctx);
    const out =
      cfg.model_type === 'gpt2'
        ? layerNorm(x, this.w('transformer.ln_f.weight'), this.w('transformer.ln_f.bias'), cfg.layer_norm_epsilon)
        : rmsNorm(x, this.w('model.norm.weight'), cfg.rms_norm_eps);
    return { hidden: tf.reshape(out, [B, T, D]), keys: ctx.keys, values: ctx.values, mask };
  }

  /** Attention of layer `layer` on the projections [B*T, H*Dh] / [B*T, Hkv*Dh]; extends the cache arrays of `c`. */
  private attend(q2: tf.Tensor2D, k2: tf.Tensor2D, v2: tf.Tensor2D, layer: number, c: BlockContext): tf.Tensor2D {
    const { numHeads: H, numKvHeads: Hkv, headDim: Dh } = this.dims;
    const { B, T, Tk, cos, sin, cache } = c;
    let q = tf.reshape(q2, [B, T, H, Dh]) as tf.Tensor4D; // [B, T, H, Dh]
    let k = tf.reshape(k2, [B, T, Hkv, Dh]) as tf.Tensor4D; // [B, T, Hkv, Dh]
    const v = tf.reshape(v2, [B, T, Hkv, Dh]) as tf.Tensor4D;
    if (cos && sin) {
      q = applyRope(q, cos, sin);
      k = applyRope(k, cos, sin);
    }
    const qh = tf.transpose(tf.mul(q, 1 / Math.sqrt(Dh)), [0, 2, 1, 3]); // [B, H, T, Dh]
    let kh = tf.transpose(k, [0, 2, 1, 3]) as tf.Tensor4D; // [B, Hkv, T, Dh]
    let vh = tf.transpose(v, [0, 2, 1, 3]) as tf.Tensor4D; // [B, Hkv, T, Dh]
    const pastK = cache?.keys[layer];
    const pastV = cache?.values[layer];
    if (pastK && pastV) {
      kh = tf.concat([pastK, kh], 2); // [B, Hkv, Tk, Dh]
      vh = tf.concat([pastV, vh], 2); // [B, Hkv, Tk, Dh]
    }
    if (cache) {
      c.keys.push(kh);
      c.values.push(vh);
    }
    const G = H / Hkv;
    const qg = tf.reshape(qh, [B, Hkv, G * T, Dh]); // query heads of a group share K/V
    const scores = tf.add(tf.reshape(tf.matMul(qg, kh, false, true), [B, H, T, Tk]), c.bias); // Q K^T [B, H, T, Tk]
    const probs = tf.reshape(tf.softmax(scores), [B, Hkv, G * T, Tk]);
    const ctx = tf.reshape(tf.matMul(probs, vh), [B, H, T, Dh]); // [B, H, T, Dh]
    return tf.reshape(tf.transpose(ctx, [0, 2, 1, 3]), [B * T, H * Dh]); // [B*T, H*Dh]
  }

  /** Transformer block `l`: residual stream [B*T, D] in, [B*T, D] out. */
  private block(l: number, x: tf.Tensor2D, c: BlockContext): tf.Tensor2D {
    const cfg = this.config;
    if (cfg.model_type === 'gpt2') {
      const p = `transformer.h.${l}.`;
      const eps = cfg.layer_norm_epsilon;
      const h1 = layerNorm(x, this.w(p + 'ln_1.weight'), this.w(p + 'ln_1.bias'), eps);
      const qkv = dense(h1, this.w(p + 'attn.c_attn.weight'), this.w(p + 'attn.c_attn.bias')); // [B*T, 3D]
      const [q, k, v] = tf.split(qkv, 3, 1) as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D]; // each [B*T, D]
      const a = this.attend(q, k, v, l, c);
      x = tf.add(x, dense(a, this.w(p + 'attn.c_proj.weight'), this.w(p + 'attn.c_proj.bias')));
      const h2 = layerNorm(x, this.w(p + 'ln_2.weight'), this.w(p + 'ln_2.bias'), eps);
      const m = geluTanh(dense(h2, this.w(p + 'mlp.c_fc.weight'), this.w(p + 'mlp.c_fc.bias'))); // [B*T, I]
      return tf.add(x, dense(m, this.w(p + 'mlp.c_proj.weight'), this.w(p + 'mlp.c_proj.bias')));
    }
    const p = `model.layers.${l}.`;
    const eps = cfg.rms_norm_eps;
    const b = (name: string): tf.Variable | null => this.byName.get(p + name) ?? null;
    const h1 = rmsNorm(x, this.w(p + 'input_layernorm.weight'), eps);
    let q = dense(h1, this.w(p + 'self_attn.q_proj.weight'), b('self_attn.q_proj.bias')); // [B*T, H*Dh]
    let k = dense(h1, this.w(p + 'self_attn.k_proj.weight'), b('self_attn.k_proj.bias')); // [B*T, Hkv*Dh]
    const v = dense(h1, this.w(p + 'self_attn.v_proj.weight'), b('self_attn.v_proj.bias'));
    const qNorm = b('self_attn.q_norm.weight');
    const kNorm = b('self_attn.k_norm.weight');
    if (qNorm && kNorm) {
      // Qwen3: RMSNorm over each head's Dh values, as rows of [B*T*heads, Dh].
      const { headDim: Dh } = this.dims;
      q = tf.reshape(rmsNorm(tf.reshape(q, [-1, Dh]), qNorm, eps), q.shape); // [B*T, H*Dh]
      k = tf.reshape(rmsNorm(tf.reshape(k, [-1, Dh]), kNorm, eps), k.shape); // [B*T, Hkv*Dh]
    }
    const a = this.attend(q, k, v, l, c);
    x = tf.add(x, dense(a, this.w(p + 'self_attn.o_proj.weight'), b('self_attn.o_proj.bias')));
    const h2 = rmsNorm(x, this.w(p + 'post_attention_layernorm.weight'), eps);
    const gate = tf.matMul(h2, this.w(p + 'mlp.gate_proj.weight')); // [B*T, I]
    const up = tf.matMul(h2, this.w(p + 'mlp.up_proj.weight'));
    const m = tf.mul(tf.mul(gate, tf.sigmoid(gate)), up); // silu(gate) * up
    return tf.add(x, tf.matMul(m, this.w(p + 'mlp.down_proj.weight')));
  }

  /** Whether `run` recomputes the blocks in the backward pass for a [B, T] batch (see `gradientCheckpointing`). */
  private checkpointBlocks(B: number, T: number): boolean {
    if (this.gradientCheckpointing === false) return false;
    if (tf.engine().state.gradientDepth === 0) return false; // no gradient is being recorded
    if (this.gradientCheckpointing === true) return true;
    return blockActivationBytes(this.dims, B, T) > CHECKPOINT_AUTO_BYTES;
  }

  /**
   * Block `l` as one custom-gradient op: the forward keeps only its input (and the shared
   * constants); the backward runs the block again under its own gradient tape and returns
   * the gradients of the input and of the block's parameters.
   */
  private checkpointedBlock(l: number, x: tf.Tensor2D, c: BlockContext): tf.Tensor2D {
    const params = this.blockParams[l]!;
    const consts = [c.bias, c.cos, c.sin].filter((t): t is tf.Tensor4D => t !== null);
    const withConsts = (cs: tf.Tensor[]): BlockContext => {
      const [bias, cos, sin] = cs as tf.Tensor4D[];
      return { ...c, bias: bias!, cos: cos ?? null, sin: sin ?? null, cache: null, keys: [], values: [] };
    };
    const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
      const save = args[args.length - 1] as tf.GradSaveFunc;
      const xIn = args[0] as tf.Tensor2D;
      const cs = args.slice(1 + params.length, -1) as tf.Tensor[];
      save([xIn, ...cs]);
      return {
        value: this.block(l, xIn, withConsts(cs)),
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
          const [xSaved, ...cSaved] = saved as [tf.Tensor2D, ...tf.Tensor[]];
          const engine = tf.engine();
          // The inner tape would replace the outer one (both start at gradient depth 0);
          // keep the outer tape for the rest of the outer backward pass.
          const outerTape = engine.state.activeTape;
          try {
            const { value, grads } = engine.gradients(() => this.block(l, xSaved, withConsts(cSaved)), [xSaved, ...params], dy as tf.Tensor2D);
            value.dispose();
            return [...grads, ...cSaved.map((t) => tf.zerosLike(t))]; // the constants get no gradient
          } finally {
            engine.state.activeTape = outerTape;
          }
        },
      };
    });
    return op(x, ...params, ...consts) as tf.Tensor2D;
  }
}

/** Per-call inputs that every block shares. */
interface BlockContext {
  B: number;
  T: number;
  /** Key positions: cached + new. */
  Tk: number;
  /** Additive attention bias [B or 1, 1, T, Tk]. */
  bias: tf.Tensor4D;
  /** RoPE tables gathered at the positions, [B, T, 1, Dh] (Llama family), else null. */
  cos: tf.Tensor4D | null;
  sin: tf.Tensor4D | null;
  cache: KVCache | null;
  /** Filled per layer when decoding with a cache: K and V [B, Hkv, Tk, Dh]. */
  keys: tf.Tensor4D[];
  values: tf.Tensor4D[];
}

/**
 * Bytes of the forward intermediates of all blocks for a [B, T] batch (no cache), fitted on
 * the wasm backend: per token and layer about 14 D + 6 I + 3 H T floats (norms, projections
 * and their splits, RoPE, MLP, and the [H, T, T] scores, bias-added scores and softmax). The
 * backward pass holds a gradient of about the same size for each of them until it ends.
 */
export function blockActivationBytes(dims: ModelDims, B: number, T: number): number {
  return 4 * dims.numLayers * B * T * (14 * dims.hiddenSize + 6 * dims.intermediateSize + 3 * dims.numHeads * T);
}

/** `gradientCheckpointing: 'auto'` recomputes the blocks above this estimate (0.5 GiB). */
export const CHECKPOINT_AUTO_BYTES = 2 ** 29;

/** x @ W (+ b): x [N, in], W [in, out]. */
function dense(x: tf.Tensor2D, w: tf.Tensor, b: tf.Tensor | null): tf.Tensor2D {
  const y = tf.matMul(x, w as tf.Tensor2D) as tf.Tensor2D;
  return b ? (tf.add(y, b) as tf.Tensor2D) : y;
}

/** LayerNorm over the last axis of [N, D]: (x - mean) / sqrt(var + eps) * g + b (biased variance). */
function layerNorm(x: tf.Tensor2D, g: tf.Tensor, b: tf.Tensor, eps: number): tf.Tensor2D {
  const xc = tf.sub(x, tf.mean(x, 1, true));
  const variance = tf.mean(tf.square(xc), 1, true);
  return tf.add(tf.mul(tf.mul(xc, tf.rsqrt(tf.add(variance, eps))), g), b);
}

/** RMSNorm over the last axis of [N, D]: x / sqrt(mean(x^2) + eps) * g. */
function rmsNorm(x: tf.Tensor2D, g: tf.Tensor, eps: number): tf.Tensor2D {
  const ms = tf.mean(tf.square(x), 1, true);
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(ms, eps))), g);
}

/**
 * GPT-2's "gelu_new": 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3), computed as
 * x sigmoid(2u) (the same function, since 0.5 (1 + tanh(u)) = sigmoid(2u)): the wasm Sigmoid
 * kernel is ~5x faster than its Tanh, and the form needs two fewer elementwise ops.
 */
function geluTanh(x: tf.Tensor2D): tf.Tensor2D {
  const u2 = tf.mul(tf.add(x, tf.mul(tf.mul(tf.square(x), x), 0.044715)), 2 * Math.sqrt(2 / Math.PI)); // 2u
  return tf.mul(x, tf.sigmoid(u2));
}

/** RoPE in rotate_half form: x cos + [-x2, x1] sin, with x = [x1, x2] split in halves of Dh. */
function applyRope(x: tf.Tensor4D, cos: tf.Tensor4D, sin: tf.Tensor4D): tf.Tensor4D {
  const [x1, x2] = tf.split(x, 2, 3) as [tf.Tensor4D, tf.Tensor4D];
  const rotated = tf.concat([tf.neg(x2), x1], 3);
  return tf.add(tf.mul(x, cos), tf.mul(rotated, sin));
}

/**
 * cos/sin tables [positions, Dh] for RoPE: angle(p, i) = p * theta^(-2i/Dh) for i < Dh/2,
 * repeated for the second half (Hugging Face's `cat(freqs, freqs)`). Computed in float64.
 */
export function ropeTables(positions: number, headDim: number, theta: number): { cos: Float32Array; sin: Float32Array } {
  const half = headDim / 2;
  const cos = new Float32Array(positions * headDim);
  const sin = new Float32Array(positions * headDim);
  for (let p = 0; p < positions; p++) {
    for (let i = 0; i < half; i++) {
      const angle = p * Math.pow(theta, -(2 * i) / headDim);
      const c = Math.cos(angle);
      const s = Math.sin(angle);
      cos[p * headDim + i] = c;
      cos[p * headDim + i + half] = c;
      sin[p * headDim + i] = s;
      sin[p * headDim + i + half] = s;
    }
  }
  return { cos, sin };
}

/** Throws unless `weights` holds exactly the parameters in `specs` with their shapes. */
function checkWeights(specs: ParamSpec[], weights: Map<string, tf.Tensor>, source: string): void {
  const known = new Set(specs.map((s) => s.name));
  for (const name of weights.keys()) {
    if (!known.has(name)) throw new Error(`${source}: unexpected parameter ${name} (not part of this model's config)`);
  }
  for (const s of specs) {
    const t = weights.get(s.name);
    if (!t) throw new Error(`${source}: missing parameter ${s.name}`);
    if (t.shape.length !== s.shape.length || t.shape.some((n, i) => n !== s.shape[i])) {
      throw new Error(`${source}: parameter ${s.name} has shape [${t.shape}], expected [${s.shape}]`);
    }
  }
}
