import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../../src/engine/tfjs/backend.ts';
import { Rng } from '../../src/core/rng.ts';
import { ALGORITHMS } from '../../src/control/algorithm.ts';
import { ALGORITHM_CONFIGS } from '../../src/control/algorithms/index.ts';
import { ENV_IDS } from '../../src/control/envs/index.ts';
import { evaluatePolicy } from '../../src/control/evaluate.ts';
import { ActorCritic, loadPolicy } from '../../src/control/policy.ts';
import { CLEANRL_PPO_CARTPOLE, CONTROL_PRESETS } from '../../src/control/presets.ts';
import { resolveControlConfig, trainControl } from '../../src/control/train.ts';
import { readMetrics } from '../../src/report/metrics.ts';
import { METRIC_NAMES } from '../../src/report/metric-names.ts';

const dirs: string[] = [];
const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'rlvr-control-'));
  dirs.push(d);
  return d;
};
beforeAll(async () => {
  await initEngine({ backend: 'wasm', quiet: true });
});
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('resolveControlConfig', () => {
  it('layers defaults < preset < file < values', () => {
    const dir = tmp();
    const file = join(dir, 'ppo.json');
    writeFileSync(file, JSON.stringify({ nEpochs: 7, batchSize: 128 }));
    const { config, presetSteps } = resolveControlConfig('ppo', 'CartPole-v1', { configFile: file, config: { batchSize: 64 } });
    expect(config.numSteps).toBe(32); // preset
    expect(config.nEpochs).toBe(7); // file
    expect(config.batchSize).toBe(64); // values
    expect(config.vfCoef).toBe(0.5); // default
    expect(presetSteps).toBe(100_000);
    expect(resolveControlConfig('ppo', 'CartPole-v1', { usePreset: false }).config.numSteps).toBe(2048);
  });

  it('names the bad field, the allowed range and near-miss keys', () => {
    expect(() => resolveControlConfig('ppo', 'CartPole-v1', { config: { nEpoch: 3 } })).toThrow(/unknown key "nEpoch" \(did you mean "nEpochs"\?\)/);
    expect(() => resolveControlConfig('a2c', 'CartPole-v1', { config: { gamma: 1.5 } })).toThrow(/"gamma" must be >= 0 and <= 1, got 1.5/);
    expect(() => resolveControlConfig('trpo', 'CartPole-v1', { config: { policy: { sharedNetwork: true } } })).toThrow(/"policy.sharedNetwork" must be false/);
    expect(() => resolveControlConfig('sac' as never, 'CartPole-v1')).toThrow(/unknown algorithm "sac"; choose one of reinforce, a2c, npg, trpo, ppo/);
    expect(() => resolveControlConfig('ppo', 'Pong-v5' as never)).toThrow(/unknown environment "Pong-v5"/);
  });

  it('every preset is a valid config of its algorithm', () => {
    let n = 0;
    for (const env of ENV_IDS) {
      for (const algo of ALGORITHMS) {
        const preset = CONTROL_PRESETS[env][algo];
        if (!preset) continue;
        expect(() => ALGORITHM_CONFIGS[algo].parse(preset.config), `${algo} ${env}`).not.toThrow();
        expect(preset.steps).toBeGreaterThan(0);
        n++;
      }
    }
    expect(n).toBeGreaterThanOrEqual(20);
    expect(ALGORITHM_CONFIGS.ppo.parse(CLEANRL_PPO_CARTPOLE.config).clipRangeVf).toBe(0.2);
  });
});

describe('evaluatePolicy', () => {
  it('runs exactly the requested episodes, spread evenly over the copies, with deterministic actions', () => {
    const p = new ActorCritic(4, { type: 'discrete', n: 2 }, { hiddenSizes: [8] }, new Rng(0));
    const a = evaluatePolicy(p, 'CartPole-v1', { episodes: 13, seed: 5, numEnvs: 4 });
    const b = evaluatePolicy(p, 'CartPole-v1', { episodes: 13, seed: 5, numEnvs: 4 });
    expect(a.episodes).toBe(13);
    expect(a.returns).toHaveLength(13);
    expect(a.returns).toEqual(b.returns);
    expect(a.meanReturn).toBeCloseTo(a.returns.reduce((s, x) => s + x, 0) / 13, 10);
    expect(a.returns).toEqual(a.lengths); // CartPole: reward 1 per step
    expect(() => evaluatePolicy(p, 'CartPole-v1', { episodes: 3, numEnvs: 4 })).toThrow(/numEnvs must be an integer in \[1, episodes = 3\]/);
    p.dispose();
  });
});

