/**
 * Engine benchmark: what each tfjs backend delivers on this machine.
 *
 *   npx tsx scripts/bench-engine.ts [--quick]        (also: npm run bench)
 *
 * 1. Square fp32 matmul GFLOP/s (2 n^3 flops) at n = 256, 512, 1024 on every backend that
 *    loads (cpu, wasm, and tensorflow / tensorflow-gpu when @tensorflow/tfjs-node(-gpu) is
 *    installed). On wasm also the transposed products (a b^T, a^T b), with and without
 *    the kernel fixes of src/engine/tfjs/kernels/.
 * 2. Training throughput of a 4-layer GPT-2-style causal LM (src/lm/model.ts, vocabulary
 *    256, 4 heads, MLP 4d, tied embeddings) at d = 128 and d = 256 on a batch of 64 x 32
 *    tokens: one full forward + backward + plain SGD update per step. Effective GFLOP/s is
 *    6 x params x tokens / time (all parameters, embeddings included); the "per CPU-s"
 *    column divides by this process's CPU time instead, which is what the kernels deliver
 *    when other processes share the cores. Skipped on cpu, where one step takes many seconds.
 *
 * Figures are noisy on shared machines; compare runs taken back to back.
 */
import * as tf from '@tensorflow/tfjs';
import { describeEngine, initEngine, type EngineBackend } from '../src/engine/tfjs/backend.ts';
import { Rng } from '../src/core/rng.ts';
import { randomNormal } from '../src/engine/tfjs/tensor.ts';
import { applyWasmFixes, removeWasmFixes } from '../src/engine/tfjs/kernels/index.ts';
import { tinyGpt2Config } from '../src/lm/config.ts';
import { CausalLM } from '../src/lm/model.ts';

const quick = process.argv.includes('--quick');
const MIN_SECONDS = quick ? 0.15 : 0.5; // keep repeating a measurement until this much time has passed
const MATMUL_SIZES = quick ? [256, 512] : [256, 512, 1024];
const MODEL_WIDTHS = quick ? [128] : [128, 256];
const TRAIN_STEPS = quick ? 2 : 3; // timed steps, after one warm-up step
const BATCH = 64;
const SEQ = 32;
const VOCAB = 256;
const LAYERS = 4;

/**
 * Median seconds per call of `f` (which must block until its result is computed). Large
 * products skip the warm-up and may run once: one call already takes long enough to time.
 */
function timeIt(f: () => void, large = false): number {
  const minReps = large ? 1 : 2;
  if (!large) f(); // warm-up (kernel setup, allocations)
  const samples: number[] = [];
  const start = performance.now();
  while (samples.length < minReps || performance.now() - start < MIN_SECONDS * 1000) {
    const t0 = performance.now();
    f();
    samples.push((performance.now() - t0) / 1000);
    if (samples.length >= 50) break;
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)]!;
}

function matmulGflops(n: number, transposeA: boolean, transposeB: boolean, rng: Rng): number {
  const a = randomNormal([n, n], 1, rng);
  const b = randomNormal([n, n], 1, rng);
  const s = timeIt(() => {
    const c = tf.matMul(a, b, transposeA, transposeB);
    c.dataSync();
    c.dispose();
  }, n >= 1024);
  tf.dispose([a, b]);
  return (2 * n ** 3) / s / 1e9;
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padStart(widths[i]!)).join('  ');
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

const fmt = (x: number): string => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));

function benchMatmul(backend: EngineBackend): void {
  const rng = new Rng(1);
  const rows: string[][] = [];
  for (const n of MATMUL_SIZES) {
    const row = [String(n), fmt(matmulGflops(n, false, false, rng))];
    if (backend === 'wasm') {
      const fixed = [matmulGflops(n, false, true, rng), matmulGflops(n, true, false, rng)];
      removeWasmFixes();
      const stock = [matmulGflops(n, false, true, rng), matmulGflops(n, true, false, rng)];
      applyWasmFixes();
      row.push(fmt(fixed[0]!), fmt(stock[0]!), fmt(fixed[1]!), fmt(stock[1]!));
    }
    rows.push(row);
  }
  const header = ['n', 'a b'];
  if (backend === 'wasm') header.push('a b^T fixed', 'a b^T stock', 'a^T b fixed', 'a^T b stock');
  console.log(`\nmatmul GFLOP/s (fp32, n x n x n)\n${table(header, rows)}`);
}

