/**
 * The shared training loop (`runLoop`, run.ts) driven by a fake step function, with no
 * model: when it logs, evaluates and saves; a non-finite loss naming the step and the last
 * good checkpoint; resume; Ctrl-C. And the shared gradient step (`updateStep`, update.ts):
 * the non-finite check leaves the weights alone, a normal step matches a float64 AdamW
 * reference with and without global-norm clipping, and it leaks no tensors.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdamW } from '../../src/engine/tfjs/optim.ts';
import { readMetrics } from '../../src/report/metrics.ts';
import { INTERRUPT_SIGNALS, type RunLoopOptions, type StepRecord, runLoop, signalExitCode } from '../../src/trainers/run.ts';
import { NonFiniteLossError, updateStep } from '../../src/trainers/update.ts';
import { useCpu } from '../lm/lm-helpers.ts';
import { collector } from './output-collector.ts';

let root: string;
beforeAll(async () => {
  await useCpu();
  root = mkdtempSync(join(tmpdir(), 'rlvr-run-loop-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

type Event = ['step', number] | ['eval', number] | ['save', string, number];

/** Loop options with a fake step (its record is { 'train/loss': steps done before it }) that log every event. */
function loopOptions(
  outDir: string,
  config: Partial<RunLoopOptions['config']> & { steps: number; [extra: string]: unknown },
  overrides: Partial<RunLoopOptions> = {},
): { options: RunLoopOptions; events: Event[] } {
  const events: Event[] = [];
  const options: RunLoopOptions = {
    command: 'fake',
    config: { logEvery: 1, evalEvery: 0, saveEvery: 0, report: false, outDir: join(root, outDir), ...config },
    resumed: null,
    engine: 'none',
    modelInfo: { name: 'no model' },
    quiet: true,
    stream: collector(),
    handleSigint: false,
    step: async (done) => {
      events.push(['step', done]);
      return { 'train/loss': done };
    },
    evaluate: async (at) => {
      events.push(['eval', at]);
    },
    evaluateAtStart: true,
    save: async (dir, at) => {
      events.push(['save', dir, at]);
    },
    ...overrides,
  };
  return { options, events };
}

const of = <T extends Event[0]>(events: Event[], kind: T): Array<Extract<Event, [T, ...unknown[]]>> =>
  events.filter((e): e is Extract<Event, [T, ...unknown[]]> => e[0] === kind);

