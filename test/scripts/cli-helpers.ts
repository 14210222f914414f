/**
 * Helpers for the tests that need a real `rlvr` process (signals, process.exit, user modules
 * loaded the way the command loads them): a tiny GPT-2 with the arithmetic tokenizer and a
 * small prompt file in a temporary folder outside the project, and the command run through
 * `bin/rlvr.mjs` exactly as `npx rlvr` runs it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Rng } from '../../src/core/rng.ts';
import { saveCausalLM } from '../../src/lm/checkpoint.ts';
import { tinyGpt2Config } from '../../src/lm/config.ts';
import { CausalLM } from '../../src/lm/model.ts';
import { arithmeticTokenizer } from '../../src/trainers/from-scratch.ts';
import { useCpu } from '../lm/lm-helpers.ts';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = join(ROOT, 'bin', 'rlvr.mjs');

export interface TinyTask {
  /** The temporary folder (outside the project) holding everything below. */
  dir: string;
  modelDir: string;
  trainFile: string;
}

/** A tiny model (context 16) and 8 prompts "i+1=" with their answers, in a fresh temporary folder. */
export async function tinyTask(prefix: string): Promise<TinyTask> {
  await useCpu();
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const modelDir = join(dir, 'model');
  const model = CausalLM.create(tinyGpt2Config({ vocab_size: 22, n_positions: 16, n_embd: 16, n_layer: 1, n_head: 2 }), new Rng(1));
  await saveCausalLM(model, arithmeticTokenizer(), modelDir);
  model.dispose();
  const trainFile = join(dir, 'train.jsonl');
  writeFileSync(trainFile, Array.from({ length: 8 }, (_, i) => JSON.stringify({ prompt: `${i}+1=`, answer: String(i + 1) })).join('\n') + '\n');
  return { dir, modelDir, trainFile };
}

/** `rlvr grpo` arguments for a tiny, fast run on the task (the cpu backend, no report). */
export function tinyGrpoArgs(task: TinyTask, outDir: string, steps: number, extra: string[] = []): string[] {
  return [
    'grpo', '--model', task.modelDir, '--data', task.trainFile, '--out', outDir, '--steps', String(steps), '--backend', 'cpu',
    '--set', 'promptsPerStep=2', '--set', 'numGenerations=2', '--set', 'maxCompletionLength=3', '--set', 'report=false', '--set', 'warmupSteps=0', '--set', 'engine=tfjs',
    ...extra,
  ];
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Starts `node bin/rlvr.mjs <args>` in `cwd`; `done` resolves when it exits. */
export function startCli(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): { child: ChildProcess; done: Promise<CliResult>; output(): string } {
  const env = { ...process.env, ...options.env };
  delete env['NODE_OPTIONS']; // vitest's own loader options are not the command's
  const child = spawn(process.execPath, [BIN, ...args], { cwd: options.cwd ?? ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<CliResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done, output: () => stdout + stderr };
}

/** Runs `node bin/rlvr.mjs <args>` to its end. */
export function runCli(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  return startCli(args, options).done;
}

/** Resolves once `path` holds at least `lines` lines (polling; the process may also end first). */
export async function untilLines(path: string, lines: number, running: { exitCode: number | null; signalCode: NodeJS.Signals | null }): Promise<void> {
  for (;;) {
    if (existsSync(path) && readFileSync(path, 'utf8').split('\n').filter((l) => l.trim() !== '').length >= lines) return;
    if (running.exitCode !== null || running.signalCode !== null) throw new Error(`the process ended before ${path} had ${lines} lines`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
