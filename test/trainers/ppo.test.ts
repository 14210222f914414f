/**
 * PPO-with-critic stages on hand-made batches: per-token rewards by hand, GAE targets in the
 * settings where they have a closed form, the critic's update (its loss falls, only its
 * variables move), the policy's gradient against an independent per-token reference, the KL
 * term against a reference model, config validation, and checkpoints refused with a reason.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ConfigError } from '../../src/core/config.ts';
import type { AdamW } from '../../src/engine/tfjs/optim.ts';
import { Rng } from '../../src/core/rng.ts';
import { tinyGpt2Config } from '../../src/lm/config.ts';
import { CausalLM } from '../../src/lm/model.ts';
import { type ValueModel, buildLogprobBatch, logprobsNoGrad } from '../../src/lm/token-stats.ts';
import { ValueHead } from '../../src/lm/value-head.ts';
import { tokenLogprobs } from '../../src/objectives/logprobs.ts';
import { criticUpdate, policyUpdate, ppoTargets, readPpoTrainerState } from '../../src/trainers/ppo.ts';
import { tokenRewards } from '../../src/objectives/token-gae.ts';
import { PpoConfig, parsePpoConfig } from '../../src/trainers/ppo-config.ts';
import { createAdamW } from '../../src/trainers/run.ts';
import { type TokenBatch, buildTokenBatch } from '../../src/trainers/token-batch.ts';
import { useCpu } from '../lm/lm-helpers.ts';

let dir: string;
beforeAll(async () => {
  await useCpu();
  dir = mkdtempSync(join(tmpdir(), 'rlvr-ppo-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Four completions of lengths 3, 1, 0 and 2 (T = 3) after prompts of different lengths.
const PROMPTS = [[3, 5, 14, 6, 17], [3, 9, 17], [3, 7, 17], [3, 5, 14, 6, 17]];
const COMPLETIONS = [[7, 8, 1], [9], [], [4, 5]];
const LENGTHS = COMPLETIONS.map((c) => c.length);
const T = 3;
const N = 4;

/** A token batch built by hand (no model): the layout, the loss mask, and the given [N, T] arrays. */
function handBatch(arrays: { old?: number[]; ref?: number[]; values?: number[] } = {}, lossMask?: number[]): TokenBatch {
  const layout = buildLogprobBatch(PROMPTS, COMPLETIONS, 0);
  const f = (a: number[] | undefined): Float32Array | null => (a ? Float32Array.from(a) : null);
  return {
    layout,
    lossMask: lossMask ? Float32Array.from(lossMask) : layout.completionMask.slice(),
    oldLogprobs: f(arrays.old),
    refLogprobs: f(arrays.ref),
    oldValues: f(arrays.values),
    seconds: { reference: 0, old: 0 },
  };
}

const tiny = (): ReturnType<typeof tinyGpt2Config> => tinyGpt2Config({ vocab_size: 22, n_positions: 16, n_embd: 32, n_layer: 2, n_head: 2 });

function snapshot(variables: readonly tf.Variable[]): Float32Array[] {
  return variables.map((v) => (v.dataSync() as Float32Array).slice());
}
function sameValues(a: Float32Array[], b: Float32Array[]): boolean {
  return a.every((x, i) => x.every((v, j) => v === b[i]![j]));
}
function maxRelDiff(a: Float32Array[], b: Float32Array[]): number {
  let num = 0;
  let den = 0;
  a.forEach((x, i) =>
    x.forEach((v, j) => {
      num = Math.max(num, Math.abs(v - b[i]![j]!));
      den = Math.max(den, Math.abs(b[i]![j]!));
    }),
  );
  return num / den;
}

