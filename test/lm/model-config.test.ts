import { describe, expect, it } from 'vitest';
import {
  hasOProjBias,
  hasQkNorm,
  hasQkvBias,
  modelDims,
  parseConfig,
  tinyGpt2Config,
  tinyLlamaConfig,
  tinyQwen3Config,
  toHfConfigJson,
} from '../../src/lm/config.ts';

const SUPPORTED = 'supported: gpt2, llama, qwen2, qwen3 (GPT2LMHeadModel, LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM)';
const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('parseConfig', () => {
  it('reads a Hugging Face GPT-2 config and fills Hugging Face defaults', () => {
    const c = parseConfig({ model_type: 'gpt2', vocab_size: 100, n_embd: 48, n_layer: 2, n_head: 3, eos_token_id: 5 }, 'x');
    expect(c).toMatchObject({ n_positions: 1024, n_inner: null, layer_norm_epsilon: 1e-5, eos_token_id: 5, bos_token_id: null });
    expect(modelDims(c)).toEqual({
      vocabSize: 100, hiddenSize: 48, numLayers: 2, numHeads: 3, numKvHeads: 3, headDim: 16, intermediateSize: 192, maxPositions: 1024,
    });
  });

  it('reads Llama and Qwen2 configs: GQA, head_dim, biases', () => {
    const base = { vocab_size: 10, hidden_size: 24, num_hidden_layers: 1, num_attention_heads: 6, intermediate_size: 40 };
    const l = parseConfig({ model_type: 'llama', ...base, num_key_value_heads: 2 }, 'x');
    expect(modelDims(l)).toMatchObject({ numHeads: 6, numKvHeads: 2, headDim: 4, maxPositions: 2048 });
    expect(l).toMatchObject({ attention_bias: false, tie_word_embeddings: false, rope_theta: 10000, rms_norm_eps: 1e-6 });
    const q = parseConfig({ model_type: 'qwen2', ...base, head_dim: 8, rope_scaling: null, use_sliding_window: false }, 'x');
    expect(q).toMatchObject({ attention_bias: true, head_dim: 8, num_key_value_heads: 6, max_position_embeddings: 32768 });
  });

  it('reads Qwen3 configs: q/k norm, explicit head_dim, no biases by default, head_dim 128 when absent', () => {
    // Qwen3-0.6B's config.json (sizes and fields as published).
    const real = {
      architectures: ['Qwen3ForCausalLM'], attention_bias: false, attention_dropout: 0.0, bos_token_id: 151643,
      eos_token_id: 151645, head_dim: 128, hidden_act: 'silu', hidden_size: 1024, initializer_range: 0.02,
      intermediate_size: 3072, max_position_embeddings: 40960, max_window_layers: 28, model_type: 'qwen3',
      num_attention_heads: 16, num_hidden_layers: 28, num_key_value_heads: 8, rms_norm_eps: 1e-6, rope_scaling: null,
      rope_theta: 1000000, sliding_window: null, tie_word_embeddings: true, torch_dtype: 'bfloat16',
      transformers_version: '4.51.0', use_cache: true, use_sliding_window: false, vocab_size: 151936,
    };
    const c = parseConfig(real, 'Qwen3-0.6B');
    expect(c).toMatchObject({ model_type: 'qwen3', head_dim: 128, attention_bias: false, rope_theta: 1e6, tie_word_embeddings: true });
    expect(modelDims(c)).toEqual({
      vocabSize: 151936, hiddenSize: 1024, numLayers: 28, numHeads: 16, numKvHeads: 8, headDim: 128, intermediateSize: 3072, maxPositions: 40960,
    });
    if (c.model_type === 'gpt2') throw new Error('unreachable');
    expect([hasQkNorm(c), hasQkvBias(c), hasOProjBias(c)]).toEqual([true, false, false]);
    // head_dim defaults to Qwen3Config's 128, not hidden_size / heads (1024 / 16 = 64).
    const { head_dim: _h, ...noHeadDim } = real;
    expect(parseConfig(noHeadDim, 'x')).toMatchObject({ head_dim: 128 });
    // attention_bias puts biases on all four projections, as in Qwen3Attention.
    const biased = tinyQwen3Config({ attention_bias: true });
    expect([hasQkNorm(biased), hasQkvBias(biased), hasOProjBias(biased)]).toEqual([true, true, true]);
    const qwen2 = tinyLlamaConfig({ model_type: 'qwen2' });
    const llama = tinyLlamaConfig({ attention_bias: true });
    expect([hasQkNorm(qwen2), hasQkvBias(qwen2), hasOProjBias(qwen2)]).toEqual([false, true, false]);
    expect([hasQkNorm(llama), hasQkvBias(llama), hasOProjBias(llama)]).toEqual([false, true, true]);
    expect(tinyQwen3Config()).toMatchObject({ model_type: 'qwen3', head_dim: 16, hidden_size: 32, num_attention_heads: 4, num_key_value_heads: 2 });
  });

  it('reads the transformers 5 keys: rope_parameters and layer_types', () => {
    const base = { model_type: 'qwen3', vocab_size: 10, hidden_size: 16, num_hidden_layers: 2, num_attention_heads: 2, head_dim: 8, intermediate_size: 24 };
    expect(parseConfig({ ...base, rope_parameters: { rope_type: 'default', rope_theta: 5e5 } }, 'x')).toMatchObject({ rope_theta: 5e5 });
    expect(parseConfig({ ...base, rope_parameters: { rope_type: 'default', rope_theta: 5e5 }, rope_theta: 5e5 }, 'x')).toMatchObject({ rope_theta: 5e5 });
    expect(parseConfig({ ...base, layer_types: ['full_attention', 'full_attention'] }, 'x')).toMatchObject({ num_hidden_layers: 2 });
    expect(() => parseConfig({ ...base, rope_parameters: { rope_type: 'yarn', rope_theta: 1e6, factor: 4 } }, 'cfg')).toThrow(
      /cfg: config field "rope_parameters" = \{"rope_type":"yarn".*is not supported \(plain RoPE only/,
    );
    expect(() => parseConfig({ ...base, rope_parameters: { rope_theta: 1e6 }, rope_theta: 1e4 }, 'cfg')).toThrow(/rope_theta \(10000\) and rope_parameters.rope_theta \(1000000\) disagree/);
    expect(() => parseConfig({ ...base, layer_types: ['full_attention', 'sliding_attention'] }, 'cfg')).toThrow(
      /cfg: config field "layer_types" = \["full_attention","sliding_attention"\] is not supported \(full causal attention only/,
    );
  });

  it('names an unknown model_type or architectures class and lists the supported ones', () => {
    const sizes = { vocab_size: 10, hidden_size: 8, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 16 };
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ ...sizes, model_type: 'gemma', architectures: ['GemmaForCausalLM'], head_dim: 256 }, 'unsupported model_type "gemma" (architectures ["GemmaForCausalLM"]); '],
      [{ ...sizes, model_type: 'phi3', architectures: ['Phi3ForCausalLM'] }, 'unsupported model_type "phi3" (architectures ["Phi3ForCausalLM"]); '],
      [{ ...sizes, model_type: 'mistral', architectures: ['MistralForCausalLM'], sliding_window: 4096 }, 'unsupported model_type "mistral" (architectures ["MistralForCausalLM"]); '],
      [{ ...sizes, model_type: 'qwen3_moe', architectures: ['Qwen3MoeForCausalLM'] }, 'unsupported model_type "qwen3_moe" (architectures ["Qwen3MoeForCausalLM"]); '],
      [{ ...sizes, architectures: ['LlamaForCausalLM'] }, 'unsupported model_type undefined (architectures ["LlamaForCausalLM"]); '],
      // A supported model_type whose architectures is not its causal LM.
      [{ ...sizes, model_type: 'llama', architectures: ['MistralForCausalLM'] }, 'architectures ["MistralForCausalLM"] is not supported for model_type "llama" (expected LlamaForCausalLM or LlamaModel); '],
      [{ ...sizes, model_type: 'qwen2', architectures: ['Qwen2ForSequenceClassification'] }, 'architectures ["Qwen2ForSequenceClassification"] is not supported for model_type "qwen2" (expected Qwen2ForCausalLM or Qwen2Model); '],
      [{ ...sizes, model_type: 'qwen3', architectures: ['Qwen2ForCausalLM'], head_dim: 4 }, 'architectures ["Qwen2ForCausalLM"] is not supported for model_type "qwen3" (expected Qwen3ForCausalLM or Qwen3Model); '],
    ];
    for (const [json, message] of cases) {
      expect(() => parseConfig(json, 'cfg')).toThrow(new RegExp(`^cfg: ${escape(message + SUPPORTED)}$`));
    }
    expect(() => parseConfig({ ...sizes, model_type: 'llama', architectures: 'LlamaForCausalLM' }, 'cfg')).toThrow(
      /cfg: config field "architectures" must be a non-empty list of class names, got "LlamaForCausalLM"/,
    );
    // Either class of the family is accepted, as are a missing or null architectures.
    for (const architectures of [['LlamaForCausalLM'], ['LlamaModel'], null, undefined]) {
      expect(parseConfig({ ...sizes, model_type: 'llama', architectures }, 'cfg').model_type).toBe('llama');
    }
  });

  it('names the field and the problem', () => {
    const g = { model_type: 'gpt2', vocab_size: 10, n_embd: 8, n_layer: 1, n_head: 2 };
    const bad: Array<[unknown, RegExp]> = [
      [{ ...g, model_type: 'mistral' }, /cfg: unsupported model_type "mistral"; supported: gpt2, llama, qwen2, qwen3 /],
      [{ ...g, model_type: undefined }, /unsupported model_type undefined/],
      [[1, 2], /config must be a JSON object, got an array/],
      [{ ...g, vocab_size: undefined }, /cfg: config field "vocab_size" is missing/],
      [{ ...g, n_layer: 1.5 }, /config field "n_layer" must be a positive integer, got 1.5/],
      [{ ...g, n_head: 3 }, /config field "n_head" must be a divisor of n_embd \(8\), got 3/],
      [{ ...g, layer_norm_epsilon: -1 }, /"layer_norm_epsilon" must be a positive finite number, got -1/],
      [{ ...g, activation_function: 'relu' }, /"activation_function" = "relu" is not supported/],
      [{ ...g, tie_word_embeddings: false }, /"tie_word_embeddings" = false is not supported/],
      [{ ...g, eos_token_id: 10 }, /"eos_token_id" must be a token id below vocab_size \(10\), got 10/],
      [{ ...g, bos_token_id: 'a' }, /"bos_token_id" must be a non-negative integer or null/],
    ];
    const l = { model_type: 'llama', vocab_size: 10, hidden_size: 8, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 16 };
    bad.push(
      [{ ...l, num_key_value_heads: 3 }, /"num_key_value_heads" must be a divisor of num_attention_heads \(2\), got 3/],
      [{ ...l, hidden_act: 'gelu' }, /"hidden_act" = "gelu" is not supported/],
      [{ ...l, rope_scaling: { type: 'linear', factor: 2 } }, /"rope_scaling" = \{"type":"linear","factor":2\} is not supported/],
      [{ ...l, head_dim: 3 }, /head_dim \(3\) must be even/],
      [{ ...l, num_attention_heads: 3 }, /"num_attention_heads" must be a divisor of hidden_size \(8\) when head_dim is not given/],
      [{ ...l, attention_bias: 'yes' }, /"attention_bias" must be true or false/],
      [{ ...l, model_type: 'qwen2', use_sliding_window: true }, /"use_sliding_window" = true is not supported/],
      [{ ...l, model_type: 'qwen3', head_dim: 4, use_sliding_window: true, sliding_window: 4 }, /"use_sliding_window" = true is not supported/],
      [{ ...l, model_type: 'qwen3', head_dim: 5 }, /head_dim \(5\) must be even/],
      [{ ...l, model_type: 'qwen3', head_dim: 4, rope_scaling: { rope_type: 'yarn', factor: 4 } }, /"rope_scaling" = .* is not supported/],
    );
    for (const [json, re] of bad) expect(() => parseConfig(json, 'cfg')).toThrow(re);
  });
});

