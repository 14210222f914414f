/**
 * Early, accurate errors through the real command:
 * - `rlvr sft --preset arithmetic-tiny --steps N` with N below the preset's 50 warm-up steps
 *   runs (the warm-up is capped at the budget) instead of failing on the preset's own value;
 * - a run folder on a read-only mount is refused before any model loads, with the real cause
 *   (EROFS), not Node's misleading ENOENT from a recursive mkdir (needs bubblewrap to mount a
 *   folder read-only; skipped where it cannot).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readMetrics } from '../../src/report/metrics.ts';
import { BIN, type TinyTask, runCli, tinyGrpoArgs, tinyTask } from './cli-helpers.ts';

let task: TinyTask;
beforeAll(async () => {
  task = await tinyTask('rlvr-early-cli-');
});
afterAll(() => rmSync(task.dir, { recursive: true, force: true }));

/** Whether bubblewrap can bind the root file system here (it needs user namespaces). */
const canMountReadOnly = spawnSync('bwrap', ['--bind', '/', '/', '--dev', '/dev', 'true']).status === 0;

describe('early checks through the command', () => {
  it('sft --preset arithmetic-tiny --steps 3 runs: the preset\'s warm-up is capped at the budget', async () => {
    const outDir = join(task.dir, 'sft-short');
    const small = ['--set', 'data.generate.trainSize=64', '--set', 'data.generate.testSize=8', '--set', 'evalSize=8', '--set', 'batchSize=8', '--set', 'logEvery=1', '--set', 'model.init.hiddenSize=32', '--set', 'model.init.layers=1', '--set', 'model.init.heads=2'];
    const result = await runCli(['sft', '--preset', 'arithmetic-tiny', '--steps', '3', '--out', outDir, '--backend', 'cpu', '--set', 'engine=tfjs', ...small]);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toContain('warmupSteps=3');
    expect(readMetrics(join(outDir, 'metrics.jsonl')).map((l) => l.step)).toEqual([1, 2, 3, 3]);
  });

  it.runIf(canMountReadOnly)('a run folder on a read-only mount is refused first, naming EROFS', () => {
    const ro = join(task.dir, 'read-only');
    mkdirSync(ro);
    const outDir = join(ro, 'deep', 'run');
    const env = { ...process.env };
    delete env['NODE_OPTIONS'];
    const result = spawnSync('bwrap', ['--bind', '/', '/', '--ro-bind', ro, ro, '--dev', '/dev', '--proc', '/proc', process.execPath, BIN, ...tinyGrpoArgs(task, outDir, 2)], { encoding: 'utf8', env });
    expect(result.status, result.stdout + result.stderr).toBe(1);
    expect(result.stderr).toContain(`the run folder ${outDir} cannot be written: EROFS: read-only file system`);
    expect(result.stderr).not.toContain('ENOENT');
    expect(result.stdout).not.toContain('== rlvr grpo'); // it stopped before the run's header, i.e. before any model work
  });
});
