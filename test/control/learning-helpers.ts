import type { AlgoName } from '../../src/control/algorithm.ts';
import { trainControl } from '../../src/control/train.ts';

/**
 * Trains `algo` on CartPole-v1 for a small seeded budget and returns the mean episode return
 * of the first and the last fifth of the iterations that finished episodes.
 */
export async function cartPoleLearningCurve(algo: AlgoName, steps: number, config: Record<string, unknown> = {}, seed = 0): Promise<{ first: number; last: number; iterations: number }> {
  const r = await trainControl({ algo, env: 'CartPole-v1', seed, steps, config, quiet: true, evalEpisodes: 0 });
  const returns = r.history.map((h) => h.metrics['rollout/ep_return']).filter((x): x is number => x !== undefined);
  const k = Math.max(1, Math.floor(returns.length / 5));
  const avg = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  return { first: avg(returns.slice(0, k)), last: avg(returns.slice(-k)), iterations: r.iterations };
}

/** A random CartPole policy averages about 22 steps per episode. */
export const RANDOM_CARTPOLE_RETURN = 22;
