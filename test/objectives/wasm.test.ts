/**
 * The objectives on the wasm backend (the default outside tfjs-node), where the gradient of
 * tf.gather is missing and tf.oneHot(..., 'float32') misbehaves: values and gradients must
 * match the same float64 references as on the cpu backend.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.ts';
import { categoricalEntropy } from '../../src/objectives/entropy.ts';
import { grpoLoss } from '../../src/objectives/grpo-loss.ts';
import { tokenLogprobs } from '../../src/objectives/logprobs.ts';
import { expectClose, logSumExp64, normals } from './helpers.ts';

beforeAll(async () => {
  expect(await tf.setBackend('wasm')).toBe(true);
});

describe('objectives on the wasm backend', () => {
  const rng = new Rng(77);
  const [M, V] = [6, 9];
  const z = normals(rng, M * V, 0, 4);
  z[0] = 1e4; // one row with huge logits
  z[1] = 1e4 - 2;
  const ids = Int32Array.from({ length: M }, () => rng.int(V));
  ids[0] = 1;

  it('tokenLogprobs and its gradient match float64 references', () => {
    expect(tf.getBackend()).toBe('wasm');
    const zt = tf.tensor2d(z, [M, V]);
    const idt = tf.tensor1d(ids, 'int32');
    const before = tf.memory().numTensors;
    const out = tokenLogprobs(zt, idt);
    const g = tf.grad((x: tf.Tensor) => tf.sum(tokenLogprobs(x, idt)))(zt);
    const expV: number[] = [];
    const expG: number[] = [];
    for (let m = 0; m < M; m++) {
      const row = Array.from(z.slice(m * V, m * V + V));
      const lse = logSumExp64(row);
      expV.push(row[ids[m]!]! - lse);
      for (let v = 0; v < V; v++) expG.push((v === ids[m] ? 1 : 0) - Math.exp(row[v]! - lse));
    }
    expectClose(out.dataSync(), expV, 1e-4, 1e-5);
    expectClose(g.dataSync(), expG, 1e-6, 1e-5);
    tf.dispose([out, g]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('categoricalEntropy is finite for huge logits', () => {
    expectClose(categoricalEntropy(tf.tensor2d([[1e4, 1e4, 0]])).dataSync(), [Math.log(2)], 1e-6);
  });

  it('grpoLoss trains through tf.variableGrads: one SGD step lowers the loss', () => {
    const logits = tf.variable(tf.tensor3d(z.slice(V).map((x) => x / 4), [1, 5, V]));
    const idt = tf.tensor2d(ids.slice(1), [1, 5], 'int32');
    const old = tokenLogprobs(logits, idt);
    const inputs = { oldLogprobs: old, advantages: tf.tensor1d([1]), mask: tf.tensor2d([[1, 1, 1, 1, 0]]) };
    const config = { epsilon: 0.2, epsilonHigh: 0.2, beta: 0, lossType: 'grpo' as const, maxCompletionLength: 5 };
    const loss = () => grpoLoss({ ...inputs, logprobs: tokenLogprobs(logits, idt) }, config);
    const first = tf.variableGrads(() => loss().loss);
    const l0 = first.value.dataSync()[0]!;
    expect(l0).toBeCloseTo(-1, 5); // ratio 1, A = 1
    const g = first.grads[logits.name]!;
    logits.assign(tf.sub(logits, tf.mul(0.5, g)));
    const after = loss();
    expect(after.loss.dataSync()[0]!).toBeLessThan(l0);
    expect(after.metrics.meanRatio).toBeGreaterThan(1);
  });
});
