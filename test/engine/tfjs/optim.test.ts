import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { AdamW, clipGradNorm, constantSchedule, warmupCosine, warmupLinear } from '../../../src/engine/tfjs/optim.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Plain float64 AdamW in the PyTorch form, for parity. */
function referenceAdamW(p: number[], grads: number[][], lr: number, b1: number, b2: number, eps: number, wd: number): number[] {
  const m = p.map(() => 0);
  const v = p.map(() => 0);
  let x = [...p];
  grads.forEach((g, i) => {
    const t = i + 1;
    x = x.map((xi, j) => {
      const decayed = xi * (1 - lr * wd);
      m[j] = b1 * m[j]! + (1 - b1) * g[j]!;
      v[j] = b2 * v[j]! + (1 - b2) * g[j]! * g[j]!;
      const mh = m[j]! / (1 - b1 ** t);
      const vh = v[j]! / (1 - b2 ** t);
      return decayed - (lr * mh) / (Math.sqrt(vh) + eps);
    });
  });
  return x;
}

describe('AdamW', () => {
  it('matches a float64 reference over several steps, with decay on matrices only', () => {
    const w = tf.variable(tf.tensor2d([[0.5, -1], [2, 0.1]]), true, 'w');
    const b = tf.variable(tf.tensor1d([0.3, -0.2]), true, 'b');
    const opt = new AdamW([w, b], { learningRate: 0.1, beta1: 0.9, beta2: 0.99, epsilon: 1e-8, weightDecay: 0.05 });
    const gw = [[0.1, -0.2, 0.3, 0.4], [-0.5, 0.2, 0.0, 1.0], [0.3, 0.3, -0.3, 0.1]];
    const gb = [[1, -1], [0.5, 0.25], [-2, 0]];
    for (let i = 0; i < 3; i++) {
      opt.applyGradients({ w: tf.tensor2d(gw[i]!, [2, 2]), b: tf.tensor1d(gb[i]!) });
    }
    const expW = referenceAdamW([0.5, -1, 2, 0.1], gw, 0.1, 0.9, 0.99, 1e-8, 0.05);
    const expB = referenceAdamW([0.3, -0.2], gb, 0.1, 0.9, 0.99, 1e-8, 0);
    Array.from(w.dataSync()).forEach((x, i) => expect(x).toBeCloseTo(expW[i]!, 5));
    Array.from(b.dataSync()).forEach((x, i) => expect(x).toBeCloseTo(expB[i]!, 5));
    expect(opt.step).toBe(3);
  });

  it('resumes exactly from a saved state', () => {
    const make = (name: string) => tf.variable(tf.tensor1d([1, 2, 3]), true, name);
    const gt = (k: number) => tf.tensor1d([k, -k, 0.5 * k]);
    const a = make('pa');
    const optA = new AdamW([a], { learningRate: 0.01 });
    for (let k = 1; k <= 4; k++) optA.applyGradients({ pa: gt(k) });

    const bVar = make('p');
    const optB = new AdamW([bVar], { learningRate: 0.01 });
    optB.applyGradients({ p: gt(1) });
    optB.applyGradients({ p: gt(2) });
    const saved = optB.getState();
    const copies = new Map([...saved.tensors].map(([k, t]) => [k, t.clone()]));
    const pSaved = bVar.clone();
    const c = tf.variable(pSaved, true, 'p2');
    const optC = new AdamW([c], { learningRate: 0.01 });
    // Variable names differ: map the saved moments onto the new name.
    optC.setState({ step: saved.step, tensors: new Map([...copies].map(([k, t]) => [k.replace(/^p\//, 'p2/'), t])) });
    optC.applyGradients({ p2: gt(3) });
    optC.applyGradients({ p2: gt(4) });
    expect(Array.from(c.dataSync())).toEqual(Array.from(a.dataSync()));
  });

  it('rejects invalid options and mismatched state', () => {
    const v = tf.variable(tf.zeros([2]), true, 'z');
    expect(() => new AdamW([v], { learningRate: -1 })).toThrow(/learningRate/);
    expect(() => new AdamW([v], { learningRate: 1, beta1: 1 })).toThrow(/beta1/);
    const opt = new AdamW([v], { learningRate: 1 });
    expect(() => opt.setState({ step: 1, tensors: new Map([['z/m', tf.zeros([3])], ['z/v', tf.zeros([3])]]) })).toThrow(/shape/);
  });

  it('frees all of its memory on dispose', () => {
    const before = tf.memory();
    const init = tf.ones([8, 8]);
    const v = tf.variable(init, true, 'disposable');
    init.dispose();
    const opt = new AdamW([v], { learningRate: 0.1 });
    const g = tf.ones([8, 8]);
    opt.applyGradients({ disposable: g });
    opt.dispose();
    v.dispose();
    g.dispose();
    expect(tf.memory().numTensors).toBe(before.numTensors);
    expect(tf.memory().numBytes).toBe(before.numBytes);
  });

  it('does not leak tensors across updates', () => {
    const v = tf.variable(tf.ones([4, 4]), true, 'leak');
    const opt = new AdamW([v], { learningRate: 0.1, weightDecay: 0.1 });
    const g = tf.ones([4, 4]);
    opt.applyGradients({ leak: g });
    const before = tf.memory().numTensors;
    for (let i = 0; i < 10; i++) opt.applyGradients({ leak: g });
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('clipGradNorm', () => {
  it('scales to the max norm and reports the norm before clipping', () => {
    const { grads, norm } = clipGradNorm({ a: tf.tensor1d([3, 0]), b: tf.tensor1d([0, 4]) }, 1);
    expect(norm).toBeCloseTo(5, 6);
    expect(Array.from(grads.a!.dataSync())[0]).toBeCloseTo(0.6, 5);
    expect(Array.from(grads.b!.dataSync())[1]).toBeCloseTo(0.8, 5);
    const unclipped = clipGradNorm({ a: tf.tensor1d([0.3, 0.4]) }, 1);
    expect(unclipped.norm).toBeCloseTo(0.5, 6);
    expect(Array.from(unclipped.grads.a!.dataSync())).toEqual(Array.from(new Float32Array([0.3, 0.4])));
  });
});

describe('schedules', () => {
  it('warm up linearly then follow cosine / linear decay', () => {
    const cos = warmupCosine(1, 10, 110, 0.1);
    expect(cos(0)).toBeCloseTo(0.1, 9);
    expect(cos(9)).toBeCloseTo(1, 9);
    expect(cos(10)).toBeCloseTo(1, 9);
    expect(cos(60)).toBeCloseTo(0.1 + 0.9 * 0.5, 9);
    expect(cos(110)).toBeCloseTo(0.1, 9);
    const lin = warmupLinear(2, 0, 100);
    expect(lin(50)).toBeCloseTo(1, 9);
    expect(lin(100)).toBeCloseTo(0, 9);
    expect(constantSchedule(0.3, 3)(0)).toBeCloseTo(0.1, 9);
    expect(constantSchedule(0.3, 3)(5)).toBe(0.3);
  });
});
