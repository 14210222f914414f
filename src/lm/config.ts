/**
 * Configuration of the causal language models, with fields named exactly as in a Hugging
 * Face `config.json`, so a checkpoint's config parses as-is and ours loads in Python.
 *
 * Two families share one model class:
 * - GPT-2 (`model_type: 'gpt2'`): learned absolute positions, LayerNorm, tanh-GELU MLP,
 *   fused Q/K/V projection, tied input/output embeddings. (Radford et al., 2019.)
 * - Llama / Qwen2 / Qwen3 (`model_type: 'llama' | 'qwen2' | 'qwen3'`): rotary positions (RoPE,
 *   Su et al. 2021, in Hugging Face's "rotate_half" layout), RMSNorm, SwiGLU MLP, grouped-query
 *   attention (Ainslie et al., 2023), optionally tied embeddings. Qwen2 always has Q/K/V
 *   biases; Llama and Qwen3 have Q/K/V/O biases when `attention_bias` is true (Qwen3: false by
 *   default). Qwen3 (Qwen team, 2025, "Qwen3 Technical Report") adds a per-head RMSNorm on the
 *   queries and keys before RoPE (`self_attn.q_norm` / `self_attn.k_norm`, gains [head_dim]),
 *   and its `head_dim` defaults to 128 rather than hidden_size / num_attention_heads, as in
 *   Hugging Face's `Qwen3Config`.
 *
 * `parseConfig` is the one validation boundary: every later stage trusts the object it
 * returns. Structural sizes (vocabulary, width, depth, heads) are required rather than
 * silently defaulted to a multi-billion-parameter model; the other fields take Hugging
 * Face's defaults. A `model_type` (or an `architectures` class) outside the supported list is
 * an error that names it and lists what is supported; so is any config field asking for a
 * feature the model does not implement (sliding-window attention, RoPE scaling, ...).
 */

export const SUPPORTED_MODEL_TYPES = ['gpt2', 'llama', 'qwen2', 'qwen3'] as const;
export type ModelType = (typeof SUPPORTED_MODEL_TYPES)[number];

/**
 * The Hugging Face classes a `config.json`'s `architectures` may name for each model type:
 * the causal LM (what `toHfConfigJson` writes, first) and the bare trunk whose weights carry
 * the same names (tied checkpoints of which load unchanged).
 */
export const SUPPORTED_ARCHITECTURES: Readonly<Record<ModelType, readonly string[]>> = {
  gpt2: ['GPT2LMHeadModel', 'GPT2Model'],
  llama: ['LlamaForCausalLM', 'LlamaModel'],
  qwen2: ['Qwen2ForCausalLM', 'Qwen2Model'],
  qwen3: ['Qwen3ForCausalLM', 'Qwen3Model'],
};

/** "gpt2 (GPT2LMHeadModel), llama (LlamaForCausalLM), ...": the list error messages print. */
export function supportedModelsText(): string {
  return SUPPORTED_MODEL_TYPES.map((t) => `${t} (${SUPPORTED_ARCHITECTURES[t][0]})`).join(', ');
}

/** Token ids the tokenizer and sampler agree on; Hugging Face allows a list of end ids. */
interface SpecialTokenIds {
  /** Beginning-of-sequence id, or null when the tokenizer has none. */
  bos_token_id: number | null;
  /** End-of-sequence id(s): generation stops at any of them. */
  eos_token_id: number | number[] | null;
  /** Padding id, or null (left padding then reuses eos; padded positions are masked anyway). */
  pad_token_id: number | null;
}

export interface Gpt2Config extends SpecialTokenIds {
  model_type: 'gpt2';
  /** Number of token ids; the embedding and the tied LM head have this many rows. */
  vocab_size: number;
  /** Longest sequence (prompt + completion): the learned position table has this many rows. */
  n_positions: number;
  /** Model width D. */
  n_embd: number;
  /** Number of transformer blocks. */
  n_layer: number;
  /** Attention heads; must divide n_embd. */
  n_head: number;
  /** MLP hidden width; null means 4 * n_embd (Hugging Face's convention). */
  n_inner: number | null;
  /** Only the tanh approximation of GELU ('gelu_new', also spelled 'gelu_pytorch_tanh'). */
  activation_function: 'gelu_new';
  /** LayerNorm epsilon (1e-5 in GPT-2). */
  layer_norm_epsilon: number;
  /** Std of the normal initialisation of weight matrices and embeddings (0.02). */
  initializer_range: number;
  /** GPT-2 always ties the LM head to the token embedding. */
  tie_word_embeddings: true;
}

