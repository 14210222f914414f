import { describe, expect, it } from 'vitest';
import { modelDims, parseConfig, tinyGpt2Config, tinyLlamaConfig, toHfConfigJson } from '../../src/lm/config.ts';

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

  it('names the field and the problem', () => {
    const g = { model_type: 'gpt2', vocab_size: 10, n_embd: 8, n_layer: 1, n_head: 2 };
    const bad: Array<[unknown, RegExp]> = [
      [{ ...g, model_type: 'mistral' }, /cfg: unsupported model_type "mistral"; supported: gpt2, llama, qwen2/],
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
  });
});