describe('runLoop', () => {
  it('logs every logEvery steps and at the last, evaluates at 0, every evalEvery and after the last, saves every saveEvery and final/', async () => {
    const { options, events } = loopOptions('schedule', { steps: 7, logEvery: 3, evalEvery: 3, saveEvery: 2 });
    const result = await runLoop(options);
    const out = options.config.outDir;
    expect(result).toMatchObject({ step: 7, interrupted: false, lastCheckpoint: join(out, 'final'), reportPath: null });

    const lines = readMetrics(join(out, 'metrics.jsonl'));
    expect(lines.map((l) => [l.step, l['train/loss']])).toEqual([
      [3, 2],
      [6, 5],
      [7, 6],
    ]);
    expect(of(events, 'step').map((e) => e[1])).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(of(events, 'eval').map((e) => e[1])).toEqual([0, 3, 6, 7]);
    expect(of(events, 'save')).toEqual([
      ['save', join(out, 'checkpoint-2'), 2],
      ['save', join(out, 'checkpoint-4'), 4],
      ['save', join(out, 'checkpoint-6'), 6],
      ['save', join(out, 'final'), 7],
    ]);
    // Order within a step: the step, then its evaluation, then its checkpoint.
    expect(events.slice(0, 9)).toEqual([
      ['eval', 0],
      ['step', 0],
      ['step', 1],
      ['save', join(out, 'checkpoint-2'), 2],
      ['step', 2],
      ['eval', 3],
      ['step', 3],
      ['save', join(out, 'checkpoint-4'), 4],
      ['step', 4],
    ]);
  });

  it('on a last step that is also an eval and save step: one evaluation and final/ only', async () => {
    const { options, events } = loopOptions('aligned', { steps: 4, logEvery: 2, evalEvery: 2, saveEvery: 2 });
    await runLoop(options);
    expect(of(events, 'eval').map((e) => e[1])).toEqual([0, 2, 4]);
    expect(of(events, 'save')).toEqual([
      ['save', join(options.config.outDir, 'checkpoint-2'), 2],
      ['save', join(options.config.outDir, 'final'), 4],
    ]);
    expect(readMetrics(join(options.config.outDir, 'metrics.jsonl')).map((l) => l.step)).toEqual([2, 4]);
  });

  it('evalEvery 0 evaluates only at the start and the end; evaluateAtStart false and evaluate null skip those; logRecord shapes the line', async () => {
    const a = loopOptions('eval-ends', { steps: 3 });
    await runLoop(a.options);
    expect(of(a.events, 'eval').map((e) => e[1])).toEqual([0, 3]);

    const b = loopOptions('no-start', { steps: 3 }, { evaluateAtStart: false, logRecord: (r: StepRecord) => ({ doubled: 2 * r['train/loss']! }) });
    await runLoop(b.options);
    expect(of(b.events, 'eval').map((e) => e[1])).toEqual([3]);
    expect(readMetrics(join(b.options.config.outDir, 'metrics.jsonl')).map((l) => [l.step, l['doubled'], l['train/loss']])).toEqual([
      [1, 0, undefined],
      [2, 2, undefined],
      [3, 4, undefined],
    ]);

    const c = loopOptions('no-eval', { steps: 2 }, { evaluate: null });
    await runLoop(c.options);
    expect(of(c.events, 'eval')).toEqual([]);
  });

  it('a NonFiniteLossError at step N stops the run naming step N and the last good checkpoint, saving nothing more', async () => {
    const { options, events } = loopOptions('nan', { steps: 10, saveEvery: 2 });
    const inner = options.step;
    options.step = async (done, out) => {
      if (done === 4) throw new NonFiniteLossError('the loss is NaN and the gradient norm NaN', { loss: NaN, gradNorm: NaN });
      return inner(done, out);
    };
    const out = options.config.outDir;
    const error = await runLoop(options).catch((e: unknown) => e as Error);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toBe(
      `training stopped at step 5: the loss is NaN and the gradient norm NaN, so this update was not applied; the last good checkpoint is ${join(out, 'checkpoint-4')}. ` +
        "Lower the learning rate, check the rewards' scale, or set gradClip.",
    );
    expect(of(events, 'save').map((e) => e[2])).toEqual([2, 4]);
    expect(of(events, 'eval').map((e) => e[1])).toEqual([0]);
    expect(readMetrics(join(out, 'metrics.jsonl')).map((l) => l.step)).toEqual([1, 2, 3, 4]);
  });

  it('before any checkpoint the error says so; on resume the last good one is the resumed folder; other errors pass through unchanged', async () => {
    const nan = async (): Promise<StepRecord> => {
      throw new NonFiniteLossError('the loss is Infinity and the gradient norm Infinity', { loss: Infinity, gradNorm: Infinity });
    };
    const fresh = loopOptions('nan-fresh', { steps: 3 }, { step: nan });
    await expect(runLoop(fresh.options)).rejects.toThrow(/^training stopped at step 1: the loss is Infinity .*; no checkpoint had been written yet\./);

    const resumedDir = join(root, 'elsewhere', 'checkpoint-6');
    const resumed = loopOptions('nan-resumed', { steps: 9 }, { step: nan, resumed: { dir: resumedDir, step: 6, config: {} } });
    await expect(runLoop(resumed.options)).rejects.toThrow(`training stopped at step 7: the loss is Infinity and the gradient norm Infinity, so this update was not applied; the last good checkpoint is ${resumedDir}.`);

    const boom = new RangeError('not a loss problem');
    const other = loopOptions('other-error', { steps: 3 }, {
      step: async () => {
        throw boom;
      },
    });
    await expect(runLoop(other.options)).rejects.toBe(boom);
  });

  it('resume starts at the checkpoint step, does not evaluate at start, and prints the changed config fields', async () => {
    const stream = collector();
    const before = { steps: 4, logEvery: 1, evalEvery: 0, saveEvery: 0, report: false, outDir: join(root, 'moved-from'), a: 1, nested: { b: 'x', c: 3 } };
    const { options, events } = loopOptions('resume', { steps: 6, a: 2, nested: { b: 'y', c: 3 } }, {
      resumed: { dir: join(root, 'old', 'checkpoint-4'), step: 4, config: before },
      quiet: false,
      stream,
    });
    const result = await runLoop(options);
    expect(result.step).toBe(6);
    expect(of(events, 'step').map((e) => e[1])).toEqual([4, 5]);
    expect(of(events, 'eval').map((e) => e[1])).toEqual([6]);
    expect(readMetrics(join(options.config.outDir, 'metrics.jsonl')).map((l) => l.step)).toEqual([5, 6]);
    const text = stream.text();
    expect(text).toContain(`rlvr fake (resumed at step 4 from ${join(root, 'old', 'checkpoint-4')})`);
    expect(text).toContain('changed since the checkpoint: steps: 4 -> 6; a: 1 -> 2; nested.b: "x" -> "y"\n');
    expect(text).not.toContain('outDir:'); // a moved run folder is not a change
  });

  it('Ctrl-C during a step finishes that step, saves checkpoint-<step> and returns interrupted', async () => {
    const listeners = process.listenerCount('SIGINT');
    const stream = collector();
    const { options, events } = loopOptions('sigint', { steps: 10, saveEvery: 4 }, { handleSigint: true, quiet: false, stream });
    const inner = options.step;
    options.step = async (done, out) => {
      const record = await inner(done, out);
      if (done === 2) process.emit('SIGINT');
      return record;
    };
    const out = options.config.outDir;
    const result = await runLoop(options);
    expect(result).toMatchObject({ step: 3, interrupted: true, signal: 'SIGINT', lastCheckpoint: join(out, 'checkpoint-3') });
    expect(of(events, 'step').map((e) => e[1])).toEqual([0, 1, 2]);
    expect(of(events, 'save')).toEqual([['save', join(out, 'checkpoint-3'), 3]]);
    expect(readMetrics(join(out, 'metrics.jsonl')).map((l) => l.step)).toEqual([1, 2, 3]);
    expect(stream.text()).toContain('Ctrl-C: finishing this step, then saving a checkpoint');
    expect(stream.text()).toContain(`interrupted at step 3: saved ${join(out, 'checkpoint-3')}; continue with --resume`);
    expect(process.listenerCount('SIGINT')).toBe(listeners); // the handler is removed
  });

  it.each(['SIGTERM', 'SIGHUP'] as const)('%s is handled like Ctrl-C: the step finishes, a checkpoint is saved, the result names the signal', async (signal) => {
    const counts = () => ['SIGINT', 'SIGTERM', 'SIGHUP'].map((s) => process.listenerCount(s));
    const listeners = counts();
    const stream = collector();
    const { options, events } = loopOptions(`signal-${signal}`, { steps: 10 }, { handleSigint: true, quiet: false, stream });
    const inner = options.step;
    options.step = async (done, out) => {
      const record = await inner(done, out);
      if (done === 1) process.emit(signal);
      return record;
    };
    const out = options.config.outDir;
    const result = await runLoop(options);
    expect(result).toMatchObject({ step: 2, interrupted: true, signal, lastCheckpoint: join(out, 'checkpoint-2') });
    expect(of(events, 'save')).toEqual([['save', join(out, 'checkpoint-2'), 2]]);
    expect(stream.text()).toContain(`${signal}: finishing this step, then saving a checkpoint (a second signal quits at once)`);
    expect(counts()).toEqual(listeners); // every handler is removed
  });

  it('the exit status of each interrupting signal is 128 + its number; a run that was not interrupted has no signal', async () => {
    expect(INTERRUPT_SIGNALS.map((s) => [s, signalExitCode(s)])).toEqual([
      ['SIGINT', 130],
      ['SIGTERM', 143],
      ['SIGHUP', 129],
    ]);
    const { options } = loopOptions('no-signal', { steps: 2 });
    expect((await runLoop(options)).signal).toBeNull();
  });

  it('Ctrl-C during the last step saves final/ only and does not suggest resuming a complete run', async () => {
    const stream = collector();
    const { options, events } = loopOptions('sigint-last', { steps: 3 }, { handleSigint: true, quiet: false, stream });
    const inner = options.step;
    options.step = async (done, out) => {
      if (done === 2) process.emit('SIGINT');
      return inner(done, out);
    };
    const out = options.config.outDir;
    const result = await runLoop(options);
    expect(result).toMatchObject({ step: 3, interrupted: true, lastCheckpoint: join(out, 'final') });
    expect(of(events, 'save')).toEqual([['save', join(out, 'final'), 3]]);
    expect(stream.text()).toContain(`interrupted on the last step: the run is complete, saved ${join(out, 'final')}`);
    expect(stream.text()).not.toContain('--resume');
  });
});

