/**
 * Sampler benchmark: tfjs (wasm) against onnxruntime, side by side in one run.
 *
 *   npx tsx scripts/bench-sampler.ts [--quick] [--threads N]
 *
 * 1. fp32 MatMul GFLOP/s (2 n^3 flops) at n = 512 and 1024: tfjs on its backend, and
 *    onnxruntime with 1 thread and with N threads (default: all cores). The reference
 *    for what a forward pass could reach.
 * 2. Generation throughput (new tokens per second, including the prompt prefill and the
 *    CPU-side sampling; temperature 1, every completion runs to max-new-tokens) for random
 *    models of three shapes:
 *      demo   GPT-2, d=128, 4 layers, vocab 32: the GRPO arithmetic demo's policy
 *             (64 completions of 8 tokens after 6-token prompts);
 *      d256   Llama, d=256, 4 layers, 8 heads / 4 KV heads, vocab 8192, at batch 1, 8, 32
 *             (16-token prompts, 32 new tokens);
 *      124M   GPT-2 small's shape (d=768, 12 layers, vocab 50257) at batch 8 (skipped by --quick).
 *    onnxruntime runs both weight routes: weights as initializers (session rebuilt after an
 *    update) and weights as graph inputs (one session, weights fed each run), and the
 *    two routes once more with onnxruntime's fused operators (`fused`:
 *    Skip(Simplified)LayerNormalization, RotaryEmbedding).
 * 3. Weight sync: the seconds to bring new weights into the engine after an optimizer step,
 *    per route (reading the tfjs variables + rebuilding the session, or + new input tensors).
 *
 * Figures are noisy on shared machines; compare runs taken back to back.
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../src/core/rng.ts';
import { OrtCausalLM, type WeightRoute } from '../src/engine/onnx/causal-lm.ts';
import { GraphBuilder } from '../src/engine/onnx/graph.ts';
import { createSession, defaultThreads, loadOrt } from '../src/engine/onnx/runtime.ts';
import { describeEngine, initEngine } from '../src/engine/tfjs/backend.ts';
import { randomNormal } from '../src/engine/tfjs/tensor.ts';
import { type CausalLMConfig, tinyGpt2Config, tinyLlamaConfig } from '../src/lm/config.ts';
import { CausalLM } from '../src/lm/model.ts';
import { type GenerateOptions, generate, generateWith } from '../src/lm/sampler.ts';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const ti = args.indexOf('--threads');
const THREADS = ti >= 0 ? Number(args[ti + 1]) : defaultThreads();
if (!Number.isInteger(THREADS) || THREADS < 1) throw new Error(`--threads must be an integer >= 1, got ${args[ti + 1]}`);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function timeAsync(f: () => Promise<unknown> | unknown, minSeconds: number, maxReps = 20): Promise<number> {
  await f(); // warm-up
  const samples: number[] = [];
  const start = performance.now();
  while (samples.length < 2 || (performance.now() - start < minSeconds * 1000 && samples.length < maxReps)) {
    const t0 = performance.now();
    await f();
    samples.push((performance.now() - t0) / 1000);
  }
  return median(samples);
}

async function ortMatmulGflops(n: number, threads: number): Promise<number> {
  const ort = await loadOrt();
  const g = new GraphBuilder('matmul');
  const a = g.input('a', 'float', [n, n]);
  const rng = new Rng(1);
  const b = new Float32Array(n * n);
  rng.fillNormal(b, 0, 1);
  g.op('MatMul', [a, g.initializer('b', b, [n, n])], {}, { output: 'c' });
  g.output('c', 'float', [n, n]);
  const { model } = g.serialize();
  const session = await createSession(model, null, { threads });
  const x = new Float32Array(n * n);
  rng.fillNormal(x, 0, 1);
  const feeds = { a: new ort.Tensor('float32', x, [n, n]) };
  const s = await timeAsync(() => session.run(feeds), quick ? 0.2 : 0.5);
  await session.release();
  return (2 * n ** 3) / s / 1e9;
}

function tfjsMatmulGflops(n: number): number {
  const rng = new Rng(2);
  const a = randomNormal([n, n], 1, rng);
  const b = randomNormal([n, n], 1, rng);
  const samples: number[] = [];
  tf.matMul(a, b).dispose();
  const start = performance.now();
  while (samples.length < 2 || performance.now() - start < (quick ? 200 : 500)) {
    const t0 = performance.now();
    const c = tf.matMul(a, b);
    c.dataSync();
    c.dispose();
    samples.push((performance.now() - t0) / 1000);
  }
  tf.dispose([a, b]);
  return (2 * n ** 3) / median(samples) / 1e9;
}

interface Shape {
  name: string;
  config: CausalLMConfig;
  batches: number[];
  promptLen: number;
  newTokens: number;
  /** Distinct prompts per batch of completions (the rest are K completions of each). */
  groups: (batch: number) => number;
}

