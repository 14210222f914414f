/**
 * Language-model benchmark: training and sampling throughput of src/lm on the engine's
 * default backend (`initEngine()`), and peak memory.
 *
 *   npx tsx scripts/bench-lm.ts [--quick] [--profile] [--skip-135m] [--only <name part>]
 *
 * 1. Training: one step = forward + next-token cross-entropy + tf.variableGrads + AdamW
 *    (src/engine/tfjs/optim.ts) at batch 4 x 128 tokens, for a ~1M- and a ~10M-parameter
 *    GPT-2-style model and a randomly initialised Llama shaped like SmolLM2-135M (30 layers,
 *    hidden 576, 9 heads, 3 KV heads, intermediate 1536, vocabulary 49152, tied), which
 *    runs one step only. Effective GFLOP/s = 6 x params x tokens / time; the "per CPU-s"
 *    column divides by this process's CPU time instead, which is what the kernels deliver
 *    when other processes share the cores.
 * 2. Sampling: `generate` at batch 64 (8 prompts of 16 tokens x 8 completions, no EOS, so
 *    every row runs the full length) for the two GPT-2 models; tokens/s counts generated
 *    tokens, effective GFLOP/s = 2 x params x tokens / time (prefill excluded from the count).
 * 3. Memory: the largest `process.memoryUsage().rss` sampled between the phases of every
 *    step, VmHWM (the kernel's peak resident set of this process) from /proc/self/status,
 *    and on wasm the size of the backend's heap, which wasm32 caps at 4 GiB: a step that
 *    needs more aborts, and the row says FAILED (the process exits with status 1).
 * `--profile` lists the kernels of one 10M training step by total time (tf.profile).
 */
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { describeEngine, initEngine } from '../src/engine/tfjs/backend.ts';
import { AdamW } from '../src/engine/tfjs/optim.ts';
import { Rng } from '../src/core/rng.ts';
import { type CausalLMConfig, tinyGpt2Config } from '../src/lm/config.ts';
import { CausalLM } from '../src/lm/model.ts';
import { smolLM2Shape } from './model-shapes.ts';
import { generate } from '../src/lm/sampler.ts';
import { tokenLogprobs } from '../src/objectives/logprobs.ts';

const quick = process.argv.includes('--quick');
const profile = process.argv.includes('--profile');
const skip135m = process.argv.includes('--skip-135m');
const onlyAt = process.argv.indexOf('--only');
const only = onlyAt >= 0 ? (process.argv[onlyAt + 1] ?? '') : null; // run the models whose name contains this
const TRAIN_BATCH = 4;
const TRAIN_SEQ = 128;
const TRAIN_STEPS = quick ? 2 : 4; // timed steps after one warm-up step
const SAMPLE_PROMPTS = 8;
const SAMPLE_K = 8;
const SAMPLE_PROMPT_LEN = 16;
const SAMPLE_NEW = quick ? 24 : 64;

const MODELS: Array<{ name: string; config: CausalLMConfig; sample: boolean; steps: number }> = [
  {
    name: 'gpt2 ~1M',
    config: tinyGpt2Config({ vocab_size: 1024, n_positions: 256, n_embd: 128, n_layer: 4, n_head: 4 }),
    sample: true,
    steps: TRAIN_STEPS,
  },
  {
    name: 'gpt2 ~10M',
    config: tinyGpt2Config({ vocab_size: 1024, n_positions: 256, n_embd: 384, n_layer: 6, n_head: 6 }),
    sample: true,
    steps: TRAIN_STEPS,
  },
  {
    name: 'llama 135M shape',
    config: smolLM2Shape(),
    sample: false,
    steps: 1,
  },
];

let peakRss = 0;
function sampleRss(): void {
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
}

function vmHwm(): number | null {
  try {
    const m = /VmHWM:\s+(\d+)\s+kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** Size of the wasm backend's heap (it only grows; wasm32 caps it at 4 GiB), or null on other backends. */
function wasmHeap(): number | null {
  const heap = (tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } }).wasm?.HEAPU8;
  return heap ? heap.length : null;
}

const gib = (b: number | null): string => (b === null ? 'n/a' : `${(b / 2 ** 30).toFixed(2)} GiB`);

function randomIds(rng: Rng, rows: number, cols: number, vocab: number): Int32Array {
  return Int32Array.from({ length: rows * cols }, () => rng.int(vocab));
}

