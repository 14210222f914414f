/**
 * The real Qwen3 tokenizer committed under test/fixtures/tokenizers/qwen3/ (see its README),
 * as a ready Hugging Face tokenizer folder for tests.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliDecompressSync } from 'node:zlib';

export const QWEN3_TOKENIZER_FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'tokenizers', 'qwen3');

/** sha256 of the published tokenizer.json (the fixture stores it brotli-compressed). */
export const QWEN3_TOKENIZER_JSON_SHA256 = 'aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4';

/**
 * A folder holding the Qwen3 tokenizer.json (unpacked, and checked against its published
 * sha256) and tokenizer_config.json. Unpacked into the system temp folder and reused while
 * it still matches, through a temporary name and a rename, so that test files running in
 * parallel never see a partial file.
 */
export async function qwen3TokenizerDir(): Promise<string> {
  const dir = join(tmpdir(), `rlvr-test-qwen3-tokenizer-${QWEN3_TOKENIZER_JSON_SHA256.slice(0, 12)}`);
  const json = join(dir, 'tokenizer.json');
  const config = join(dir, 'tokenizer_config.json');
  const wantConfig = await readFile(join(QWEN3_TOKENIZER_FIXTURE, 'tokenizer_config.json'));
  const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
  const current = async (path: string): Promise<Buffer | null> => (existsSync(path) ? readFile(path) : null);
  const put = async (path: string, bytes: Buffer): Promise<void> => {
    const tmp = `${path}.${process.pid}-${Math.random().toString(36).slice(2)}`;
    await writeFile(tmp, bytes);
    await rename(tmp, path);
  };
  await mkdir(dir, { recursive: true });
  const have = await current(json);
  if (have === null || sha256(have) !== QWEN3_TOKENIZER_JSON_SHA256) {
    const bytes = brotliDecompressSync(await readFile(join(QWEN3_TOKENIZER_FIXTURE, 'tokenizer.json.br')));
    if (sha256(bytes) !== QWEN3_TOKENIZER_JSON_SHA256) {
      throw new Error(`qwen3 tokenizer fixture: tokenizer.json.br unpacks to sha256 ${sha256(bytes)}, expected ${QWEN3_TOKENIZER_JSON_SHA256}`);
    }
    await put(json, bytes);
  }
  if (!(await current(config))?.equals(wantConfig)) await put(config, wantConfig);
  return dir;
}
