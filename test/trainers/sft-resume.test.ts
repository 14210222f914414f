import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { arithmeticTokenizer } from '../../src/trainers/from-scratch.ts';
import { readSafetensors } from '../../src/core/safetensors.ts';
import { loadCausalLM } from '../../src/lm/checkpoint.ts';
import { CharTokenizer } from '../../src/lm/char-tokenizer.ts';
import { loadTokenizer } from '../../src/lm/tokenizer.ts';
import { readMetrics } from '../../src/report/metrics.ts';
import { readSftTrainerState, trainSft } from '../../src/trainers/sft.ts';
import { OPTIMIZER_FILE, TRAINER_STATE_FILE } from '../../src/trainers/trainer-state.ts';
import { parseSftConfig, type SftConfig } from '../../src/trainers/sft-config.ts';
import { useCpu } from '../lm/lm-helpers.ts';

let root: string;
beforeAll(async () => {
  await useCpu();
  root = mkdtempSync(join(tmpdir(), 'rlvr-sft-resume-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

function config(outDir: string): SftConfig {
  return parseSftConfig({
    model: { init: { architecture: 'llama', hiddenSize: 16, layers: 1, heads: 2, kvHeads: 1, contextLength: 12 } },
    data: { generate: { trainSize: 40, testSize: 12, digits: [1, 1] } },
    steps: 8,
    batchSize: 6, // 40 examples: batches cross epoch boundaries
    learningRate: 1e-2,
    warmupSteps: 2,
    evalEvery: 4,
    evalSize: 12,
    evalBatchSize: 5,
    saveEvery: 4,
    logEvery: 3, // the log window is open at the step-4 checkpoint
    seed: 7,
    outDir,
  });
}

async function weights(dir: string): Promise<Map<string, Float32Array>> {
  const { model } = await loadCausalLM(dir);
  const out = new Map<string, Float32Array>();
  model.getWeights().forEach((t, name) => out.set(name, t.dataSync() as Float32Array));
  model.dispose();
  return out;
}

/** Metric lines without the wall-clock fields. */
function metricLines(dir: string, afterStep = 0): unknown[] {
  return readMetrics(join(dir, 'metrics.jsonl'))
    .filter((r) => r.step > afterStep)
    .map(({ time: _t, 'throughput/tokens_per_s': tps, ...rest }) => {
      expect(tps === undefined || (typeof tps === 'number' && tps > 0)).toBe(true);
      return rest;
    });
}

describe('trainSft checkpoints and resume', () => {
  it('resuming from the middle reproduces the uninterrupted run', async () => {
    const full = join(root, 'full');
    const tensorsBefore = tf.memory().numTensors;
    const a = await trainSft(config(full), { quiet: true });
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    expect(a.evals.map((e) => e.step)).toEqual([4, 8]);
    expect(a.finalEval).not.toBeNull();
    expect(existsSync(join(full, 'checkpoint-4', TRAINER_STATE_FILE))).toBe(true);
    expect(existsSync(join(full, 'checkpoint-8'))).toBe(false); // the last step goes to final/

    const lines = metricLines(full);
    expect(lines.filter((l) => 'train/loss' in (l as object)).map((l) => (l as { step: number }).step)).toEqual([3, 6, 8]);
    expect(lines.filter((l) => 'eval/accuracy' in (l as object)).map((l) => (l as { step: number }).step)).toEqual([4, 8]);

    // A crash after the step-4 checkpoint: the folder holds later metrics and no final/.
    const crashed = join(root, 'crashed');
    cpSync(full, crashed, { recursive: true });
    rmSync(join(crashed, 'final'), { recursive: true });
    const b = await trainSft(config(crashed), { resumeFrom: join(crashed, 'checkpoint-4'), quiet: true });
    expect(b.evals.map((e) => e.step)).toEqual([8]);
    expect(b.finalEval).toEqual(a.finalEval);
    expect(metricLines(crashed)).toEqual(lines);

    // Resuming into a fresh folder writes only the continuation.
    const fresh = join(root, 'fresh');
    await trainSft(config(fresh), { resumeFrom: join(full, 'checkpoint-4'), quiet: true });
    expect(metricLines(fresh)).toEqual(metricLines(full, 4));

    const wa = await weights(join(full, 'final'));
    for (const dir of [join(crashed, 'final'), join(fresh, 'final')]) {
      const wb = await weights(dir);
      expect([...wb.keys()]).toEqual([...wa.keys()]);
      for (const [name, x] of wa) expect(wb.get(name), name).toEqual(x);
    }
    // The run moved away from the step-4 weights.
    const w4 = await weights(join(full, 'checkpoint-4'));
    expect([...wa].some(([name, x]) => x.some((v, i) => v !== w4.get(name)![i]))).toBe(true);

    const optA = await readSafetensors(join(full, 'final', OPTIMIZER_FILE));
    const optB = await readSafetensors(join(crashed, 'final', OPTIMIZER_FILE));
    expect(optA.metadata['step']).toBe('8');
    expect(optA.tensors.size).toBe(2 * wa.size);
    for (const [name, t] of optA.tensors) expect(optB.tensors.get(name)?.data, name).toEqual(t.data);
  }, 120_000);

  it('writes a Hugging Face folder that loadCausalLM and loadTokenizer read back', async () => {
    const dir = join(root, 'full', 'final');
    const { model, config: modelConfig } = await loadCausalLM(dir);
    expect(modelConfig.model_type).toBe('llama');
    expect(model.dims.maxPositions).toBe(12);
    model.dispose();
    const tok = await loadTokenizer(dir);
    const reference = arithmeticTokenizer();
    expect(tok.vocabSize).toBe(reference.vocabSize);
    expect(tok.encode('12+34=')).toEqual(reference.encode('12+34='));
    expect(tok.eosTokenId).toBe(reference.eosTokenId);
    const state = await readSftTrainerState(dir);
    expect(state.step).toBe(8);
    expect(state.config.steps).toBe(8);
    expect(state.lastEval?.step).toBe(8);
    const hfConfig = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(hfConfig['eos_token_id']).toBe(reference.eosTokenId);
  });

  it('refuses to resume onto different data or a budget already reached', async () => {
    const ckpt = join(root, 'full', 'checkpoint-4');
    const base = config(join(root, 'other'));
    const other = { ...base, data: { ...base.data, generate: { ...base.data.generate!, seed: 1 } } };
    await expect(trainSft(other, { resumeFrom: ckpt, quiet: true })).rejects.toThrow(/training data differs/);
    await expect(trainSft({ ...config(join(root, 'other')), steps: 4 }, { resumeFrom: ckpt, quiet: true })).rejects.toThrow(
      /"steps" \(4\) must be greater than the checkpoint's step \(4\)/,
    );
    await expect(trainSft(config(join(root, 'other')), { resumeFrom: join(root, 'nowhere'), quiet: true })).rejects.toThrow(
      /cannot resume from .*nowhere: trainer_state.json is missing/,
    );
  });
});

describe('trainSft data and model sources', () => {
  it('trains from JSONL files with a character tokenizer built from the data, then continues from the saved folder', async () => {
    const train = join(root, 'train.jsonl');
    writeFileSync(
      train,
      ['ab', 'ba', 'aab', 'bba'].map((w) => JSON.stringify({ prompt: `rev ${w}:`, completion: `<answer>${[...w].reverse().join('')}</answer>` })).join('\n') + '\n',
    );
    const base = {
      data: { trainFile: train },
      steps: 3,
      batchSize: 2,
      warmupSteps: 0,
      learningRate: 1e-2,
      seed: 1,
    };
    const first = parseSftConfig({ ...base, model: { init: { hiddenSize: 16, layers: 1, heads: 2, contextLength: 24 } }, outDir: join(root, 'files') });
    const a = await trainSft(first, { quiet: true });
    expect(a.finalEval).toBeNull(); // no test file: no evaluation
    const tok = await loadTokenizer(a.finalDir);
    expect(tok).toBeInstanceOf(CharTokenizer);
    expect((tok as CharTokenizer).alphabet).toBe(' :aberv'); // code-point order
    expect((tok as CharTokenizer).extraTokens).toEqual(['<answer>', '</answer>']);

    const test = join(root, 'test.jsonl');
    writeFileSync(test, JSON.stringify({ prompt: 'rev ab:', completion: '<answer>ba</answer>', answer: 'ba' }) + '\n');
    const second = parseSftConfig({ ...base, data: { trainFile: train, testFile: test }, model: { modelDir: a.finalDir }, outDir: join(root, 'files-2') });
    const b = await trainSft(second, { quiet: true });
    expect(b.evals.map((e) => e.step)).toEqual([3]);
    expect(b.finalEval!.loss).toBeGreaterThan(0);
    const before = await weights(a.finalDir);
    const after = await weights(b.finalDir);
    expect([...before].some(([name, x]) => x.some((v, i) => v !== after.get(name)![i]))).toBe(true);
  });
});
