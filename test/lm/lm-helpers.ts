/** Shared helpers for the test/lm suites. */
import * as tf from '@tensorflow/tfjs';
import type { Rng } from '../../src/core/rng.ts';
import { type CausalLMConfig, tinyGpt2Config, tinyLlamaConfig, tinyQwen3Config } from '../../src/lm/config.ts';

/** The deterministic pure-JS backend, silenced. */
export async function useCpu(): Promise<void> {
  await tf.setBackend('cpu');
  await tf.ready();
  (tf.backend() as unknown as { firstUse?: boolean }).firstUse = false;
}

/** One tiny config per architecture family, named for `describe.each` / `it.each`. */
export const TINY_CONFIGS: Array<[string, CausalLMConfig]> = [
  ['gpt2', tinyGpt2Config()],
  ['llama (GQA, tied)', tinyLlamaConfig()],
  ['qwen2 (qkv bias, untied)', tinyLlamaConfig({ model_type: 'qwen2', tie_word_embeddings: false })],
  ['qwen3 (q/k norm, head_dim 16 != 32/4)', tinyQwen3Config()],
];

/** Random ids in [1, V) from our Rng. */
export function randomRows(rng: Rng, lengths: number[], vocab: number): number[][] {
  return lengths.map((n) => Array.from({ length: n }, () => 1 + rng.int(vocab - 1)));
}

/** max |a - b| over two equally shaped tensors or arrays. */
export function maxAbsDiff(a: tf.Tensor | ArrayLike<number>, b: tf.Tensor | ArrayLike<number>): number {
  const x = a instanceof tf.Tensor ? a.dataSync() : a;
  const y = b instanceof tf.Tensor ? b.dataSync() : b;
  if (x.length !== y.length) throw new Error(`maxAbsDiff: lengths differ (${x.length} vs ${y.length})`);
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]! - y[i]!));
  return m;
}

/** |ours - reference| / |reference| (Euclidean norms); NaN when the reference is all zeros. */
export function relativeError(ours: ArrayLike<number>, reference: ArrayLike<number>): number {
  if (ours.length !== reference.length) throw new Error(`relativeError: lengths differ (${ours.length} vs ${reference.length})`);
  let num = 0;
  let den = 0;
  for (let j = 0; j < reference.length; j++) {
    num += (reference[j]! - ours[j]!) ** 2;
    den += reference[j]! ** 2;
  }
  return den > 0 ? Math.sqrt(num / den) : NaN;
}

/** Left-pad rows of token ids to a common length: ids [B, T] int32 and mask [B, T]. */
export function leftPad(rows: number[][], padId = 0): { ids: tf.Tensor2D; mask: tf.Tensor2D; width: number } {
  const width = Math.max(...rows.map((r) => r.length));
  const ids: number[][] = [];
  const mask: number[][] = [];
  for (const r of rows) {
    const pad = width - r.length;
    ids.push([...new Array<number>(pad).fill(padId), ...r]);
    mask.push([...new Array<number>(pad).fill(0), ...new Array<number>(r.length).fill(1)]);
  }
  return { ids: tf.tensor2d(ids, [rows.length, width], 'int32'), mask: tf.tensor2d(mask, [rows.length, width], 'int32'), width };
}
