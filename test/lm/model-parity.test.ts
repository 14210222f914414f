/**
 * Parity with an independent implementation: test/fixtures/make_lm_fixtures.py writes tiny
 * random models in the Hugging Face layout and the logits its float64 numpy forward (written
 * from the Hugging Face modelling equations) gives for a left-padded batch. Our loader +
 * model must reproduce them to 1e-4, and a save/reload must not change a single logit.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCausalLM, saveCausalLM } from '../../src/lm/checkpoint.ts';
import { maxAbsDiff, useCpu } from './lm-helpers.ts';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'lm');
const SCRIPT = join(import.meta.dirname, '..', 'fixtures', 'make_lm_fixtures.py');
const HAVE_NUMPY = spawnSync('python3', ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0;

interface Expected {
  input_ids: number[][];
  attention_mask: number[][];
  logits: Array<Array<number[] | null>>;
}

let scratch: string;
beforeAll(async () => {
  await useCpu();
  scratch = await mkdtemp(join(tmpdir(), 'rlvr-lm-parity-'));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

/** max |ours - expected| over the real (unpadded) positions. */
function worstDiff(logits: tf.Tensor3D, expected: Expected): number {
  const ours = logits.arraySync();
  let worst = 0;
  expected.logits.forEach((row, b) =>
    row.forEach((want, t) => {
      if (want === null) return;
      want.forEach((x, v) => {
        worst = Math.max(worst, Math.abs(x - ours[b]![t]![v]!));
      });
    }),
  );
  return worst;
}

describe.each([
  ['gpt2-tiny', 'gpt2'],
  ['llama-gqa-tied', 'llama'],
  ['qwen2-bias-untied', 'qwen2'],
  ['llama-f16-sharded', 'llama'],
  ['qwen3-gqa-headdim', 'qwen3'],
  ['qwen3-bias-untied', 'qwen3'],
])('parity with the numpy reference: %s', (name, modelType) => {
  const dir = join(FIXTURES, name);
  const expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) as Expected;

  it('loads and reproduces the reference logits of a left-padded batch to 1e-4', async () => {
    const { model, config } = await loadCausalLM(dir);
    expect(config.model_type).toBe(modelType);
    const ids = tf.tensor2d(expected.input_ids, undefined, 'int32');
    const mask = tf.tensor2d(expected.attention_mask, undefined, 'int32');
    const logits = model.forward(ids, { attentionMask: mask });
    expect(logits.shape).toEqual([ids.shape[0], ids.shape[1], config.vocab_size]);
    const worst = worstDiff(logits, expected);
    expect(worst).toBeLessThan(1e-4);

    // The fully real first row needs no mask.
    const row0 = model.forward(tf.tensor2d([expected.input_ids[0]!], undefined, 'int32'));
    expect(worstDiff(row0, { ...expected, logits: [expected.logits[0]!] })).toBeLessThan(1e-4);

    // Saved and reloaded (always F32, single file): the same logits exactly.
    const out = join(scratch, name);
    await saveCausalLM(model, null, out);
    const again = await loadCausalLM(out);
    expect(maxAbsDiff(again.model.forward(ids, { attentionMask: mask }), logits)).toBe(0);
    model.dispose();
    again.model.dispose();
  });

  it.skipIf(!HAVE_NUMPY)('saves a folder that the numpy reference reads back as the same model', async () => {
    const { model } = await loadCausalLM(dir);
    const out = join(scratch, `${name}-for-numpy`);
    await saveCausalLM(model, null, out);
    model.dispose();
    const run = spawnSync('python3', [SCRIPT, '--logits', out], { encoding: 'utf8', maxBuffer: 64 << 20 });
    expect(run.status, run.stderr).toBe(0);
    const numpy = JSON.parse(run.stdout) as { attention_mask: number[][]; logits: number[][][] };
    // The numpy forward of our saved folder must give the fixture's expected logits.
    expect(numpy.attention_mask).toEqual(expected.attention_mask);
    const fromNumpy = tf.tensor3d(numpy.logits);
    expect(worstDiff(fromNumpy, expected)).toBeLessThan(1e-5);
  });
});
