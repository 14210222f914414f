/**
 * The onnxruntime engine against the tfjs one (the reference) and the numpy fixtures:
 * prefill logits over a left-padded batch, 20 KV-cached decode steps, greedy and seeded
 * sampling token for token at several batch sizes, log-probs, weight sync on both routes,
 * and aborting a generation.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../../src/core/rng.ts';
import { decodeModel } from '../../../src/engine/onnx/graph.ts';
import { OrtCausalLM, type WeightRoute } from '../../../src/engine/onnx/causal-lm.ts';
import { causalLMGraph } from '../../../src/engine/onnx/causal-lm-graph.ts';
import { onnxSampler } from '../../../src/engine/onnx/sampler.ts';
import { loadCausalLM } from '../../../src/lm/checkpoint.ts';
import { CausalLM } from '../../../src/lm/model.ts';
import { type GenerateOptions, generate, generateWith } from '../../../src/lm/sampler.ts';
import { sequenceLogprobs } from '../../../src/lm/token-stats.ts';
import { TINY_CONFIGS, randomRows, useCpu } from '../../lm/lm-helpers.ts';

const FIXTURES = join(import.meta.dirname, '..', '..', 'fixtures', 'lm');

beforeAll(useCpu);

interface Expected {
  input_ids: number[][];
  attention_mask: number[][];
  logits: Array<Array<number[] | null>>;
}

/** max |a - b| over rows whose mask is 1 ([B * T] positions of V logits). */
function maskedDiff(a: ArrayLike<number>, b: ArrayLike<number>, mask: ArrayLike<number>, V: number): number {
  let m = 0;
  for (let p = 0; p < mask.length; p++) {
    if (!mask[p]) continue;
    for (let v = 0; v < V; v++) m = Math.max(m, Math.abs(a[p * V + v]! - b[p * V + v]!));
  }
  return m;
}

const FIXTURE_NAMES = ['gpt2-tiny', 'llama-gqa-tied', 'qwen2-bias-untied', 'qwen3-gqa-headdim', 'qwen3-bias-untied'];
describe.each(FIXTURE_NAMES.flatMap((n) => [[n, false] as const, [n, true] as const]))('onnxruntime engine on fixture %s (fused operators: %s)', (name, fused) => {
  const dir = join(FIXTURES, name);

  it('prefill logits of a left-padded batch match tfjs and numpy to 1e-4', async () => {
    const { model } = await loadCausalLM(dir);
    const expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) as Expected;
    const B = expected.input_ids.length;
    const T = expected.input_ids[0]!.length;
    const ids = Int32Array.from(expected.input_ids.flat());
    const mask = Int32Array.from(expected.attention_mask.flat());
    const ort = await OrtCausalLM.fromModel(model, { fused });
    try {
      const V = model.dims.vocabSize;
      const got = await ort.forward(ids, B, T, mask);
      const ref = tf.tidy(() => model.forward(tf.tensor2d(ids, [B, T], 'int32'), { attentionMask: tf.tensor2d(mask, [B, T], 'int32') }).dataSync());
      expect(maskedDiff(got, ref, mask, V)).toBeLessThan(1e-4);
      const numpy = new Float32Array(B * T * V);
      expected.logits.forEach((row, b) => row.forEach((l, t) => l && numpy.set(l, (b * T + t) * V)));
      expect(maskedDiff(got, numpy, mask, V)).toBeLessThan(1e-4);
    } finally {
      await ort.dispose();
      model.dispose();
    }
  });

  it('20 KV-cached decode steps (10 for the 16-position GPT-2) give the logits of the full tfjs forward to 1e-4', async () => {
    const { model } = await loadCausalLM(dir);
    const ort = await OrtCausalLM.fromModel(model, { fused });
    try {
      const V = model.dims.vocabSize;
      const rng = new Rng(11);
      const prompts = randomRows(rng, [3, 6], V);
      const width = 6;
      const steps = Math.min(20, model.dims.maxPositions - width); // gpt2-tiny has 16 positions
      expect(steps).toBeGreaterThanOrEqual(10);
      const future = randomRows(rng, [steps, steps], V); // teacher-forced next tokens
      const total = width + steps;
      const ids = new Int32Array(2 * total);
      const mask = new Int32Array(2 * total);
      prompts.forEach((p, b) => {
        const pad = width - p.length;
        p.forEach((t, i) => {
          ids[b * total + pad + i] = t;
          mask[b * total + pad + i] = 1;
        });
        future[b]!.forEach((t, i) => {
          ids[b * total + width + i] = t;
          mask[b * total + width + i] = 1;
        });
      });
      const full = tf.tidy(() => model.forward(tf.tensor2d(ids, [2, total], 'int32'), { attentionMask: tf.tensor2d(mask, [2, total], 'int32') }).dataSync());
      const at = (b: number, t: number): Float32Array => full.slice((b * total + t) * V, (b * total + t + 1) * V) as Float32Array;
      const dec = ort.decoder();
      const pIds = new Int32Array(2 * width);
      const pMask = new Int32Array(2 * width);
      for (let b = 0; b < 2; b++) {
        pIds.set(ids.subarray(b * total, b * total + width), b * width);
        pMask.set(mask.subarray(b * total, b * total + width), b * width);
      }
      let logits = await dec.prefill(pIds, pMask, 2, width, total);
      let worst = 0;
      const check = (t: number): void => {
        for (let b = 0; b < 2; b++) {
          const ref = at(b, t);
          for (let v = 0; v < V; v++) worst = Math.max(worst, Math.abs(logits[b * V + v]! - ref[v]!));
        }
      };
      check(width - 1);
      for (let s = 0; s < steps; s++) {
        logits = await dec.step(Int32Array.from([future[0]![s]!, future[1]![s]!]));
        check(width + s);
      }
      dec.dispose();
      expect(worst).toBeLessThan(1e-4);
    } finally {
      await ort.dispose();
      model.dispose();
    }
  });
});

