/**
 * `rlvr ppo`: PPO with a learned critic on the same tasks as `rlvr grpo` (options shared in
 * rl-command.ts; the algorithm in src/trainers/ppo.ts, its choices in docs/ppo.md).
 */
import type { Command } from 'commander';
import { PpoConfig, resolvePpoConfig } from '../../src/trainers/ppo-config.ts';
import { readPpoTrainerState, trainPpo } from '../../src/trainers/ppo.ts';
import { registerRlCommand } from './rl-command.ts';

export function register(program: Command): void {
  registerRlCommand(program, {
    name: 'ppo',
    description: 'PPO with a critic: per-token values from a value model, GAE advantages, clipped policy and value losses. With no options: the arithmetic demo (same start as rlvr grpo).',
    describe: () => PpoConfig.describe(),
    examples: `Examples:
  rlvr ppo                                    # the demo: the GRPO demo's warm start, prompts and verifier
  rlvr ppo --model my-model --data train.jsonl --eval-data test.jsonl --reward math
  rlvr ppo --set lambdaActor=1 --set klCoef=0 --set criticWarmupSteps=0   # Open-Reasoner-Zero's setting
  rlvr ppo --set lengthAdaptiveAlpha=0.05     # VAPO's length-adaptive lambda
  rlvr ppo --resume                           # continue the newest checkpoint in the run folder`,
    resolve: resolvePpoConfig,
    savedConfig: async (dir) => (await readPpoTrainerState(dir)).config,
    train: async (config, options) => trainPpo(config, options),
  });
}
