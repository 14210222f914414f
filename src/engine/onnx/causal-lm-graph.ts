/**
 * Our causal LMs (GPT-2, Llama with GQA and tied or untied embeddings, Qwen2 with q/k/v
 * bias, Qwen3 with q/k norms) as one ONNX graph with a KV cache, in the layout that
 * transformers.js and Optimum use for decoder-only models:
 *
 *   inputs   input_ids [batch_size, sequence_length] int64
 *            attention_mask [batch_size, total_sequence_length] int64 (1 real, 0 left padding)
 *            position_ids [batch_size, sequence_length] int64
 *            past_key_values.{i}.key / .value [batch_size, Hkv, past_sequence_length, Dh]
 *   outputs  logits [batch_size, sequence_length, V] (or [batch_size, 1, V]: `lastOnly`)
 *            present.{i}.key / .value [batch_size, Hkv, total_sequence_length, Dh]
 *
 * An empty past (length 0) makes the graph a prefill; a one-token input with a past is a
 * decode step. The equations are those of `src/lm/model.ts` (the tfjs reference):
 *   GPT-2   x = E[ids] + P[pos];  x += Attn(LN1 x);  x += W2 gelu_tanh(W1 LN2 x)
 *   Llama   x = E[ids];  x += Attn(RMS1 x);  x += Wd (silu(Wg RMS2 x) * Wu RMS2 x)
 *   Attn    softmax(Q K^T / sqrt(Dh) + bias) V with bias 0 where key j <= query position
 *           and the key is real, -1e9 elsewhere (as the tfjs model: a fully padded query
 *           row averages, its output is never read); RoPE (rotate_half) on Q and K from
 *           cos/sin tables gathered at position_ids; Qwen3 RMS-normalises each Q/K head
 *           first; grouped-query attention folds the G = H/Hkv query heads of a group
 *           into the rows of one product with that group's K/V, as the tfjs model does.
 *   head    logits = norm(x) E^T (tied) or norm(x) W_lm.
 * Standard operators only (opset 21: LayerNormalization, Gelu(tanh), RMS normalisation
 * as onnxruntime's SimplifiedLayerNormalization in the default domain), so the graph runs
 * wherever onnxruntime runs, transformers.js in the browser included.
 *
 * Weights are initializers (onnxruntime pre-packs them for MatMul) or, with
 * `weightsAsInputs`, graph inputs named as the Hugging Face state dict, so that one
 * session serves every optimizer step of a training run.
 */
import type { CausalLMConfig } from '../../lm/config.ts';
import { modelDims } from '../../lm/config.ts';
import { parameterSpecs, ropeTables } from '../../lm/model.ts';
import { type Dim, GraphBuilder, MS_DOMAIN, type SerializedModel } from './graph.ts';

/** Additive bias of masked attention entries, as the tfjs model. */
const MASKED = -1e9;

export interface CausalLMGraphOptions {
  /** Output the logits of the last position only ([B, 1, V]): what a sampler needs. Default false. */
  lastOnly?: boolean;
  /** Weights as graph inputs (named as the Hugging Face state dict, our [in, out] layout) instead of initializers. */
  weightsAsInputs?: boolean;
  /**
   * Emit onnxruntime's fused com.microsoft operators where onnxruntime does not fuse by
   * itself: residual add + norm as SkipLayerNormalization / SkipSimplifiedLayerNormalization
   * (with GPT-2's projection bias folded in) and RoPE as RotaryEmbedding. Default false
   * (standard operators only); `scripts/bench-sampler.ts` measures both.
   */
  fused?: boolean;
}

/** Names of the cache inputs/outputs of layer `i`. */
export const pastName = (i: number, kv: 'key' | 'value'): string => `past_key_values.${i}.${kv}`;
export const presentName = (i: number, kv: 'key' | 'value'): string => `present.${i}.${kv}`;

/**
 * The graph builder for `config` with weights `weights` (our layout: projections [in, out],
 * names as `parameterSpecs`). Call `.serialize()` for the bytes.
 */