export interface LlamaConfig extends SpecialTokenIds {
  model_type: 'llama' | 'qwen2' | 'qwen3';
  vocab_size: number;
  /** Longest sequence the RoPE table is built for. */
  max_position_embeddings: number;
  /** Model width D. */
  hidden_size: number;
  num_hidden_layers: number;
  /** Query heads H. */
  num_attention_heads: number;
  /** Key/value heads (grouped-query attention); must divide num_attention_heads. */
  num_key_value_heads: number;
  /**
   * Per-head width; Hugging Face's default is hidden_size / num_attention_heads (128 for qwen3).
   * Need not equal hidden_size / num_attention_heads. Must be even (RoPE pairs).
   */
  head_dim: number;
  /** SwiGLU hidden width. */
  intermediate_size: number;
  /** Only SiLU (the "Swish" in SwiGLU). */
  hidden_act: 'silu';
  /** RoPE base: frequency of pair i is rope_theta^(-2i/head_dim). */
  rope_theta: number;
  /** RMSNorm epsilon. */
  rms_norm_eps: number;
  /** Biases on the attention projections: Q/K/V/O for llama and qwen3 when true; always Q/K/V (no O) for qwen2. */
  attention_bias: boolean;
  /** Whether the LM head reuses the token embedding. */
  tie_word_embeddings: boolean;
  initializer_range: number;
}

export type CausalLMConfig = Gpt2Config | LlamaConfig;

/** The sizes every consumer needs, whichever family the config belongs to. */
export interface ModelDims {
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  intermediateSize: number;
  maxPositions: number;
}

export function modelDims(config: CausalLMConfig): ModelDims {
  if (config.model_type === 'gpt2') {
    return {
      vocabSize: config.vocab_size,
      hiddenSize: config.n_embd,
      numLayers: config.n_layer,
      numHeads: config.n_head,
      numKvHeads: config.n_head,
      headDim: config.n_embd / config.n_head,
      intermediateSize: config.n_inner ?? 4 * config.n_embd,
      maxPositions: config.n_positions,
    };
  }
  return {
    vocabSize: config.vocab_size,
    hiddenSize: config.hidden_size,
    numLayers: config.num_hidden_layers,
    numHeads: config.num_attention_heads,
    numKvHeads: config.num_key_value_heads,
    headDim: config.head_dim,
    intermediateSize: config.intermediate_size,
    maxPositions: config.max_position_embeddings,
  };
}

/** Whether the Q/K/V projections carry biases. */
export function hasQkvBias(config: LlamaConfig): boolean {
  return config.model_type === 'qwen2' || config.attention_bias;
}

/** Whether the attention output projection (`o_proj`) carries a bias: llama and qwen3 with `attention_bias`. */
export function hasOProjBias(config: LlamaConfig): boolean {
  return config.model_type !== 'qwen2' && config.attention_bias;
}

/**
 * Whether queries and keys go through a per-head RMSNorm (gains `self_attn.q_norm.weight` /
 * `self_attn.k_norm.weight`, [head_dim], epsilon `rms_norm_eps`) after their projections and
 * before RoPE: Qwen3.
 */
export function hasQkNorm(config: LlamaConfig): boolean {
  return config.model_type === 'qwen3';
}

type Json = Record<string, unknown>;

class FieldReader {
  constructor(
    private readonly json: Json,
    private readonly source: string,
  ) {}

  fail(field: string, expected: string): never {
    throw new Error(`${this.source}: config field "${field}" must be ${expected}, got ${JSON.stringify(this.json[field])}`);
  }

  has(field: string): boolean {
    return this.json[field] !== undefined && this.json[field] !== null;
  }

