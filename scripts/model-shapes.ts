/** Model shapes the benchmarks share (random weights; nothing is downloaded). */
import { type CausalLMConfig, tinyLlamaConfig } from '../src/lm/config.ts';

/** A Llama shaped like SmolLM2-135M: 30 layers, d 576, GQA 9/3 heads, MLP 1536, vocabulary 49152, tied embeddings. */
export function smolLM2Shape(): CausalLMConfig {
  return tinyLlamaConfig({
    vocab_size: 49152,
    max_position_embeddings: 2048,
    hidden_size: 576,
    num_hidden_layers: 30,
    num_attention_heads: 9,
    num_key_value_heads: 3,
    intermediate_size: 1536,
    rope_theta: 100000,
    rms_norm_eps: 1e-5,
    tie_word_embeddings: true,
  });
}
