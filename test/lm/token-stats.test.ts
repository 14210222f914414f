/**
 * The per-token boundary between a model and the trainers: policy log-probs agree with the
 * full-batch recomputation, critic values agree with an independent unpadded computation
 * (each row alone, h at the position before each completion token, dotted with the head),
 * chunking and padding change nothing, and nothing leaks. Each architecture family (GPT-2
 * learned positions, Llama / Qwen2 RoPE) is checked, since the positions of left-padded rows
 * are where a layout bug would show.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.ts';
import { CausalLM } from '../../src/lm/model.ts';
import { type ValueModel, allRows, batchLogprobs, buildLogprobBatch, criticTokenValues, criticValuesNoGrad, logprobsNoGrad, policyTokenStats } from '../../src/lm/token-stats.ts';
import { ValueHead } from '../../src/lm/value-head.ts';
import { TINY_CONFIGS, maxAbsDiff, randomRows, useCpu } from './lm-helpers.ts';

beforeAll(useCpu);

// Prompts of different lengths (left padding) and completions of different lengths (right
// padding), one of them empty.
const rng = new Rng(42);
const PROMPTS = randomRows(rng, [5, 2, 7, 3], 64);
const COMPLETIONS = randomRows(rng, [3, 6, 0, 4], 64);

/** The critic's values of one row alone, unpadded: head(h at the position before each completion token). */
function valuesAlone(critic: ValueModel, prompt: number[], completion: number[]): number[] {
  if (completion.length === 0) return [];
  const seq = [...prompt, ...completion].slice(0, -1); // the last token is never fed
  const h = tf.tidy(() => critic.trunk.hiddenStates(tf.tensor2d([seq], [1, seq.length], 'int32')).arraySync()[0]!); // [L-1, D]
  const w = critic.head.variables[0]!.dataSync(); // [D, 1]
  const b = critic.head.variables[1]!.dataSync()[0]!;
  return completion.map((_, t) => h[prompt.length - 1 + t]!.reduce((a, x, d) => a + x * w[d]!, b));
}