/** One optimisation step on next-token cross-entropy; returns the loss. */
function trainStep(model: CausalLM, opt: AdamW, ids: tf.Tensor2D): number {
  const [B, T] = ids.shape;
  const { value, grads } = tf.variableGrads(() => {
    const logits = model.forward(ids); // [B, T, V]
    sampleRss();
    const pred = tf.slice(logits, [0, 0, 0], [B, T - 1, -1]); // positions predicting tokens 1..T-1
    const targets = tf.slice(ids, [0, 1], [B, T - 1]);
    return tf.neg(tf.mean(tokenLogprobs(pred, targets))) as tf.Scalar;
  }, model.variables);
  sampleRss();
  opt.applyGradients(grads);
  sampleRss();
  const loss = value.dataSync()[0]!;
  tf.dispose([value, ...Object.values(grads)]);
  return loss;
}

interface Row {
  model: string;
  params: number;
  what: string;
  tokensPerSec: number;
  gflops: number;
  /** The same work per CPU-second of this process: what the kernels deliver when the machine is shared. */
  cpuGflops: number;
  note: string;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const cpuSeconds = (u: NodeJS.CpuUsage): number => (u.user + u.system) / 1e6;

function benchTraining(name: string, model: CausalLM, steps: number, rng: Rng): Row {
  const opt = new AdamW(model.variables, { learningRate: 1e-4, weightDecay: 0.01 });
  const ids = tf.tensor2d(randomIds(rng, TRAIN_BATCH, TRAIN_SEQ, model.dims.vocabSize), [TRAIN_BATCH, TRAIN_SEQ], 'int32');
  const tokens = TRAIN_BATCH * TRAIN_SEQ;
  const times: number[] = [];
  const cpuTimes: number[] = [];
  let loss = NaN;
  if (steps > 1) loss = trainStep(model, opt, ids); // warm-up
  for (let s = 0; s < steps; s++) {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    loss = trainStep(model, opt, ids);
    times.push((performance.now() - t0) / 1000);
    cpuTimes.push(cpuSeconds(process.cpuUsage(c0)));
  }
  const sec = median(times);
  const cpu = median(cpuTimes);
  const params = model.numParameters();
  ids.dispose();
  opt.dispose();
  return {
    model: name,
    params,
    what: `train ${TRAIN_BATCH}x${TRAIN_SEQ}`,
    tokensPerSec: tokens / sec,
    gflops: (6 * params * tokens) / sec / 1e9,
    cpuGflops: (6 * params * tokens) / cpu / 1e9,
    note: `${sec.toFixed(2)} s/step (median of ${steps}), loss ${loss.toFixed(3)}`,
  };
}

function benchSampling(name: string, model: CausalLM, rng: Rng): Row {
  const V = model.dims.vocabSize;
  const prompts = Array.from({ length: SAMPLE_PROMPTS }, () => Array.from(randomIds(rng, 1, SAMPLE_PROMPT_LEN, V - 1)));
  const run = (seed: number): { tps: number; cpuTps: number } => {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    const res = generate(model, prompts, {
      numGenerations: SAMPLE_K,
      maxNewTokens: SAMPLE_NEW,
      temperature: 1,
      eosTokenId: V - 1,
      padTokenId: 0,
      vocabLimit: V - 1, // the EOS id is never drawn: every row runs the full length
      rng: new Rng(seed),
    });
    sampleRss();
    const sec = (performance.now() - t0) / 1000;
    const cpu = cpuSeconds(process.cpuUsage(c0));
    const n = res.completionIds.reduce((a, c) => a + c.length, 0);
    return { tps: n / sec, cpuTps: n / cpu };
  };
  run(0); // warm-up
  const runs = [run(1), run(2)];
  const tps = Math.max(...runs.map((r) => r.tps));
  const cpuTps = Math.max(...runs.map((r) => r.cpuTps));
  return {
    model: name,
    params: model.numParameters(),
    what: `sample batch ${SAMPLE_PROMPTS * SAMPLE_K}`,
    tokensPerSec: tps,
    gflops: (2 * model.numParameters() * tps) / 1e9,
    cpuGflops: (2 * model.numParameters() * cpuTps) / 1e9,
    note: `${SAMPLE_PROMPTS} prompts x ${SAMPLE_K}, ${SAMPLE_PROMPT_LEN} + ${SAMPLE_NEW} tokens, best of 2`,
  };
}

function profileStep(model: CausalLM, rng: Rng): Promise<void> {
  const opt = new AdamW(model.variables, { learningRate: 1e-4 });
  const ids = tf.tensor2d(randomIds(rng, TRAIN_BATCH, TRAIN_SEQ, model.dims.vocabSize), [TRAIN_BATCH, TRAIN_SEQ], 'int32');
  trainStep(model, opt, ids); // warm-up
  return tf
    .profile(() => {
      trainStep(model, opt, ids);
    })
    .then((info) => {
      const byName = new Map<string, { ms: number; n: number }>();
      let total = 0;
      for (const k of info.kernels) {
        const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
        // Products with a batch on both sides (attention) take a different wasm code path.
        const batched = (shape: number[] | undefined): boolean => shape !== undefined && shape.slice(0, -2).reduce((a, b) => a * b, 1) > 1;
        const both = k.name === 'BatchMatMul' && batched(k.inputShapes[0]) && batched(k.inputShapes[1]);
        const name = both ? 'BatchMatMul (batched)' : k.name;
        const e = byName.get(name) ?? { ms: 0, n: 0 };
        e.ms += ms;
        e.n += 1;
        byName.set(name, e);
        total += ms;
      }
      console.log(`\nProfile of one 10M training step (${info.kernels.length} kernels, ${total.toFixed(0)} ms kernel time):`);
      console.log('kernel'.padEnd(28) + 'ms'.padStart(9) + '%'.padStart(7) + 'calls'.padStart(7));
      for (const [name, e] of [...byName].sort((a, b) => b[1].ms - a[1].ms).slice(0, 15)) {
        console.log(name.padEnd(28) + e.ms.toFixed(1).padStart(9) + ((100 * e.ms) / total).toFixed(1).padStart(7) + String(e.n).padStart(7));
      }
      ids.dispose();
      opt.dispose();
    });
}

async function main(): Promise<void> {
  const info = await initEngine();
  console.log(describeEngine(info));
  console.log(`node ${process.version}, ${quick ? 'quick' : 'full'} run\n`);
  const rng = new Rng(0);
  const print = (r: Row): void => {
    console.log(
      r.model.padEnd(18) +
        `${(r.params / 1e6).toFixed(2)}M`.padStart(9) +
        '  ' +
        r.what.padEnd(17) +
        r.tokensPerSec.toFixed(0).padStart(9) +
        r.gflops.toFixed(1).padStart(9) +
        r.cpuGflops.toFixed(1).padStart(10) +
        `  ${r.note}; rss peak ${gib(peakRss)}, VmHWM ${gib(vmHwm())}${wasmHeap() === null ? '' : `, wasm heap ${gib(wasmHeap())}`}`,
    );
  };
  console.log('model'.padEnd(18) + 'params'.padStart(9) + '  ' + 'measure'.padEnd(17) + 'tokens/s'.padStart(9) + 'GFLOP/s'.padStart(9) + 'per CPU-s'.padStart(10) + '  notes');
  for (const m of MODELS) {
    if (skip135m && m.steps === 1) continue;
    if (only !== null && !m.name.includes(only)) continue;
    const model = CausalLM.create(m.config, rng);
    sampleRss();
    let r: Row;
    try {
      r = benchTraining(m.name, model, m.steps, rng);
    } catch (e) {
      // The wasm backend aborts when its heap cannot grow (wasm32: 4 GiB at most); its state
      // is unusable afterwards, so report and stop.
      const msg = (e instanceof Error ? e.message : String(e)).split('\n')[0]!.slice(0, 120);
      console.log(
        m.name.padEnd(18) +
          `${(model.numParameters() / 1e6).toFixed(2)}M`.padStart(9) +
          `  train ${TRAIN_BATCH}x${TRAIN_SEQ}: FAILED (${msg}); rss peak ${gib(peakRss)}, VmHWM ${gib(vmHwm())}` +
          (wasmHeap() === null ? '' : `, wasm heap ${gib(wasmHeap())} (wasm32 limit 4 GiB)`),
      );
      process.exitCode = 1;
      break;
    }
    print(r);
    if (m.sample) {
      print(benchSampling(m.name, model, rng));
    }
    if (profile && m.name === 'gpt2 ~10M') await profileStep(model, rng);
    model.dispose();
  }
  console.log(`\npeak rss (sampled) ${gib(peakRss)}, VmHWM ${gib(vmHwm())}; tf tensors alive at exit: ${tf.memory().numTensors}`);
}

await main();