  /** A required positive integer. */
  size(field: string): number {
    const v = this.json[field];
    if (v === undefined) throw new Error(`${this.source}: config field "${field}" is missing (a positive integer is required)`);
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) this.fail(field, 'a positive integer');
    return v;
  }

  optSize(field: string, fallback: number): number {
    return this.has(field) ? this.size(field) : fallback;
  }

  positive(field: string, fallback: number): number {
    if (!this.has(field)) return fallback;
    const v = this.json[field];
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) this.fail(field, 'a positive finite number');
    return v;
  }

  bool(field: string, fallback: boolean): boolean {
    if (!this.has(field)) return fallback;
    const v = this.json[field];
    if (typeof v !== 'boolean') this.fail(field, 'true or false');
    return v;
  }

  tokenId(field: string): number | null {
    if (!this.has(field)) return null;
    const v = this.json[field];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) this.fail(field, 'a non-negative integer or null');
    return v;
  }

  tokenIds(field: string): number | number[] | null {
    const v = this.json[field];
    if (Array.isArray(v)) {
      if (v.length === 0 || v.some((x) => typeof x !== 'number' || !Number.isInteger(x) || x < 0)) {
        this.fail(field, 'a non-negative integer, a non-empty list of them, or null');
      }
      return v as number[];
    }
    return this.tokenId(field);
  }

  /** A field that must be absent, null or equal to `ok`; anything else is an unsupported feature. */
  only(field: string, ok: unknown, what: string): void {
    if (this.has(field) && this.json[field] !== ok) {
      throw new Error(`${this.source}: config field "${field}" = ${JSON.stringify(this.json[field])} is not supported (${what})`);
    }
  }
}

/**
 * Validate a parsed `config.json` object. `source` names where it came from (a path, or
 * a preset name) and starts every error message.
 */
export function parseConfig(json: unknown, source: string): CausalLMConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new Error(`${source}: config must be a JSON object, got ${Array.isArray(json) ? 'an array' : typeof json}`);
  }
  const obj = json as Json;
  const modelType = obj['model_type'];
  const architectures = obj['architectures'];
  const supported = `supported: ${SUPPORTED_MODEL_TYPES.join(', ')} (${SUPPORTED_MODEL_TYPES.map((t) => SUPPORTED_ARCHITECTURES[t][0]).join(', ')})`;
  if (typeof modelType !== 'string' || !(SUPPORTED_MODEL_TYPES as readonly string[]).includes(modelType)) {
    const arch = architectures === undefined || architectures === null ? '' : ` (architectures ${JSON.stringify(architectures)})`;
    throw new Error(`${source}: unsupported model_type ${JSON.stringify(modelType)}${arch}; ${supported}`);
  }
  if (architectures !== undefined && architectures !== null) {
    const known = SUPPORTED_ARCHITECTURES[modelType as ModelType];
    if (!Array.isArray(architectures) || architectures.length === 0 || architectures.some((a) => typeof a !== 'string')) {
      throw new Error(`${source}: config field "architectures" must be a non-empty list of class names, got ${JSON.stringify(architectures)}`);
    }
    if (!architectures.some((a) => known.includes(a as string))) {
      throw new Error(
        `${source}: architectures ${JSON.stringify(architectures)} is not supported for model_type "${modelType}" ` +
          `(expected ${known.join(' or ')}); ${supported}`,
      );
    }
  }
  const r = new FieldReader(obj, source);
  const special: SpecialTokenIds = {
    bos_token_id: r.tokenId('bos_token_id'),
    eos_token_id: r.tokenIds('eos_token_id'),
    pad_token_id: r.tokenId('pad_token_id'),
  };
  const vocab = r.size('vocab_size');
  for (const [field, id] of Object.entries(special)) {
    const ids = id === null ? [] : Array.isArray(id) ? id : [id];
    if (ids.some((x: number) => x >= vocab)) r.fail(field, `a token id below vocab_size (${vocab})`);
  }

  if (modelType === 'gpt2') {
    const act = obj['activation_function'];
    if (act !== undefined && act !== 'gelu_new' && act !== 'gelu_pytorch_tanh') {
      throw new Error(
        `${source}: config field "activation_function" = ${JSON.stringify(act)} is not supported (only "gelu_new" / "gelu_pytorch_tanh")`,
      );
    }
    r.only('tie_word_embeddings', true, 'GPT-2 models here always tie the LM head to wte');
    r.only('scale_attn_weights', true, 'attention scores are always scaled by 1/sqrt(head_dim)');
    r.only('scale_attn_by_inverse_layer_idx', false, 'no per-layer score scaling');
    r.only('add_cross_attention', false, 'decoder-only models');
    const nEmbd = r.size('n_embd');
    const nHead = r.size('n_head');
    if (nEmbd % nHead !== 0) r.fail('n_head', `a divisor of n_embd (${nEmbd})`);
    return {
      model_type: 'gpt2',
      vocab_size: vocab,
      n_positions: r.optSize('n_positions', 1024),
      n_embd: nEmbd,
      n_layer: r.size('n_layer'),
      n_head: nHead,
      n_inner: r.has('n_inner') ? r.size('n_inner') : null,
      activation_function: 'gelu_new',
      layer_norm_epsilon: r.positive('layer_norm_epsilon', 1e-5),
      initializer_range: r.positive('initializer_range', 0.02),
      tie_word_embeddings: true,
      ...special,
    };
  }

  r.only('hidden_act', 'silu', 'only "silu" (SwiGLU)');
  r.only('mlp_bias', false, 'MLP projections have no bias');
  r.only('rope_scaling', null, 'plain RoPE only; rope_scaling must be null');
  r.only('use_sliding_window', false, 'full causal attention only');
  r.only('pretraining_tp', 1, 'no tensor-parallel slicing');
  const layerTypes = obj['layer_types'];
  if (layerTypes !== undefined && layerTypes !== null) {
    if (!Array.isArray(layerTypes) || layerTypes.some((t) => t !== 'full_attention')) {
      throw new Error(
        `${source}: config field "layer_types" = ${JSON.stringify(layerTypes)} is not supported (full causal attention only: every entry "full_attention")`,
      );
    }
  }
  const ropeTheta = readRopeTheta(obj, r, source);
  const hidden = r.size('hidden_size');
  const heads = r.size('num_attention_heads');
  const kvHeads = r.optSize('num_key_value_heads', heads);
  if (heads % kvHeads !== 0) r.fail('num_key_value_heads', `a divisor of num_attention_heads (${heads})`);
  let headDim: number;
  if (r.has('head_dim')) {
    headDim = r.size('head_dim');
  } else if (modelType === 'qwen3') {
    headDim = 128; // Qwen3Config's default, whatever hidden_size / num_attention_heads is
  } else {
    if (hidden % heads !== 0) r.fail('num_attention_heads', `a divisor of hidden_size (${hidden}) when head_dim is not given`);
    headDim = hidden / heads;
  }
  if (headDim % 2 !== 0) {
    throw new Error(`${source}: head_dim (${headDim}) must be even: rotary embeddings rotate pairs of dimensions`);
  }
  return {
    model_type: modelType as LlamaConfig['model_type'],
    vocab_size: vocab,
    max_position_embeddings: r.optSize('max_position_embeddings', modelType === 'llama' ? 2048 : 32768),
    hidden_size: hidden,
    num_hidden_layers: r.size('num_hidden_layers'),
    num_attention_heads: heads,
    num_key_value_heads: kvHeads,
    head_dim: headDim,
    intermediate_size: r.size('intermediate_size'),
    hidden_act: 'silu',
    rope_theta: ropeTheta,
    rms_norm_eps: r.positive('rms_norm_eps', 1e-6),
    attention_bias: modelType === 'qwen2' ? true : r.bool('attention_bias', false), // qwen2: always (Q/K/V only)
    tie_word_embeddings: r.bool('tie_word_embeddings', false),
    initializer_range: r.positive('initializer_range', 0.02),
    ...special,
  };
}

