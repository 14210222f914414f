import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../../src/engine/tfjs/backend.ts';
import { Rng } from '../../src/core/rng.ts';
import { RolloutBuffer, RolloutCollector } from '../../src/control/buffer.ts';
import { makeVecEnv } from '../../src/control/envs/index.ts';
import type { VecEnv, VecStepResult } from '../../src/control/envs/types.ts';
import { ObsNormalizer } from '../../src/control/normalize.ts';
import { ActorCritic, policyActionSpace } from '../../src/control/policy.ts';

beforeAll(async () => {
  await initEngine({ backend: 'wasm', quiet: true });
});

function handBuffer(): RolloutBuffer {
  // T = 3 steps of N = 2 copies. Copy 0 is truncated at t = 1 (bootstrap V = 10); copy 1
  // terminates at t = 1.
  const buf = new RolloutBuffer({ numSteps: 3, numEnvs: 2, obsDim: 1, actionDim: 1, discrete: true });
  const rows = [
    { values: [1, 1], terminated: [0, 0], truncated: [0, 0] },
    { values: [2, 1], terminated: [0, 1], truncated: [1, 0] },
    { values: [3, 1], terminated: [0, 0], truncated: [0, 0] },
  ];
  rows.forEach((r) =>
    buf.add({
      obs: new Float32Array([0, 0]),
      actions: new Int32Array([0, 1]),
      logProbs: new Float32Array([-0.7, -0.7]),
      values: new Float32Array(r.values),
      rewards: [1, 1],
      terminated: r.terminated,
      truncated: r.truncated,
    }),
  );
  buf.setTruncationValue(1, 0, 10);
  buf.lastValues.set([4, 2]);
  return buf;
}

describe('RolloutBuffer advantages', () => {
  it('GAE bootstraps a truncated step from V(final observation) and not a terminated one (hand example)', () => {
    const buf = handBuffer();
    buf.computeGae(0.9, 0.5);
    // Copy 0: delta = r + 0.9 V_next - V with V_next = [V(s1) = 2, V(final) = 10, last value 4]
    //   delta = [1.8, 8, 1.6];  A2 = 1.6;  A1 = 8 (episode ends);  A0 = 1.8 + 0.45 * 8 = 5.4
    // Copy 1: terminated at t = 1:  delta = [0.9, 0, 1.8];  A = [0.9, 0, 1.8]
    const adv = Array.from(buf.advantages);
    const want = [5.4, 0.9, 8, 0, 1.6, 1.8];
    want.forEach((w, k) => expect(adv[k]).toBeCloseTo(w, 5));
    const ret = Array.from(buf.returns);
    [6.4, 1.9, 10, 1, 4.6, 2.8].forEach((w, k) => expect(ret[k]).toBeCloseTo(w, 5));
    expect(buf.validCount).toBe(6);
  });

  it('refuses a truncated step without its bootstrap value, and advantages before the rollout is full', () => {
    const buf = handBuffer();
    buf.truncationValues[2] = NaN;
    expect(() => buf.computeGae(0.9, 0.5)).toThrow(/step 1 copy 0 was truncated but has no bootstrap value/);
    const partial = new RolloutBuffer({ numSteps: 2, numEnvs: 1, obsDim: 1, actionDim: 1, discrete: true });
    expect(() => partial.computeGae(0.9, 0.9)).toThrow(/holds 0 of 2 steps/);
  });

  it('Monte-Carlo returns stop at episode ends and leave the unfinished tail out', () => {
    const buf = new RolloutBuffer({ numSteps: 4, numEnvs: 1, obsDim: 1, actionDim: 1, discrete: true });
    [1, 2, 3, 4].forEach((r, t) =>
      buf.add({
        obs: new Float32Array([t]),
        actions: new Int32Array([0]),
        logProbs: new Float32Array([0]),
        values: new Float32Array([0.5]),
        rewards: [r],
        terminated: [t === 1 ? 1 : 0],
        truncated: [0],
      }),
    );
    buf.computeMonteCarloReturns(0.5, true);
    expect(Array.from(buf.valid)).toEqual([1, 1, 0, 0]);
    expect(buf.returns[0]).toBe(2); // 1 + 0.5 * 2
    expect(buf.returns[1]).toBe(2);
    expect(Array.from(buf.advantages.subarray(0, 2))).toEqual([1.5, 1.5]);
    const all = buf.all();
    expect(Array.from(all.obs)).toEqual([0, 1]);
    buf.computeMonteCarloReturns(0.5, false);
    expect(Array.from(buf.advantages.subarray(0, 2))).toEqual([2, 2]);
  });

  it('minibatches visit every valid step exactly once, in a seeded order', () => {
    const buf = handBuffer();
    buf.computeGae(0.99, 0.95);
    const seen: number[] = [];
    const sizes: number[] = [];
    for (const mb of buf.minibatches(4, new Rng(1))) {
      sizes.push(mb.size);
      mb.indices.forEach((k, j) => {
        seen.push(k);
        expect(mb.advantages[j]).toBe(buf.advantages[k]);
        expect(mb.values[j]).toBe(buf.values[k]);
      });
    }
    expect(sizes).toEqual([4, 2]);
    expect([...seen].sort()).toEqual([0, 1, 2, 3, 4, 5]);
    const again = [...buf.minibatches(4, new Rng(1))].flatMap((mb) => Array.from(mb.indices));
    expect(again).toEqual(seen);
  });
});

