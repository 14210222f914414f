/**
 * The training graph of a causal LM on onnxruntime: the full forward (no KV cache) of
 * `causal-lm-graph.ts`'s equations built with the differentiable operators of
 * `autodiff.ts`, the per-token quantities of the last N positions, and the backward pass of
 * their upstream gradients to every parameter. Two heads:
 *
 *   head 'lm' (a policy):
 *     inputs   input_ids, attention_mask, position_ids [batch, seq] int64,
 *              labels [batch, N] int64 (N <= seq: the last N positions are scored),
 *              dlogprobs [batch, N] (d loss / d logprob of each label; 0 = ignored),
 *              dentropy [batch, N] (with `entropyGradient`),
 *              the weights (Hugging Face names, our [in, out] layout)
 *     outputs  logprobs [batch, N] = log softmax(logits / temperature)[label],
 *              entropy [batch, N] of softmax(logits / temperature) (with `entropy`),
 *              grad.<parameter>
 *   head 'value' (a critic: the trunk plus TRL's v_head.summary.{weight [D, 1], bias [1]}):
 *     inputs   input_ids, attention_mask, position_ids, num_scored [1] int64 (N),
 *              dvalues [batch, N], the trunk's weights (no LM head) and the head's
 *     outputs  values [batch, N] = h . w + b on the final-norm hidden states, grad.<parameter>
 *
 * With `backward: false` the graph is the forward alone (no d* inputs, no grad.* outputs):
 * onnxruntime runs every node of a session whatever outputs are fetched (measured), so the
 * forward-only runs (old-policy, reference and critic values, and the first pass of a
 * policy-gradient step) get their own graph.
 *
 * This is the per-token boundary the trainers use: the objectives (on tfjs, over small
 * [N, T] tensors) turn log-probs, entropies and values into a loss and its gradient with
 * respect to them; the engine back-propagates that through the model. SFT's gradient on the
 * log-probs is known before the forward (-mask / count), so SFT needs one run; a
 * policy-gradient loss needs the log-probs first (the forward-only graph), then this one.
 * Gradients are emitted only for the parameters the outputs reach (a critic's trunk has no
 * use for an untied LM head).
 */
import type { CausalLMConfig } from '../../lm/config.ts';
import { modelDims } from '../../lm/config.ts';
import { parameterSpecs, ropeTables } from '../../lm/model.ts';
import { DiffGraph, type Val } from './autodiff.ts';
import type { SerializedModel } from './graph.ts';

const MASKED = -1e9;

export interface TrainGraphOptions {
  /** Log-probs of softmax(logits / temperature). Default 1. */
  temperature?: number;
  /** 'lm' (log-probs, entropies) or 'value' (a critic's values). Default 'lm'. */
  head?: 'lm' | 'value';
  /** Emit the backward pass. Default true. */
  backward?: boolean;
  /** Output the entropies (head 'lm'). Default false. */
  entropy?: boolean;
  /** Back-propagate an upstream gradient on the entropies too (input dentropy; implies `entropy`). Default false. */
  entropyGradient?: boolean;
}

/** The value head's parameters (TRL's names; our [D, 1] layout for the weight). */
export const VALUE_HEAD_PARAMS = (hiddenSize: number): { name: string; shape: number[] }[] => [
  { name: 'v_head.summary.weight', shape: [hiddenSize, 1] },
  { name: 'v_head.summary.bias', shape: [1] },
];

/** The parameters a graph takes as inputs, in order: the model's (without the LM head for 'value'), then the value head's. */
export function trainGraphParams(config: CausalLMConfig, head: 'lm' | 'value' = 'lm'): { name: string; shape: number[] }[] {
  const specs = parameterSpecs(config).map((s) => ({ name: s.name, shape: [...s.shape] }));
  if (head === 'lm') return specs;
  return [...specs.filter((s) => s.name !== 'lm_head.weight'), ...VALUE_HEAD_PARAMS(modelDims(config).hiddenSize)];
}

/** Name of the gradient output of a parameter. */
export const gradName = (param: string): string => `grad.${param}`;

