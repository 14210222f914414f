/**
 * GRPO's and PPO's updates on onnxruntime against tfjs autodiff (the reference), for every
 * architecture: the same loss, metrics and gradient of every parameter (≤ 1e-4 relative,
 * |g_ort - g_tfjs| / |g_tfjs|) for
 *   - the GRPO loss with clipping active (logp_old from another model), a KL term to a
 *     reference and an entropy bonus (the entropy's gradient through the backward graph);
 *   - the critic's clipped value loss (trunk + value head; an untied trunk's LM head gets
 *     no gradient on either engine);
 * and the engines' no-gradient statistics (log-probs, values) agree to 1e-5.
 * The gradients are the ones handed to the optimizer (its step is intercepted).
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Rng } from '../../src/core/rng.ts';
import { OrtTrainer } from '../../src/engine/onnx/trainer.ts';
import type { AdamW } from '../../src/engine/tfjs/optim.ts';
import { createAdamW } from '../../src/trainers/run.ts';
import { CausalLM } from '../../src/lm/model.ts';
import { ValueHead } from '../../src/lm/value-head.ts';
import { type ValueModel } from '../../src/lm/token-stats.ts';
import { grpoUpdate } from '../../src/trainers/grpo.ts';
import { criticUpdate, ppoTargets } from '../../src/trainers/ppo.ts';
import { buildTokenBatch } from '../../src/trainers/token-batch.ts';
import { type TokenEngine, ortCritic, ortPolicy, tfjsCritic, tfjsPolicy } from '../../src/trainers/token-engine.ts';
import { TINY_CONFIGS, maxAbsDiff, randomRows, relativeError, useCpu } from '../lm/lm-helpers.ts';

beforeAll(useCpu);

const TEMPERATURE = 0.7;

/** The gradients one update hands the optimizer, by tfjs variable name (the step itself is skipped). */
async function captured(optimizer: AdamW, run: () => Promise<unknown>): Promise<Map<string, Float32Array>> {
  const grads = new Map<string, Float32Array>();
  const spy = vi.spyOn(optimizer, 'applyGradients').mockImplementation((g: Record<string, tf.Tensor>) => {
    for (const [k, t] of Object.entries(g)) grads.set(k, (t.dataSync() as Float32Array).slice());
  });
  await run();
  expect(spy).toHaveBeenCalledTimes(1);
  spy.mockRestore();
  return grads;
}

/** Worst relative difference over parameters; both sides must name the same parameters, each with a non-zero reference gradient. */
function worstRelative(ours: Map<string, Float32Array>, reference: Map<string, Float32Array>): { name: string; rel: number } {
  expect([...ours.keys()].sort()).toEqual([...reference.keys()].sort());
  let worst = { name: '', rel: 0 };
  for (const [name, r] of reference) {
    const rel = relativeError(ours.get(name)!, r);
    expect(rel, `${name} has a non-zero reference gradient`).not.toBeNaN();
    if (rel > worst.rel) worst = { name, rel };
  }
  return worst;
}

