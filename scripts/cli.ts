/**
 * The `rlvr` command line. Each subcommand lives in `scripts/commands/<name>.ts` and
 * exports `register(program)`; this file only wires them together.
 */
import { Command } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import * as compare from './commands/compare.ts';
import * as control from './commands/control.ts';
import * as data from './commands/data.ts';
import * as exportCmd from './commands/export.ts';
import * as generate from './commands/generate.ts';
import * as grpo from './commands/grpo.ts';
import * as ppo from './commands/ppo.ts';
import * as report from './commands/report.ts';
import * as sft from './commands/sft.ts';
import { RunInterruptedError, signalExitCode } from '../src/trainers/run.ts';

// From the sources (scripts/cli.ts) package.json is one folder up; from the build (dist/scripts/cli.js), two.
const pkgUrl = ['../package.json', '../../package.json']
  .map((p) => new URL(p, import.meta.url))
  .find((u) => existsSync(u));
const pkg = (pkgUrl ? JSON.parse(readFileSync(pkgUrl, 'utf8')) : { version: 'unknown' }) as { version: string };

const program = new Command()
  .name('rlvr')
  .description('Reinforcement learning with verifiable rewards: GRPO/PPO for small language models, policy gradients for classic control.')
  .version(pkg.version)
  .showHelpAfterError()
  .enablePositionalOptions();

const commands: Array<{ register: (p: Command) => void }> = [compare, control, data, exportCmd, generate, grpo, ppo, report, sft];
for (const c of commands) c.register(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  // Expected failures (bad config, bad data, missing files) print one readable line;
  // RLVR_DEBUG=1 shows the stack for bug reports.
  const message = err instanceof Error ? err.message : String(err);
  console.error(`error: ${message}`);
  if (process.env.RLVR_DEBUG && err instanceof Error && err.stack) console.error(err.stack);
  process.exitCode = err instanceof RunInterruptedError ? signalExitCode(err.signal) : 1; // 130/143/129 after a signal
}
