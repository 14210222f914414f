/**
 * A from-scratch model for SFT: its Hugging Face config (GPT-2 or Llama style, sized by the
 * `model.init` settings) and its tokenizer (the arithmetic one for generated arithmetic, else
 * a character tokenizer over the data).
 */
import { ANSWER_CLOSE, ANSWER_OPEN } from '../../datasets/arithmetic/generate.ts';
import { CharTokenizer } from '../lm/char-tokenizer.ts';
import { type CausalLMConfig, parseConfig as parseModelConfig } from '../lm/config.ts';
import type { Tokenizer } from '../lm/tokenizer.ts';
import type { SftExample } from './prompts.ts';
import type { SftConfig, SftInitConfig } from './sft-config.ts';

/**
 * The standard character-level tokenizer for the arithmetic tasks (here, not in datasets/,
 * because it is a tokenizer object: datasets/ stays free of the model layer).
 *
 * Alphabet: the ten digits, `+ - * =`, space and newline (space and newline are not
 * produced by the generator; they let hand-written prompts such as `12 + 34 =` or a
 * two-line prompt tokenize without `<unk>`). `<answer>` and `</answer>` are single extra
 * tokens rather than eight and nine characters: a ~1M-parameter model then emits each tag
 * in one step, and the format reward depends on one decision instead of nine.
 *
 * Ids: `<pad>`=0, `<eos>`=1, `<unk>`=2, `<bos>`=3, `0`..`9`=4..13, `+`=14, `-`=15, `*`=16,
 * `=`=17, space=18, newline=19, `<answer>`=20, `</answer>`=21 (vocabulary size 22).
 */
export const ARITHMETIC_ALPHABET = '0123456789+-*= \n';

export function arithmeticTokenizer(): CharTokenizer {
  return CharTokenizer.fromAlphabet(ARITHMETIC_ALPHABET, { extraTokens: [ANSWER_OPEN, ANSWER_CLOSE] });
}

/** The Hugging Face config of a from-scratch model with `tokenizer`'s vocabulary and special ids. */
export function initModelConfig(init: SftInitConfig, tokenizer: Tokenizer): CausalLMConfig {
  const special = { bos_token_id: tokenizer.bosTokenId, eos_token_id: tokenizer.eosTokenId, pad_token_id: tokenizer.padTokenId };
  if (init.architecture === 'gpt2') {
    return parseModelConfig(
      {
        model_type: 'gpt2',
        vocab_size: tokenizer.vocabSize,
        n_positions: init.contextLength,
        n_embd: init.hiddenSize,
        n_layer: init.layers,
        n_head: init.heads,
        n_inner: init.intermediateSize,
        initializer_range: init.initializerRange,
        ...special,
      },
      'model.init',
    );
  }
  return parseModelConfig(
    {
      model_type: 'llama',
      vocab_size: tokenizer.vocabSize,
      max_position_embeddings: init.contextLength,
      hidden_size: init.hiddenSize,
      num_hidden_layers: init.layers,
      num_attention_heads: init.heads,
      num_key_value_heads: init.kvHeads ?? init.heads,
      intermediate_size: init.intermediateSize ?? Math.ceil((8 * init.hiddenSize) / 3 / 8) * 8,
      rope_theta: init.ropeTheta,
      tie_word_embeddings: true,
      initializer_range: init.initializerRange,
      ...special,
    },
    'model.init',
  );
}

/**
 * The tokenizer of a from-scratch model: the arithmetic tokenizer for generated arithmetic,
 * otherwise a character tokenizer over every character of the examples (in code-point
 * order), with `<answer>`/`</answer>` as single tokens when the data uses them.
 */
export function taskTokenizer(data: SftConfig['data'], examples: readonly SftExample[]): Tokenizer {
  if (data.generate) return arithmeticTokenizer();
  const chars = new Set<string>();
  let tagged = false;
  for (const ex of examples) {
    for (const text of [ex.prompt, ex.completion]) {
      if (text.includes(ANSWER_OPEN) || text.includes(ANSWER_CLOSE)) tagged = true;
      for (const ch of text.replaceAll(ANSWER_OPEN, '').replaceAll(ANSWER_CLOSE, '')) chars.add(ch);
    }
  }
  const alphabet = [...chars].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!).join('');
  if (alphabet.length === 0) throw new Error('taskTokenizer: the examples contain no characters to build a vocabulary from');
  return CharTokenizer.fromAlphabet(alphabet, { extraTokens: tagged ? [ANSWER_OPEN, ANSWER_CLOSE] : [] });
}
