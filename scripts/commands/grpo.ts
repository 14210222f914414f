/**
 * `rlvr grpo`: GRPO fine-tuning of a causal LM against reward functions (options shared with
 * `rlvr ppo` in rl-command.ts).
 */
import type { Command } from 'commander';
import { GrpoConfig, resolveGrpoConfig } from '../../src/trainers/grpo-config.ts';
import { readGrpoTrainerState, trainGrpo } from '../../src/trainers/grpo.ts';
import { registerRlCommand } from './rl-command.ts';

export { parseRewardFlag } from './rl-command.ts';

export function register(program: Command): void {
  registerRlCommand(program, {
    name: 'grpo',
    description: 'GRPO: sample K completions per prompt, score them with reward functions, update the policy on group-relative advantages. With no options: the arithmetic demo.',
    describe: () => GrpoConfig.describe(),
    examples: `Examples:
  rlvr grpo                                   # the demo: warm-started tiny model, arithmetic, exact match
  rlvr grpo --model my-model --data train.jsonl --eval-data test.jsonl --reward math --reward format:0.2
  rlvr grpo --config grpo.json --set beta=0 --set lossType=dapo
  rlvr grpo --resume                          # continue the newest checkpoint in the run folder`,
    resolve: resolveGrpoConfig,
    savedConfig: async (dir) => (await readGrpoTrainerState(dir)).config,
    train: (config, options) => trainGrpo(config, options),
  });
}
