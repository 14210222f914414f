import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.ts';
import { CharTokenizer } from '../../src/lm/char-tokenizer.ts';
import { tinyGpt2Config, tinyLlamaConfig } from '../../src/lm/config.ts';
import { CausalLM } from '../../src/lm/model.ts';
import {
  type GenerateOptions,
  type GenerationResult,
  generate,
  generateText,
  toPaddedBatch,
} from '../../src/lm/sampler.ts';
import { batchLogprobs, buildLogprobBatch, sequenceLogprobs } from '../../src/lm/token-stats.ts';
import { tokenLogprobs } from '../../src/objectives/logprobs.ts';
import { TINY_CONFIGS, maxAbsDiff, randomRows, useCpu } from './lm-helpers.ts';

beforeAll(useCpu);

function base(overrides: Partial<GenerateOptions> = {}): GenerateOptions {
  return { numGenerations: 1, maxNewTokens: 8, temperature: 1, eosTokenId: 0, padTokenId: 0, rng: new Rng(1), ...overrides };
}

/** Greedy decoding written independently: the full forward (no cache) over one growing row. */
function manualGreedy(model: CausalLM, prompt: number[], maxNew: number, eos: Set<number>): number[] {
  const seq = [...prompt];
  const out: number[] = [];
  for (let s = 0; s < maxNew; s++) {
    const row = tf.tidy(() => {
      const logits = model.forward(tf.tensor2d([seq], [1, seq.length], 'int32'));
      return logits.slice([0, seq.length - 1, 0], [1, 1, -1]).dataSync();
    });
    let best = 0;
    for (let v = 1; v < row.length; v++) if (row[v]! > row[best]!) best = v;
    out.push(best);
    seq.push(best);
    if (eos.has(best)) break;
  }
  return out;
}

function expectSameCompletions(a: GenerationResult, b: GenerationResult, tol = 1e-5): void {
  expect(a.completionIds).toEqual(b.completionIds);
  expect(a.truncated).toEqual(b.truncated);
  expect(a.finishReasons).toEqual(b.finishReasons);
  a.logprobs.forEach((lp, i) => expect(maxAbsDiff(lp, b.logprobs[i]!)).toBeLessThanOrEqual(tol));
}

describe.each(TINY_CONFIGS)('generate (%s)', (_name, cfg) => {
  it('greedy decoding equals a manual greedy loop over the full forward', () => {
    const model = CausalLM.create(cfg, new Rng(31));
    const prompts = randomRows(new Rng(32), [5, 1, 9], cfg.vocab_size);
    const eos = new Set([7, 19]);
    const res = generate(model, prompts, base({ temperature: 0, maxNewTokens: 12, eosTokenId: [7, 19] }));
    prompts.forEach((p, i) => {
      const expected = manualGreedy(model, p, 12, eos);
      expect(res.completionIds[i]).toEqual(expected);
      expect(res.truncated[i]).toBe(!eos.has(expected[expected.length - 1]!) && expected.length === 12);
    });
    model.dispose();
  });

  it('top-k = 1 sampling equals greedy, log-probs included (both at temperature 1)', () => {
    const model = CausalLM.create(cfg, new Rng(33));
    const prompts = randomRows(new Rng(34), [4, 6], cfg.vocab_size);
    const greedy = generate(model, prompts, base({ temperature: 0, maxNewTokens: 10 }));
    const topk = generate(model, prompts, base({ temperature: 1, topK: 1, maxNewTokens: 10, rng: new Rng(99) }));
    expectSameCompletions(greedy, topk);
    model.dispose();
  });

  it('sampler log-probs equal the sequenceLogprobs recomputation (temperature, top-p)', () => {
    const model = CausalLM.create(cfg, new Rng(35));
    const prompts = randomRows(new Rng(36), [3, 7, 5], cfg.vocab_size);
    for (const [temperature, topP] of [[0.7, 0.9], [1.3, 1], [0, 1]] as const) {
      const res = generate(model, prompts, base({ temperature, topP, numGenerations: 2, maxNewTokens: 10, eosTokenId: [3, 4, 5], rng: new Rng(37) }));
      const { logprobs, mask } = sequenceLogprobs(model, res.promptIds, res.completionIds, { temperature: temperature || 1, batchSize: 4 });
      const lp = logprobs.arraySync();
      const m = mask.arraySync();
      res.completionIds.forEach((c, i) => {
        expect(m[i]!.slice(0, c.length).every((x) => x === 1)).toBe(true);
        expect(m[i]!.slice(c.length).every((x) => x === 0)).toBe(true);
        expect(maxAbsDiff(lp[i]!.slice(0, c.length), res.logprobs[i]!)).toBeLessThan(1e-4);
        expect(lp[i]!.slice(c.length).every((x) => x === 0)).toBe(true);
      });
      tf.dispose([logprobs, mask]);
    }
    model.dispose();
  });
});

