/**
 * The onnxruntime training graph against tfjs autodiff (the reference): per-token
 * log-probs of given labels, and the gradient of sum(dlogprobs * logprobs) with respect to
 * every parameter, for every architecture, with left padding, grouped-query attention,
 * untied heads, biases, q/k norms and a temperature. Relative error = |g_ort - g_tfjs| / |g_tfjs|.
 */
import * as ort from 'onnxruntime-node';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../../src/core/rng.ts';
import { positionsOf, readWeights } from '../../../src/engine/onnx/causal-lm.ts';
import { causalLMTrainGraph, gradName } from '../../../src/engine/onnx/train-graph.ts';
import { CausalLM } from '../../../src/lm/model.ts';
import { TINY_CONFIGS, relativeError, useCpu } from '../../lm/lm-helpers.ts';

beforeAll(useCpu);

describe.each(TINY_CONFIGS.flatMap(([label, config]) => [[label, config, 1] as const, [label, config, 0.7] as const]))('training graph, %s, temperature %s', (_label, config, temperature) => {
  it('log-probs match tfjs to 1e-5 and every parameter gradient to 1e-4 relative', async () => {
    const model = CausalLM.create(config, new Rng(2));
    const B = 3;
    const T = 7;
    const V = model.dims.vocabSize;
    const rng = new Rng(4);
    const ids = Int32Array.from({ length: B * T }, () => 1 + rng.int(V - 1));
    const pads = [2, 0, 4]; // left padding per row
    const mask = Int32Array.from({ length: B * T }, (_, i) => (i % T < pads[Math.floor(i / T)]! ? 0 : 1));
    const labels = Int32Array.from({ length: B * T }, () => rng.int(V));
    const dl = new Float32Array(B * T);
    rng.fillNormal(dl, 0, 1);
    for (let i = 0; i < B * T; i++) if (!mask[i]) dl[i] = 0;
    const pos = positionsOf(mask, B, T);
    const refLp = tf.tidy(() => {
      const logits = model.forward(tf.tensor2d(ids, [B, T], 'int32'), { attentionMask: tf.tensor2d(mask, [B, T], 'int32') });
      return tf.sum(tf.mul(tf.logSoftmax(tf.div(logits, temperature)), tf.oneHot(tf.tensor2d(labels, [B, T], 'int32'), V)), -1);
    });
    const { grads } = tf.variableGrads(() => tf.sum(tf.mul(tf.tidy(() => {
      const logits = model.forward(tf.tensor2d(ids, [B, T], 'int32'), { attentionMask: tf.tensor2d(mask, [B, T], 'int32') });
      return tf.sum(tf.mul(tf.logSoftmax(tf.div(logits, temperature)), tf.oneHot(tf.tensor2d(labels, [B, T], 'int32'), V)), -1);
    }), tf.tensor2d(dl, [B, T]))) as tf.Scalar, model.variables);

    const session = await ort.InferenceSession.create(causalLMTrainGraph(model.config, { temperature }).model);
    const i64 = (a: Int32Array): ort.Tensor => new ort.Tensor('int64', BigInt64Array.from(a, (x) => BigInt(x)), [B, T]);
    const feeds: Record<string, ort.Tensor> = { input_ids: i64(ids), attention_mask: i64(mask), position_ids: i64(pos), labels: i64(labels), dlogprobs: new ort.Tensor('float32', dl, [B, T]) };
    const w = readWeights(model);
    for (const s of model.parameterSpecs()) feeds[s.name] = new ort.Tensor('float32', w.get(s.name)!, s.shape);
    const out = await session.run(feeds);
    await session.release();

    const lp = out['logprobs']!.data as Float32Array;
    const ref = refLp.dataSync();
    let worstLp = 0;
    for (let i = 0; i < B * T; i++) if (mask[i]) worstLp = Math.max(worstLp, Math.abs(lp[i]! - ref[i]!));
    expect(worstLp).toBeLessThan(1e-5);
    const rel: Record<string, number> = {};
    model.variableNames.forEach((name, i) => {
      const r = grads[model.variables[i]!.name]!.dataSync();
      const g = out[gradName(name)]!.data as Float32Array;
      rel[name] = relativeError(g, r);
      expect(rel[name], `${name} has a non-zero reference gradient`).not.toBeNaN();
    });
    const worst = Object.entries(rel).sort((a, b) => b[1] - a[1])[0]!;
    expect(worst[1], `worst: ${worst[0]}`).toBeLessThan(1e-4);
    expect(Object.keys(rel).length).toBe(model.variables.length);
    tf.dispose([refLp, ...Object.values(grads)]);
    model.dispose();
  });
});