describe('token rewards', () => {
  // Padding positions hold values too: they must not leak into the rewards.
  const old = [-1, -2, -0.5, -3, -9, -9, -9, -9, -9, -1.25, -0.75, -9];
  const ref = [-1.5, -1, -0.5, -2, -1, -1, -1, -1, -1, -1, -1.75, -1];
  const scores = [1, 2, 5, -1];

  it('-klCoef x (logp_old - logp_ref) on every real token, the score on the last real token, 0 on padding; an empty completion gets nothing', async () => {
    const r = tokenRewards(handBatch({ old, ref }), scores, 0.5);
    // row 0: KL -0.25, 0.5, 0 (+ score 1 on t = 2); row 1: KL 0.5 + score 2; row 2: empty;
    // row 3: KL 0.125, -0.5 + score -1.
    expect([...r]).toEqual([-0.25, 0.5, 1, 2.5, 0, 0, 0, 0, 0, 0.125, -1.5, 0]);
  });

  it('only the scores when klCoef is 0 or there is no reference; the scores must match the rows', async () => {
    const only = [0, 0, 1, 2, 0, 0, 0, 0, 0, 0, -1, 0];
    expect([...tokenRewards(handBatch({ old, ref }), scores, 0)]).toEqual(only);
    expect([...tokenRewards(handBatch({ old }), scores, 0.5)]).toEqual(only);
    expect(() => tokenRewards(handBatch({ old, ref }), [1, 2, 3], 0.5)).toThrow(/4 completions but 3 scores/);
  });
});

describe('GAE targets', () => {
  const scores = [1, 0.5, 3, -2];
  const values = [0.1, 0.4, -0.3, 0.7, 9, 9, 9, 9, 9, 0.2, -0.6, 9]; // 9 on padding
  const plain = { klCoef: 0, gamma: 1, lambdaActor: 1, lambdaCritic: 1, lengthAdaptiveAlpha: null, whitenAdvantages: false };
  const close = (a: ArrayLike<number>, b: number[]): void => {
    expect(a.length).toBe(b.length);
    b.forEach((x, k) => expect(Math.abs(a[k]! - x), `index ${k}`).toBeLessThan(1e-6));
  };
  const real = (k: number): boolean => k % T < LENGTHS[Math.floor(k / T)]!;

  it('gamma = lambda = 1, no KL, no whitening: A_t = score - V_t and R_t = score on every real token, 0 elsewhere', async () => {
    const out = ppoTargets(handBatch({ values }), scores, plain);
    close(out.advantages, values.map((v, k) => (real(k) ? scores[Math.floor(k / T)]! - v : 0)));
    close(out.returns, values.map((_, k) => (real(k) ? scores[Math.floor(k / T)]! : 0)));
    const vs = values.filter((_, k) => real(k));
    const rs = values.map((_, k) => scores[Math.floor(k / T)]!).filter((_, k) => real(k));
    expect(out.valuesMean).toBeCloseTo(vs.reduce((a, b) => a + b, 0) / 6, 6);
    expect(out.returnsMean).toBeCloseTo(rs.reduce((a, b) => a + b, 0) / 6, 6);
  });

  it('with KL in the reward, R_t is the reward-to-go: score + the KL terms from t on', async () => {
    const old = [-1, -2, -0.5, -3, 0, 0, 0, 0, 0, -1.25, -0.75, 0];
    const ref = [-1.5, -1, -0.5, -2, 0, 0, 0, 0, 0, -1, -1.75, 0];
    const batch = handBatch({ old, ref, values });
    const out = ppoTargets(batch, scores, { ...plain, klCoef: 0.5 });
    // token rewards: row 0 [-0.25, 0.5, 0 + 1], row 1 [0.5 + 0.5], row 3 [0.125, -0.5 - 2]
    close(out.returns, [1.25, 1.5, 1, 1, 0, 0, 0, 0, 0, -2.375, -2.5, 0]);
  });

  it('lambdaActor < 1 discounts the later TD errors in the advantage; lambdaCritic = 1 keeps R_t = score', async () => {
    const out = ppoTargets(handBatch({ values }), scores, { ...plain, lambdaActor: 0.5 });
    const [v0, v1, v2] = values as [number, number, number];
    const a2 = scores[0]! - v2;
    const a1 = v2 - v1 + 0.5 * a2;
    const a0 = v1 - v0 + 0.5 * a1;
    close(out.advantages.subarray(0, 3), [a0, a1, a2]);
    close(out.returns.subarray(0, 3), [1, 1, 1]);
  });

  it('explained variance is 1 when the values equal the returns (padding does not count), lower when they do not', async () => {
    const exact = values.map((v, k) => (real(k) ? scores[Math.floor(k / T)]! : v));
    const out = ppoTargets(handBatch({ values: exact }), scores, plain);
    expect(out.explainedVariance).toBeCloseTo(1, 6);
    close(out.advantages, new Array(N * T).fill(0));
    expect(ppoTargets(handBatch({ values }), scores, plain).explainedVariance).toBeLessThan(0.9);
  });

  it('whitening: mean 0 and std 1 over the loss-mask tokens, 0 off it (a masked row included)', async () => {
    const lossMask = [1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 1, 0]; // row 1 masked out (e.g. truncated)
    const out = ppoTargets(handBatch({ values }, lossMask), scores, { ...plain, whitenAdvantages: true });
    const on = [...out.advantages].filter((_, k) => lossMask[k] === 1);
    const m = on.reduce((a, b) => a + b, 0) / on.length;
    const s = Math.sqrt(on.reduce((a, b) => a + (b - m) ** 2, 0) / on.length);
    expect(Math.abs(m)).toBeLessThan(1e-6);
    expect(Math.abs(s - 1)).toBeLessThan(1e-5);
    lossMask.forEach((x, k) => {
      if (x === 0) expect(out.advantages[k]).toBe(0);
    });
    expect(() => ppoTargets(handBatch(), scores, plain)).toThrow(/no critic values/);
  });
});

