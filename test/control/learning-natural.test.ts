// NPG and TRPO must clearly improve CartPole-v1 within a small seeded budget: the last
// fifth of the training episodes must average more than twice the first fifth and well
// above a random policy's ~22. Fewer critic epochs than the preset keep the test short.
import { beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../../src/engine/tfjs/backend.ts';
import { cartPoleLearningCurve, RANDOM_CARTPOLE_RETURN } from './learning-helpers.ts';

beforeAll(async () => {
  await initEngine({ backend: 'wasm', quiet: true });
});

describe('natural-gradient algorithms learn CartPole-v1', () => {
  it('TRPO (zoo preset, 16k steps)', async () => {
    const { first, last } = await cartPoleLearningCurve('trpo', 16_384, { criticEpochs: 5 });
    expect(last).toBeGreaterThan(2 * first);
    expect(last).toBeGreaterThan(4 * RANDOM_CARTPOLE_RETURN);
  });

  it('NPG (TRPO preset without line search, 16k steps)', async () => {
    const { first, last } = await cartPoleLearningCurve('npg', 16_384, { criticEpochs: 5 });
    expect(last).toBeGreaterThan(2 * first);
    expect(last).toBeGreaterThan(4 * RANDOM_CARTPOLE_RETURN);
  });
});