describe('generate', () => {
  const cfg = tinyGpt2Config();

  it('is deterministic per seed and differs across seeds', () => {
    const model = CausalLM.create(cfg, new Rng(1));
    const prompts = randomRows(new Rng(2), [3, 5], cfg.vocab_size);
    const opts = { numGenerations: 3, maxNewTokens: 12, topP: 0.95, topK: 40 };
    const a = generate(model, prompts, base({ ...opts, rng: new Rng(7) }));
    const b = generate(model, prompts, base({ ...opts, rng: new Rng(7) }));
    const c = generate(model, prompts, base({ ...opts, rng: new Rng(8) }));
    expectSameCompletions(a, b, 0);
    expect(a.completionIds).not.toEqual(c.completionIds);
    model.dispose();
  });

  it('lays completions out group-contiguously and gives the same results whatever batchSize is', () => {
    const model = CausalLM.create(cfg, new Rng(3));
    const prompts = randomRows(new Rng(4), [2, 6, 4], cfg.vocab_size);
    // Several EOS ids end sequences at different steps, so rows leave the batch mid-way.
    const opts = { numGenerations: 4, maxNewTokens: 20, eosTokenId: [1, 2, 3, 4, 5, 6, 7, 8] };
    const all = generate(model, prompts, base({ ...opts, rng: new Rng(5) }));
    expect(all.completionIds.length).toBe(12);
    all.promptIds.forEach((p, j) => expect(p).toEqual(prompts[Math.floor(j / 4)]));
    expect(new Set(all.completionIds.slice(0, 4).map((c) => c.join(','))).size).toBeGreaterThan(1);
    const lengths = new Set(all.completionIds.map((c) => c.length));
    expect(lengths.size).toBeGreaterThan(2); // ended at different steps
    for (const batchSize of [1, 3, 5]) {
      expectSameCompletions(all, generate(model, prompts, base({ ...opts, rng: new Rng(5), batchSize })));
    }
    model.dispose();
  });

  it('left-padded prompts of different lengths give the same greedy completions as each prompt alone', () => {
    for (const c of [cfg, tinyLlamaConfig()]) {
      const model = CausalLM.create(c, new Rng(6));
      const prompts = randomRows(new Rng(7), [1, 8, 3, 12], c.vocab_size);
      const together = generate(model, prompts, base({ temperature: 0, maxNewTokens: 10, eosTokenId: [9, 10, 11] }));
      prompts.forEach((p, i) => {
        const alone = generate(model, [p], base({ temperature: 0, maxNewTokens: 10, eosTokenId: [9, 10, 11] }));
        expect(together.completionIds[i]).toEqual(alone.completionIds[0]);
        expect(maxAbsDiff(together.logprobs[i]!, alone.logprobs[0]!)).toBeLessThan(1e-5);
      });
      model.dispose();
    }
  });

  it('stops a sequence at EOS and includes the EOS token', () => {
    const model = CausalLM.create(cfg, new Rng(8));
    const prompts = randomRows(new Rng(9), [4], cfg.vocab_size);
    const free = generate(model, prompts, base({ temperature: 0, maxNewTokens: 10, eosTokenId: 63, vocabLimit: 63 }));
    expect(free.completionIds[0]!.length).toBe(10);
    expect(free.truncated).toEqual([true]);
    expect(free.finishReasons).toEqual(['length']);
    const eos = free.completionIds[0]![3]!;
    const firstAt = free.completionIds[0]!.indexOf(eos);
    const res = generate(model, prompts, base({ temperature: 0, maxNewTokens: 10, eosTokenId: [62, eos] }));
    expect(res.completionIds[0]).toEqual(free.completionIds[0]!.slice(0, firstAt + 1));
    expect(res.logprobs[0]!.length).toBe(firstAt + 1);
    expect(res.truncated).toEqual([false]);
    expect(res.finishReasons).toEqual(['eos']);
    model.dispose();
  });

  it('flags truncation: never-sampled EOS gives maxNewTokens tokens, truncated', () => {
    const model = CausalLM.create(cfg, new Rng(10));
    const res = generate(model, randomRows(new Rng(11), [2, 5], cfg.vocab_size), base({ numGenerations: 3, maxNewTokens: 6, eosTokenId: 63, vocabLimit: 63 }));
    for (const c of res.completionIds) {
      expect(c.length).toBe(6);
      expect(c.every((t) => t < 63)).toBe(true);
    }
    expect(res.truncated.every(Boolean)).toBe(true);
    model.dispose();
  });

  it('truncates a completion right after the token that completes a stop string', () => {
    const model = CausalLM.create(cfg, new Rng(12));
    const prompts = randomRows(new Rng(13), [3, 6], cfg.vocab_size);
    const decode = (ids: number[]): string => ids.map((i) => String.fromCharCode(48 + i)).join('');
    const free = generate(model, prompts, base({ temperature: 0, maxNewTokens: 12, eosTokenId: 63, vocabLimit: 63 }));
    const text0 = decode(free.completionIds[0]!);
    const stop = text0.slice(4, 6); // two tokens, ends at token 5
    const res = generate(model, prompts, base({ temperature: 0, maxNewTokens: 12, eosTokenId: 63, vocabLimit: 63, stop: { strings: ['@never@', stop], decode } }));
    free.completionIds.forEach((full, i) => {
      // expected: the shortest prefix whose text contains the stop string, else everything
      let cut = full.length;
      for (let m = 1; m <= full.length; m++) {
        if (decode(full.slice(0, m)).includes(stop)) {
          cut = m;
          break;
        }
      }
      expect(res.completionIds[i]).toEqual(full.slice(0, cut));
      expect(res.finishReasons[i]).toBe(cut < full.length || decode(full).includes(stop) ? 'stop' : 'length');
      expect(res.truncated[i]).toBe(res.finishReasons[i] === 'length');
    });
    expect(res.completionIds[0]!.length).toBeLessThanOrEqual(6);
    expect(res.finishReasons[0]).toBe('stop');
    model.dispose();
  });

  it('toPaddedBatch right-pads completions with the pad id and a mask', () => {
    const padded = toPaddedBatch({ completionIds: [[5, 6, 7], [8], []], padTokenId: 2 });
    expect(padded.T).toBe(3);
    expect(Array.from(padded.ids)).toEqual([5, 6, 7, 8, 2, 2, 2, 2, 2]);
    expect(Array.from(padded.mask)).toEqual([1, 1, 1, 1, 0, 0, 0, 0, 0]);
  });

  it('leaks no tensors across 20 generations', () => {
    const model = CausalLM.create(tinyLlamaConfig(), new Rng(14));
    const prompts = randomRows(new Rng(15), [2, 5, 3], 64);
    const decode = (ids: number[]): string => ids.join(' ');
    const run = (i: number): void => {
      generate(model, prompts, base({ numGenerations: 3, maxNewTokens: 8, eosTokenId: [1, 2, 3, 4, 5, 6], topP: 0.9, rng: new Rng(i), batchSize: i % 2 ? 4 : undefined, stop: { strings: ['1 2'], decode } }));
    };
    run(0);
    const before = tf.memory().numTensors;
    for (let i = 1; i <= 20; i++) run(i);
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });

  it('rejects bad input with a message naming the problem', () => {
    const model = CausalLM.create(cfg, new Rng(16));
    expect(() => generate(model, [[1, 2, 64]], base())).toThrow(/prompts\[0\]\[2\] = 64 is outside the model vocabulary \[0, 64\)/);
    expect(() => generate(model, [[1], []], base())).toThrow(/prompts\[1\] is empty/);
    expect(() => generate(model, [], base())).toThrow(/non-empty array/);
    expect(() => generate(model, [new Array(60).fill(1)], base({ maxNewTokens: 8 }))).toThrow(/68 positions, more than the model's n_positions \(64\)/);
    expect(() => generate(model, [[1]], base({ numGenerations: 0 }))).toThrow(/numGenerations/);
    expect(() => generate(model, [[1]], base({ maxNewTokens: 1.5 }))).toThrow(/maxNewTokens/);
    expect(() => generate(model, [[1]], base({ temperature: -0.5 }))).toThrow(/temperature/);
    expect(() => generate(model, [[1]], base({ topP: 0 }))).toThrow(/topP/);
    expect(() => generate(model, [[1]], base({ eosTokenId: [1, 70] }))).toThrow(/eosTokenId\[1\] = 70/);
    expect(() => generate(model, [[1]], base({ padTokenId: -1 }))).toThrow(/padTokenId/);
    expect(() => generate(model, [[1]], base({ batchSize: 0 }))).toThrow(/batchSize/);
    expect(() => generate(model, [[1]], base({ stop: { strings: [''], decode: () => '' } }))).toThrow(/stop.strings\[0\]/);
    model.dispose();
  });
});

describe('generateText', () => {
  it('encodes prompts, samples only tokenizer ids, and decodes without special tokens', () => {
    const tok = CharTokenizer.fromAlphabet('0123456789+-= abcdefghij');
    expect(tok.vocabSize).toBeLessThan(48);
    const model = CausalLM.create(tinyGpt2Config({ vocab_size: 48 }), new Rng(17));
    const prompts = ['1+2=', '33-4='];
    const res = generateText(model, tok, prompts, { numGenerations: 3, maxNewTokens: 16, temperature: 1.5, rng: new Rng(18) });
    expect(res.prompts).toEqual(['1+2=', '1+2=', '1+2=', '33-4=', '33-4=', '33-4=']);
    expect(res.promptIds[0]).toEqual(tok.encode('1+2='));
    res.completionIds.forEach((c, i) => {
      expect(c.every((id) => id < tok.vocabSize)).toBe(true);
      expect(res.texts[i]).toBe(tok.decode(c, { skipSpecialTokens: true }));
      if (res.finishReasons[i] === 'eos') expect(c[c.length - 1]).toBe(tok.eosTokenId);
    });
    // stop strings are matched on decoded text
    const greedy = generateText(model, tok, ['1+2='], { numGenerations: 1, maxNewTokens: 16, temperature: 0, rng: new Rng(1) });
    const stop = greedy.texts[0]!.slice(1, 3);
    if (stop.length === 2) {
      const stopped = generateText(model, tok, ['1+2='], { numGenerations: 1, maxNewTokens: 16, temperature: 0, rng: new Rng(1), stopStrings: [stop] });
      expect(stopped.texts[0]!.endsWith(stop)).toBe(true);
      expect(stopped.finishReasons[0]).toBe('stop');
    }
    model.dispose();
  });
});

describe('sequenceLogprobs / batchLogprobs', () => {
  it('agree with tokenLogprobs over a full forward of each row alone', () => {
    const model = CausalLM.create(tinyLlamaConfig(), new Rng(19));
    const rng = new Rng(20);
    const prompts = randomRows(rng, [4, 1, 6], 64);
    const completions = randomRows(rng, [3, 5, 1], 64);
    const { logprobs } = sequenceLogprobs(model, prompts, completions, { temperature: 0.8 });
    const lp = logprobs.arraySync();
    prompts.forEach((p, i) => {
      const c = completions[i]!;
      const row = [...p, ...c];
      const ref = tf.tidy(() => {
        const logits = model.forward(tf.tensor2d([row], [1, row.length], 'int32')).slice([0, p.length - 1, 0], [1, c.length, -1]);
        return tokenLogprobs(logits, tf.tensor2d([c], [1, c.length], 'int32'), 0.8).dataSync();
      });
      expect(maxAbsDiff(lp[i]!.slice(0, c.length), ref)).toBeLessThan(1e-5);
    });
    logprobs.dispose();
    model.dispose();
  });

  it('builds the TRL layout: left-padded prompts, right-padded completions', () => {
    const b = buildLogprobBatch([[5, 6], [7]], [[8], [9, 10]], 1);
    expect(b.promptLength).toBe(2);
    expect(b.completionLength).toBe(2);
    expect(Array.from(b.ids)).toEqual([5, 6, 8, 1, 1, 7, 9, 10]);
    expect(Array.from(b.attentionMask)).toEqual([1, 1, 1, 0, 0, 1, 1, 1]);
    expect(Array.from(b.completionIds)).toEqual([8, 1, 9, 10]);
    expect(Array.from(b.completionMask)).toEqual([1, 0, 1, 1]);
    expect(() => buildLogprobBatch([[1]], [[1], [2]])).toThrow(/as many prompts as completions/);
    expect(() => buildLogprobBatch([[]], [[1]])).toThrow(/promptIds\[0\] is empty/);
    expect(() => buildLogprobBatch([[1]], [[1, -3]])).toThrow(/completionIds\[0\]\[1\] = -3/);
  });

  it('is differentiable, and chunking by batchSize changes neither values nor gradients', () => {
    const model = CausalLM.create(tinyGpt2Config(), new Rng(21));
    const rng = new Rng(22);
    const batch = buildLogprobBatch(randomRows(rng, [3, 5, 2, 4], 64), randomRows(rng, [4, 2, 6, 1], 64));
    const grads = (bs: number | undefined): { value: number; g: Record<string, tf.Tensor> } => {
      const { value, grads: g } = tf.variableGrads(() => tf.sum(batchLogprobs(model, batch, { batchSize: bs, temperature: 0.9 })) as tf.Scalar);
      const out = { value: value.dataSync()[0]!, g };
      value.dispose();
      return out;
    };
    const a = grads(undefined);
    const b = grads(3);
    expect(Math.abs(a.value - b.value)).toBeLessThan(1e-4);
    const name = model.variables[0]!.name;
    expect(tf.tidy(() => tf.max(tf.abs(a.g[name]!)).dataSync()[0]!)).toBeGreaterThan(0);
    for (const k of Object.keys(a.g)) expect(maxAbsDiff(a.g[k]!, b.g[k]!)).toBeLessThan(1e-5);
    tf.dispose([...Object.values(a.g), ...Object.values(b.g)]);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) batchLogprobs(model, batch, { batchSize: 2 }).dispose();
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });

  it('rejects ids outside the model vocabulary and a bad temperature', () => {
    const model = CausalLM.create(tinyGpt2Config(), new Rng(23));
    expect(() => sequenceLogprobs(model, [[1, 2]], [[3, 64]])).toThrow(/token id 64 at row 0, column 3/);
    expect(() => sequenceLogprobs(model, [[1, 2]], [[3]], { temperature: 0 })).toThrow(/temperature/);
    model.dispose();
  });
});

