/**
 * A fresh run never writes over an earlier one: a run folder that holds a run (logs, report,
 * checkpoints, `final/`, a killed save's temporary folder) is refused with an error naming
 * --resume, --out and --overwrite, before any model work; `overwrite` removes that run's
 * files and nothing else; resuming a run in its own folder is allowed.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/core/config.ts';
import { parseSftConfig } from '../../src/trainers/sft-config.ts';
import { trainSft } from '../../src/trainers/sft.ts';
import { checkRunFolder, existingRunFiles, prepareRunFolder } from '../../src/trainers/trainer-state.ts';
import { useCpu } from '../lm/lm-helpers.ts';

let root: string;
beforeAll(async () => {
  await useCpu();
  root = mkdtempSync(join(tmpdir(), 'rlvr-run-folder-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A folder with an earlier run's files plus a file of the user's. */
function earlierRun(name: string): string {
  const dir = join(root, name);
  mkdirSync(join(dir, 'checkpoint-5'), { recursive: true });
  mkdirSync(join(dir, 'final'), { recursive: true });
  mkdirSync(join(dir, '.checkpoint-10.saving-123-4-0'), { recursive: true });
  for (const f of ['metrics.jsonl', 'samples.jsonl', 'config.json', 'report.html', 'notes.txt']) writeFileSync(join(dir, f), f);
  return dir;
}

describe('run folders', () => {
  it('a new or unrelated folder is accepted as it is', () => {
    expect(existingRunFiles(join(root, 'does-not-exist'))).toEqual([]);
    const dir = join(root, 'unrelated');
    mkdirSync(dir);
    writeFileSync(join(dir, 'notes.txt'), 'mine');
    expect(() => checkRunFolder(dir, false)).not.toThrow();
    prepareRunFolder(dir, false);
    expect(readFileSync(join(dir, 'notes.txt'), 'utf8')).toBe('mine');
  });

  it('a folder holding a run is refused, naming every file and the three ways out', () => {
    const dir = earlierRun('refused');
    expect(existingRunFiles(dir)).toEqual(['.checkpoint-10.saving-123-4-0', 'checkpoint-5', 'config.json', 'final', 'metrics.jsonl', 'report.html', 'samples.jsonl']);
    const err = (() => {
      try {
        prepareRunFolder(dir, false);
      } catch (e) {
        return e;
      }
      return null;
    })();
    expect(err).toBeInstanceOf(ConfigError);
    const message = (err as Error).message;
    for (const word of ['already holds a run', '--resume', '--out', '--overwrite', 'metrics.jsonl', 'checkpoint-5', 'final']) expect(message).toContain(word);
    expect(readFileSync(join(dir, 'metrics.jsonl'), 'utf8')).toBe('metrics.jsonl'); // nothing touched
  });

  it('overwrite removes the earlier run and only it', () => {
    const dir = earlierRun('overwritten');
    prepareRunFolder(dir, true);
    expect(existingRunFiles(dir)).toEqual([]);
    expect(readFileSync(join(dir, 'notes.txt'), 'utf8')).toBe('notes.txt');
  });

  it('trainSft refuses to start a second run in the same folder, resumes in it, and overwrites when told', async () => {
    const outDir = join(root, 'sft');
    const config = parseSftConfig({
      model: { init: { hiddenSize: 16, layers: 1, heads: 2, contextLength: 12 } },
      data: { generate: { trainSize: 20, testSize: 4, digits: [1, 1] } },
      steps: 2,
      warmupSteps: 0,
      batchSize: 4,
      evalEvery: 0,
      evalSize: 4,
      saveEvery: 1,
      outDir,
    });
    await trainSft(config, { quiet: true });
    const metrics = readFileSync(join(outDir, 'metrics.jsonl'), 'utf8');
    await expect(trainSft(config, { quiet: true })).rejects.toThrow(/already holds a run .*--resume/);
    expect(readFileSync(join(outDir, 'metrics.jsonl'), 'utf8')).toBe(metrics); // the first run's logs are intact
    const logged = (): number[] => readFileSync(join(outDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { step: number }).step);
    const resumed = await trainSft({ ...config, steps: 3 }, { quiet: true, resumeFrom: join(outDir, 'final') });
    expect(resumed.step).toBe(3);
    expect(logged()).toContain(3);
    const fresh = await trainSft(config, { quiet: true, overwrite: true });
    expect(fresh.step).toBe(2);
    expect(existsSync(join(outDir, 'checkpoint-1'))).toBe(true);
    // The replaced run's lines are gone: the new log stops at step 2 (the resumed run had reached 3).
    expect(Math.max(...logged())).toBe(2);
  });
});
