/**
 * A data set's text to token ids, never silently lossy: the shared step of
 * `encodePromptRows` and `encodeSftExamples` (prompts.ts).
 *
 * - A character the tokenizer cannot encode becomes its unknown token (`<unk>`). The
 *   character tokenizer's alphabet is closed (its model has never seen another character),
 *   so there this is an error naming the row and the character; with any other tokenizer it
 *   is a warning naming the first such row, once per data set.
 * - U+FFFD, the replacement character, is what a file's invalid UTF-8 bytes are read as
 *   (Node's UTF-8 decoding replaces them): a warning naming the first such row, once per
 *   data set; with the character tokenizer, an error like any unknown character.
 * - A tokenizer that fails on a text (a 300 MB prompt overflows an array) is an error naming
 *   the row and the text's size, not a bare `RangeError`.
 */
import { CharTokenizer, describeChar } from '../lm/char-tokenizer.ts';
import { type Tokenizer, TransformersTokenizer } from '../lm/tokenizer.ts';

/** Where warnings go: one message each (no trailing newline). */
export type Warn = (message: string) => void;

/** The default: `warning: <message>` on stderr. */
export const warnOnStderr: Warn = (message) => {
  process.stderr.write(`warning: ${message}\n`);
};

const REPLACEMENT = '\uFFFD';

/** The tokenizer's unknown-token id, or null when it has none (byte-level BPE never needs one). */
function unknownId(tokenizer: Tokenizer): number | null {
  if (tokenizer instanceof CharTokenizer) return tokenizer.unkTokenId;
  if (tokenizer instanceof TransformersTokenizer) return (tokenizer.hf.unk_token_id as number | null | undefined) ?? null;
  return null;
}

/** Encodes the texts of one data set with one tokenizer (see the file header). */
export class DataEncoder {
  private warnedUnknown = false;
  private warnedReplacement = false;
  private readonly unk: number | null;

  constructor(
    private readonly tokenizer: Tokenizer,
    private readonly warn: Warn = warnOnStderr,
  ) {
    this.unk = unknownId(tokenizer);
  }

  /** Token ids of `text`, the `what` ("prompt", "completion") of the row at `source`. */
  encode(text: string, source: string, what: string, options: { addSpecialTokens?: boolean } = {}): number[] {
    let ids: number[];
    try {
      ids = this.tokenizer.encode(text, options);
    } catch (e) {
      throw new Error(`${source}: the ${what} (${text.length.toLocaleString('en-US')} characters) could not be tokenized: ${(e as Error).message}`);
    }
    const tok = this.tokenizer;
    if (tok instanceof CharTokenizer) {
      const unknown = tok.firstUnknown(text);
      if (unknown) {
        const why = unknown.char === REPLACEMENT ? ' (U+FFFD is what bytes that are not valid UTF-8 are read as: check the file\'s encoding)' : '';
        throw new Error(
          `${source}: the ${what} has the character ${describeChar(unknown.char)} at position ${unknown.index}, which is not in the character tokenizer's alphabet${why}; ` +
            `its model never saw it (it would be read as <unk>). Alphabet: ${JSON.stringify(tok.alphabet)}`,
        );
      }
      return ids;
    }
    if (!this.warnedReplacement && text.includes(REPLACEMENT)) {
      this.warnedReplacement = true;
      this.warn(`${source}: the ${what} has U+FFFD, the character bytes that are not valid UTF-8 are read as: check the file's encoding (later rows are not reported)`);
    }
    if (!this.warnedUnknown && this.unk !== null && ids.includes(this.unk)) {
      this.warnedUnknown = true;
      const first = [...text].find((ch) => tok.encode(ch, { addSpecialTokens: false }).includes(this.unk!));
      this.warn(`${source}: the ${what} has characters the tokenizer cannot encode${first ? ` (the first: ${describeChar(first)})` : ''}; they become its unknown token (later rows are not reported)`);
    }
    return ids;
  }
}