export function causalLMGraph(config: CausalLMConfig, weights: Map<string, Float32Array>, options: CausalLMGraphOptions = {}): GraphBuilder {
  const d = modelDims(config);
  const fused = options.fused ?? false;
  const { hiddenSize: D, numHeads: H, numKvHeads: Hkv, headDim: Dh, numLayers: L, vocabSize: V } = d;
  const g = new GraphBuilder(`${config.model_type}_causal_lm`);
  const specs = parameterSpecs(config);
  const W = new Map<string, string>();
  for (const s of specs) {
    const data = weights.get(s.name);
    if (!data) throw new Error(`causalLMGraph: missing parameter ${s.name}`);
    const size = s.shape.reduce((a, b) => a * b, 1);
    if (data.length !== size) throw new Error(`causalLMGraph: parameter ${s.name} has ${data.length} values, shape [${s.shape}] needs ${size}`);
    W.set(s.name, options.weightsAsInputs ? g.input(s.name, 'float', s.shape) : g.initializer(s.name, data, s.shape));
  }
  const w = (name: string): string => {
    const n = W.get(name);
    if (!n) throw new Error(`causalLMGraph: no parameter ${name}`);
    return n;
  };
  const has = (name: string): boolean => W.has(name);

  const ids = g.input('input_ids', 'int64', ['batch_size', 'sequence_length']);
  const maskIn = g.input('attention_mask', 'int64', ['batch_size', 'total_sequence_length']);
  const positions = g.input('position_ids', 'int64', ['batch_size', 'sequence_length']);
  const kvShape = (len: string): Dim[] => ['batch_size', Hkv, len, Dh];
  const past = Array.from({ length: L }, (_, i) => ({
    key: g.input(pastName(i, 'key'), 'float', kvShape('past_sequence_length')),
    value: g.input(pastName(i, 'value'), 'float', kvShape('past_sequence_length')),
  }));

  // Attention bias [B, 1, S, T]: key j is visible to query i (absolute position P + i) when
  // j <= P + i and attention_mask[b, j] = 1.
  const one = g.int64s([1], []);
  const zero = g.int64s([0], []);
  const S = g.op('Gather', [g.op('Shape', [ids]), one], { axis: 0 }); // scalar
  const T = g.op('Gather', [g.op('Shape', [maskIn]), one], { axis: 0 }); // scalar
  const P = g.op('Sub', [T, S]);
  const keyIdx = g.op('Unsqueeze', [g.op('Range', [zero, T, one]), g.int64s([0])]); // [1, T]
  const queryIdx = g.op('Unsqueeze', [g.op('Range', [P, T, one]), g.int64s([1])]); // [S, 1]
  const causal = g.op('LessOrEqual', [keyIdx, queryIdx]); // [S, T] bool
  const realKey = g.op('Unsqueeze', [g.op('Cast', [maskIn], { to: 9 }), g.int64s([1, 2])]); // [B, 1, 1, T] bool
  const allowed = g.op('And', [causal, realKey]); // [B, 1, S, T]
  const bias = g.op('Where', [allowed, g.floats([0]), g.floats([MASKED])]); // [B, 1, S, T]

  let x: string; // residual stream [B, S, D]
  let cos: string | null = null; // [B, 1, S, Dh]
  let sin: string | null = null;
  if (config.model_type === 'gpt2') {
    x = g.op('Add', [g.op('Gather', [w('transformer.wte.weight'), ids]), g.op('Gather', [w('transformer.wpe.weight'), positions])]);
  } else {
    x = g.op('Gather', [w('model.embed_tokens.weight'), ids]);
    const tables = ropeTables(d.maxPositions, Dh, config.rope_theta);
    if (fused) {
      // RotaryEmbedding reads [positions, Dh/2] tables: the first half of each row.
      const half = (t: Float32Array): Float32Array => {
        const out = new Float32Array(d.maxPositions * (Dh / 2));
        for (let p = 0; p < d.maxPositions; p++) out.set(t.subarray(p * Dh, p * Dh + Dh / 2), p * (Dh / 2));
        return out;
      };
      cos = g.initializer('rope_cos_half', half(tables.cos), [d.maxPositions, Dh / 2]);
      sin = g.initializer('rope_sin_half', half(tables.sin), [d.maxPositions, Dh / 2]);
    } else {
      const cosT = g.initializer('rope_cos', tables.cos, [d.maxPositions, Dh]);
      const sinT = g.initializer('rope_sin', tables.sin, [d.maxPositions, Dh]);
      cos = g.op('Unsqueeze', [g.op('Gather', [cosT, positions]), g.int64s([1])]);
      sin = g.op('Unsqueeze', [g.op('Gather', [sinT, positions]), g.int64s([1])]);
    }
  }

  const dense = (h: string, weight: string, biasName: string | null): string => {
    const y = g.op('MatMul', [h, w(weight)]);
    return biasName && has(biasName) ? g.op('Add', [y, w(biasName)]) : y;
  };
  const layerNorm = (h: string, prefix: string): string =>
    g.op('LayerNormalization', [h, w(prefix + '.weight'), w(prefix + '.bias')], { axis: -1, epsilon: (config as { layer_norm_epsilon: number }).layer_norm_epsilon });
  const rmsNorm = (h: string, weight: string): string =>
    g.op('SimplifiedLayerNormalization', [h, w(weight)], { axis: -1, epsilon: (config as { rms_norm_eps: number }).rms_norm_eps });
  const heads = (t: string, n: number): string => g.op('Transpose', [g.op('Reshape', [t, g.int64s([0, 0, n, Dh])])], { perm: [0, 2, 1, 3] }); // [B, n, S, Dh]
  const rope = (t: string): string => {
    if (fused) return g.op('RotaryEmbedding', [t, positions, cos!, sin!], { interleaved: 0 }, { domain: MS_DOMAIN }); // t [B, n, S, Dh]
    const [t1, t2] = g.node('Split', [t, g.int64s([Dh / 2, Dh / 2])], { axis: -1 }, { numOutputs: 2 }) as [string, string];
    const rotated = g.op('Concat', [g.op('Neg', [t2]), t1], { axis: -1 });
    return g.op('Add', [g.op('Mul', [t, cos!]), g.op('Mul', [rotated, sin!])]);
  };
  const G = H / Hkv;
  const attention = (q2: string, k2: string, v2: string, layer: number, qNorm: string | null, kNorm: string | null): string => {
    let q = g.op('Reshape', [q2, g.int64s([0, 0, H, Dh])]); // [B, S, H, Dh]
    let k = g.op('Reshape', [k2, g.int64s([0, 0, Hkv, Dh])]);
    if (qNorm) q = rmsNorm(q, qNorm);
    if (kNorm) k = rmsNorm(k, kNorm);
    q = g.op('Transpose', [q], { perm: [0, 2, 1, 3] }); // [B, H, S, Dh]
    k = g.op('Transpose', [k], { perm: [0, 2, 1, 3] }); // [B, Hkv, S, Dh]
    const v = heads(v2, Hkv); // [B, Hkv, S, Dh]
    if (cos && sin) {
      q = rope(q);
      k = rope(k);
    }
    q = g.op('Mul', [q, g.floats([1 / Math.sqrt(Dh)])]);
    const K = g.op('Concat', [past[layer]!.key, k], { axis: 2 }, { output: presentName(layer, 'key') }); // [B, Hkv, T, Dh]
    const Vv = g.op('Concat', [past[layer]!.value, v], { axis: 2 }, { output: presentName(layer, 'value') });
    const qg = G === 1 ? q : g.op('Reshape', [q, g.int64s([0, Hkv, -1, Dh])]); // [B, Hkv, G*S, Dh]
    let scores = g.op('MatMul', [qg, g.op('Transpose', [K], { perm: [0, 1, 3, 2] })]); // [B, Hkv, G*S, T]
    if (G !== 1) scores = g.op('Reshape', [scores, g.int64s([0, H, -1, 0])]); // [B, H, S, T]
    let probs = g.op('Softmax', [g.op('Add', [scores, bias])], { axis: -1 });
    if (G !== 1) probs = g.op('Reshape', [probs, g.int64s([0, Hkv, -1, 0])]); // [B, Hkv, G*S, T]
    let ctx = g.op('MatMul', [probs, Vv]); // [B, Hkv, G*S, Dh]
    if (G !== 1) ctx = g.op('Reshape', [ctx, g.int64s([0, H, -1, Dh])]); // [B, H, S, Dh]
    return g.op('Reshape', [g.op('Transpose', [ctx], { perm: [0, 2, 1, 3] }), g.int64s([0, 0, H * Dh])]); // [B, S, H*Dh]
  };

  // The residual stream: x, plus a pending delta (and bias) that the next norm adds first.
  // Fused, "x += delta; h = norm(x)" is one Skip(Simplified)LayerNormalization whose fourth
  // output is the new x; unfused, an Add then the norm.
  let pending: { delta: string; bias: string | null } | null = null;
  const eps = config.model_type === 'gpt2' ? config.layer_norm_epsilon : config.rms_norm_eps;
  const addResidual = (delta: string, bias: string | null): void => {
    if (fused) {
      pending = { delta, bias };
      return;
    }
    x = g.op('Add', [x, bias ? g.op('Add', [delta, w(bias)]) : delta]);
  };
  const norm = (prefix: string): string => {
    const gpt2 = config.model_type === 'gpt2';
    if (!pending) return gpt2 ? layerNorm(x, prefix) : rmsNorm(x, prefix);
    const p: { delta: string; bias: string | null } = pending;
    pending = null;
    const sum = g.fresh('residual');
    const out = g.fresh('normed');
    if (gpt2) {
      g.node('SkipLayerNormalization', [x, p.delta, w(prefix + '.weight'), w(prefix + '.bias'), p.bias ? w(p.bias) : ''], { epsilon: eps }, { outputs: [out, '', '', sum], domain: MS_DOMAIN });
    } else {
      const delta = p.bias ? g.op('Add', [p.delta, w(p.bias)]) : p.delta;
      g.node('SkipSimplifiedLayerNormalization', [x, delta, w(prefix)], { epsilon: eps }, { outputs: [out, '', '', sum], domain: MS_DOMAIN });
    }
    x = sum;
    return out;
  };
  const optionalBias = (name: string): string | null => (has(name) ? name : null);

  for (let l = 0; l < L; l++) {
    if (config.model_type === 'gpt2') {
      const p = `transformer.h.${l}.`;
      const h1 = norm(p + 'ln_1');
      const qkv = dense(h1, p + 'attn.c_attn.weight', p + 'attn.c_attn.bias'); // [B, S, 3D]
      const [q, k, v] = g.node('Split', [qkv, g.int64s([D, D, D])], { axis: -1 }, { numOutputs: 3 }) as [string, string, string];
      const a = attention(q, k, v, l, null, null);
      addResidual(g.op('MatMul', [a, w(p + 'attn.c_proj.weight')]), p + 'attn.c_proj.bias');
      const h2 = norm(p + 'ln_2');
      const m = g.op('Gelu', [dense(h2, p + 'mlp.c_fc.weight', p + 'mlp.c_fc.bias')], { approximate: 'tanh' });
      addResidual(g.op('MatMul', [m, w(p + 'mlp.c_proj.weight')]), p + 'mlp.c_proj.bias');
      continue;
    }
    const p = `model.layers.${l}.`;
    const h1 = norm(p + 'input_layernorm.weight');
    const q = dense(h1, p + 'self_attn.q_proj.weight', p + 'self_attn.q_proj.bias');
    const k = dense(h1, p + 'self_attn.k_proj.weight', p + 'self_attn.k_proj.bias');
    const v = dense(h1, p + 'self_attn.v_proj.weight', p + 'self_attn.v_proj.bias');
    const qNorm = has(p + 'self_attn.q_norm.weight') ? p + 'self_attn.q_norm.weight' : null;
    const kNorm = has(p + 'self_attn.k_norm.weight') ? p + 'self_attn.k_norm.weight' : null;
    const a = attention(q, k, v, l, qNorm, kNorm);
    addResidual(g.op('MatMul', [a, w(p + 'self_attn.o_proj.weight')]), optionalBias(p + 'self_attn.o_proj.bias'));
    const h2 = norm(p + 'post_attention_layernorm.weight');
    const gate = g.op('MatMul', [h2, w(p + 'mlp.gate_proj.weight')]);
    const up = g.op('MatMul', [h2, w(p + 'mlp.up_proj.weight')]);
    const m = g.op('Mul', [g.op('Mul', [gate, g.op('Sigmoid', [gate])]), up]); // silu(gate) * up
    addResidual(g.op('MatMul', [m, w(p + 'mlp.down_proj.weight')]), null);
  }
  let h = config.model_type === 'gpt2' ? norm('transformer.ln_f') : norm('model.norm.weight');
  if (options.lastOnly) h = g.op('Slice', [h, g.int64s([-1]), g.int64s([2 ** 53 - 1]), g.int64s([1])]); // [B, 1, D]
  const embedding = config.model_type === 'gpt2' ? 'transformer.wte.weight' : 'model.embed_tokens.weight';
  if (config.tie_word_embeddings) {
    g.op('MatMul', [h, g.op('Transpose', [w(embedding)], { perm: [1, 0] })], {}, { output: 'logits' });
  } else {
    g.op('MatMul', [h, w('lm_head.weight')], {}, { output: 'logits' });
  }
  g.output('logits', 'float', ['batch_size', options.lastOnly ? 1 : 'sequence_length', V]);
  for (let i = 0; i < L; i++) {
    g.output(presentName(i, 'key'), 'float', kvShape('total_sequence_length'));
    g.output(presentName(i, 'value'), 'float', kvShape('total_sequence_length'));
  }
  return g;
}

/** `causalLMGraph(...).serialize(...)`. */
export function serializeCausalLM(
  config: CausalLMConfig,
  weights: Map<string, Float32Array>,
  options: CausalLMGraphOptions & { externalData?: string } = {},
): SerializedModel {
  return causalLMGraph(config, weights, options).serialize({ externalData: options.externalData });
}