// ---------------------------------------------------------------------------------------

/** Values of variables, copied out. */
const snapshot = (vars: tf.Variable[]): number[][] => vars.map((v) => [...(v.dataSync() as Float32Array)]);

/**
 * AdamW in float64 (no weight decay) on a sequence of gradients of one parameter vector,
 * with torch-style global-norm clipping (scale = clip / (norm + 1e-6) when norm > clip; 0 = off).
 */
function adamReference(w0: number[], grads: number[][], options: { lr: number; clip: number; beta1?: number; beta2?: number; eps?: number }): number[] {
  const b1 = options.beta1 ?? 0.9;
  const b2 = options.beta2 ?? 0.999;
  const eps = options.eps ?? 1e-8;
  const w = [...w0];
  const m = w.map(() => 0);
  const v = w.map(() => 0);
  grads.forEach((raw, i) => {
    const norm = Math.sqrt(raw.reduce((a, g) => a + g * g, 0));
    const scale = options.clip > 0 && norm > options.clip ? options.clip / (norm + 1e-6) : 1;
    const t = i + 1;
    raw.forEach((gRaw, j) => {
      const g = gRaw * scale;
      m[j] = b1 * m[j]! + (1 - b1) * g;
      v[j] = b2 * v[j]! + (1 - b2) * g * g;
      w[j] = w[j]! - (options.lr * (m[j]! / (1 - b1 ** t))) / (Math.sqrt(v[j]! / (1 - b2 ** t)) + eps);
    });
  });
  return w;
}

