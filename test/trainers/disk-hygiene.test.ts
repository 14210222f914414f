/**
 * Disk hygiene of a run folder: the temporary folders of a killed save are tidied on the next
 * start (an unfinished `.saving-` folder removed, a checkpoint moved aside by an interrupted
 * swap put back, a live process's folders left alone); `saveTotalLimit` keeps the newest
 * checkpoints and never deletes final/ or the one resumed from; a full disk while appending
 * metrics is an error naming the file.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileAtomic, writeFileDurable } from '../../src/core/atomic.ts';
import { ConfigError } from '../../src/core/config.ts';
import { MetricsWriter } from '../../src/report/metrics.ts';
import { parseGrpoConfig } from '../../src/trainers/grpo-config.ts';
import { type RunLoopOptions, runLoop } from '../../src/trainers/run.ts';
import { parseSftConfig } from '../../src/trainers/sft-config.ts';
import { useCpu } from '../lm/lm-helpers.ts';
import { collector } from './output-collector.ts';

let root: string;
beforeAll(async () => {
  await useCpu();
  root = mkdtempSync(join(tmpdir(), 'rlvr-disk-hygiene-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A checkpoint-like folder with one file. */
function folder(path: string): void {
  mkdirSync(path, { recursive: true });
  writeFileSync(join(path, 'trainer_state.json'), '{}');
}

/** Loop options whose saves write real folders. */
function loop(outDir: string, config: Partial<RunLoopOptions['config']> & { steps: number }, overrides: Partial<RunLoopOptions> = {}): RunLoopOptions {
  return {
    command: 'fake',
    config: { logEvery: 1, evalEvery: 0, saveEvery: 0, report: false, outDir, ...config },
    resumed: null,
    engine: 'none',
    modelInfo: { name: 'no model' },
    quiet: true,
    stream: collector(),
    handleSigint: false,
    step: async (done) => ({ 'train/loss': done }),
    evaluate: null,
    evaluateAtStart: false,
    save: async (dir) => folder(dir),
    ...overrides,
  };
}

/** A pid that no process has (above Linux's largest pid_max). */
const DEAD_PID = 4_194_999;

describe('run folder hygiene', () => {
  it('the next start removes a killed save\'s .saving- folder, puts back a checkpoint moved aside mid-swap, and leaves a live process\'s folders alone', async () => {
    const outDir = join(root, 'leftovers');
    folder(join(outDir, 'checkpoint-2'));
    folder(join(outDir, `.checkpoint-4.saving-${DEAD_PID}-1700000000000-0`));
    folder(join(outDir, `.checkpoint-3.old-${DEAD_PID}-1700000000000-1`)); // checkpoint-3 itself is missing
    folder(join(outDir, `.checkpoint-6.saving-${process.ppid}-1700000000000-2`)); // a live process (not this one)
    const stream = collector();
    await runLoop(loop(outDir, { steps: 3 }, { resumed: { dir: join(outDir, 'checkpoint-2'), step: 2, config: {} }, quiet: false, stream }));
    expect(readdirSync(outDir).filter((n) => n.startsWith('.') || n.startsWith('checkpoint-')).sort()).toEqual([
      `.checkpoint-6.saving-${process.ppid}-1700000000000-2`,
      'checkpoint-2',
      'checkpoint-3',
    ]);
    expect(existsSync(join(outDir, 'checkpoint-3', 'trainer_state.json'))).toBe(true);
    expect(stream.text()).toContain(`removed unfinished checkpoint saves: .checkpoint-4.saving-${DEAD_PID}-1700000000000-0`);
    expect(stream.text()).toContain('restored checkpoint-3');
  });

  it('saveTotalLimit keeps the newest checkpoints; final/ and the checkpoint resumed from are never deleted', async () => {
    const fresh = join(root, 'limit');
    await runLoop(loop(fresh, { steps: 10, saveEvery: 2, saveTotalLimit: 2 }));
    expect(readdirSync(fresh).filter((n) => n === 'final' || n.startsWith('checkpoint-')).sort()).toEqual(['checkpoint-6', 'checkpoint-8', 'final']);

    const resumedRun = join(root, 'limit-resumed');
    folder(join(resumedRun, 'checkpoint-2'));
    folder(join(resumedRun, 'checkpoint-1'));
    await runLoop(loop(resumedRun, { steps: 10, saveEvery: 2, saveTotalLimit: 1 }, { resumed: { dir: join(resumedRun, 'checkpoint-2'), step: 2, config: {} } }));
    expect(readdirSync(resumedRun).filter((n) => n === 'final' || n.startsWith('checkpoint-')).sort()).toEqual(['checkpoint-2', 'checkpoint-8', 'final']);

    const unlimited = join(root, 'no-limit');
    await runLoop(loop(unlimited, { steps: 6, saveEvery: 2, saveTotalLimit: null }));
    expect(readdirSync(unlimited).filter((n) => n.startsWith('checkpoint-')).sort()).toEqual(['checkpoint-2', 'checkpoint-4']);
  });

  it('saveTotalLimit is validated in every trainer config', () => {
    const grpo = { model: { modelDir: '/m' }, data: { trainFile: '/t.jsonl' }, saveTotalLimit: 0 };
    expect(() => parseGrpoConfig(grpo)).toThrow(ConfigError);
    expect(() => parseGrpoConfig(grpo)).toThrow(/"saveTotalLimit" must be >= 1/);
    const sft = { model: { init: {} }, data: { generate: {} }, saveTotalLimit: 1.5 };
    expect(() => parseSftConfig(sft)).toThrow(/"saveTotalLimit"/);
    expect(parseSftConfig({ ...sft, saveTotalLimit: 3 }).saveTotalLimit).toBe(3);
  });

  it.runIf(existsSync('/dev/full'))('a full disk while appending metrics, or writing a file, is an error naming the file', () => {
    const metrics = MetricsWriter.open('/dev/full');
    try {
      expect(() => metrics.log(1, { 'train/loss': 1 })).toThrow(/^cannot write \/dev\/full \(the disk is full\): ENOSPC/);
    } finally {
      metrics.close();
    }
    expect(() => writeFileDurable('/dev/full', 'x'.repeat(1 << 16))).toThrow(/^cannot write \/dev\/full: ENOSPC/);
    const notAFolder = join(root, 'a-file');
    writeFileSync(notAFolder, 'x');
    expect(() => writeFileAtomic(join(notAFolder, 'config.json'), '{}')).toThrow(`cannot create folder ${notAFolder}`);
  });
});