describe('the critic update', () => {
  it('lowers the value loss on a fixed batch and moves only the critic (trunk and head), never the policy; no tensors leak', async () => {
    const start = tf.memory().numTensors;
    const policy = CausalLM.create(tiny(), new Rng(3));
    const trunk = policy.clone({ trainable: true });
    const head = ValueHead.create(32, new Rng(4));
    const critic: ValueModel = { trunk, head };
    const variables = [...trunk.variables, ...head.variables];
    const optimizer = createAdamW(variables, { learningRate: 1e-2, beta1: 0.9, beta2: 0.99, weightDecay: 0 });
    const batch = await buildTokenBatch({ promptIds: PROMPTS, completionIds: COMPLETIONS, truncated: [false, false, false, false] }, {
      padTokenId: 0,
      temperature: 1,
      maskTruncatedCompletions: false,
      oldPolicy: policy,
      reference: null,
      critic,
    });
    // Rows 0 and 3 share their first state (the same prompt), so they share a score; row 1's
    // prompt differs. Row 2 is empty. R_t = the score on every real token.
    const scores = [2, -1, 0, 2];
    const { returns } = ppoTargets(batch, scores, { klCoef: 0, gamma: 1, lambdaActor: 0.95, lambdaCritic: 1, lengthAdaptiveAlpha: null, whitenAdvantages: true });
    // The loss before the first step, independently: 0.5 x mean over real tokens of (V_old - R)^2;
    // and the best a constant value can do: 0.5 x the variance of R over those tokens.
    const on = [...batch.lossMask.keys()].filter((k) => batch.lossMask[k] === 1);
    const expectedFirst = (0.5 * on.reduce((a, k) => a + (batch.oldValues![k]! - returns[k]!) ** 2, 0)) / on.length;
    const meanR = on.reduce((a, k) => a + returns[k]!, 0) / on.length;
    const constantBest = (0.5 * on.reduce((a, k) => a + (returns[k]! - meanR) ** 2, 0)) / on.length;

    const policyBefore = snapshot(policy.variables);
    const trunkBefore = snapshot(trunk.variables);
    const headBefore = snapshot(head.variables);
    const rows = [0, 1, 2, 3];
    const options = { valueClip: 0.2, learningRate: 1e-2, gradClip: 1 };
    const first = await criticUpdate(critic, optimizer, batch, returns, rows, options);
    expect(first.valueLoss).toBeCloseTo(expectedFirst, 5);
    expect(first.valueClipRatio).toBe(0); // V = V_old: nothing to clip yet
    expect(Number.isFinite(first.gradNorm) && first.gradNorm > 0).toBe(true);
    const afterFirst = tf.memory().numTensors;
    const losses = [first.valueLoss];
    for (let i = 0; i < 9; i++) losses.push((await criticUpdate(critic, optimizer, batch, returns, rows, { ...options, valueClip: 0 })).valueLoss);
    expect(tf.memory().numTensors).toBe(afterFirst); // flat across updates
    // Below what any constant value could reach: the critic tells the states apart.
    expect(losses[losses.length - 1]!).toBeLessThan(0.5 * constantBest);
    // The values have moved far from V_old: a tight clip is active on most tokens.
    expect((await criticUpdate(critic, optimizer, batch, returns, rows, { ...options, valueClip: 1e-4 })).valueClipRatio).toBeGreaterThan(0.5);

    expect(sameValues(snapshot(policy.variables), policyBefore)).toBe(true);
    expect(sameValues(snapshot(trunk.variables), trunkBefore)).toBe(false);
    expect(sameValues(snapshot(head.variables), headBefore)).toBe(false);
    optimizer.dispose();
    head.dispose();
    trunk.dispose();
    policy.dispose();
    expect(tf.memory().numTensors).toBe(start);
  });
});