describe.each(TINY_CONFIGS)('RL updates on onnxruntime vs tfjs, %s', (_label, config) => {
  const rng = new Rng(21);
  const V = config.vocab_size as number;
  // Prompts of different lengths (left padding), completions of different lengths (right padding), one empty.
  const promptIds = randomRows(rng, [3, 5, 2, 4, 5, 1], V);
  const completionIds = randomRows(rng, [4, 2, 0, 5, 3, 1], V);
  const truncated = completionIds.map(() => false);
  const trainers: OrtTrainer[] = [];
  afterAll(async () => {
    for (const t of trainers) await t.dispose();
  });

  it('GRPO loss, clipping active, KL term and entropy bonus: same loss, metrics and parameter gradients', async () => {
    const policy = CausalLM.create(config, new Rng(1));
    const older = CausalLM.create(config, new Rng(2)); // logp_old far from the policy: ratios leave the clip range
    const reference = CausalLM.create(config, new Rng(3));
    const trainer = await OrtTrainer.create(policy.config, { temperature: TEMPERATURE, entropy: true, entropyGradient: true });
    trainers.push(trainer);
    const onOrt = ortPolicy(trainer, policy, TEMPERATURE);
    // The no-gradient log-probs of both engines agree (the reference's, on the policy's graphs).
    const layoutBatch = await buildTokenBatch({ promptIds, completionIds, truncated }, { padTokenId: 0, temperature: TEMPERATURE, maskTruncatedCompletions: false, oldPolicy: older, reference });
    const ortBatch = await buildTokenBatch({ promptIds, completionIds, truncated }, { padTokenId: 0, temperature: TEMPERATURE, maskTruncatedCompletions: false, oldPolicy: ortPolicy(trainer, older, TEMPERATURE), reference: ortPolicy(trainer, reference, TEMPERATURE) });
    expect(maxAbsDiff(ortBatch.oldLogprobs!, layoutBatch.oldLogprobs!)).toBeLessThan(1e-5);
    expect(maxAbsDiff(ortBatch.refLogprobs!, layoutBatch.refLogprobs!)).toBeLessThan(1e-5);

    const advantages = Float32Array.from(completionIds, () => rng.normal());
    const rows = [4, 0, 2, 1, 5]; // a minibatch, out of order, with the empty completion
    const options = { loss: { epsilon: 0.2, epsilonHigh: 0.28, beta: 0.05, lossType: 'grpo' as const, maxCompletionLength: 5 }, temperature: TEMPERATURE, entropyCoef: 0.01, gradClip: 0, learningRate: 1e-3 };
    const optimizer = createAdamW(policy.variables, { learningRate: 1e-3, beta1: 0.9, beta2: 0.99, weightDecay: 0 });
    let tfjsMetrics!: Awaited<ReturnType<typeof grpoUpdate>>;
    let ortMetrics!: Awaited<ReturnType<typeof grpoUpdate>>;
    const reference_ = await captured(optimizer, async () => (tfjsMetrics = await grpoUpdate(tfjsPolicy(policy, TEMPERATURE), optimizer, layoutBatch, advantages, rows, options)));
    const ours = await captured(optimizer, async () => (ortMetrics = await grpoUpdate(onOrt, optimizer, layoutBatch, advantages, rows, options)));
    expect(tfjsMetrics.clipRatioLow + tfjsMetrics.clipRatioHigh).toBeGreaterThan(0.1); // clipping is active
    expect(tfjsMetrics.kl).toBeGreaterThan(1e-3);
    expect(ortMetrics.loss).toBeCloseTo(tfjsMetrics.loss, 5);
    expect(ortMetrics.kl).toBeCloseTo(tfjsMetrics.kl, 5);
    expect(ortMetrics.entropy).toBeCloseTo(tfjsMetrics.entropy, 4);
    expect(ortMetrics.clipRatioLow).toBe(tfjsMetrics.clipRatioLow);
    expect(ortMetrics.clipRatioHigh).toBe(tfjsMetrics.clipRatioHigh);
    expect(ortMetrics.gradNorm).toBeCloseTo(tfjsMetrics.gradNorm, 4);
    const worst = worstRelative(ours, reference_);
    expect(worst.rel, `worst: ${worst.name}`).toBeLessThan(1e-4);
    expect(ours.size).toBe(policy.variables.length);
    optimizer.dispose();
    for (const m of [policy, older, reference]) m.dispose();
  });

  it("the critic's clipped value loss: same loss, clip ratio and gradient of the trunk and the head", async () => {
    const policy = CausalLM.create(config, new Rng(4));
    const trunk = policy.clone({ trainable: true });
    const head = ValueHead.create(trunk.dims.hiddenSize, new Rng(5));
    const critic: ValueModel = { trunk, head };
    const trainer = await OrtTrainer.create(trunk.config, { head: 'value' });
    trainers.push(trainer);
    const onOrt: TokenEngine = ortCritic(trainer, critic);
    const batch = await buildTokenBatch({ promptIds, completionIds, truncated }, { padTokenId: 0, temperature: 1, maskTruncatedCompletions: false, oldPolicy: null, reference: null, critic });
    const ortValues = await onOrt.noGrad(batch.layout);
    expect(maxAbsDiff(ortValues, batch.oldValues!)).toBeLessThan(1e-5);
    // V_old from a perturbed critic so that the value clip is active on some tokens.
    batch.oldValues = batch.oldValues!.map((v, k) => v + (k % 3 === 0 ? 0.5 : -0.05));
    const scores = completionIds.map(() => rng.normal());
    const { returns } = ppoTargets(batch, scores, { klCoef: 0, gamma: 1, lambdaActor: 0.95, lambdaCritic: 1, lengthAdaptiveAlpha: null, whitenAdvantages: true });
    const variables = [...trunk.variables, ...head.variables];
    const optimizer = createAdamW(variables, { learningRate: 1e-3, beta1: 0.9, beta2: 0.99, weightDecay: 0 });
    const rows = [5, 1, 3, 0];
    const options = { valueClip: 0.2, learningRate: 1e-3, gradClip: 0 };
    let a!: Awaited<ReturnType<typeof criticUpdate>>;
    let b!: Awaited<ReturnType<typeof criticUpdate>>;
    const reference_ = await captured(optimizer, async () => (a = await criticUpdate(tfjsCritic(critic), optimizer, batch, returns, rows, options)));
    const ours = await captured(optimizer, async () => (b = await criticUpdate(onOrt, optimizer, batch, returns, rows, options)));
    expect(a.valueClipRatio).toBeGreaterThan(0.1);
    expect(a.valueClipRatio).toBeLessThan(0.9);
    expect(b.valueClipRatio).toBe(a.valueClipRatio);
    expect(b.valueLoss).toBeCloseTo(a.valueLoss, 5);
    const worst = worstRelative(ours, reference_);
    expect(worst.rel, `worst: ${worst.name}`).toBeLessThan(1e-4);
    // Every head and trunk parameter the values reach: all but an untied LM head.
    expect(ours.size).toBe(variables.length - (trunk.variableNames.includes('lm_head.weight') ? 1 : 0));
    optimizer.dispose();
    head.dispose();
    trunk.dispose();
    policy.dispose();
  });
});

