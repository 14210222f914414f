/**
 * SFT's gradients on onnxruntime against tfjs: the same run from the same seed on both
 * engines gives losses within 1 % at every one of 50 steps; the run header names the
 * training engine; a run stopped on one engine resumes on the other.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readMetrics } from '../../src/report/metrics.ts';
import { trainSft } from '../../src/trainers/sft.ts';
import { parseSftConfig } from '../../src/trainers/sft-config.ts';
import { useCpu } from '../lm/lm-helpers.ts';

let dir: string;
beforeAll(async () => {
  await useCpu();
  dir = mkdtempSync(join(tmpdir(), 'rlvr-sft-engines-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const config = (engine: string, out: string, steps = 50) =>
  parseSftConfig({
    model: { init: { architecture: 'gpt2', hiddenSize: 16, layers: 2, heads: 2, contextLength: 12 } },
    data: { generate: { task: 'arithmetic', trainSize: 80, testSize: 16, digits: [1, 1], operations: ['+'], format: 'plain', seed: 0 } },
    steps,
    batchSize: 8,
    learningRate: 3e-3,
    warmupSteps: 5,
    evalEvery: 0,
    logEvery: 1,
    saveEvery: 5,
    engine,
    outDir: join(dir, out),
  });

function capture(): { stream: Writable; text: () => string } {
  let out = '';
  return { stream: new Writable({ write: (c, _e, cb) => ((out += String(c)), cb()) }), text: () => out };
}

describe('SFT on onnxruntime', () => {
  it('50 steps: losses within 1 % of tfjs at every step', async () => {
    const losses: Record<string, number[]> = {};
    for (const engine of ['tfjs', 'onnxruntime']) {
      const out = capture();
      const r = await trainSft(config(engine, `run-${engine}`), { stream: out.stream, handleSigint: false });
      expect(out.text()).toContain(engine === 'tfjs' ? 'training: tfjs' : 'training: onnxruntime forward + backward');
      losses[engine] = readMetrics(join(r.outDir, 'metrics.jsonl'))
        .filter((m) => typeof m['train/loss'] === 'number')
        .map((m) => m['train/loss'] as number);
    }
    expect(losses['tfjs']!.length).toBe(50);
    losses['tfjs']!.forEach((l, i) => expect(Math.abs(losses['onnxruntime']![i]! - l) / l, `step ${i + 1}`).toBeLessThan(0.01));
    expect(losses['tfjs']![49]!).toBeLessThan(losses['tfjs']![0]! * 0.8); // it learned
  });

  it('a run checkpointed on tfjs resumes on onnxruntime and ends within 1 % of the tfjs run', async () => {
    const full = await trainSft(config('tfjs', 'full', 10), { quiet: true, handleSigint: false });
    const resumed = await trainSft(config('onnxruntime', 'resumed-ort', 10), { quiet: true, handleSigint: false, resumeFrom: join(full.outDir, 'checkpoint-5') });
    const last = (d: string): number => readMetrics(join(d, 'metrics.jsonl')).filter((m) => typeof m['train/loss'] === 'number').at(-1)!['train/loss'] as number;
    expect(resumed.step).toBe(10);
    expect(Math.abs(last(resumed.outDir) - last(full.outDir)) / last(full.outDir)).toBeLessThan(0.01);
  });
});