describe('the policy update', () => {
  const options = { temperature: 0.7, epsilon: 0.2, epsilonHigh: null, beta: 0, entropyCoef: 0, lossType: 'bnpo' as const, maxCompletionLength: 4, gradClip: 0, learningRate: 1e-3 };
  // Per-token advantages, nonzero on padding too (the loss mask must remove them).
  const advantages = Float32Array.from([1.5, -0.5, 0.25, -1, 7, 7, 7, 7, 7, 0.75, 2, 7]);

  /** The gradients the optimizer is handed by one `policyUpdate`, in `model.variables` order (the step itself is skipped). */
  async function capturedGradients(model: CausalLM, optimizer: AdamW, run: () => Promise<unknown>): Promise<Float32Array[]> {
    let captured: Float32Array[] = [];
    const spy = vi.spyOn(optimizer, 'applyGradients').mockImplementation((grads: Record<string, tf.Tensor>) => {
      captured = model.variables.map((v) => (grads[v.name]!.dataSync() as Float32Array).slice());
    });
    await run();
    expect(spy).toHaveBeenCalledTimes(1);
    spy.mockRestore();
    return captured;
  }

  function tokenBatch(model: CausalLM, reference: CausalLM | null): Promise<TokenBatch> {
    return buildTokenBatch({ promptIds: PROMPTS, completionIds: COMPLETIONS, truncated: [false, false, false, false] }, {
      padTokenId: 0,
      temperature: 0.7,
      maskTruncatedCompletions: false,
      oldPolicy: model,
      reference,
    });
  }

  it('at ratio 1 (logp_old = current), bnpo: the gradient is -mean over the minibatch tokens of A_t grad logp_t (each row alone, unpadded)', async () => {
    const model = CausalLM.create(tiny(), new Rng(6));
    const optimizer = createAdamW(model.variables, { learningRate: 1e-3, beta1: 0.9, beta2: 0.99, weightDecay: 0 });
    const batch = await tokenBatch(model, null);
    const rows = [3, 0, 1]; // a minibatch, out of order
    let metrics!: Awaited<ReturnType<typeof policyUpdate>>;
    const ours = await capturedGradients(model, optimizer, async () => (metrics = await policyUpdate(model, optimizer, batch, advantages, rows, options)));

    const count = rows.reduce((n, i) => n + LENGTHS[i]!, 0);
    const { value, grads } = tf.variableGrads(() => {
      const terms = rows.map((i) => {
        const p = PROMPTS[i]!;
        const c = COMPLETIONS[i]!;
        const seq = [...p, ...c];
        const logits = model.forward(tf.tensor2d([seq.slice(0, -1)], [1, seq.length - 1], 'int32')); // [1, L-1, V]
        const lp = tokenLogprobs(logits, tf.tensor2d([seq.slice(1)], [1, seq.length - 1], 'int32'), 0.7); // [1, L-1]
        const comp = tf.slice(lp, [0, p.length - 1], [1, c.length]); // [1, len_i]: the completion tokens
        return tf.sum(tf.mul(comp, tf.tensor2d([[...advantages.subarray(i * T, i * T + c.length)]], [1, c.length])));
      });
      return tf.div(tf.neg(tf.addN(terms)), count) as tf.Scalar;
    }, model.variables);
    const reference = model.variables.map((v) => grads[v.name]!.dataSync() as Float32Array);
    expect(maxRelDiff(ours, reference)).toBeLessThan(1e-4);
    // At ratio 1 the surrogate is -mean A, nothing is clipped and the sample KL is 0.
    const meanA = rows.reduce((s, i) => s + [...advantages.subarray(i * T, i * T + LENGTHS[i]!)].reduce((a, b) => a + b, 0), 0) / count;
    expect(metrics.loss).toBeCloseTo(-meanA, 5);
    expect(metrics.clipRatioLow).toBe(0);
    expect(metrics.clipRatioHigh).toBe(0);
    expect(Math.abs(metrics.approxKl)).toBeLessThan(1e-6);
    expect(metrics.kl).toBe(0); // no reference
    tf.dispose([value, ...Object.values(grads)]);
    optimizer.dispose();
    model.dispose();
  });

  it('a real step raises the log-probs of positive-advantage tokens and lowers those of negative ones', async () => {
    const model = CausalLM.create(tiny(), new Rng(7));
    const optimizer = createAdamW(model.variables, { learningRate: 1e-2, beta1: 0.9, beta2: 0.99, weightDecay: 0 });
    const batch = await tokenBatch(model, null);
    const adv = Float32Array.from([1, 1, 1, -1, 0, 0, 0, 0, 0, 0, 0, 0]);
    const before = logprobsNoGrad(model, batch.layout, 0.7);
    for (let i = 0; i < 3; i++) await policyUpdate(model, optimizer, batch, adv, [0, 1], { ...options, gradClip: 1 });
    const after = logprobsNoGrad(model, batch.layout, 0.7);
    const sum = (a: Float32Array, from: number, n: number): number => [...a.subarray(from, from + n)].reduce((x, y) => x + y, 0);
    expect(sum(after, 0, 3)).toBeGreaterThan(sum(before, 0, 3));
    expect(after[3]!).toBeLessThan(before[3]!);
    optimizer.dispose();
    model.dispose();
  });

  it('beta > 0 with the reference = a copy of the policy: KL 0 and the same gradient as beta = 0; another reference gives its k3', async () => {
    const model = CausalLM.create(tiny(), new Rng(8));
    const copy = model.clone({ trainable: false });
    const other = CausalLM.create(tiny(), new Rng(9));
    const optimizer = createAdamW(model.variables, { learningRate: 1e-3, beta1: 0.9, beta2: 0.99, weightDecay: 0 });
    const rows = [0, 1, 2, 3];
    const same = await tokenBatch(model, copy);
    let m!: Awaited<ReturnType<typeof policyUpdate>>;
    const gKl = await capturedGradients(model, optimizer, async () => (m = await policyUpdate(model, optimizer, same, advantages, rows, { ...options, beta: 0.5 })));
    expect(Math.abs(m.kl)).toBeLessThan(1e-6);
    const g0 = await capturedGradients(model, optimizer, () => policyUpdate(model, optimizer, same, advantages, rows, options));
    expect(maxRelDiff(gKl, g0)).toBeLessThan(1e-4);

    const far = await tokenBatch(model, other);
    const gFar = await capturedGradients(model, optimizer, async () => (m = await policyUpdate(model, optimizer, far, advantages, rows, { ...options, beta: 0.5 })));
    const lp = logprobsNoGrad(model, far.layout, 0.7);
    let k3 = 0;
    far.lossMask.forEach((on, k) => {
      if (on) k3 += Math.exp(far.refLogprobs![k]! - lp[k]!) - (far.refLogprobs![k]! - lp[k]!) - 1;
    });
    k3 /= 6;
    expect(k3).toBeGreaterThan(1e-3);
    expect(m.kl).toBeCloseTo(k3, 4);
    expect(maxRelDiff(gFar, g0)).toBeGreaterThan(1e-3); // the KL term now pulls
    optimizer.dispose();
    other.dispose();
    copy.dispose();
    model.dispose();
  });
});