/**
 * The RoPE base. Transformers 5 writes it inside `rope_parameters` (`{ rope_type, rope_theta }`)
 * instead of a top-level `rope_theta`; either is read, and they must agree when both are given.
 * Any `rope_type` but "default" is a scaled RoPE, which is not implemented.
 */
function readRopeTheta(obj: Json, r: FieldReader, source: string): number {
  const params = obj['rope_parameters'];
  if (params === undefined || params === null) return r.positive('rope_theta', 10000);
  if (typeof params !== 'object' || Array.isArray(params)) {
    throw new Error(`${source}: config field "rope_parameters" must be an object, got ${JSON.stringify(params)}`);
  }
  const p = params as Json;
  if (p['rope_type'] !== undefined && p['rope_type'] !== 'default') {
    throw new Error(`${source}: config field "rope_parameters" = ${JSON.stringify(params)} is not supported (plain RoPE only: rope_type "default")`);
  }
  const theta = new FieldReader(p, `${source} rope_parameters`).positive('rope_theta', Number.NaN);
  if (Number.isNaN(theta)) return r.positive('rope_theta', 10000);
  if (r.has('rope_theta') && r.positive('rope_theta', theta) !== theta) {
    throw new Error(`${source}: rope_theta (${JSON.stringify(obj['rope_theta'])}) and rope_parameters.rope_theta (${theta}) disagree`);
  }
  return theta;
}