function benchTraining(): void {
  const rows: string[][] = [];
  for (const d of MODEL_WIDTHS) {
    const config = tinyGpt2Config({ vocab_size: VOCAB, n_positions: SEQ, n_embd: d, n_layer: LAYERS, n_head: 4 });
    const rng = new Rng(2);
    const model = CausalLM.create(config, rng);
    const tokens = new Int32Array(BATCH * (SEQ + 1));
    for (let i = 0; i < tokens.length; i++) tokens[i] = rng.int(VOCAB);
    const seq = tf.tensor2d(tokens, [BATCH, SEQ + 1], 'int32');
    const inputs = tf.slice(seq, [0, 0], [BATCH, SEQ]) as tf.Tensor2D; // [B, T]
    const targets = tf.oneHot(tf.reshape(tf.slice(seq, [0, 1], [BATCH, SEQ]), [-1]), VOCAB); // [B*T, V]
    const lr = 1e-3;
    let lastLoss = NaN;
    const step = (): void => {
      const loss = tf.tidy(() => {
        const { value, grads } = tf.variableGrads(() => {
          const logits = tf.reshape(model.forward(inputs), [BATCH * SEQ, VOCAB]); // [B*T, V]
          return tf.losses.softmaxCrossEntropy(targets, logits) as tf.Scalar;
        }, model.variables);
        for (const v of model.variables) v.assign(tf.sub(v, tf.mul(grads[v.name]!, lr)));
        return value;
      });
      lastLoss = loss.dataSync()[0]!;
      loss.dispose();
    };
    const params = model.numParameters();
    const before = tf.memory().numTensors;
    step(); // warm-up
    const samples: number[] = [];
    const cpuSamples: number[] = [];
    for (let i = 0; i < TRAIN_STEPS; i++) {
      const t0 = performance.now();
      const c0 = process.cpuUsage();
      step();
      samples.push((performance.now() - t0) / 1000);
      const c = process.cpuUsage(c0);
      cpuSamples.push((c.user + c.system) / 1e6);
    }
    samples.sort((a, b) => a - b);
    cpuSamples.sort((a, b) => a - b);
    const s = samples[Math.floor(samples.length / 2)]!;
    const cpu = cpuSamples[Math.floor(cpuSamples.length / 2)]!;
    const n = BATCH * SEQ;
    const leaked = tf.memory().numTensors - before;
    rows.push([
      String(d),
      (params / 1e6).toFixed(2),
      (s * 1000).toFixed(0),
      (n / s).toFixed(0),
      fmt((6 * params * n) / s / 1e9),
      fmt((6 * params * n) / cpu / 1e9),
      lastLoss.toFixed(3),
      String(leaked),
    ]);
    model.dispose();
    tf.dispose([seq, inputs, targets]);
  }
  console.log(
    `\ntraining step: ${LAYERS}-layer GPT-2 (src/lm), vocab ${VOCAB}, batch ${BATCH} x ${SEQ} tokens, forward + backward + SGD\n` +
      table(['d', 'params (M)', 'ms/step', 'tokens/s', 'eff. GFLOP/s', 'per CPU-s', 'loss', 'leaked tensors'], rows),
  );
}

const start = performance.now();
console.log(`rlvr engine benchmark${quick ? ' (--quick)' : ''}; tfjs ${tf.version_core}, node ${process.version}`);
for (const backend of ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] as const) {
  let header: string;
  try {
    header = describeEngine(await initEngine({ backend, quiet: true }));
  } catch (e) {
    console.log(`\n== ${backend}: not available (${(e as Error).message.split('. Install it with')[0]})`);
    continue;
  }
  console.log(`\n== ${header}`);
  benchMatmul(backend);
  if (backend === 'cpu') console.log('\ntraining step: skipped on cpu (one step takes many seconds)');
  else benchTraining();
}
console.log(`\ntotal ${((performance.now() - start) / 1000).toFixed(1)} s`);