describe('config', () => {
  const bad = (input: Record<string, unknown>): string => {
    try {
      parsePpoConfig(input);
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      return (e as Error).message;
    }
    throw new Error(`expected a ConfigError for ${JSON.stringify(input)}`);
  };

  it('the defaults are valid', async () => {
    const c = PpoConfig.defaults();
    expect(c.criticWarmupSteps).toBeLessThan(c.steps);
    expect(parsePpoConfig({ steps: 5, criticWarmupSteps: 4 }).criticWarmupSteps).toBe(4);
  });

  it('names the bad field and its range', async () => {
    expect(bad({ criticLearningRate: 0 })).toMatch(/"criticLearningRate" must be > 0.*got 0/);
    expect(bad({ lambdaActor: 1.5 })).toMatch(/"lambdaActor" must be .*<= 1.*got 1.5/);
    expect(bad({ lambdaCritic: -0.1 })).toMatch(/"lambdaCritic" must be >= 0.*got -0.1/);
    expect(bad({ steps: 5, criticWarmupSteps: 5 })).toMatch(/"criticWarmupSteps" \(5\) must be less than "steps" \(5\)/);
    expect(bad({ steps: 5, criticWarmupSteps: 9 })).toMatch(/"criticWarmupSteps" \(9\) must be less than "steps" \(5\)/);
    expect(bad({ promptsPerStep: 2, numGenerations: 4, miniBatchSize: 9 })).toMatch(/"miniBatchSize" must be <= promptsPerStep x numGenerations \(8\)/);
  });
});