describe('toHfConfigJson', () => {
  it('round-trips every preset through parseConfig', () => {
    for (const c of [
      tinyGpt2Config({ n_inner: 100, bos_token_id: 0, eos_token_id: 1 }),
      tinyLlamaConfig({ eos_token_id: [1, 2], pad_token_id: 3 }),
      tinyLlamaConfig({ model_type: 'qwen2', tie_word_embeddings: false, head_dim: 16 }),
      tinyLlamaConfig({ attention_bias: true }),
      tinyQwen3Config(),
      tinyQwen3Config({ attention_bias: true, tie_word_embeddings: false, num_key_value_heads: 1, rope_theta: 1e6 }),
    ]) {
      const json = toHfConfigJson(c);
      expect(JSON.parse(JSON.stringify(json))).toEqual(json);
      expect(parseConfig(json, 'round trip')).toEqual(c);
    }
  });

  it('writes the fields Hugging Face reads', () => {
    expect(toHfConfigJson(tinyGpt2Config())).toMatchObject({ architectures: ['GPT2LMHeadModel'], n_ctx: 64, activation_function: 'gelu_new' });
    expect(toHfConfigJson(tinyLlamaConfig({ model_type: 'qwen2' }))).toMatchObject({
      architectures: ['Qwen2ForCausalLM'], use_sliding_window: false, rope_scaling: null, hidden_act: 'silu',
    });
    expect(toHfConfigJson(tinyQwen3Config())).toMatchObject({
      model_type: 'qwen3', architectures: ['Qwen3ForCausalLM'], head_dim: 16, hidden_size: 32, attention_bias: false,
      use_sliding_window: false, sliding_window: null, rope_scaling: null,
    });
  });
});