describe.each(TINY_CONFIGS)('token stats (%s)', (_name, config) => {
  it('policyTokenStats log-probs equal batchLogprobs / logprobsNoGrad on completion tokens (temperature 0.7); entropies match -sum p log p', () => {
    const model = CausalLM.create(config, new Rng(1));
    const layout = buildLogprobBatch(PROMPTS, COMPLETIONS, 0);
    const start = tf.memory().numTensors;
    const { logprobs, entropy } = policyTokenStats(model, layout, allRows(layout), 0.7);
    const T = layout.completionLength;
    expect(logprobs.shape).toEqual([4, T]);
    expect(entropy.shape).toEqual([4, T]);
    const full = batchLogprobs(model, layout, { temperature: 0.7 });
    const noGrad = logprobsNoGrad(model, layout, 0.7);
    const ours = logprobs.dataSync();
    const ref = full.dataSync();
    let compared = 0;
    for (let k = 0; k < ours.length; k++) {
      if (layout.completionMask[k] === 0) continue;
      expect(Math.abs(ours[k]! - ref[k]!)).toBeLessThan(1e-5);
      expect(Math.abs(ours[k]! - noGrad[k]!)).toBeLessThan(1e-5);
      compared++;
    }
    expect(compared).toBe(13);
    // A subset of rows, in another order, gives the same rows.
    const sub = policyTokenStats(model, layout, [3, 0], 0.7);
    const s = sub.logprobs.arraySync();
    const o = logprobs.arraySync();
    for (let t = 0; t < COMPLETIONS[3]!.length; t++) expect(Math.abs(s[0]![t]! - o[3]![t]!)).toBeLessThan(1e-5);
    for (let t = 0; t < COMPLETIONS[0]!.length; t++) expect(Math.abs(s[1]![t]! - o[0]![t]!)).toBeLessThan(1e-5);
    // Entropy of row 1 alone, unpadded, from the softmax of logits / 0.7.
    const seq = [...PROMPTS[1]!, ...COMPLETIONS[1]!].slice(0, -1);
    const probs = tf.tidy(() => (tf.softmax(tf.div(model.forward(tf.tensor2d([seq], [1, seq.length], 'int32')), 0.7)) as tf.Tensor3D).arraySync()[0]!); // [L-1, V]
    const e = entropy.arraySync()[1]!;
    COMPLETIONS[1]!.forEach((_, t) => {
      const p = probs[PROMPTS[1]!.length - 1 + t]!;
      expect(Math.abs(e[t]! + p.reduce((a, q) => a + (q > 0 ? q * Math.log(q) : 0), 0))).toBeLessThan(1e-4);
    });
    tf.dispose([logprobs, entropy, full, sub.logprobs, sub.entropy]);
    expect(tf.memory().numTensors).toBe(start);
    model.dispose();
  });

  it('criticTokenValues equals head(h) of each row alone, unpadded, at the position before each completion token', () => {
    const trunk = CausalLM.create(config, new Rng(2));
    const head = ValueHead.create(trunk.dims.hiddenSize, new Rng(3), 0.5); // a wide head, so values differ visibly between positions
    tf.tidy(() => head.variables[1]!.assign(tf.tensor1d([0.3])));
    const critic = { trunk, head };
    const layout = buildLogprobBatch(PROMPTS, COMPLETIONS, 0);
    const start = tf.memory().numTensors;
    const v = criticTokenValues(critic, layout, allRows(layout));
    expect(v.shape).toEqual([4, layout.completionLength]);
    const got = v.arraySync();
    v.dispose();
    expect(tf.memory().numTensors).toBe(start);
    let spread = 0;
    PROMPTS.forEach((p, i) => {
      const want = valuesAlone(critic, p, COMPLETIONS[i]!);
      want.forEach((x, t) => {
        expect(Math.abs(got[i]![t]! - x), `row ${i} token ${t}`).toBeLessThan(1e-5);
        spread = Math.max(spread, Math.abs(x - want[0]!));
      });
    });
    expect(spread).toBeGreaterThan(1e-2); // the positions are told apart: an off-by-one would fail
    head.dispose();
    trunk.dispose();
  });

  it('criticValuesNoGrad in chunks of 2 equals all at once, and adding a longer row changes no other row', () => {
    const trunk = CausalLM.create(config, new Rng(4));
    const head = ValueHead.create(trunk.dims.hiddenSize, new Rng(5), 0.5);
    const critic = { trunk, head };
    const layout = buildLogprobBatch(PROMPTS, COMPLETIONS, 0);
    const start = tf.memory().numTensors;
    const all = criticValuesNoGrad(critic, layout);
    const chunked = criticValuesNoGrad(critic, layout, 2);
    const odd = criticValuesNoGrad(critic, layout, 3);
    expect(tf.memory().numTensors).toBe(start);
    expect(all.length).toBe(4 * layout.completionLength);
    const onMask = (a: Float32Array): number[] => [...a].filter((_, k) => layout.completionMask[k] === 1);
    expect(maxAbsDiff(onMask(chunked), onMask(all))).toBeLessThan(1e-5);
    expect(maxAbsDiff(onMask(odd), onMask(all))).toBeLessThan(1e-5);

    // A fifth row with a longer prompt and a longer completion widens P and T for everyone.
    const longer = buildLogprobBatch([...PROMPTS, randomRows(new Rng(9), [10], 64)[0]!], [...COMPLETIONS, randomRows(new Rng(10), [8], 64)[0]!], 0);
    expect(longer.promptLength).toBeGreaterThan(layout.promptLength);
    expect(longer.completionLength).toBeGreaterThan(layout.completionLength);
    const wide = criticValuesNoGrad(critic, longer);
    const T0 = layout.completionLength;
    const T1 = longer.completionLength;
    let maxDiff = 0;
    COMPLETIONS.forEach((c, i) => c.forEach((_, t) => (maxDiff = Math.max(maxDiff, Math.abs(wide[i * T1 + t]! - all[i * T0 + t]!)))));
    expect(maxDiff).toBeLessThan(1e-5);
    head.dispose();
    trunk.dispose();
  });
});
