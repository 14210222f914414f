/**
 * Signals through the real command (`bin/rlvr.mjs`, as `npx rlvr` runs it): SIGINT, SIGTERM
 * and SIGHUP each finish the step, save a checkpoint that --resume finds, and exit with
 * 130, 143 and 129 (never 0). A wrapper killed with SIGKILL cannot pass a signal on: the
 * orphaned run notices its parent is gone, saves and stops on its own.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { latestCheckpoint } from '../../src/trainers/trainer-state.ts';
import { BIN, ROOT, type TinyTask, startCli, tinyGrpoArgs, tinyTask, untilLines } from './cli-helpers.ts';

let task: TinyTask;
beforeAll(async () => {
  task = await tinyTask('rlvr-signals-');
});
afterAll(() => rmSync(task.dir, { recursive: true, force: true }));

/** Whether process `pid` still exists. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('signals', () => {
  it.each([
    ['SIGINT', 130],
    ['SIGTERM', 143],
    ['SIGHUP', 129],
  ] as const)('%s: the step finishes, a checkpoint is saved, the exit status is %i', async (signal, status) => {
    const outDir = join(task.dir, `run-${signal}`);
    const run = startCli(tinyGrpoArgs(task, outDir, 100_000, ['--set', 'saveEvery=0']));
    await untilLines(join(outDir, 'metrics.jsonl'), 1, run.child);
    run.child.kill(signal);
    const result = await run.done;
    expect(result.signal, run.output()).toBeNull(); // it exited by itself, after saving
    expect(result.code, run.output()).toBe(status);
    expect(result.stdout).toContain(`grpo interrupted (${signal})`);
    const checkpoint = latestCheckpoint(outDir);
    expect(checkpoint, run.output()).toMatch(/checkpoint-\d+$/);
    expect(readdirSync(checkpoint!)).toEqual(expect.arrayContaining(['model.safetensors', 'optimizer.safetensors', 'trainer_state.json']));
  });

  it('kill -9 of a wrapper process: the orphaned run saves a checkpoint and exits by itself', async () => {
    const outDir = join(task.dir, 'run-orphaned');
    // A wrapper like npx: it starts the command and waits, passing no signal on.
    const wrapperCode = `const c = require('node:child_process').spawn(process.execPath, ${JSON.stringify([BIN, ...tinyGrpoArgs(task, outDir, 100_000, ['--set', 'saveEvery=0'])])}, { stdio: 'ignore', cwd: ${JSON.stringify(ROOT)} }); console.log(c.pid); setInterval(() => {}, 1000);`;
    const env = { ...process.env };
    delete env['NODE_OPTIONS'];
    const wrapper = spawn(process.execPath, ['-e', wrapperCode], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    const pid = await new Promise<number>((resolve) => wrapper.stdout!.once('data', (d: Buffer) => resolve(Number(String(d).trim()))));
    await untilLines(join(outDir, 'metrics.jsonl'), 1, { exitCode: null, signalCode: null });
    wrapper.kill('SIGKILL');
    while (alive(pid)) await new Promise((r) => setTimeout(r, 100));
    expect(latestCheckpoint(outDir)).toMatch(/checkpoint-\d+$/);
    expect(existsSync(join(outDir, 'final'))).toBe(false);
  });
});
