/** The tiny GRPO/PPO setup several trainer suites share: a 2-layer GPT-2 with the arithmetic tokenizer, and "i+1=" / "i+2=" prompts. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RewardBatch } from '../../rewards/types.ts';
import { Rng } from '../../src/core/rng.ts';
import { saveCausalLM } from '../../src/lm/checkpoint.ts';
import { tinyGpt2Config } from '../../src/lm/config.ts';
import { CausalLM } from '../../src/lm/model.ts';
import { arithmeticTokenizer } from '../../src/trainers/from-scratch.ts';

export interface TinyRlFixture {
  dir: string;
  initDir: string;
  trainFile: string;
  testFile: string;
}

/** A temp folder holding the starting model (init/), 24 training and 6 held-out prompts. */
export async function makeTinyRlFixture(prefix: string): Promise<TinyRlFixture> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const initDir = join(dir, 'init');
  const model = CausalLM.create(tinyGpt2Config({ vocab_size: 22, n_positions: 16, n_embd: 32, n_layer: 2, n_head: 2 }), new Rng(1));
  await saveCausalLM(model, arithmeticTokenizer(), initDir);
  model.dispose();
  const trainFile = join(dir, 'train.jsonl');
  const testFile = join(dir, 'test.jsonl');
  writeFileSync(trainFile, Array.from({ length: 24 }, (_, i) => JSON.stringify({ prompt: `${i}+1=`, answer: String(i + 1) })).join('\n') + '\n');
  writeFileSync(testFile, Array.from({ length: 6 }, (_, i) => JSON.stringify({ prompt: `${i}+2=`, answer: String(i + 2) })).join('\n') + '\n');
  return { dir, initDir, trainFile, testFile };
}

/** Fraction of the completion's characters that are '7' (0 for an empty completion): a trivially learnable reward. */
export function sevens(batch: RewardBatch): number[] {
  return batch.completions.map((c) => (c.length === 0 ? 0 : [...c].filter((x) => x === '7').length / c.length));
}
