/**
 * The `rlvr` command line. Each subcommand lives in `scripts/commands/<name>.ts` and
 * exports `register(program)`; this file only wires them together.
 */
import { Command } from 'commander';
import { readFileSync } from 'node:fs';
import * as data from './commands/data.ts';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

const program = new Command()
  .name('rlvr')
  .description('Reinforcement learning with verifiable rewards: GRPO/PPO for small language models, policy gradients for classic control.')
  .version(pkg.version)
  .showHelpAfterError()
  .enablePositionalOptions();

const commands: Array<{ register: (p: Command) => void }> = [data];
for (const c of commands) c.register(program);

await program.parseAsync(process.argv);