/** The linear loss sum(a * w): its gradient is exactly `a`. */
const linear = (w: tf.Variable, a: number[]) => (): { loss: tf.Scalar; metrics: { tag: string } } => ({ loss: tf.sum(tf.mul(w, tf.tensor1d(a))), metrics: { tag: 'linear' } });

describe('updateStep', () => {
  it('a NaN loss throws NonFiniteLossError and leaves the variables and the optimizer untouched', () => {
    const w = tf.variable(tf.tensor1d([1, -2, 3]));
    const b = tf.variable(tf.tensor1d([0.5]));
    const optimizer = new AdamW([w, b], { learningRate: 0.1 });
    const before = snapshot([w, b]);
    const nanLoss = (): { loss: tf.Scalar; metrics: null } => ({ loss: tf.mul(tf.sum(tf.add(w, b)), NaN) as tf.Scalar, metrics: null });
    let error: unknown;
    try {
      updateStep([w, b], optimizer, nanLoss, { learningRate: 0.1, gradClip: 1 });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(NonFiniteLossError);
    expect((error as NonFiniteLossError).metrics.loss).toBeNaN();
    expect((error as NonFiniteLossError).message).toMatch(/^the loss is NaN and the gradient norm NaN$/);
    expect(snapshot([w, b])).toEqual(before);
    expect(optimizer.step).toBe(0);
    optimizer.dispose();
    tf.dispose([w, b]);
  });

  it('a finite loss with an infinite gradient is refused too', () => {
    const w = tf.variable(tf.tensor1d([0, 4]));
    const optimizer = new AdamW([w], { learningRate: 0.1 });
    // sqrt at 0: the loss is finite (2), the gradient there is infinite.
    const sqrtLoss = (): { loss: tf.Scalar; metrics: null } => ({ loss: tf.sum(tf.sqrt(w)), metrics: null });
    expect(() => updateStep([w], optimizer, sqrtLoss, { learningRate: 0.1, gradClip: 0 })).toThrow(new NonFiniteLossError('the loss is 2 and the gradient norm Infinity', { loss: 2, gradNorm: Infinity }));
    expect(snapshot([w])).toEqual([[0, 4]]);
    optimizer.dispose();
    w.dispose();
  });

  it('a normal step applies AdamW: it matches a float64 reference and returns the loss before the update, the gradient norm and the metrics', () => {
    const w0 = [1, -2, 3];
    const w = tf.variable(tf.tensor1d(w0));
    const optimizer = new AdamW([w], { learningRate: 0.05 });
    const a = [3, 0, -4];
    const out = updateStep([w], optimizer, linear(w, a), { learningRate: 0.05, gradClip: 0 });
    expect(out.loss).toBeCloseTo(3 * 1 + -4 * 3, 5);
    expect(out.gradNorm).toBeCloseTo(5, 5);
    expect(out.metrics).toEqual({ tag: 'linear' });
    const after = snapshot([w])[0]!;
    const expected = adamReference(w0, [a], { lr: 0.05, clip: 0 });
    after.forEach((x, j) => expect(x).toBeCloseTo(expected[j]!, 6));
    expect(after[0]).not.toBeCloseTo(w0[0]!, 2); // it moved (by about the learning rate)
    expect(after[1]).toBe(w0[1]); // zero gradient: Adam leaves it
    optimizer.dispose();
    w.dispose();
  });

  it('gradient clipping caps the applied update: a 100x gradient after a unit one moves the weights as much as a unit one would', () => {
    const w0 = [0.5, -0.5];
    const grads = [
      [0.6, 0.8], // norm 1
      [60, 80], // norm 100
    ];
    const run = (clip: number): number[] => {
      const w = tf.variable(tf.tensor1d(w0));
      const optimizer = new AdamW([w], { learningRate: 0.01 });
      const norms = grads.map((a) => updateStep([w], optimizer, linear(w, a), { learningRate: 0.01, gradClip: clip }).gradNorm);
      expect(norms[0]).toBeCloseTo(1, 5); // the norm before clipping is reported
      expect(norms[1]).toBeCloseTo(100, 3);
      const out = snapshot([w])[0]!;
      optimizer.dispose();
      w.dispose();
      return out;
    };
    const unclipped = run(0);
    const clipped = run(1);
    const refUnclipped = adamReference(w0, grads, { lr: 0.01, clip: 0 });
    const refClipped = adamReference(w0, grads, { lr: 0.01, clip: 1 });
    unclipped.forEach((x, j) => expect(x).toBeCloseTo(refUnclipped[j]!, 6));
    clipped.forEach((x, j) => expect(x).toBeCloseTo(refClipped[j]!, 6));
    // The two differ by far more than the tolerance: the big gradient's second moment
    // dominates Adam's denominator only without clipping.
    const step2 = (w: number[]): number => Math.hypot(w[0]! - w0[0]!, w[1]! - w0[1]!);
    expect(step2(clipped)).toBeGreaterThan(step2(unclipped) + 1e-3);
    // With clip 1, both steps see the same unit gradient: each moves by the learning rate.
    expect(step2(clipped)).toBeCloseTo(2 * 0.01 * Math.SQRT2, 4);
  });

  it('a tiny clip shrinks even the first update (the clipped gradient is below Adam epsilon)', () => {
    const delta = (clip: number): number => {
      const w = tf.variable(tf.tensor1d([1, 1]));
      const optimizer = new AdamW([w], { learningRate: 0.1, epsilon: 1e-8 });
      updateStep([w], optimizer, linear(w, [3, 4]), { learningRate: 0.1, gradClip: clip });
      const [x, y] = snapshot([w])[0]!;
      optimizer.dispose();
      w.dispose();
      return Math.hypot(x! - 1, y! - 1);
    };
    const full = delta(0);
    const tiny = delta(1e-10);
    expect(full).toBeCloseTo(0.1 * Math.SQRT2, 5);
    const expected = Math.hypot(...adamReference([1, 1], [[3, 4]], { lr: 0.1, clip: 1e-10 }).map((x) => x - 1));
    expect(tiny).toBeCloseTo(expected, 6);
    expect(tiny).toBeLessThan(full / 50);
  });

  it('leaks zero tensors over updates and refused updates (optimizer moments created beforehand)', () => {
    const w = tf.variable(tf.randomNormal([4, 3], 0, 1, 'float32', 1));
    const b = tf.variable(tf.zeros([3]));
    const optimizer = new AdamW([w, b], { learningRate: 1e-2, weightDecay: 0.1 });
    const x = tf.randomNormal([5, 4], 0, 1, 'float32', 2);
    const objective = (): { loss: tf.Scalar; metrics: { mean: number } } => {
      const y = tf.add(tf.matMul(x, w), b);
      const loss = tf.mean(tf.square(tf.sub(y, 1))) as tf.Scalar;
      return { loss, metrics: { mean: tf.mean(y).dataSync()[0]! } };
    };
    updateStep([w, b], optimizer, objective, { learningRate: 1e-2, gradClip: 1 }); // creates the moments
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) updateStep([w, b], optimizer, objective, { learningRate: 1e-2, gradClip: i === 1 ? 0 : 0.5 });
    expect(() => updateStep([w, b], optimizer, () => ({ loss: tf.mul(objective().loss, NaN) as tf.Scalar, metrics: null }), { learningRate: 1e-2, gradClip: 1 })).toThrow(NonFiniteLossError);
    expect(tf.memory().numTensors).toBe(before);
    expect(optimizer.step).toBe(4);
    // Disposing the optimizer frees its moments too: nothing of the test is left but w, b, x.
    optimizer.dispose();
    expect(tf.memory().numTensors).toBe(before - 2 * 2);
    tf.dispose([w, b, x]);
  });
});
