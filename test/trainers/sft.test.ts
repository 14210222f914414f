import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { arithmeticTokenizer } from '../../src/trainers/from-scratch.ts';
import { AdamW } from '../../src/engine/tfjs/optim.ts';
import { Rng } from '../../src/core/rng.ts';
import { tinyGpt2Config, tinyLlamaConfig } from '../../src/lm/config.ts';
import { CausalLM } from '../../src/lm/model.ts';
import { evaluateSft, sftLoss, sftTrainStep } from '../../src/trainers/sft.ts';
import { makeSftBatch } from '../../src/trainers/token-batch.ts';
import { ShuffledBatches, encodeSftExamples, loadSftExamples, type SftExample } from '../../src/trainers/prompts.ts';
import { exactMatch, extractTaggedAnswer } from '../../src/trainers/evaluate.ts';
import { initModelConfig } from '../../src/trainers/from-scratch.ts';
import { parseSftConfig } from '../../src/trainers/sft-config.ts';
import { useCpu } from '../lm/lm-helpers.ts';

const tok = arithmeticTokenizer(); // 22 ids: <pad>=0 <eos>=1 <unk>=2 <bos>=3 '0'..'9'=4..13 '+'=14 '='=17

let dir: string;
beforeAll(async () => {
  await useCpu();
  dir = mkdtempSync(join(tmpdir(), 'rlvr-sft-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function examples(pairs: Array<[string, string]>): SftExample[] {
  return pairs.map(([prompt, completion], i) => ({ prompt, completion, source: `example ${i}` }));
}

describe('makeSftBatch', () => {
  it('shifts targets by one, masks prompt and padding targets, right-pads', () => {
    const batch = makeSftBatch(
      [
        { promptIds: [3, 5, 6], completionIds: [7, 1] }, // seq 3 5 6 7 1
        { promptIds: [3, 4], completionIds: [1] }, // seq 3 4 1
      ],
      0,
    );
    expect(batch.size).toBe(2);
    expect(batch.length).toBe(4);
    expect([...batch.inputIds]).toEqual([3, 5, 6, 7, 3, 4, 0, 0]);
    expect([...batch.targets]).toEqual([5, 6, 7, 1, 4, 1, 0, 0]);
    expect([...batch.lossMask]).toEqual([0, 0, 1, 1, 0, 1, 0, 0]);
    expect(batch.numTargets).toBe(3);
    expect(batch.numTokens).toBe(6);
  });

  it('rejects an empty batch and an empty prompt', () => {
    expect(() => makeSftBatch([], 0)).toThrow(/no examples/);
    expect(() => makeSftBatch([{ promptIds: [], completionIds: [1] }], 0)).toThrow(/empty prompt/);
  });
});

describe('sftLoss', () => {
  it('ignores targets at prompt and padding positions', () => {
    const model = CausalLM.create(tinyGpt2Config({ vocab_size: 22, n_positions: 16 }), new Rng(1));
    const encoded = encodeSftExamples(examples([['12+3=', '15'], ['7+8=', '15']]), tok, { maxPositions: 16, vocabSize: 22 });
    const batch = makeSftBatch(encoded, tok.padTokenId);
    const base = sftLoss(model, batch).dataSync()[0]!;
    const changed = { ...batch, targets: batch.targets.slice() };
    let edited = 0;
    for (let i = 0; i < changed.targets.length; i++) {
      if (batch.lossMask[i] === 0) {
        changed.targets[i] = (changed.targets[i]! + 7) % 22;
        edited++;
      }
    }
    expect(edited).toBeGreaterThan(4);
    expect(sftLoss(model, changed).dataSync()[0]).toBe(base);
    // A completion target does count.
    const first = batch.lossMask.indexOf(1);
    const moved = { ...batch, targets: batch.targets.slice() };
    moved.targets[first] = (moved.targets[first]! + 1) % 22;
    expect(Math.abs(sftLoss(model, moved).dataSync()[0]! - base)).toBeGreaterThan(1e-4);
    model.dispose();
  });

  it('equals a float64 log-softmax cross-entropy over the completion tokens of one example', () => {
    const model = CausalLM.create(tinyLlamaConfig({ vocab_size: 22, max_position_embeddings: 16 }), new Rng(2));
    const [ex] = encodeSftExamples(examples([['45+6=', '51']]), tok, { maxPositions: 16, vocabSize: 22 });
    const batch = makeSftBatch([ex!], tok.padTokenId);
    const got = sftLoss(model, batch).dataSync()[0]!;

    const seq = [...ex!.promptIds, ...ex!.completionIds]; // <bos> 4 5 + 6 = 5 1 <eos>
    const logits = model.forward(tf.tensor2d([seq.slice(0, -1)], [1, seq.length - 1], 'int32'));
    const z = Float64Array.from(logits.dataSync());
    logits.dispose();
    const V = 22;
    let sum = 0;
    let n = 0;
    for (let t = ex!.promptIds.length - 1; t < seq.length - 1; t++) {
      let max = -Infinity;
      for (let v = 0; v < V; v++) max = Math.max(max, z[t * V + v]!);
      let s = 0;
      for (let v = 0; v < V; v++) s += Math.exp(z[t * V + v]! - max);
      sum += -(z[t * V + seq[t + 1]!]! - max - Math.log(s));
      n++;
    }
    expect(n).toBe(3); // '5', '1', <eos>
    expect(got).toBeCloseTo(sum / n, 5);
    model.dispose();
  });
});

describe('sftTrainStep', () => {
  it('drives the loss down on a tiny task, changes the parameters and leaks no tensors', async () => {
    const model = CausalLM.create(tinyGpt2Config({ vocab_size: 22, n_positions: 16, n_embd: 32, n_layer: 1 }), new Rng(3));
    const opt = new AdamW(model.variables, { learningRate: 2e-2, weightDecay: 0.01 });
    const data = encodeSftExamples(
      // Prompts of different lengths: training right-pads, generation left-pads.
      examples([['1+2=', '3'], ['14+4=', '18'], ['2+5=', '7'], ['3+3=', '6'], ['9+10=', '19'], ['6+1=', '7']]),
      tok,
      { maxPositions: 16, vocabSize: 22 },
    );
    const batch = makeSftBatch(data, tok.padTokenId);
    const before = model.variables.map((v) => v.dataSync().slice());
    const first = sftTrainStep(model, opt, batch, { learningRate: 2e-2, gradClip: 1 });
    const tensors = tf.memory().numTensors;
    let last = first;
    for (let i = 0; i < 40; i++) last = sftTrainStep(model, opt, batch, { learningRate: 2e-2, gradClip: 1 });
    expect(tf.memory().numTensors).toBe(tensors);
    expect(first.gradNorm).toBeGreaterThan(0);
    expect(last.loss).toBeLessThan(first.loss * 0.05);
    const changed = model.variables.filter((v, i) => v.dataSync().some((x, j) => x !== before[i]![j])).length;
    expect(changed).toBe(model.variables.length);
    // After memorising, greedy generation reproduces the completions.
    const r = await evaluateSft(model, tok, data, { batchSize: 4 });
    expect(r.accuracy).toBe(1);
    expect(r.samples.map((s) => s.completion)).toEqual(['3', '18', '7', '6', '19', '7']);
    expect(r.loss).toBeCloseTo(sftLoss(model, batch).dataSync()[0]!, 5);
    opt.dispose();
    model.dispose();
  });
});

describe('exactMatch', () => {
  it('compares plain completions and tagged answers', () => {
    expect(exactMatch('46', { completion: '46' })).toBe(true);
    expect(exactMatch(' 46 ', { completion: '46' })).toBe(true);
    expect(exactMatch('461', { completion: '46' })).toBe(false);
    expect(exactMatch('46', { completion: '46', answer: '46' })).toBe(true);
    expect(exactMatch('<answer>46</answer>', { completion: '<answer>46</answer>', answer: '46' })).toBe(true);
    expect(exactMatch('46', { completion: '<answer>46</answer>', answer: '46' })).toBe(false); // tags required
    expect(exactMatch('<answer>46', { completion: '<answer>46</answer>' })).toBe(false);
    expect(exactMatch('<answer>45</answer>', { completion: '<answer>46</answer>' })).toBe(false);
    expect(extractTaggedAnswer('x<answer>1</answer><answer>2</answer>')).toBe('2');
  });
});

describe('ShuffledBatches', () => {
  it('visits every example once per epoch and restores its state exactly', () => {
    const b = new ShuffledBatches(10, 4, new Rng(5));
    const seen = [...b.next(), ...b.next(), ...b.next().slice(0, 2)]; // first epoch: 10 draws
    expect([...seen].sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const state = b.getState();
    expect(state.epoch).toBe(1); // the third batch crossed into the second epoch
    const ahead = [b.next(), b.next(), b.next()];
    const c = new ShuffledBatches(10, 4, new Rng(999));
    c.setState(JSON.parse(JSON.stringify(state)));
    expect([c.next(), c.next(), c.next()]).toEqual(ahead);
  });
});

describe('config validation', () => {
  const ok = { model: { init: {} }, data: { generate: {} } };
  const bad: Array<[unknown, RegExp]> = [
    [{ ...ok, steps: 0 }, /"steps" must be >= 1/],
    [{ ...ok, learningRate: -1 }, /"learningRate" must be > 0 and <= 1, got -1/],
    [{ ...ok, batchSize: 2.5 }, /"batchSize"/],
    [{ ...ok, gradClip: -1 }, /"gradClip" must be >= 0/],
    [{ ...ok, lerningRate: 1e-3 }, /unknown key "lerningRate" \(did you mean "learningRate"\?\)/],
    [{ ...ok, model: { init: { hiddenSize: 30, heads: 4 } } }, /"model.init.heads" must divide "model.init.hiddenSize" \(30\)/],
    [{ ...ok, model: { init: { architecture: 'llama', heads: 4, kvHeads: 3 } } }, /"model.init.kvHeads" must divide/],
    [{ ...ok, model: { init: { architecture: 'bert' } } }, /"model.init.architecture" must be one of "gpt2", "llama"/],
    [{ ...ok, model: {} }, /set "model.modelDir".*or "model.init"/],
    [{ ...ok, model: { modelDir: '/x', init: {} } }, /"model.modelDir" and "model.init" are both set/],
    [{ ...ok, data: {} }, /set "data.trainFile".*or "data.generate"/],
    [{ ...ok, data: { generate: { digits: [3, 1] } } }, /"data.generate.digits" must be \[min, max\] with min <= max/],
    [{ ...ok, data: { generate: { trainSize: 0 } } }, /"data.generate.trainSize" must be >= 1/],
    [{ ...ok, warmupSteps: 2000, steps: 100 }, /"warmupSteps" must be <= steps \(100\), got 2000/],
  ];
  it.each(bad)('rejects %j', (input, message) => {
    expect(() => parseSftConfig(input)).toThrow(message);
  });
  it('fills documented defaults', () => {
    const c = parseSftConfig(ok);
    expect(c.steps).toBe(1000);
    expect(c.model.init?.hiddenSize).toBe(128);
    expect(c.data.generate?.digits).toEqual([1, 2]);
  });
});

describe('initModelConfig', () => {
  it('builds gpt2 and llama configs with the tokenizer\'s vocabulary and special ids', () => {
    const init = parseSftConfig({ model: { init: { hiddenSize: 48, heads: 4, layers: 2, contextLength: 20 } }, data: { generate: {} } }).model.init!;
    const g = initModelConfig(init, tok);
    expect(g).toMatchObject({ model_type: 'gpt2', vocab_size: 22, n_embd: 48, n_head: 4, n_layer: 2, n_positions: 20, n_inner: null, eos_token_id: 1, pad_token_id: 0, bos_token_id: 3 });
    const l = initModelConfig({ ...init, architecture: 'llama', kvHeads: 2 }, tok);
    // SwiGLU width 8/3 * 48 = 128, already a multiple of 8.
    expect(l).toMatchObject({ model_type: 'llama', hidden_size: 48, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 12, intermediate_size: 128, max_position_embeddings: 20 });
    expect(initModelConfig({ ...init, architecture: 'llama', hiddenSize: 40 }, tok)).toMatchObject({ intermediate_size: 112 }); // 106.7 -> 112
  });
});

describe('data loading', () => {
  it('names the file and line of a malformed row', async () => {
    const path = join(dir, 'train.jsonl');
    writeFileSync(path, '{"prompt":"1+1=","completion":"2"}\n\n{"prompt":"2+2=","completion":"4"\n');
    await expect(loadSftExamples(path)).rejects.toThrow(`${path}:3: invalid JSON`);
    writeFileSync(path, '{"prompt":"1+1=","completion":"2"}\n{"prompt":"2+2="}\n');
    await expect(loadSftExamples(path)).rejects.toThrow(`${path}:2: needs a "completion" or an "answer" column`);
    writeFileSync(path, '{"prompt":"1+1=","completion":2}\n');
    await expect(loadSftExamples(path)).rejects.toThrow(`${path}:1: column "completion" must be a string, got number`);
    writeFileSync(path, '{"completion":"2"}\n');
    await expect(loadSftExamples(path)).rejects.toThrow(`${path}:1: missing required column "prompt"`);
  });

  it('reads prompt/completion and prompt/answer rows', async () => {
    const path = join(dir, 'ok.jsonl');
    writeFileSync(path, '{"prompt":"1+1=","completion":"<answer>2</answer>","answer":"2"}\n\n{"prompt":"2+2=","answer":"4"}\n');
    const rows = await loadSftExamples(path);
    expect(rows).toEqual([
      { prompt: '1+1=', completion: '<answer>2</answer>', answer: '2', source: `${path}:1` },
      { prompt: '2+2=', completion: '4', answer: '4', source: `${path}:3` },
    ]);
  });

  it('names an example that does not fit the context', () => {
    expect(() => encodeSftExamples(examples([['1+1=', '2'], ['123456+7=', '123463']]), tok, { maxPositions: 12, vocabSize: 22 })).toThrow(
      /example 1: prompt \+ completion \+ EOS is 17 tokens, more than the model's context of 12 positions/,
    );
  });
});
