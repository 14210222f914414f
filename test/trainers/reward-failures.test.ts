/**
 * Reward failures are visible (src/trainers/reward-failures.ts): the first failure of each
 * reward function is printed with its stack head, every failure is a line of
 * reward_failures.jsonl, `reward/errors` counts them per step, and a run whose rewards fail
 * on every completion stops after `maxFailedRewardSteps` consecutive steps (GRPO and PPO)
 * with an error naming the reward, its message and the last checkpoint.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RewardBatch, RewardSpec } from '../../rewards/types.ts';
import { ConfigError } from '../../src/core/config.ts';
import { Rng } from '../../src/core/rng.ts';
import { saveCausalLM } from '../../src/lm/checkpoint.ts';
import { tinyGpt2Config } from '../../src/lm/config.ts';
import { CausalLM } from '../../src/lm/model.ts';
import { readMetrics } from '../../src/report/metrics.ts';
import { arithmeticTokenizer } from '../../src/trainers/from-scratch.ts';
import { parseGrpoConfig } from '../../src/trainers/grpo-config.ts';
import { trainGrpo } from '../../src/trainers/grpo.ts';
import { parsePpoConfig } from '../../src/trainers/ppo-config.ts';
import { trainPpo } from '../../src/trainers/ppo.ts';
import { RewardFailureLog, readRewardFailures } from '../../src/trainers/reward-failures.ts';
import { useCpu } from '../lm/lm-helpers.ts';
import { collector } from './output-collector.ts';

let dir: string;
let initDir: string;
let trainFile: string;

beforeAll(async () => {
  await useCpu();
  dir = mkdtempSync(join(tmpdir(), 'rlvr-reward-failures-'));
  initDir = join(dir, 'init');
  const model = CausalLM.create(tinyGpt2Config({ vocab_size: 22, n_positions: 16, n_embd: 16, n_layer: 1, n_head: 2 }), new Rng(1));
  await saveCausalLM(model, arithmeticTokenizer(), initDir);
  model.dispose();
  trainFile = join(dir, 'train.jsonl');
  writeFileSync(trainFile, Array.from({ length: 8 }, (_, i) => JSON.stringify({ prompt: `${i}+1=`, answer: String(i + 1) })).join('\n') + '\n');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const common = (outDir: string, overrides: Record<string, unknown>) => ({
  model: { modelDir: initDir },
  data: { trainFile },
  promptsPerStep: 2,
  numGenerations: 2,
  maxCompletionLength: 3,
  warmupSteps: 0,
  evalEvery: 0,
  saveEvery: 1,
  report: false,
  engine: 'tfjs',
  outDir: join(dir, outDir),
  ...overrides,
});

function brokenVerifier(): number[] {
  throw new Error('verifier crashed: no "answer" parser');
}
const broken: RewardSpec[] = [{ name: 'broken', fn: brokenVerifier }];

describe('reward failures', () => {
  it('GRPO: a reward failing on every completion stops the run after maxFailedRewardSteps steps, printed, counted and written to reward_failures.jsonl', async () => {
    const stream = collector();
    const outDir = join(dir, 'grpo-broken');
    const error = await trainGrpo(parseGrpoConfig(common('grpo-broken', { steps: 10 })), { rewards: broken, stream, handleSigint: false }).catch((e: unknown) => e as Error);
    expect(error).toBeInstanceOf(Error);
    const message = (error as Error).message;
    expect(message).toContain('training stopped at step 3: the rewards failed on every completion for 3 consecutive steps (steps 1-3)');
    expect(message).toContain('"broken": verifier crashed: no "answer" parser');
    expect(message).toContain(`the last good checkpoint is ${join(outDir, 'checkpoint-2')}`);
    expect(message).toContain('maxFailedRewardSteps');

    // The terminal shows the first failure once, with where it was thrown.
    const text = stream.text();
    expect(text.split('reward "broken" failed').length - 1).toBe(1);
    expect(text).toContain('reward "broken" failed in step 1: verifier crashed: no "answer" parser');
    expect(text).toMatch(/\n {4}at \S*brokenVerifier.*\(.*reward-failures\.test\.ts:\d+:\d+\)\n/);

    const failures = readRewardFailures(join(outDir, 'reward_failures.jsonl'));
    expect(failures.map((f) => [f.step, f.phase, f.reward, f.message, f.count])).toEqual([1, 2, 3].map((s) => [s, 'train', 'broken', 'verifier crashed: no "answer" parser', 1]));
    expect(failures[0]!.stack).toMatch(/^at \S*brokenVerifier.*reward-failures\.test\.ts/);

    const lines = readMetrics(join(outDir, 'metrics.jsonl'));
    expect(lines.map((l) => [l.step, l['reward/errors'], l['reward/broken/errors']])).toEqual([
      [1, 1, 1],
      [2, 1, 1],
    ]);
    expect(existsSync(join(outDir, 'checkpoint-3'))).toBe(false);
  });

  it('PPO stops the same way; maxFailedRewardSteps 0 never stops, and one working reward keeps the run going', async () => {
    const ppo = parsePpoConfig(common('ppo-broken', { steps: 10, maxFailedRewardSteps: 2, criticWarmupSteps: 0, miniBatchSize: 4 }));
    await expect(trainPpo(ppo, { rewards: broken, quiet: true, handleSigint: false })).rejects.toThrow(/^training stopped at step 2: the rewards failed on every completion for 2 consecutive steps \(steps 1-2\)/);

    const never = await trainGrpo(parseGrpoConfig(common('never', { steps: 4, saveEvery: 0, maxFailedRewardSteps: 0 })), { rewards: broken, quiet: true, handleSigint: false });
    expect(never.step).toBe(4);
    expect(never.rewardFailures).toEqual({ count: 4, path: join(dir, 'never', 'reward_failures.jsonl') });

    const half = (batch: RewardBatch): number[] => batch.completions.map(() => 0.5);
    const mixed = await trainGrpo(parseGrpoConfig(common('mixed', { steps: 4, saveEvery: 0 })), { rewards: [...broken, { name: 'half', fn: half }], quiet: true, handleSigint: false });
    expect(mixed.step).toBe(4);
    expect(readMetrics(join(dir, 'mixed', 'metrics.jsonl')).map((l) => l['reward/errors'])).toEqual([1, 1, 1, 1]);
  });

  it('maxFailedRewardSteps is validated; a resumed run cuts the failures after its checkpoint', () => {
    expect(() => parseGrpoConfig(common('bad', { maxFailedRewardSteps: -1 }))).toThrow(ConfigError);
    expect(() => parseGrpoConfig(common('bad', { maxFailedRewardSteps: -1 }))).toThrow(/"maxFailedRewardSteps" must be >= 0 and <= 1000000, got -1/);

    const outDir = join(dir, 'resume-cut');
    const log = new RewardFailureLog(outDir, { maxFailedSteps: 3, resumeFromStep: null });
    const failure = (step: number) => ({ name: 'broken', message: `at ${step}`, count: 1 });
    for (const step of [1, 2, 3, 4]) log.record(step, 'train', [failure(step)], () => undefined);
    new RewardFailureLog(outDir, { maxFailedSteps: 3, resumeFromStep: 2 });
    expect(readRewardFailures(join(outDir, 'reward_failures.jsonl')).map((f) => f.step)).toEqual([1, 2]);
  });
});
