/**
 * A reward function cannot end a run without a trace (src/trainers/containment.ts). Through the
 * real command: a stray unhandled rejection and a `process.exit(0)` inside a reward each stop
 * the run with exit status 1, a short message naming the reward and what it did, and a
 * checkpoint of the step it happened in. In-process: the guard attributes process.exit() to
 * the reward whose code called it, leaves other callers alone, and restores process.exit.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scoreCompletions } from '../../rewards/combine.ts';
import { UserCodeGuard, UserExitError } from '../../src/trainers/containment.ts';
import { type TinyTask, runCli, tinyGrpoArgs, tinyTask } from './cli-helpers.ts';

let task: TinyTask;
beforeAll(async () => {
  task = await tinyTask('rlvr-containment-');
});
afterAll(() => rmSync(task.dir, { recursive: true, force: true }));

/** A reward module that misbehaves on its third call (the column check, step 1, then step 2). */
function misbehaving(name: string, act: string): string {
  const file = join(task.dir, `${name}.mjs`);
  writeFileSync(file, `let calls = 0;\nexport default function ${name}({ completions }) {\n  if (++calls === 3) ${act};\n  return completions.map(() => 0.5);\n}\n`);
  return file;
}

function stepOf(checkpoint: string): number {
  return (JSON.parse(readFileSync(join(checkpoint, 'trainer_state.json'), 'utf8')) as { step: number }).step;
}

describe('user code contained', () => {
  it('a stray unhandled rejection in a reward: exit 1, the reward and its error named briefly, checkpoint of that step saved', async () => {
    const reward = misbehaving('stray', "Promise.reject(new Error('stray rejection from the reward'))");
    const outDir = join(task.dir, 'stray-run');
    const result = await runCli([...tinyGrpoArgs(task, outDir, 5), '--reward', reward]);
    expect(result.code, result.stdout + result.stderr).toBe(1);
    expect(result.stderr).toContain('error: training stopped after step 2: reward "stray" left a promise rejection unhandled: stray rejection from the reward');
    expect(result.stderr).toMatch(/\n {4}at \S*stray.*stray\.mjs:3:\d+\)/);
    expect(result.stderr).toContain(`The last checkpoint is ${join(outDir, 'checkpoint-2')}; continue from it with --resume`);
    expect(result.stderr.length).toBeLessThan(2000); // the message, not a dump of minified sources
    expect(stepOf(join(outDir, 'checkpoint-2'))).toBe(2);
  });

  it('process.exit(0) in a reward: exit 1 (not 0), the reward named, checkpoint of that step saved, the call listed as its failure', async () => {
    const reward = misbehaving('quitter', 'process.exit(0)');
    const outDir = join(task.dir, 'quitter-run');
    const result = await runCli([...tinyGrpoArgs(task, outDir, 5), '--reward', reward]);
    expect(result.code, result.stdout + result.stderr).toBe(1);
    expect(result.stderr).toContain('error: training stopped after step 2: reward "quitter" called process.exit(0)');
    expect(result.stderr).toMatch(/\n {4}at \S*quitter.*quitter\.mjs:3:\d+\)/);
    expect(result.stderr).toContain('A reward function must return its values (or throw), not end the process.');
    expect(stepOf(join(outDir, 'checkpoint-2'))).toBe(2);
    expect(existsSync(join(outDir, 'final'))).toBe(false);
    expect(readFileSync(join(outDir, 'reward_failures.jsonl'), 'utf8')).toContain('reward \\"quitter\\" called process.exit(0)');
  });

  it('the guard: process.exit() from a reward throws into it and is recorded; other callers exit; release restores process.exit', async () => {
    const exits: unknown[] = [];
    const original = process.exit;
    const fake = ((code?: number) => {
      exits.push(code);
      return undefined as never;
    }) as typeof process.exit;
    process.exit = fake;
    try {
      const guard = UserCodeGuard.install();
      const batch = { prompts: ['p'], completions: ['c'], completionIds: [[1]] };
      const result = await scoreCompletions(batch, [{ name: 'leaver', fn: () => process.exit(7) }, { name: 'fine', fn: () => [1] }]);
      expect(result.errors).toEqual([{ name: 'leaver', message: new UserExitError('leaver', '7').message, count: 1, stack: expect.any(String) }]);
      expect(result.perFunction['fine']).toEqual([1]);
      expect(guard.incident).toMatchObject({ kind: 'exit', reward: 'leaver', detail: '7' });
      process.exit(3); // not from a reward: passes through
      expect(exits).toEqual([3]);
      guard.release();
      expect(process.exit).toBe(fake);
    } finally {
      process.exit = original;
    }
  });
});