describe('no-gradient passes', () => {
  it('over more rows than one forward takes (chunked): the same log-probs as tfjs', async () => {
    const config = TINY_CONFIGS[1]![1];
    const rng = new Rng(41);
    const V = config.vocab_size as number;
    const lengths = Array.from({ length: 70 }, (_, i) => 1 + (i % 4));
    const layoutOf = await buildTokenBatch({ promptIds: randomRows(rng, lengths, V), completionIds: randomRows(rng, lengths.map((n) => 5 - n), V), truncated: lengths.map(() => false) }, { padTokenId: 0, temperature: 1, maskTruncatedCompletions: false, oldPolicy: null, reference: null });
    const model = CausalLM.create(config, new Rng(7));
    const trainer = await OrtTrainer.create(model.config, { temperature: 1 });
    const ours = await ortPolicy(trainer, model, 1).noGrad(layoutOf.layout);
    const reference = await tfjsPolicy(model, 1).noGrad(layoutOf.layout);
    expect(ours.length).toBe(70 * layoutOf.layout.completionLength);
    expect(maxAbsDiff(ours, reference)).toBeLessThan(1e-5);
    expect(reference.slice(69 * layoutOf.layout.completionLength).some((x) => x !== 0)).toBe(true); // the last chunk was scored
    model.dispose();
    await trainer.dispose();
  });
});

describe('memory', () => {
  it('100 GRPO updates on onnxruntime (with the entropy gradient) keep the tfjs tensor count and bytes flat, and the loss moves', async () => {
    const config = TINY_CONFIGS[0]![1];
    const rng = new Rng(31);
    const V = config.vocab_size as number;
    const promptIds = randomRows(rng, [3, 2, 4, 3], V);
    const completionIds = randomRows(rng, [4, 3, 2, 4], V);
    const policy = CausalLM.create(config, new Rng(6));
    const trainer = await OrtTrainer.create(policy.config, { temperature: 1, entropy: true, entropyGradient: true });
    const engine = ortPolicy(trainer, policy, 1);
    const batch = await buildTokenBatch({ promptIds, completionIds, truncated: [false, false, false, false] }, { padTokenId: 0, temperature: 1, maskTruncatedCompletions: false, oldPolicy: engine, reference: null });
    const advantages = Float32Array.from([1, -1, 0.5, -0.5]);
    const optimizer = createAdamW(policy.variables, { learningRate: 1e-3, beta1: 0.9, beta2: 0.99, weightDecay: 0 });
    const options = { loss: { epsilon: 0.2, epsilonHigh: 0.2, beta: 0, lossType: 'grpo' as const, maxCompletionLength: 4 }, temperature: 1, entropyCoef: 0.01, gradClip: 1, learningRate: 1e-3 };
    const first = await grpoUpdate(engine, optimizer, batch, advantages, [0, 1, 2, 3], options);
    const after = { tensors: tf.memory().numTensors, bytes: tf.memory().numBytes };
    let last = first;
    for (let i = 1; i < 100; i++) last = await grpoUpdate(engine, optimizer, batch, advantages, [0, 1, 2, 3], options);
    expect(tf.memory().numTensors).toBe(after.tensors);
    expect(tf.memory().numBytes).toBe(after.bytes);
    expect(last.loss).toBeLessThan(first.loss - 0.05); // the clipped surrogate keeps improving on the fixed batch
    optimizer.dispose();
    policy.dispose();
    await trainer.dispose();
  });
});