const SHAPES: Shape[] = [
  {
    name: 'demo',
    config: tinyGpt2Config({ vocab_size: 32, n_positions: 32, n_embd: 128, n_layer: 4, n_head: 4 }),
    batches: [64],
    promptLen: 6,
    newTokens: 8,
    groups: (b) => Math.max(1, b / 8),
  },
  {
    name: 'd256',
    config: tinyLlamaConfig({ vocab_size: 8192, hidden_size: 256, intermediate_size: 688, num_hidden_layers: 4, num_attention_heads: 8, num_key_value_heads: 4, max_position_embeddings: 128 }),
    batches: quick ? [1, 32] : [1, 8, 32],
    promptLen: 16,
    newTokens: 32,
    groups: (b) => b,
  },
];
if (!quick) {
  SHAPES.push({
    name: '124M',
    config: tinyGpt2Config({ vocab_size: 50257, n_positions: 1024, n_embd: 768, n_layer: 12, n_head: 12 }),
    batches: [8],
    promptLen: 16,
    newTokens: 16,
    groups: (b) => b,
  });
}

function promptsFor(shape: Shape, batch: number, rng: Rng): { prompts: number[][]; K: number } {
  const U = shape.groups(batch);
  const V = shape.config.vocab_size;
  const prompts = Array.from({ length: U }, () => Array.from({ length: shape.promptLen }, () => 1 + Math.floor(rng.uniform() * (V - 1))));
  return { prompts, K: batch / U };
}

function genOptions(shape: Shape, K: number): GenerateOptions {
  // EOS id 0 is never drawn: every completion runs to newTokens (vocabLimit excludes nothing,
  // but the random model gives id 0 the same small chance as any other; the count below
  // uses the tokens actually generated).
  return { numGenerations: K, maxNewTokens: shape.newTokens, temperature: 1, eosTokenId: 0, padTokenId: 0, rng: new Rng(3) };
}

const tokensOf = (r: { completionIds: number[][] }): number => r.completionIds.reduce((n, c) => n + c.length, 0);

async function main(): Promise<void> {
  const engine = await initEngine({ backend: 'wasm' });
  console.log(`tfjs: ${describeEngine(engine)}; onnxruntime-node: ${THREADS} threads`);
  console.log('');

  console.log('| MatMul n | tfjs GFLOP/s | onnxruntime 1 thread | onnxruntime ' + THREADS + ' threads |');
  console.log('| --- | --- | --- | --- |');
  const matmul: number[] = [];
  for (const n of [512, 1024]) {
    const t = tfjsMatmulGflops(n);
    const o1 = await ortMatmulGflops(n, 1);
    const oN = await ortMatmulGflops(n, THREADS);
    matmul.push(oN);
    console.log(`| ${n} | ${t.toFixed(1)} | ${o1.toFixed(1)} | ${oN.toFixed(1)} |`);
  }
  console.log('');

  console.log('| model | batch | tfjs tok/s | ort initializers tok/s | ort inputs tok/s | ort initializers + fused tok/s | ort inputs + fused tok/s | best ort / tfjs | sync: initializers s | sync: inputs s |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const shape of SHAPES) {
    const model = CausalLM.create(shape.config, new Rng(0));
    const routes: WeightRoute[] = ['initializers', 'inputs'];
    const lms = new Map<WeightRoute, OrtCausalLM>();
    for (const r of routes) lms.set(r, await OrtCausalLM.fromModel(model, { route: r, threads: THREADS }));
    const fusedLm = await OrtCausalLM.fromModel(model, { route: 'initializers', threads: THREADS, fused: true });
    const fusedInputsLm = await OrtCausalLM.fromModel(model, { route: 'inputs', threads: THREADS, fused: true });
    // Weight sync: one simulated optimizer step (a new buffer in every variable), then sync.
    const sync = new Map<WeightRoute, number>();
    for (const r of routes) {
      const times: number[] = [];
      for (let i = 0; i < 2; i++) {
        for (const v of model.variables) v.assign(tf.mul(v, 1));
        const t0 = performance.now();
        await lms.get(r)!.sync(model);
        times.push((performance.now() - t0) / 1000);
      }
      sync.set(r, median(times));
    }
    for (const batch of shape.batches) {
      const { prompts, K } = promptsFor(shape, batch, new Rng(batch));
      const opts = genOptions(shape, K);
      const minS = quick ? 0.5 : 2;
      let tokens = 0;
      const tTf = await timeAsync(() => {
        const r = generate(model, prompts, { ...opts, rng: new Rng(3) });
        tokens = tokensOf(r);
      }, minS, shape.name === '124M' ? 2 : 20);
      const tfRate = tokens / tTf;
      const rates: number[] = [];
      for (const lm of [...routes.map((r) => lms.get(r)!), fusedLm, fusedInputsLm]) {
        let n = 0;
        const t = await timeAsync(async () => {
          const out = await generateWith(() => lm.decoder(), lm.limits, prompts, { ...opts, rng: new Rng(3) });
          n = tokensOf(out);
        }, minS);
        rates.push(n / t);
      }
      const best = Math.max(...rates);
      console.log(
        `| ${shape.name} | ${batch} | ${tfRate.toFixed(0)} | ${rates[0]!.toFixed(0)} | ${rates[1]!.toFixed(0)} | ${rates[2]!.toFixed(0)} | ${rates[3]!.toFixed(0)} | ${(best / tfRate).toFixed(1)}x | ${sync.get('initializers')!.toFixed(3)} | ${sync.get('inputs')!.toFixed(3)} |`,
      );
    }
    for (const lm of [...lms.values(), fusedLm, fusedInputsLm]) await lm.dispose();
    model.dispose();
  }
  console.log('');
  console.log(`onnxruntime MatMul reference (${THREADS} threads): ${matmul.map((g) => g.toFixed(0)).join(' / ')} GFLOP/s at n = 512 / 1024`);
}

await main();