/** The `config.json` object for a config: what Hugging Face `from_pretrained` reads. */
export function toHfConfigJson(config: CausalLMConfig): Record<string, unknown> {
  const common = {
    architectures: [SUPPORTED_ARCHITECTURES[config.model_type][0]],
    torch_dtype: 'float32',
    bos_token_id: config.bos_token_id,
    eos_token_id: config.eos_token_id,
    pad_token_id: config.pad_token_id,
  };
  if (config.model_type === 'gpt2') {
    return {
      model_type: 'gpt2',
      ...common,
      vocab_size: config.vocab_size,
      n_positions: config.n_positions,
      n_ctx: config.n_positions,
      n_embd: config.n_embd,
      n_layer: config.n_layer,
      n_head: config.n_head,
      n_inner: config.n_inner,
      activation_function: config.activation_function,
      layer_norm_epsilon: config.layer_norm_epsilon,
      initializer_range: config.initializer_range,
      tie_word_embeddings: true,
      // Dropout is a training-time choice of the Python stack; inference ignores it.
      resid_pdrop: 0,
      embd_pdrop: 0,
      attn_pdrop: 0,
    };
  }
  const json: Record<string, unknown> = {
    model_type: config.model_type,
    ...common,
    vocab_size: config.vocab_size,
    max_position_embeddings: config.max_position_embeddings,
    hidden_size: config.hidden_size,
    num_hidden_layers: config.num_hidden_layers,
    num_attention_heads: config.num_attention_heads,
    num_key_value_heads: config.num_key_value_heads,
    head_dim: config.head_dim,
    intermediate_size: config.intermediate_size,
    hidden_act: config.hidden_act,
    rope_theta: config.rope_theta,
    rope_scaling: null,
    rms_norm_eps: config.rms_norm_eps,
    tie_word_embeddings: config.tie_word_embeddings,
    initializer_range: config.initializer_range,
    attention_dropout: 0,
  };
  if (config.model_type === 'llama') {
    json['attention_bias'] = config.attention_bias;
    json['mlp_bias'] = false;
  } else {
    json['use_sliding_window'] = false;
  }
  if (config.model_type === 'qwen3') {
    json['attention_bias'] = config.attention_bias;
    json['sliding_window'] = null; // what Qwen3Config keeps when use_sliding_window is false
  }
  return json;
}

/**
 * A small GPT-2 for tests and the from-scratch demo. Defaults: vocab 64, width 32,
 * 2 layers, 4 heads, 64 positions. Any Hugging Face GPT-2 field can be overridden.
 */
export function tinyGpt2Config(overrides: Partial<Omit<Gpt2Config, 'model_type'>> = {}): Gpt2Config {
  return parseConfig(
    { model_type: 'gpt2', vocab_size: 64, n_positions: 64, n_embd: 32, n_layer: 2, n_head: 4, ...overrides },
    'tinyGpt2Config',
  ) as Gpt2Config;
}

/**
 * A small Llama-style model for tests and demos. Defaults: vocab 64, width 32, 2 layers,
 * 4 query heads sharing 2 key/value heads, SwiGLU width 64, 64 positions, tied
 * embeddings. Pass `model_type: 'qwen2'` for the Qwen2 variant (Q/K/V biases); for Qwen3
 * use `tinyQwen3Config` (a qwen3 config without `head_dim` gets Hugging Face's 128).
 */
export function tinyLlamaConfig(overrides: Partial<LlamaConfig> = {}): LlamaConfig {
  return parseConfig(
    {
      model_type: 'llama',
      vocab_size: 64,
      max_position_embeddings: 64,
      hidden_size: 32,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      intermediate_size: 64,
      rope_theta: 10000,
      rms_norm_eps: 1e-6,
      tie_word_embeddings: true,
      ...overrides,
    },
    'tinyLlamaConfig',
  ) as LlamaConfig;
}

/**
 * A small Qwen3 for tests and demos: `tinyLlamaConfig`'s sizes (vocab 64, width 32, 2 layers,
 * 4 query heads sharing 2 key/value heads, SwiGLU width 64, 64 positions, tied embeddings)
 * with per-head Q/K RMSNorm, no attention biases, and head_dim 16, which is not
 * hidden_size / num_attention_heads (8): queries are 64 wide, the residual stream 32.
 */
export function tinyQwen3Config(overrides: Partial<Omit<LlamaConfig, 'model_type'>> = {}): LlamaConfig {
  return tinyLlamaConfig({ head_dim: 16, ...overrides, model_type: 'qwen3' });
}