describe.each(TINY_CONFIGS)('onnxruntime sampler, %s', (_label, config) => {
  const base = (seed: number): GenerateOptions => ({ numGenerations: 3, maxNewTokens: 12, eosTokenId: 0, padTokenId: 0, temperature: 1, topK: 20, topP: 0.95, rng: new Rng(seed) });

  it('greedy and seeded completions are token-identical to tfjs at any batch size; log-probs agree to 1e-5', async () => {
    const model = CausalLM.create(config, new Rng(3));
    const ort = await OrtCausalLM.fromModel(model);
    try {
      const prompts = randomRows(new Rng(4), [2, 5, 3, 7], model.dims.vocabSize);
      for (const greedy of [true, false]) {
        const opts = { ...base(9), ...(greedy ? { temperature: 0 } : {}) };
        const ref = generate(model, prompts, { ...opts, rng: new Rng(9) });
        for (const batchSize of [1, 5, undefined]) {
          const got = await generateWith(() => ort.decoder(), ort.limits, prompts, { ...opts, rng: new Rng(9), batchSize });
          expect(got.completionIds).toEqual(ref.completionIds);
          expect(got.finishReasons).toEqual(ref.finishReasons);
          let worst = 0;
          got.logprobs.forEach((l, i) => l.forEach((x, j) => (worst = Math.max(worst, Math.abs(x - ref.logprobs[i]![j]!)))));
          expect(worst).toBeLessThan(1e-5);
        }
      }
      // Against the full (uncached) tfjs forward: the log-probs training recomputes.
      const got = await generateWith(() => ort.decoder(), ort.limits, prompts, base(5));
      const full = sequenceLogprobs(model, got.promptIds, got.completionIds, { temperature: 1, padTokenId: 0 });
      const [, Tc] = full.logprobs.shape;
      const lp = full.logprobs.dataSync();
      tf.dispose([full.logprobs, full.mask]);
      let worst = 0;
      got.logprobs.forEach((l, i) => l.forEach((x, j) => (worst = Math.max(worst, Math.abs(x - lp[i * Tc + j]!)))));
      expect(worst).toBeLessThan(1e-5);
    } finally {
      await ort.dispose();
      model.dispose();
    }
  });
});