/** A VecEnv wrapper that records what the collector sent and received. */
function recording(env: VecEnv): VecEnv & { log: Array<{ actions: Float32Array; truncated: Uint8Array; terminated: Uint8Array; final: Float32Array }> } {
  const log: Array<{ actions: Float32Array; truncated: Uint8Array; terminated: Uint8Array; final: Float32Array }> = [];
  return Object.assign(Object.create(env) as VecEnv, {
    log,
    step(actions: Int32Array | Float32Array | Float64Array): VecStepResult {
      const r = env.step(actions);
      log.push({ actions: Float32Array.from(actions), truncated: r.truncated.slice(), terminated: r.terminated.slice(), final: r.finalObservations.slice() });
      return r;
    },
    reset: () => env.reset(),
    completedEpisodes: () => env.completedEpisodes(),
  });
}

describe('RolloutCollector', () => {
  it('bootstraps time-limit truncations with V(final obs), clips box actions for the env only, and stores consistent log-probs', () => {
    const N = 2;
    const env = recording(makeVecEnv('Pendulum-v1', N, 3)); // 200-step episodes, never terminated
    const policy = new ActorCritic(3, policyActionSpace(env.actionSpace), { hiddenSizes: [8], logStdInit: 1.5 }, new Rng(0));
    const norm = new ObsNormalizer(3);
    const collector = new RolloutCollector(env, policy, norm, null);
    const buf = new RolloutBuffer({ numSteps: 200, numEnvs: N, obsDim: 3, actionDim: 1, discrete: false });
    const stats = collector.collect(buf, new Rng(1));
    expect(stats.episodes.map((e) => e.length)).toEqual([200, 200]);
    const t = 199;
    const step = env.log[t]!;
    expect(Array.from(step.truncated)).toEqual([1, 1]);
    // The truncation value is V of the normalised final observation (statistics as after that
    // step, the last of the rollout, so the normaliser now holds them).
    const finals = norm.normalize(step.final);
    const v = policy.predictValues(finals, N);
    expect(buf.truncationValues[t * N]).toBeCloseTo(v[0]!, 5);
    expect(buf.truncationValues[t * N + 1]).toBeCloseTo(v[1]!, 5);
    expect(Number.isNaN(buf.truncationValues[(t - 1) * N]!)).toBe(true);
    // Unclipped actions in the buffer, clipped ones sent to the env.
    let outside = 0;
    env.log.forEach((s, k) => {
      for (let i = 0; i < N; i++) {
        const a = buf.actions[k * N + i]!;
        if (Math.abs(a) > 2) outside++;
        expect(s.actions[i]).toBe(Math.min(2, Math.max(-2, a)));
      }
    });
    expect(outside).toBeGreaterThan(50);
    // Stored log-probs equal the tensor log-density of the stored (unclipped) actions.
    const lp = tf.tidy(() => {
      const { dist } = policy.forward(tf.tensor2d(buf.obs.subarray(0, 20 * 3), [20, 3]));
      return dist.kind === 'gaussian' ? dist.logProb(tf.tensor2d(buf.actions.subarray(0, 20), [20, 1])) : tf.zeros([20]);
    });
    const lpv = lp.dataSync();
    for (let k = 0; k < 20; k++) expect(lpv[k]).toBeCloseTo(buf.logProbs[k]!, 4);
    lp.dispose();
    buf.computeGae(0.9, 0.95);
    policy.dispose();
  });
});