describe('checkpoints refused with a reason', () => {
  it('a GRPO checkpoint names the command that resumes it', async () => {
    const grpo = join(dir, 'grpo-checkpoint');
    mkdirSync(grpo, { recursive: true });
    writeFileSync(join(grpo, 'trainer_state.json'), JSON.stringify({ format: 'rlvr-grpo-trainer-state', version: 1, step: 3 }));
    const err = await readPpoTrainerState(grpo).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toContain(`rlvr grpo --resume ${grpo}`);
  });

  it('a PPO checkpoint without critic/value_head.safetensors is refused naming the file', async () => {
    const ckpt = join(dir, 'ppo-checkpoint');
    mkdirSync(join(ckpt, 'critic'), { recursive: true });
    const rng = [1, 2, 3, 4];
    const state = {
      format: 'rlvr-ppo-trainer-state',
      version: 1,
      step: 2,
      promptOrder: { epoch: 0, cursor: 4, epochRngState: rng },
      samplingRng: rng,
      updateRng: rng,
      initialModel: { dir: '/models/start', sha256: 'ab'.repeat(32) },
      lastEval: null,
      dataFingerprint: 'f00d',
      config: parsePpoConfig({ steps: 10 }),
    };
    writeFileSync(join(ckpt, 'trainer_state.json'), JSON.stringify(state));
    for (const f of ['config.json', 'model.safetensors', 'value_head.safetensors', 'optimizer.safetensors']) writeFileSync(join(ckpt, 'critic', f), '{}');
    expect((await readPpoTrainerState(ckpt)).step).toBe(2); // complete: accepted
    rmSync(join(ckpt, 'critic', 'value_head.safetensors'));
    await expect(readPpoTrainerState(ckpt)).rejects.toThrow(`cannot resume from ${ckpt}: the critic's critic/value_head.safetensors is missing`);
    const noUpdateRng = { ...state, updateRng: undefined };
    writeFileSync(join(ckpt, 'trainer_state.json'), JSON.stringify(noUpdateRng));
    await expect(readPpoTrainerState(ckpt)).rejects.toThrow(/"updateRng" must be the 4-word RNG state/);
  });
});