describe('trainControl', () => {
  it('writes the policy, config, metrics with the stable names and the evaluation; the saved policy reproduces it', async () => {
    const out = tmp();
    const r = await trainControl({ algo: 'a2c', env: 'CartPole-v1', seed: 3, steps: 2000, out, quiet: true, evalEpisodes: 10 });
    expect(r.iterations).toBe(50); // 8 envs x 5 steps per iteration
    expect(r.envSteps).toBe(2000);
    for (const f of ['policy.safetensors', 'policy.json', 'config.json', 'metrics.jsonl', 'eval.json']) expect(existsSync(join(out, f))).toBe(true);
    const rows = readMetrics(join(out, 'metrics.jsonl'));
    expect(rows).toHaveLength(50);
    expect(rows.map((x) => x.step)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    const names = [
      METRIC_NAMES.train.policyLoss,
      METRIC_NAMES.train.valueLoss,
      METRIC_NAMES.train.entropy,
      METRIC_NAMES.train.approxKl,
      METRIC_NAMES.train.explainedVariance,
      METRIC_NAMES.time.stepsPerS,
    ];
    for (const n of names) expect(typeof rows[49]![n]).toBe('number');
    expect(rows.some((x) => typeof x[METRIC_NAMES.rollout.epReturn] === 'number')).toBe(true);
    const saved = JSON.parse(readFileSync(join(out, 'eval.json'), 'utf8'));
    expect(saved.eval.episodes).toBe(10);
    expect(saved.eval.meanReturn).toBe(r.eval!.meanReturn);
    const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    expect(cfg).toMatchObject({ algo: 'a2c', env: 'CartPole-v1', seed: 3, steps: 2000, config: { numEnvs: 8, numSteps: 5 } });
    const loaded = await loadPolicy(out, new Rng(0));
    const again = evaluatePolicy(loaded.policy, 'CartPole-v1', { episodes: 10, seed: 3 + 1_000_000, obsNormalizer: loaded.obsNormalizer });
    expect(again.returns).toEqual(r.eval!.returns);
    loaded.policy.dispose();
  });

  it('is deterministic for a seed and saves observation statistics for a normalised box-action run', async () => {
    const opts = { algo: 'ppo', env: 'Pendulum-v1', steps: 512, quiet: true, evalEpisodes: 2, usePreset: false, config: { numEnvs: 2, numSteps: 128, batchSize: 64, nEpochs: 2, normalizeObs: true, normalizeReward: true } } as const;
    const out = tmp();
    const a = await trainControl({ ...opts, seed: 1, out });
    const b = await trainControl({ ...opts, seed: 1 });
    expect(b.eval!.returns).toEqual(a.eval!.returns);
    expect(b.history.map((h) => h.metrics['train/policy_loss'])).toEqual(a.history.map((h) => h.metrics['train/policy_loss']));
    const loaded = await loadPolicy(out, new Rng(0));
    expect(loaded.obsNormalizer).not.toBeNull();
    expect(loaded.obsNormalizer!.rms.count).toBeGreaterThan(512);
    expect(loaded.meta.actionSpace).toEqual({ type: 'box', dim: 1, low: [-2], high: [2] });
    loaded.policy.dispose();
  });

  it('rejects bad options with a clear message', async () => {
    await expect(trainControl({ algo: 'ppo', env: 'CartPole-v1', steps: 0, quiet: true })).rejects.toThrow(/steps must be a positive integer, got 0/);
    await expect(trainControl({ algo: 'ppo', env: 'CartPole-v1', seed: -1, quiet: true })).rejects.toThrow(/seed must be a non-negative integer/);
  });
});
