/**
 * Speed of the control algorithms' building blocks on the tfjs `wasm` and `cpu` backends,
 * for the 64x64 tanh MLPs of the CartPole presets:
 *   - rollout forward: one batched `ActorCritic.act` over 8 environment copies (one read-back)
 *   - PPO minibatch step: forward, backward, gradient clipping and Adam on 256 samples
 *   - PPO iteration: the zoo CartPole preset (8 copies x 32 steps, 20 epochs of one 256-sample
 *     minibatch), rollout included, as environment steps per second
 * The faster backend is the default of `rlvr control` (src/control/train.ts).
 *
 * Time is the process's CPU time (user + system) by default, since the machine is shared;
 * `--wall` uses the wall clock. Each cell is the best of three runs.
 *
 *   npx tsx scripts/bench-control.ts [--quick] [--wall]
 */
import { initEngine } from '../src/engine/tfjs/backend.ts';
import { Rng } from '../src/core/rng.ts';
import { createPpo, PpoConfig } from '../src/control/algorithms/ppo.ts';
import { RolloutBuffer, RolloutCollector } from '../src/control/buffer.ts';
import { makeVecEnv } from '../src/control/envs/index.ts';
import { ActorCritic, policyActionSpace } from '../src/control/policy.ts';

const quick = process.argv.includes('--quick');
const wall = process.argv.includes('--wall');
const REPEATS = 3;

function seconds(): number {
  if (wall) return performance.now() / 1e3;
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** Best (smallest) seconds per call of `fn` over REPEATS runs of `calls` calls. */
function best(calls: number, fn: () => void): number {
  fn(); // warm-up
  let b = Infinity;
  for (let r = 0; r < REPEATS; r++) {
    const t0 = seconds();
    for (let i = 0; i < calls; i++) fn();
    b = Math.min(b, (seconds() - t0) / calls);
  }
  return b;
}

interface Row {
  backend: string;
  forwardMs: number;
  stepMs: number;
  iterationMs: number;
  stepsPerS: number;
}

async function measure(backend: 'wasm' | 'cpu'): Promise<Row> {
  await initEngine({ backend, quiet: true });
  const config = PpoConfig.parse({ numEnvs: 8, numSteps: 32, batchSize: 256, nEpochs: 20, learningRate: 1e-4 });
  const env = makeVecEnv('CartPole-v1', config.numEnvs, 0);
  const policy = new ActorCritic(4, policyActionSpace(env.actionSpace), config.policy, new Rng(0));
  const rng = new Rng(1);
  const obs = rng.fillNormal(new Float32Array(8 * 4)) as Float32Array;
  const forwardMs = 1e3 * best(quick ? 100 : 400, () => policy.act(obs, 8, rng));

  const collector = new RolloutCollector(env, policy);
  const buffer = new RolloutBuffer({ numSteps: 32, numEnvs: 8, obsDim: 4, actionDim: 1, discrete: true });
  const ppo = createPpo(policy, config);
  const iteration = (): void => {
    collector.collect(buffer, rng);
    buffer.computeGae(config.gamma, config.gaeLambda);
    ppo.update(buffer, 0.5, rng);
  };
  const iterationS = best(quick ? 2 : 6, iteration);
  const oneEpoch = createPpo(policy, { ...config, nEpochs: 1 });
  const stepMs = 1e3 * best(quick ? 10 : 40, () => oneEpoch.update(buffer, 0.5, rng));
  oneEpoch.dispose();
  ppo.dispose();
  policy.dispose();
  return { backend, forwardMs, stepMs, iterationMs: iterationS * 1e3, stepsPerS: 256 / iterationS };
}

const rows = [await measure('wasm'), await measure('cpu')];
const clock = wall ? 'wall' : 'CPU';
console.log(`control building blocks, 64x64 tanh MLPs, CartPole-v1 (${clock} time, best of ${REPEATS})`);
console.log('| backend | rollout forward, 8 copies (ms) | PPO minibatch step, 256 samples (ms) | PPO iteration, zoo preset (ms) | env steps/s |');
console.log('| --- | ---: | ---: | ---: | ---: |');
for (const r of rows) {
  console.log(`| ${r.backend} | ${r.forwardMs.toFixed(3)} | ${r.stepMs.toFixed(2)} | ${r.iterationMs.toFixed(1)} | ${r.stepsPerS.toFixed(0)} |`);
}
