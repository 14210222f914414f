import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../../src/engine/tfjs/backend.ts';
import { Rng } from '../../src/core/rng.ts';
import { ALGORITHMS, type AlgoName } from '../../src/control/algorithm.ts';
import { ALGORITHM_CONFIGS, createAlgorithm, type AnyControlConfig } from '../../src/control/algorithms/index.ts';
import { createPpo, PpoConfig } from '../../src/control/algorithms/ppo.ts';
import { RolloutBuffer, RolloutCollector } from '../../src/control/buffer.ts';
import { makeVecEnv } from '../../src/control/envs/index.ts';
import type { EnvId } from '../../src/control/envs/types.ts';
import { ActorCritic, policyActionSpace } from '../../src/control/policy.ts';

beforeAll(async () => {
  await initEngine({ backend: 'wasm', quiet: true });
});

function setup(envId: EnvId, numEnvs: number, numSteps: number, seed = 0) {
  const env = makeVecEnv(envId, numEnvs, seed);
  const obsDim = env.observationSpace.shape[0]!;
  const space = policyActionSpace(env.actionSpace);
  const policy = new ActorCritic(obsDim, space, { hiddenSizes: [32, 32] }, new Rng(seed));
  const collector = new RolloutCollector(env, policy);
  const buffer = new RolloutBuffer({ numSteps, numEnvs, obsDim, actionDim: space.type === 'box' ? space.dim : 1, discrete: space.type === 'discrete' });
  return { env, policy, collector, buffer };
}

describe('PPO update', () => {
  it('has clip fraction exactly 0 (and ratio 1) on the first minibatch of the first epoch, and clips later', () => {
    const { policy, collector, buffer } = setup('CartPole-v1', 4, 64);
    const ppo = createPpo(policy, PpoConfig.parse({ numEnvs: 4, numSteps: 64, batchSize: 64, nEpochs: 8, learningRate: 5e-3, clipRange: 0.1 }));
    const rng = new Rng(1);
    collector.collect(buffer, rng);
    buffer.computeGae(0.99, 0.95);
    const r = ppo.update(buffer, 1, rng);
    const first = ppo.lastMinibatches[0]!;
    expect(first.epoch).toBe(0);
    expect(first.clipFrac).toBe(0);
    expect(Math.abs(first.approxKl)).toBeLessThan(1e-6);
    expect(ppo.lastMinibatches).toHaveLength(8 * 4);
    // With a large step size the policy moves past the clip range in later epochs.
    expect(Math.max(...ppo.lastMinibatches.map((m) => m.clipFrac))).toBeGreaterThan(0);
    expect(r.clipFrac).toBeGreaterThan(0);
    expect(r.approxKl).toBeGreaterThan(0);
    ppo.dispose();
    policy.dispose();
  });

  it('stops the epochs once a minibatch approx KL exceeds 1.5 x targetKl', () => {
    const { policy, collector, buffer } = setup('CartPole-v1', 4, 64);
    const ppo = createPpo(policy, PpoConfig.parse({ numEnvs: 4, numSteps: 64, batchSize: 32, nEpochs: 10, learningRate: 1e-2, targetKl: 1e-4 }));
    const rng = new Rng(2);
    collector.collect(buffer, rng);
    buffer.computeGae(0.99, 0.95);
    const r = ppo.update(buffer, 1, rng);
    expect(r.extra!.stoppedAtEpoch).toBeGreaterThanOrEqual(0);
    expect(ppo.lastMinibatches.length).toBeLessThan(10 * 8);
    expect(ppo.lastMinibatches.every((m) => m.approxKl <= 1.5e-4)).toBe(true);
    ppo.dispose();
    policy.dispose();
  });
});

describe('no tensor leaks', () => {
  const small: Record<AlgoName, Record<string, unknown>> = {
    reinforce: { numEnvs: 2, numSteps: 210 }, // every rollout holds a finished 200-step Pendulum episode
    a2c: { numEnvs: 2, numSteps: 8 },
    npg: { numEnvs: 2, numSteps: 32, batchSize: 32, criticEpochs: 2 },
    trpo: { numEnvs: 2, numSteps: 32, batchSize: 32, criticEpochs: 2 },
    ppo: { numEnvs: 2, numSteps: 32, batchSize: 16, nEpochs: 2, targetKl: 0.05 },
  };
  for (const algo of ALGORITHMS) {
    for (const envId of ['CartPole-v1', 'Pendulum-v1'] as const) {
      it(`${algo} on ${envId}: tf.memory().numTensors is flat across updates`, () => {
        const cfg = ALGORITHM_CONFIGS[algo].parse(small[algo]) as AnyControlConfig;
        const { policy, collector, buffer } = setup(envId, cfg.numEnvs, cfg.numSteps);
        const algorithm = createAlgorithm(algo, policy, cfg);
        const rng = new Rng(3);
        const iterate = (): void => {
          collector.collect(buffer, rng);
          const a = algorithm.advantages;
          if (a.kind === 'gae') buffer.computeGae(a.gamma, a.lambda);
          else buffer.computeMonteCarloReturns(a.gamma, a.baseline);
          algorithm.update(buffer, 0.5, rng);
        };
        iterate(); // optimizer state is created on the first update
        const before = tf.memory().numTensors;
        for (let i = 0; i < 3; i++) iterate();
        expect(tf.memory().numTensors).toBe(before);
        algorithm.dispose();
        policy.dispose();
      });
    }
  }
});