describe('onnxruntime sampler: weights, graph, abort', () => {
  it.each<WeightRoute>(['initializers', 'inputs'])('follows the tfjs weights after an update (route %s)', async (route) => {
    const model = CausalLM.create(TINY_CONFIGS[1]![1], new Rng(1));
    const sampler = await onnxSampler(model, { route });
    try {
      const prompts = randomRows(new Rng(2), [4, 4], model.dims.vocabSize);
      const opts: GenerateOptions = { numGenerations: 2, maxNewTokens: 8, eosTokenId: 0, padTokenId: 0, temperature: 0, rng: new Rng(0) };
      const before = await sampler.generate(prompts, opts);
      expect(before.completionIds).toEqual(generate(model, prompts, opts).completionIds);
      expect(sampler.syncStats().syncs).toBe(0);
      // An "optimizer step": new values in every variable.
      const rng = new Rng(7);
      for (const v of model.variables) {
        const noise = new Float32Array(v.size);
        rng.fillNormal(noise, 0, 0.5);
        v.assign(tf.tidy(() => tf.add(v, tf.tensor(noise, v.shape))));
      }
      const ref = generate(model, prompts, opts);
      expect(ref.completionIds).not.toEqual(before.completionIds); // the update changes greedy output
      const after = await sampler.generate(prompts, opts);
      expect(after.completionIds).toEqual(ref.completionIds);
      expect(sampler.syncStats().syncs).toBe(1);
      await sampler.generate(prompts, opts); // no change: no sync
      expect(sampler.syncStats().syncs).toBe(1);
    } finally {
      await sampler.dispose();
      model.dispose();
    }
  });

  it('writes the transformers.js input/output names, opset 21 and no weights inline with external data', () => {
    const model = CausalLM.create(TINY_CONFIGS[1]![1], new Rng(1));
    const weights = new Map(model.variableNames.map((n, i) => [n, model.variables[i]!.dataSync() as Float32Array]));
    const { model: bytes, externalData } = causalLMGraph(model.config, weights).serialize({ externalData: 'model.onnx_data' });
    const m = decodeModel(bytes);
    const L = model.dims.numLayers;
    expect(m.graph.input.map((i: { name: string }) => i.name)).toEqual([
      'input_ids',
      'attention_mask',
      'position_ids',
      ...Array.from({ length: L }, (_, i) => [`past_key_values.${i}.key`, `past_key_values.${i}.value`]).flat(),
    ]);
    expect(m.graph.output.map((o: { name: string }) => o.name)).toEqual(['logits', ...Array.from({ length: L }, (_, i) => [`present.${i}.key`, `present.${i}.value`]).flat()]);
    expect(m.opset_import).toEqual([{ domain: '', version: 21 }]);
    const kv = m.graph.input[3].type.tensor_type.shape.dim;
    expect(kv).toEqual([{ dim_param: 'batch_size' }, { dim_value: model.dims.numKvHeads }, { dim_param: 'past_sequence_length' }, { dim_value: model.dims.headDim }]);
    const embed = m.graph.initializer.find((t: { name: string }) => t.name === 'model.embed_tokens.weight');
    expect(embed.data_location).toBe(1);
    expect(embed.raw_data).toBeUndefined();
    expect(externalData!.data.byteLength).toBeGreaterThanOrEqual(4 * model.numParameters());
    model.dispose();
  });

  it('an aborted generation stops between tokens and rejects with the reason', async () => {
    const model = CausalLM.create(TINY_CONFIGS[0]![1], new Rng(1));
    const ort = await OrtCausalLM.fromModel(model);
    try {
      const controller = new AbortController();
      let steps = 0;
      const make = () => {
        const d = ort.decoder();
        return {
          ...d,
          prefill: d.prefill.bind(d),
          selectRows: d.selectRows.bind(d),
          dispose: d.dispose.bind(d),
          step: (next: Int32Array) => {
            if (++steps === 3) controller.abort(new Error('interrupted'));
            return d.step(next);
          },
        };
      };
      const opts: GenerateOptions = { numGenerations: 1, maxNewTokens: 30, eosTokenId: 0, padTokenId: 0, temperature: 0, rng: new Rng(0) };
      await expect(generateWith(make, ort.limits, [[1, 2, 3]], { ...opts, signal: controller.signal })).rejects.toThrow('interrupted');
      expect(steps).toBe(3);
    } finally {
      await ort.dispose();
      model.dispose();
    }
  });
});
