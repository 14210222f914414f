/**
 * The standard character-level tokenizer for the arithmetic tasks.
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
import { CharTokenizer } from '../../src/lm/char-tokenizer.ts';
import { ANSWER_CLOSE, ANSWER_OPEN } from './generate.ts';

export const ARITHMETIC_ALPHABET = '0123456789+-*= \n';

export function arithmeticTokenizer(): CharTokenizer {
  return CharTokenizer.fromAlphabet(ARITHMETIC_ALPHABET, { extraTokens: [ANSWER_OPEN, ANSWER_CLOSE] });
}