export function causalLMTrainGraph(config: CausalLMConfig, options: TrainGraphOptions = {}): SerializedModel {
  const d = modelDims(config);
  const { hiddenSize: D, numHeads: H, numKvHeads: Hkv, headDim: Dh, numLayers: L, vocabSize: V } = d;
  const head = options.head ?? 'lm';
  const backward = options.backward ?? true;
  const entropyGradient = head === 'lm' && backward && (options.entropyGradient ?? false);
  const withEntropy = head === 'lm' && (entropyGradient || (options.entropy ?? false));
  const t = new DiffGraph(`${config.model_type}_causal_lm_${head === 'lm' ? '' : 'value_'}${backward ? 'train' : 'forward'}`);
  const g = t.g;
  const W = new Map<string, Val>();
  const specs = trainGraphParams(config, head);
  for (const s of specs) W.set(s.name, t.input(s.name, 'float', s.shape, backward));
  const w = (name: string): Val => {
    const v = W.get(name);
    if (!v) throw new Error(`causalLMTrainGraph: no parameter ${name}`);
    return v;
  };
  const maybe = (name: string): Val | null => W.get(name) ?? null;
  if (head === 'value' && options.entropy) throw new Error('causalLMTrainGraph: entropies come from the LM head, not the value head');

  const ids = t.input('input_ids', 'int64', ['batch_size', 'sequence_length']);
  const maskIn = t.input('attention_mask', 'int64', ['batch_size', 'sequence_length']);
  const positions = t.input('position_ids', 'int64', ['batch_size', 'sequence_length']);
  const scored = ['batch_size', 'num_scored'];
  const labels = head === 'lm' ? t.input('labels', 'int64', scored) : null;
  const numScored = head === 'lm' ? g.op('Slice', [g.op('Shape', [labels!.name]), g.int64s([1]), g.int64s([2])]) : t.input('num_scored', 'int64', [1]).name;

  // Attention bias [B, 1, S, S]: causal and padded keys masked (a constant).
  const one = g.int64s([1], []);
  const zero = g.int64s([0], []);
  const S = g.op('Gather', [g.op('Shape', [ids.name]), one], { axis: 0 });
  const idx = g.op('Range', [zero, S, one]);
  const causal = g.op('LessOrEqual', [g.op('Unsqueeze', [idx, g.int64s([0])]), g.op('Unsqueeze', [idx, g.int64s([1])])]); // [S, S]
  const realKey = g.op('Unsqueeze', [g.op('Cast', [maskIn.name], { to: 9 }), g.int64s([1, 2])]); // [B, 1, 1, S]
  const bias = t.constant(g.op('Where', [g.op('And', [causal, realKey]), g.floats([0]), g.floats([MASKED])]), 4);

  let x: Val;
  let cos = '';
  let sin = '';
  if (config.model_type === 'gpt2') {
    x = t.add(t.gather(w('transformer.wte.weight'), ids), t.gather(w('transformer.wpe.weight'), positions));
  } else {
    x = t.gather(w('model.embed_tokens.weight'), ids);
    const tables = ropeTables(d.maxPositions, Dh, config.rope_theta);
    const cosT = g.initializer('rope_cos', tables.cos, [d.maxPositions, Dh]);
    const sinT = g.initializer('rope_sin', tables.sin, [d.maxPositions, Dh]);
    cos = g.op('Unsqueeze', [g.op('Gather', [cosT, positions.name]), g.int64s([1])]); // [B, 1, S, Dh]
    sin = g.op('Unsqueeze', [g.op('Gather', [sinT, positions.name]), g.int64s([1])]);
  }
  const eps = config.model_type === 'gpt2' ? config.layer_norm_epsilon : config.rms_norm_eps;
  const norm = (h: Val, prefix: string): Val =>
    config.model_type === 'gpt2' ? t.layerNorm(h, w(prefix + '.weight'), w(prefix + '.bias'), eps) : t.rmsNorm(h, w(prefix), eps);
  const dense = (h: Val, weight: string, biasName: string | null): Val => {
    const y = t.matmul(h, w(weight));
    const b = biasName ? maybe(biasName) : null;
    return b ? t.add(y, b) : y;
  };
  const scale = t.scalar(1 / Math.sqrt(Dh));
  const G = H / Hkv;
  const attention = (q2: Val, k2: Val, v2: Val, qNorm: Val | null, kNorm: Val | null): Val => {
    let q = t.reshape(q2, [0, 0, H, Dh]); // [B, S, H, Dh]
    let k = t.reshape(k2, [0, 0, Hkv, Dh]);
    if (qNorm) q = t.rmsNorm(q, qNorm, eps);
    if (kNorm) k = t.rmsNorm(k, kNorm, eps);
    q = t.transpose(q, [0, 2, 1, 3]); // [B, H, S, Dh]
    k = t.transpose(k, [0, 2, 1, 3]); // [B, Hkv, S, Dh]
    const v = t.transpose(t.reshape(v2, [0, 0, Hkv, Dh]), [0, 2, 1, 3]);
    if (cos) {
      q = t.rope(q, cos, sin, Dh);
      k = t.rope(k, cos, sin, Dh);
    }
    q = t.mul(q, scale);
    const qg = G === 1 ? q : t.reshape(q, [0, Hkv, -1, Dh]); // [B, Hkv, G*S, Dh]
    let scores = t.matmul(qg, t.transpose(k, [0, 1, 3, 2])); // [B, Hkv, G*S, S]
    if (G !== 1) scores = t.reshape(scores, [0, H, -1, 0]); // [B, H, S, S]
    let probs = t.softmax(t.add(scores, bias));
    if (G !== 1) probs = t.reshape(probs, [0, Hkv, -1, 0]);
    let ctx = t.matmul(probs, v); // [B, Hkv, G*S, Dh]
    if (G !== 1) ctx = t.reshape(ctx, [0, H, -1, Dh]);
    return t.reshape(t.transpose(ctx, [0, 2, 1, 3]), [0, 0, H * Dh]); // [B, S, H*Dh]
  };

  for (let l = 0; l < L; l++) {
    if (config.model_type === 'gpt2') {
      const p = `transformer.h.${l}.`;
      const qkv = dense(norm(x, p + 'ln_1'), p + 'attn.c_attn.weight', p + 'attn.c_attn.bias');
      const [q, k, v] = t.split(qkv, [D, D, D]) as [Val, Val, Val];
      x = t.add(x, dense(attention(q, k, v, null, null), p + 'attn.c_proj.weight', p + 'attn.c_proj.bias'));
      const m = t.gelu(dense(norm(x, p + 'ln_2'), p + 'mlp.c_fc.weight', p + 'mlp.c_fc.bias'));
      x = t.add(x, dense(m, p + 'mlp.c_proj.weight', p + 'mlp.c_proj.bias'));
      continue;
    }
    const p = `model.layers.${l}.`;
    const h1 = norm(x, p + 'input_layernorm.weight');
    const q = dense(h1, p + 'self_attn.q_proj.weight', p + 'self_attn.q_proj.bias');
    const k = dense(h1, p + 'self_attn.k_proj.weight', p + 'self_attn.k_proj.bias');
    const v = dense(h1, p + 'self_attn.v_proj.weight', p + 'self_attn.v_proj.bias');
    const a = attention(q, k, v, maybe(p + 'self_attn.q_norm.weight'), maybe(p + 'self_attn.k_norm.weight'));
    x = t.add(x, dense(a, p + 'self_attn.o_proj.weight', p + 'self_attn.o_proj.bias'));
    const h2 = norm(x, p + 'post_attention_layernorm.weight');
    const m = t.mul(t.silu(t.matmul(h2, w(p + 'mlp.gate_proj.weight'))), t.matmul(h2, w(p + 'mlp.up_proj.weight')));
    x = t.add(x, t.matmul(m, w(p + 'mlp.down_proj.weight')));
  }
  const final = t.lastPositions(x, numScored, 1); // [B, N, D]: only the scored positions go on
  const h = config.model_type === 'gpt2' ? norm(final, 'transformer.ln_f') : norm(final, 'model.norm.weight');
  const seeds: [Val, string][] = [];
  const output = (v: Val, name: string, grad: string | null): void => {
    g.op('Identity', [v.name], {}, { output: name });
    g.output(name, 'float', scored);
    if (grad) seeds.push([v, t.input(grad, 'float', scored).name]);
  };
  if (head === 'lm') {
    const logits = config.tie_word_embeddings
      ? t.matmul(h, t.transpose(w(config.model_type === 'gpt2' ? 'transformer.wte.weight' : 'model.embed_tokens.weight'), [1, 0]))
      : t.matmul(h, w('lm_head.weight'));
    const stats = t.tokenStats(logits, labels!.name, V, options.temperature ?? 1, withEntropy);
    output(stats.logprobs, 'logprobs', backward ? 'dlogprobs' : null);
    if (stats.entropy) output(stats.entropy, 'entropy', entropyGradient ? 'dentropy' : null);
  } else {
    const values = t.reshape(t.add(t.matmul(h, w('v_head.summary.weight')), w('v_head.summary.bias')), [0, 0]); // [B, N]
    output(values, 'values', backward ? 'dvalues' : null);
  }
  if (!backward) return g.serialize();

  const grads = t.backward(seeds);
  for (const s of specs) {
    const gn = grads.get(s.name);
    if (!gn) continue; // not reached by the outputs
    g.op('Identity', [gn], {}, { output: gradName(s.name) });
    g.output(gradName(s.name), 'float', s.shape);
  }
  return g.serialize();
}
