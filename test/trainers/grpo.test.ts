/**
 * GRPO stages on hand-made batches: reward batch, advantages, loss plumbing (gradient parity
 * with an independent per-sequence formula), masks, reference and entropy terms, config
 * validation, data and reward-column errors.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { arithmeticTokenizer } from '../../src/trainers/from-scratch.ts';
import { exactMatchReward } from '../../rewards/format.ts';
import { rewardMetrics, scoreCompletions } from '../../rewards/combine.ts';
import { ConfigError } from '../../src/core/config.ts';
import { Rng } from '../../src/core/rng.ts';
import { tinyGpt2Config } from '../../src/lm/config.ts';
import { CausalLM } from '../../src/lm/model.ts';
import { batchLogprobs, buildLogprobBatch } from '../../src/lm/token-stats.ts';
import { tfjsSampler } from '../../src/lm/sampler.ts';
import { tokenLogprobs } from '../../src/objectives/logprobs.ts';
import { grpoObjective, informativeGroups, rolloutAdvantages, type UpdateOptions } from '../../src/trainers/grpo.ts';
import { encodePromptRows, loadPromptRows, type PromptRow } from '../../src/trainers/prompts.ts';
import { checkRewardColumns, concatScores, rewardBatch, sampleRollout } from '../../src/trainers/rollout.ts';
import { buildTokenBatch, minibatches } from '../../src/trainers/token-batch.ts';
import { GrpoConfig, parseGrpoConfig } from '../../src/trainers/grpo-config.ts';
import { parseRewardFlag } from '../../scripts/commands/grpo.ts';
import { carryFreeSum, warmStartSftConfig, withCarryErrors } from '../../src/trainers/warm-start.ts';
import { makeArithmeticSplits } from '../../datasets/arithmetic/generate.ts';
import { modelWeightsSha256 } from '../../src/trainers/trainer-state.ts';
import { useCpu } from '../lm/lm-helpers.ts';

const tok = arithmeticTokenizer(); // <pad>=0 <eos>=1 <unk>=2 <bos>=3 '0'..'9'=4..13

let dir: string;
beforeAll(async () => {
  await useCpu();
  dir = mkdtempSync(join(tmpdir(), 'rlvr-grpo-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function row(prompt: string, columns: Record<string, unknown>, i = 0): PromptRow {
  return { prompt, columns, source: `row ${i}` };
}

describe('reward batch and advantages', () => {
  it('repeats each prompt and column K times, group-contiguous', async () => {
    const batch = rewardBatch([row('1+1=', { answer: '2' }), row('2+2=', { answer: '4' })], 3, ['2', '3', '2', '4', '4', '5'], [[6], [7], [6], [8], [8], [9]]);
    expect(batch.prompts).toEqual(['1+1=', '1+1=', '1+1=', '2+2=', '2+2=', '2+2=']);
    expect(batch['answer']).toEqual(['2', '2', '2', '4', '4', '4']);
    expect(batch.completions).toEqual(['2', '3', '2', '4', '4', '5']);
    expect(() => rewardBatch([row('1+1=', {})], 2, ['a'], [[1]])).toThrow(/2 completions/);
  });

  it('scores through the combiner: exact match over the repeated answer column', async () => {
    const rows = [row('1+1=', { answer: '2' }), row('2+2=', { answer: '4' })];
    const texts = ['2', '3', '4', '4'];
    const scored = await scoreCompletions(rewardBatch(rows, 2, texts, texts.map(() => [])), [{ name: 'em', fn: exactMatchReward() }]);
    expect([...scored.rewards]).toEqual([1, 0, 1, 1]);
  });

  it('group advantages: centred by the group mean, divided by the group std (+1e-4); constant groups give 0', async () => {
    const rewards = Float32Array.from([1, 0, 0, 0, 1, 1, 1, 1, 0.5, 0, 1, 0.5]);
    const { advantages, fracZeroStd, meanGroupStd } = rolloutAdvantages(rewards, 4, 'group');
    const expected: number[] = [];
    const stds: number[] = [];
    for (let g = 0; g < 3; g++) {
      const xs = [...rewards.subarray(4 * g, 4 * g + 4)];
      const m = xs.reduce((a, b) => a + b, 0) / 4;
      const s = Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / 4);
      stds.push(s);
      for (const x of xs) expected.push(s === 0 ? 0 : (x - m) / (s + 1e-4));
    }
    expect([...advantages].map((a) => Number(a.toFixed(5)))).toEqual(expected.map((a) => Number(a.toFixed(5))));
    expect(fracZeroStd).toBeCloseTo(1 / 3, 10);
    expect(meanGroupStd).toBeCloseTo(stds.reduce((a, b) => a + b, 0) / 3, 6);
    expect(informativeGroups(rewards, 4)).toEqual([0, 2]);
    const none = rolloutAdvantages(rewards, 4, 'none').advantages;
    expect(none[0]).toBeCloseTo(0.75, 6);
    expect(none[1]).toBeCloseTo(-0.25, 6);
  });

  it('concatenates scored rounds, keeping per-function values and error counts', async () => {
    const a = { rewards: Float32Array.of(1, 0), missing: Uint8Array.of(0, 0), perFunction: { f: [1, 0], g: [null, null] }, errors: [{ name: 'g', message: 'boom', count: 1 }] };
    const b = { rewards: Float32Array.of(1, 1), missing: Uint8Array.of(0, 0), perFunction: { f: [1, 1], g: [null, null] }, errors: [{ name: 'g', message: 'boom', count: 1 }] };
    const all = concatScores([a, b]);
    expect([...all.rewards]).toEqual([1, 0, 1, 1]);
    const m = rewardMetrics(all);
    expect(m['reward/f/mean']).toBeCloseTo(0.75, 10);
    expect(m['reward/g/errors']).toBe(2);
  });

  it('splits a pass into minibatches of consecutive completions', async () => {
    expect(minibatches(10, 4)).toEqual([[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]);
    expect(minibatches(3, 0)).toEqual([[0, 1, 2]]);
  });
});

describe('loss plumbing on a hand-made batch', () => {
  const prompts = [[3, 5, 14, 6, 17], [3, 9, 17], [3, 5, 14, 6, 17], [3, 9, 17]];
  const completions = [[7, 1], [8, 9, 10], [11], [4, 5, 6]];
  const advantages = Float32Array.of(1.5, -0.5, -1, 0.25);
  const loss = (over: Partial<UpdateOptions['loss']> = {}): UpdateOptions['loss'] => ({ epsilon: 0.2, epsilonHigh: 0.2, beta: 0, lossType: 'grpo', maxCompletionLength: 4, ...over });

  function grads(f: () => tf.Scalar, model: CausalLM): Float32Array[] {
    const { value, grads: g } = tf.variableGrads(f, model.variables);
    const out = model.variables.map((v) => g[v.name]!.dataSync() as Float32Array);
    tf.dispose([value, ...Object.values(g)]);
    return out;
  }
  function maxRelDiff(a: Float32Array[], b: Float32Array[]): number {
    let num = 0;
    let den = 0;
    a.forEach((x, i) => x.forEach((v, j) => {
      num = Math.max(num, Math.abs(v - b[i]![j]!));
      den = Math.max(den, Math.abs(b[i]![j]!));
    }));
    return num / den;
  }

  it('with one update per step, the gradient is exactly -mean_i A_i * mean_t grad log p (per-sequence, unpadded reference)', async () => {
    const model = CausalLM.create(tinyGpt2Config({ vocab_size: 22, n_positions: 16 }), new Rng(3));
    const batch = await buildTokenBatch({ promptIds: prompts, completionIds: completions, truncated: [false, false, false, false] }, {
      padTokenId: 0,
      temperature: 0.7,
      maskTruncatedCompletions: false,
      oldPolicy: null,
      reference: null,
    });
    expect(batch.oldLogprobs).toBeNull();
    expect(batch.refLogprobs).toBeNull();
    const rows = [0, 1, 2, 3];
    let metrics!: ReturnType<typeof grpoObjective>['metrics'];
    const ours = grads(() => {
      const out = grpoObjective(model, batch, advantages, rows, { loss: loss(), temperature: 0.7, entropyCoef: 0 });
      metrics = out.metrics;
      return out.loss;
    }, model);
    expect(metrics.clipRatioRegion).toBe(0);
    expect(metrics.kl).toBe(0);
    // Independent: each sequence alone, no padding, no attention mask.
    const reference = grads(() => {
      const terms = prompts.map((p, i) => {
        const c = completions[i]!;
        const seq = [...p, ...c];
        const logits = model.forward(tf.tensor2d([seq.slice(0, -1)], [1, seq.length - 1], 'int32')); // [1, L-1, V]
        const lp = tokenLogprobs(logits, tf.tensor2d([seq.slice(1)], [1, seq.length - 1], 'int32'), 0.7); // [1, L-1]
        const comp = tf.slice(lp, [0, p.length - 1], [1, c.length]); // the completion tokens
        return tf.mul(-advantages[i]! / c.length, tf.sum(comp));
      });
      return tf.div(tf.addN(terms), prompts.length) as tf.Scalar;
    }, model);
    expect(maxRelDiff(ours, reference)).toBeLessThan(1e-4);
    model.dispose();
  });

  it('recomputed old log-probs (several updates per step) give the same first gradient and ratio 1', async () => {
    const model = CausalLM.create(tinyGpt2Config({ vocab_size: 22, n_positions: 16 }), new Rng(4));
    const base = { promptIds: prompts, completionIds: completions, truncated: [false, false, false, false] };
    const opts = { padTokenId: 0, temperature: 1, maskTruncatedCompletions: false, reference: null };
    const detached = await buildTokenBatch(base, { ...opts, oldPolicy: null });
    const recomputed = await buildTokenBatch(base, { ...opts, oldPolicy: model });
    expect(recomputed.oldLogprobs).not.toBeNull();
    const mask = recomputed.lossMask;
    recomputed.oldLogprobs!.forEach((v, i) => {
      if (mask[i] === 0) expect(Math.abs(v)).toBe(0);
      else expect(v).toBeLessThan(0);
    });
    const o = { loss: loss({ lossType: 'dapo' }), temperature: 1, entropyCoef: 0 };
    const g1 = grads(() => grpoObjective(model, detached, advantages, [0, 1, 2, 3], o).loss, model);
    const g2 = grads(() => grpoObjective(model, recomputed, advantages, [0, 1, 2, 3], o).loss, model);
    expect(maxRelDiff(g2, g1)).toBeLessThan(1e-5);
    model.dispose();
  });

  it('masks truncated completions out of the loss when asked', async () => {
    const model = CausalLM.create(tinyGpt2Config({ vocab_size: 22, n_positions: 16 }), new Rng(5));
    const base = { promptIds: prompts, completionIds: completions, truncated: [false, true, false, true] };
    const opts = { padTokenId: 0, temperature: 1, oldPolicy: null, reference: null };
    const kept = await buildTokenBatch(base, { ...opts, maskTruncatedCompletions: false });
    const masked = await buildTokenBatch(base, { ...opts, maskTruncatedCompletions: true });
    const T = kept.layout.completionLength; // 3
    expect([...kept.lossMask]).toEqual([1, 1, 0, 1, 1, 1, 1, 0, 0, 1, 1, 1]);
    expect([...masked.lossMask]).toEqual([1, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0]);
    expect(T).toBe(3);
    // With rows 1 and 3 masked, the 'bnpo' loss equals the loss of rows 0 and 2 alone.
    const o = { loss: loss({ lossType: 'bnpo' }), temperature: 1, entropyCoef: 0 };
    const all = grpoObjective(model, masked, advantages, [0, 1, 2, 3], o);
    const two = grpoObjective(model, kept, advantages, [0, 2], o);
    expect(all.loss.dataSync()[0]).toBeCloseTo(two.loss.dataSync()[0]!, 6);
    tf.dispose([all.loss, two.loss]);
    model.dispose();
  });

  it('a reference equal to the policy gives KL 0 and the same gradient; the entropy bonus subtracts coef x H', async () => {
    const model = CausalLM.create(tinyGpt2Config({ vocab_size: 22, n_positions: 16 }), new Rng(6));
    const ref = model.clone({ trainable: false });
    const base = { promptIds: prompts, completionIds: completions, truncated: [false, false, false, false] };
    const opts = { padTokenId: 0, temperature: 1, maskTruncatedCompletions: false, oldPolicy: null };
    const withRef = await buildTokenBatch(base, { ...opts, reference: ref });
    const noRef = await buildTokenBatch(base, { ...opts, reference: null });
    let m!: ReturnType<typeof grpoObjective>['metrics'];
    const gRef = grads(() => {
      const out = grpoObjective(model, withRef, advantages, [0, 1, 2, 3], { loss: loss({ beta: 0.1 }), temperature: 1, entropyCoef: 0 });
      m = out.metrics;
      return out.loss;
    }, model);
    expect(Math.abs(m.kl)).toBeLessThan(1e-6);
    const g0 = grads(() => grpoObjective(model, noRef, advantages, [0, 1, 2, 3], { loss: loss(), temperature: 1, entropyCoef: 0 }).loss, model);
    expect(maxRelDiff(gRef, g0)).toBeLessThan(1e-4);

    const plain = grpoObjective(model, noRef, advantages, [0, 1, 2, 3], { loss: loss(), temperature: 1, entropyCoef: 0 });
    const bonus = grpoObjective(model, noRef, advantages, [0, 1, 2, 3], { loss: loss(), temperature: 1, entropyCoef: 0.5 });
    // Independent entropy: the masked mean over completion tokens of -sum p log p.
    const layout = buildLogprobBatch(prompts, completions, 0);
    let hSum = 0;
    prompts.forEach((p, i) => {
      const seq = [...p, ...completions[i]!];
      const probs = tf.softmax(model.forward(tf.tensor2d([seq.slice(0, -1)], [1, seq.length - 1], 'int32'))).arraySync() as number[][][];
      for (let t = p.length - 1; t < seq.length - 1; t++) hSum -= probs[0]![t]!.reduce((a, q) => a + (q > 0 ? q * Math.log(q) : 0), 0);
    });
    const H = hSum / layout.completionMask.reduce((a, b) => a + b, 0);
    expect(plain.metrics.entropy).toBeCloseTo(H, 4);
    expect(bonus.loss.dataSync()[0]).toBeCloseTo(plain.loss.dataSync()[0]! - 0.5 * H, 4);
    tf.dispose([plain.loss, bonus.loss]);
    ref.dispose();
    model.dispose();
  });

  it("the sampler's log-probs agree with the full-forward recomputation to float32 rounding", async () => {
    const model = CausalLM.create(tinyGpt2Config({ vocab_size: 22, n_positions: 16 }), new Rng(7));
    const rows = encodePromptRows([row('12+3=', {}), row('7+8=', {})], tok, { maxPositions: 16, vocabSize: 22, maxCompletionLength: 4 });
    const r = await sampleRollout(tfjsSampler(model), tok, rows, { numGenerations: 3, maxCompletionLength: 4, temperature: 0.8, topP: 1, topK: 0, rng: new Rng(1) });
    const layout = buildLogprobBatch(r.promptIds, r.completionIds, 0);
    const lp = batchLogprobs(model, layout, { temperature: 0.8 });
    const full = lp.arraySync();
    lp.dispose();
    let maxDiff = 0;
    r.samplerLogprobs.forEach((s, i) => s.forEach((v, t) => (maxDiff = Math.max(maxDiff, Math.abs(v - full[i]![t]!)))));
    expect(maxDiff).toBeLessThan(1e-4);
    expect(r.texts.length).toBe(6);
    model.dispose();
  });
});

describe('config', () => {
  it('the defaults are valid and describe the demo', async () => {
    const c = GrpoConfig.defaults();
    expect(c.model.modelDir).toBeNull();
    expect(c.model.warmStart.preset).toBe('arithmetic-tiny');
    expect(c.rewards[0]!.reward).toBe('exact_match');
    expect(GrpoConfig.describe()).toMatch(/numGenerations/);
  });

  it('names the bad field and its allowed range', async () => {
    const bad = (input: Record<string, unknown>): string => {
      try {
        parseGrpoConfig(input);
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        return (e as Error).message;
      }
      throw new Error('expected a ConfigError');
    };
    expect(bad({ numGenerations: 1 })).toMatch(/"numGenerations" must be >= 2.*got 1/);
    expect(bad({ temperature: 0 })).toMatch(/"temperature" must be > 0 and <= 10, got 0/);
    expect(bad({ lossType: 'ppo' })).toMatch(/"lossType" must be one of "grpo", "bnpo", "dr_grpo", "dapo", got "ppo"/);
    expect(bad({ scaleRewards: 'groups' })).toMatch(/did you mean "group"/);
    expect(bad({ numGeneration: 8 })).toMatch(/unknown key "numGeneration" \(did you mean "numGenerations"\?\)/);
    expect(bad({ beta: -1 })).toMatch(/"beta" must be >= 0/);
    expect(bad({ rewards: [] })).toMatch(/"rewards" must have at least 1 item/);
    expect(bad({ data: { trainFile: 'a.jsonl', generate: {} } })).toMatch(/"data.trainFile" and "data.generate" are both set/);
    expect(bad({ model: { modelDir: 'm' } })).toMatch(/"data" needs a source/);
    expect(bad({ miniBatchSize: 1000 })).toMatch(/"miniBatchSize" must be <= promptsPerStep x numGenerations \(128\)/);
    expect(bad({ rewards: [{ reward: 'a', name: 'x' }, { reward: 'b', name: 'x' }] })).toMatch(/"rewards\[1\].name" repeats "x"/);
  });

  it('parses --reward name[:weight]', async () => {
    expect(parseRewardFlag('math')).toEqual({ reward: 'math', weight: 1 });
    expect(parseRewardFlag('format:0.2')).toEqual({ reward: 'format', weight: 0.2 });
    expect(parseRewardFlag('./my-reward.ts:-1e-1')).toEqual({ reward: './my-reward.ts', weight: -0.1 });
    expect(parseRewardFlag('./odd:name.ts')).toEqual({ reward: './odd:name.ts', weight: 1 });
  });
});

describe('data errors', () => {
  it('a malformed line is an error naming the file and line', async () => {
    const path = join(dir, 'bad-json.jsonl');
    writeFileSync(path, '{"prompt": "1+1=", "answer": "2"}\n{"prompt": "2+2=", "answer": \n');
    await expect(loadPromptRows(path)).rejects.toThrow(`${path}:2: invalid JSON`);
  });

  it('a line without a column the others have is an error naming the line and column', async () => {
    const path = join(dir, 'ragged.jsonl');
    writeFileSync(path, '{"prompt": "1+1=", "answer": "2"}\n\n{"prompt": "2+2="}\n');
    await expect(loadPromptRows(path)).rejects.toThrow(`${path}:3: missing column "answer" (line 1 has it`);
    const noPrompt = join(dir, 'no-prompt.jsonl');
    writeFileSync(noPrompt, '{"question": "1+1=", "answer": "2"}\n');
    await expect(loadPromptRows(noPrompt)).rejects.toThrow(`${noPrompt}:1: missing required column "prompt"`);
  });

  it('a column a reward reads but the data lacks is an error naming the line and column', async () => {
    const path = join(dir, 'no-answer.jsonl');
    writeFileSync(path, '{"prompt": "1+1=", "solution": "2"}\n');
    const rows = await loadPromptRows(path);
    await expect(checkRewardColumns(rows, [{ name: 'exact_match', fn: exactMatchReward() }])).rejects.toThrow(
      `${path}:1: no column "answer", which reward "exact_match" reads (columns: prompt, solution)`,
    );
    await expect(checkRewardColumns(rows, [{ name: 'em', fn: exactMatchReward({ column: 'solution' }) }])).resolves.toBeUndefined();
  });

  it('a prompt too long for the context names its source', async () => {
    expect(() => encodePromptRows([row('123456789012+1=', {}, 4)], tok, { maxPositions: 16, vocabSize: 22, maxCompletionLength: 4 })).toThrow(/row 4: the prompt is 16 tokens; with maxCompletionLength 4 that is 20 positions/);
  });
});

describe('warm start with an imperfect teacher', () => {
  it('carry-free sums drop every carry', async () => {
    expect(carryFreeSum(47, 38)).toBe(75);
    expect(carryFreeSum(88, 87)).toBe(65);
    expect(carryFreeSum(12, 34)).toBe(46);
    expect(carryFreeSum(95, 5)).toBe(90);
    expect(carryFreeSum(0, 0)).toBe(0);
  });

  it('rewrites about the given fraction of carry problems, and only those', async () => {
    const { train } = makeArithmeticSplits({ trainSize: 2000, testSize: 10, seed: 0, digits: [2, 2], operations: ['+'] });
    const taught = withCarryErrors(train, 0.6, new Rng(1));
    let carries = 0;
    let changed = 0;
    taught.forEach((e, i) => {
      const orig = train[i]!;
      expect(e.answer).toBe(orig.answer); // the reference stays right
      const needsCarry = String(carryFreeSum(orig.a, orig.b)) !== orig.answer;
      if (needsCarry) carries++;
      if (e.completion !== orig.completion) {
        changed++;
        expect(needsCarry).toBe(true);
        expect(e.completion).toBe(String(carryFreeSum(orig.a, orig.b)));
      }
    });
    expect(changed / carries).toBeGreaterThan(0.55);
    expect(changed / carries).toBeLessThan(0.65);
    expect(withCarryErrors(train, 0, new Rng(1))).toEqual(train);
  });

  it('keys the cache folder by the SFT settings and the teacher, and puts the teacher data in it', async () => {
    const base = { preset: 'arithmetic-tiny', steps: 300, teacherCarryErrors: 0.6, cacheDir: '/tmp/cache' };
    const a = warmStartSftConfig(base);
    expect(a.steps).toBe(300);
    expect(a.outDir.startsWith('/tmp/cache/arithmetic-tiny-')).toBe(true);
    expect(a.data.trainFile).toBe(`${a.outDir}/data/train.jsonl`);
    expect(a.data.generate).toBeNull();
    expect(warmStartSftConfig({ ...base, steps: 301 }).outDir).not.toBe(a.outDir);
    expect(warmStartSftConfig({ ...base, teacherCarryErrors: 0.5 }).outDir).not.toBe(a.outDir);
    const clean = warmStartSftConfig({ ...base, teacherCarryErrors: 0 });
    expect(clean.data.generate).not.toBeNull();
    expect(warmStartSftConfig({ ...base, steps: 20 }).warmupSteps).toBe(20);
  });
});

describe('starting-model fingerprint', () => {
  it('hashes model.safetensors, or the shard index and shards, and names a folder without weights', async () => {
    const single = join(dir, 'single');
    const sharded = join(dir, 'sharded');
    for (const d of [single, sharded]) rmSync(d, { recursive: true, force: true });
    expect(() => modelWeightsSha256(join(dir, 'nope'))).toThrow(`${join(dir, 'nope')}: no model weights`);
    mkdirSync(single);
    mkdirSync(sharded);
    writeFileSync(join(single, 'model.safetensors'), 'abc');
    const a = modelWeightsSha256(single);
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    writeFileSync(join(sharded, 'model.safetensors.index.json'), '{}');
    writeFileSync(join(sharded, 'model-00001-of-00002.safetensors'), 'a');
    writeFileSync(join(sharded, 'model-00002-of-00002.safetensors'), 'b');
    const b = modelWeightsSha256(sharded);
    writeFileSync(join(sharded, 'model-00002-of-00002.safetensors'), 'c');
    expect(modelWeightsSha256(sharded)).not.toBe(b);
    writeFileSync(join(single, 'model.safetensors'), 'abd');
    expect(modelWeightsSha256(single)).not.toBe(a);
  });
});
