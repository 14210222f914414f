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
 * 256, 4 heads, MLP 4d) on 64 x 32 tokens, as scripts/bench-engine.ts, and a randomly
 * initialised Llama shaped like SmolLM2-135M (30 layers, d 576, GQA 9/3, vocabulary 49152,
 * tied) on 4 x 128 tokens. Effective GFLOP/s = 6 x parameters x tokens / time. Also per
 * row: the AdamW step on tfjs (the optimizer both engines use) and the process's peak RSS
 * while each engine ran (one process: the onnxruntime figure includes the tfjs weights
 * both engines train).
 */
import * as ort from 'onnxruntime-node';
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../src/core/rng.ts';
import { readWeights } from '../src/engine/onnx/causal-lm.ts';
import { GraphBuilder } from '../src/engine/onnx/graph.ts';
import { createSession, defaultThreads } from '../src/engine/onnx/runtime.ts';
import { causalLMTrainGraph } from '../src/engine/onnx/train-graph.ts';
import { describeEngine, initEngine } from '../src/engine/tfjs/backend.ts';
import { type CausalLMConfig, tinyGpt2Config } from '../src/lm/config.ts';
import { AdamW } from '../src/engine/tfjs/optim.ts';
import { CausalLM } from '../src/lm/model.ts';
import { smolLM2Shape } from './model-shapes.ts';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const ti = args.indexOf('--threads');
const THREADS = ti >= 0 ? Number(args[ti + 1]) : defaultThreads();
const STEPS = quick ? 2 : 4;

const SHAPES: { label: string; config: CausalLMConfig; B: number; T: number }[] = [
  ...[128, 256].map((d) => ({ label: `gpt2 d=${d}`, config: tinyGpt2Config({ vocab_size: 256, n_positions: 32, n_embd: d, n_layer: 4, n_head: 4 }), B: 64, T: 32 })),
  {
    label: 'SmolLM2-135M shape',
    config: smolLM2Shape(),
    B: 4,
    T: 128,
  },
];

let peakRss = 0;
const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 20);
/** Peak RSS (MiB) while `f` runs. */
async function withPeakRss<R>(f: () => Promise<R>): Promise<[R, number]> {
  peakRss = process.memoryUsage().rss;
  const r = await f();
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
  return [r, peakRss / 2 ** 20];
}

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
  console.log(`tfjs: ${describeEngine(engine)}; onnxruntime-node: ${THREADS} threads; median of ${STEPS} steps after a warm-up`);
  const mm = await ortMatmul(1024);
  console.log(`onnxruntime MatMul n=1024: ${mm.toFixed(1)} GFLOP/s`);
  console.log('');
  console.log('| model | params | tokens | tfjs s/step | tfjs GFLOP/s | tfjs peak RSS | onnxruntime s/step | onnxruntime GFLOP/s | onnxruntime peak RSS | ort / tfjs | ort / MatMul | AdamW s/step |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const { label, config, B, T } of SHAPES) {
    const V = config.vocab_size;
    const model = CausalLM.create(config, new Rng(0));
    const rng = new Rng(1);
    const ids = Int32Array.from({ length: B * T }, () => rng.int(V));
    const labels = Int32Array.from({ length: B * T }, () => rng.int(V));
    const dl = new Float32Array(B * T).fill(-1 / (B * T));
    const idsT = tf.tensor2d(ids, [B, T], 'int32');
    const onehot = tf.oneHot(tf.tensor2d(labels, [B, T], 'int32'), V);
    const dlT = tf.tensor2d(dl, [B, T]);
    const tfStep = (): void => {
      const { value, grads } = tf.variableGrads(
        () => tf.tidy(() => tf.sum(tf.mul(tf.sum(tf.mul(tf.logSoftmax(model.forward(idsT)), onehot), -1), dlT)) as tf.Scalar),
        model.variables,
      );
      value.dataSync();
      tf.dispose([value, ...Object.values(grads)]);
    };
    const [tTf, rssTf] = await withPeakRss(() => timeSteps(tfStep));

    const [tOrt, rssOrt] = await withPeakRss(async () => {
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
    const t = await timeSteps(async () => void (await session.run(feeds)));
    await session.release();
    return t;
    });
    // The AdamW step both engines hand their gradients to (gradients of ones, as a tensor each).
    const optimizer = new AdamW(model.variables, { learningRate: 1e-4, beta1: 0.9, beta2: 0.95, weightDecay: 0.01 });
    const grads: Record<string, tf.Tensor> = Object.fromEntries(model.variables.map((v) => [v.name, tf.onesLike(v)]));
    const tAdam = await timeSteps(() => {
      tf.tidy(() => optimizer.applyGradients(grads, 1e-4));
      model.variables[0]!.dataSync();
    });
    tf.dispose(Object.values(grads));
    optimizer.dispose();
    const flops = 6 * model.numParameters() * B * T;
    const gTf = flops / tTf / 1e9;
    const gOrt = flops / tOrt / 1e9;
    console.log(
      `| ${label} | ${(model.numParameters() / 1e6).toFixed(2)}M | ${B} x ${T} | ${tTf.toFixed(3)} | ${gTf.toFixed(1)} | ${rssTf.toFixed(0)} MiB | ${tOrt.toFixed(3)} | ${gOrt.toFixed(1)} | ${rssOrt.toFixed(0)} MiB | ${(gOrt / gTf).toFixed(1)}x | ${((100 * gOrt) / mm).toFixed(0)} % | ${tAdam.toFixed(3)} |`,
    );
    tf.dispose([idsT, onehot, dlT]);
    model.dispose();
  }
}

await main();
clearInterval(sampler);