describe('CausalLM.forwardCached lastOnly', () => {
  it('returns the last position of the full prefill and fills the same cache', () => {
    const model = CausalLM.create(tinyLlamaConfig(), new Rng(24));
    const ids = tf.tensor2d([[0, 0, 5, 6, 7], [1, 2, 3, 4, 5]], [2, 5], 'int32');
    const mask = tf.tensor2d([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]], [2, 5], 'int32');
    const c1 = model.createCache(2, 6);
    const c2 = model.createCache(2, 6);
    const full = model.forwardCached(ids, c1, { attentionMask: mask });
    const last = model.forwardCached(ids, c2, { attentionMask: mask, lastOnly: true });
    expect(last.shape).toEqual([2, 1, 64]);
    expect(maxAbsDiff(last, full.slice([0, 4, 0], [2, 1, -1]))).toBe(0);
    const step = tf.tensor2d([[9], [10]], [2, 1], 'int32');
    expect(maxAbsDiff(model.forwardCached(step, c1), model.forwardCached(step, c2))).toBe(0);
    c1.dispose();
    c2.dispose();
    model.dispose();
  });
});

describe('CausalLM GPT-2 MLP activation', () => {
  it('matches a float64 reference of the block with gelu_new written with tanh', () => {
    // One layer with the attention output projection zeroed, so the block reduces to
    // x + W2 gelu(W1 LN2(x) + b1) + b2, then ln_f and the tied head: small enough to write out.
    const [V, D, I, T] = [12, 8, 16, 3];
    const cfg = tinyGpt2Config({ vocab_size: V, n_embd: D, n_layer: 1, n_head: 2, n_inner: I, n_positions: 8, initializer_range: 0.8 });
    const model = CausalLM.create(cfg, new Rng(25));
    const rng = new Rng(26);
    const weights = new Map<string, tf.Tensor>();
    for (const [name, t] of model.getWeights()) {
      if (name === 'transformer.h.0.attn.c_proj.weight') weights.set(name, tf.zerosLike(t));
      else if (name.endsWith('.bias') || name.includes('ln_')) weights.set(name, tf.tensor(rng.fillNormal(new Float32Array(t.size), 0, 0.5), t.shape));
      else weights.set(name, t.clone());
    }
    weights.set('transformer.h.0.attn.c_proj.bias', tf.zeros([D]));
    model.setWeights(weights);
    const w = (n: string): Float32Array => weights.get(n)!.dataSync() as Float32Array;
    const layerNorm = (x: number[], g: Float32Array, b: Float32Array): number[] => {
      const mean = x.reduce((a, v) => a + v, 0) / x.length;
      const variance = x.reduce((a, v) => a + (v - mean) ** 2, 0) / x.length;
      return x.map((v, i) => ((v - mean) / Math.sqrt(variance + 1e-5)) * g[i]! + b[i]!);
    };
    const affine = (x: number[], W: Float32Array, b: Float32Array, n: number): number[] =>
      Array.from({ length: n }, (_, j) => x.reduce((a, v, i) => a + v * W[i * n + j]!, b[j]!));
    const gelu = (v: number): number => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
    const ids = [3, 11, 0];
    const logits = model.forward(tf.tensor2d([ids], [1, T], 'int32')).arraySync()[0]!;
    let sawNonlinear = 0;
    ids.forEach((id, t) => {
      const x = Array.from({ length: D }, (_, d) => w('transformer.wte.weight')[id * D + d]! + w('transformer.wpe.weight')[t * D + d]!);
      const pre = affine(layerNorm(x, w('transformer.h.0.ln_2.weight'), w('transformer.h.0.ln_2.bias')), w('transformer.h.0.mlp.c_fc.weight'), w('transformer.h.0.mlp.c_fc.bias'), I);
      sawNonlinear += pre.filter((v) => v < -1 || v > 1).length;
      const mlp = affine(pre.map(gelu), w('transformer.h.0.mlp.c_proj.weight'), w('transformer.h.0.mlp.c_proj.bias'), D);
      const out = layerNorm(x.map((v, d) => v + mlp[d]!), w('transformer.ln_f.weight'), w('transformer.ln_f.bias'));
      const ref = Array.from({ length: V }, (_, v) => out.reduce((a, o, d) => a + o * w('transformer.wte.weight')[v * D + d]!, 0));
      expect(maxAbsDiff(logits[t]!, ref)).toBeLessThan(1e-4);
    });
    expect(sawNonlinear).toBeGreaterThan(10); // the activation was exercised away from its linear part
    tf.dispose([...weights.values()]);
    model.dispose();
  });
});
