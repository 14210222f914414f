/**
 * Training forward + backward: tfjs (wasm) against onnxruntime's training graph
 * (`src/engine/onnx/train-graph.ts`), side by side in one run, next to onnxruntime's
 * MatMul GFLOP/s.
 *
 *   npx tsx scripts/bench-train.ts [--quick] [--threads N]
 *
 * One step = the forward, the per-token log-probs of the labels, and the gradient of
 * sum(dlogprobs * logprobs) with respect to every parameter (no optimizer update: the same
 * work on both engines). Models: 4-layer GPT-2 shapes at d = 128 and d = 256 (vocabulary
 * 256, 4 heads, MLP 4d) on 64 x 32 tokens, as scripts/bench-engine.ts. Effective GFLOP/s
 * = 6 x parameters x tokens / time.
 */
import * as ort from 'onnxruntime-node';
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../src/core/rng.ts';
import { readWeights } from '../src/engine/onnx/causal-lm.ts';
import { GraphBuilder } from '../src/engine/onnx/graph.ts';
import { createSession, defaultThreads } from '../src/engine/onnx/runtime.ts';
import { causalLMTrainGraph } from '../src/engine/onnx/train-graph.ts';
import { describeEngine, initEngine } from '../src/engine/tfjs/backend.ts';
import { tinyGpt2Config } from '../src/lm/config.ts';
import { CausalLM } from '../src/lm/model.ts';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const ti = args.indexOf('--threads');
const THREADS = ti >= 0 ? Number(args[ti + 1]) : defaultThreads();
const B = 64;
const T = 32;
const STEPS = quick ? 2 : 4;

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function timeSteps(f: () => Promise<void> | void): Promise<number> {
  await f(); // warm-up
  const s: number[] = [];
  for (let i = 0; i < STEPS; i++) {
    const t0 = performance.now();
    await f();
    s.push((performance.now() - t0) / 1000);
  }
  return median(s);
}

async function ortMatmul(n: number): Promise<number> {
  const g = new GraphBuilder('mm');
  const b = new Float32Array(n * n).fill(0.01);
  g.op('MatMul', [g.input('a', 'float', [n, n]), g.initializer('b', b, [n, n])], {}, { output: 'c' });
  g.output('c', 'float', [n, n]);
  const s = await createSession(g.serialize().model, null, { threads: THREADS });
  const feeds = { a: new ort.Tensor('float32', new Float32Array(n * n).fill(0.5), [n, n]) };
  const sec = await timeSteps(async () => void (await s.run(feeds)));
  await s.release();
  return (2 * n ** 3) / sec / 1e9;
}

async function main(): Promise<void> {
  const engine = await initEngine({ backend: 'wasm', quiet: true });
  console.log(`tfjs: ${describeEngine(engine)}; onnxruntime-node: ${THREADS} threads; batch ${B} x ${T} tokens`);
  const mm = await ortMatmul(1024);
  console.log(`onnxruntime MatMul n=1024: ${mm.toFixed(1)} GFLOP/s`);
  console.log('');
  console.log('| d | params | tfjs s/step | tfjs GFLOP/s | onnxruntime s/step | onnxruntime GFLOP/s | ort / tfjs | ort / MatMul |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const dModel of [128, 256]) {
    const config = tinyGpt2Config({ vocab_size: 256, n_positions: T, n_embd: dModel, n_layer: 4, n_head: 4 });
    const model = CausalLM.create(config, new Rng(0));
    const rng = new Rng(1);
    const ids = Int32Array.from({ length: B * T }, () => rng.int(256));
    const labels = Int32Array.from({ length: B * T }, () => rng.int(256));
    const dl = new Float32Array(B * T).fill(-1 / (B * T));
    const idsT = tf.tensor2d(ids, [B, T], 'int32');
    const onehot = tf.oneHot(tf.tensor2d(labels, [B, T], 'int32'), 256);
    const dlT = tf.tensor2d(dl, [B, T]);
    const tfStep = (): void => {
      const { value, grads } = tf.variableGrads(
        () => tf.tidy(() => tf.sum(tf.mul(tf.sum(tf.mul(tf.logSoftmax(model.forward(idsT)), onehot), -1), dlT)) as tf.Scalar),
        model.variables,
      );
      value.dataSync();
      tf.dispose([value, ...Object.values(grads)]);
    };
    const tTf = await timeSteps(tfStep);

    const session = await createSession(causalLMTrainGraph(config).model, null, { threads: THREADS });
    const i64 = (a: Int32Array): ort.Tensor => new ort.Tensor('int64', BigInt64Array.from(a, (x) => BigInt(x)), [B, T]);
    const pos = Int32Array.from({ length: B * T }, (_, i) => i % T);
    const feeds: Record<string, ort.Tensor> = {
      input_ids: i64(ids),
      attention_mask: i64(new Int32Array(B * T).fill(1)),
      position_ids: i64(pos),
      labels: i64(labels),
      dlogprobs: new ort.Tensor('float32', dl, [B, T]),
    };
    const w = readWeights(model);
    for (const s of model.parameterSpecs()) feeds[s.name] = new ort.Tensor('float32', w.get(s.name)!, s.shape);
    const tOrt = await timeSteps(async () => void (await session.run(feeds)));
    await session.release();
    const flops = 6 * model.numParameters() * B * T;
    const gTf = flops / tTf / 1e9;
    const gOrt = flops / tOrt / 1e9;
    console.log(
      `| ${dModel} | ${(model.numParameters() / 1e6).toFixed(2)}M | ${tTf.toFixed(3)} | ${gTf.toFixed(1)} | ${tOrt.toFixed(3)} | ${gOrt.toFixed(1)} | ${(gOrt / gTf).toFixed(1)}x | ${((100 * gOrt) / mm).toFixed(0)} % |`,
    );
    tf.dispose([idsT, onehot, dlT]);
    model.dispose();
  }
}

await main();
