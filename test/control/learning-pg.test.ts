// Each algorithm must clearly improve CartPole-v1 within a small seeded budget (a few
// seconds): the last fifth of the training episodes must average more than twice the
// first fifth and well above a random policy's ~22.
import { beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../../src/engine/tfjs/backend.ts';
import { cartPoleLearningCurve, RANDOM_CARTPOLE_RETURN } from './learning-helpers.ts';

beforeAll(async () => {
  await initEngine({ backend: 'wasm', quiet: true });
});

describe('policy-gradient algorithms learn CartPole-v1', () => {
  it('PPO (CartPole preset, 12k steps)', async () => {
    const { first, last } = await cartPoleLearningCurve('ppo', 12_288);
    expect(last).toBeGreaterThan(2 * first);
    expect(last).toBeGreaterThan(4 * RANDOM_CARTPOLE_RETURN);
  });

  it('A2C (zoo preset, 25k steps)', async () => {
    const { first, last } = await cartPoleLearningCurve('a2c', 25_000);
    expect(last).toBeGreaterThan(2 * first);
    expect(last).toBeGreaterThan(4 * RANDOM_CARTPOLE_RETURN);
  });

  it('REINFORCE with a learned baseline (30k steps, 128-step rollouts for more updates)', async () => {
    const { first, last } = await cartPoleLearningCurve('reinforce', 30_000, { numSteps: 128 });
    expect(last).toBeGreaterThan(2 * first);
    expect(last).toBeGreaterThan(4 * RANDOM_CARTPOLE_RETURN);
  });
});
