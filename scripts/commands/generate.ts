/**
 * `rlvr generate --model DIR (--prompt TEXT | --prompts FILE.jsonl) [--num N]
 *  [--max-new-tokens N] [--greedy] [--temperature T] [--top-k K] [--top-p P] [--seed S]
 *  [--stop STR] [--engine E] [--json]`: try a model from the command line. Prints each
 * prompt with its completions and the generation speed; `--json` prints one JSON object
 * per completion instead (prompt, completion, token ids, finish reason, mean log-prob).
 * Ctrl-C stops a long generation between tokens (onnxruntime) and exits 130.
 */
import type { Command } from 'commander';
import { backendOption, deviceOption, engineOption } from './engine-options.ts';
import { Rng } from '../../src/core/rng.ts';
import { type EngineSampler } from '../../src/engine/onnx/sampler.ts';
import { onnxSampler } from '../../src/engine/onnx/sampler.ts';
import { ortAvailable } from '../../src/engine/onnx/runtime.ts';
import { describeEngine, initEngine } from '../../src/engine/tfjs/backend.ts';
import { loadCausalLM } from '../../src/lm/checkpoint.ts';
import { type GenerateOptions, tfjsSampler } from '../../src/lm/sampler.ts';
import { loadTokenizer } from '../../src/lm/tokenizer.ts';
import { loadPromptRows, plainPromptText } from '../../src/trainers/prompts.ts';
import { collect, positiveInt } from './rl-command.ts';

export interface GenerateCliOptions {
  model: string;
  prompt: string[];
  prompts?: string;
  num: number;
  maxNewTokens: number;
  greedy: boolean;
  temperature: number;
  topK: number;
  topP: number;
  seed: number;
  stop: string[];
  batchSize?: number;
  engine: 'auto' | 'onnxruntime' | 'tfjs';
  device?: 'cpu' | 'cuda';
  json: boolean;
}

export interface GeneratedText {
  prompt: string;
  completion: string;
  tokens: number[];
  finishReason: string;
  meanLogprob: number;
}

export interface GenerateReport {
  engine: string;
  completions: GeneratedText[];
  tokens: number;
  seconds: number;
}

function finiteNumber(name: string, min: number, max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || n > max) throw new Error(`${name} must be a number in [${min}, ${max}], got ${JSON.stringify(v)}`);
    return n;
  };
}

/** Loads the model and prompts, samples, and returns the texts (the CLI prints them). */
export async function runGenerate(opts: GenerateCliOptions, signal?: AbortSignal): Promise<GenerateReport> {
  if (opts.prompt.length === 0 && !opts.prompts) throw new Error('generate: give --prompt TEXT (repeatable) or --prompts FILE.jsonl');
  if (opts.prompt.length > 0 && opts.prompts) throw new Error('generate: give --prompt or --prompts, not both');
  const texts = opts.prompts ? (await loadPromptRows(opts.prompts)).map((r) => plainPromptText(r, 'rlvr generate')) : opts.prompt;
  if (texts.length === 0) throw new Error(`generate: ${opts.prompts} holds no prompts`);
  const { model, tokenizerDir } = await loadCausalLM(opts.model);
  let sampler: EngineSampler | null = null;
  try {
    const tokenizer = await loadTokenizer(tokenizerDir);
    const ids = texts.map((t, i) => {
      const e = tokenizer.encode(t, { addSpecialTokens: true });
      if (e.length === 0) throw new Error(`generate: prompt ${i + 1} encodes to no tokens`);
      return e;
    });
    const longest = Math.max(...ids.map((p) => p.length));
    const room = model.dims.maxPositions - longest;
    if (room < 1) throw new Error(`generate: the longest prompt has ${longest} tokens, the model's context is ${model.dims.maxPositions}`);
    const maxNewTokens = Math.min(opts.maxNewTokens, room);
    const device = opts.device ?? 'cpu';
    if (device === 'cuda' && opts.engine === 'tfjs') throw new Error('generate: --device cuda runs onnxruntime on the GPU; use --engine onnxruntime or auto');
    const useOrt = opts.engine === 'onnxruntime' || device === 'cuda' || (opts.engine === 'auto' && (await ortAvailable()));
    sampler = useOrt ? await onnxSampler(model, { signal, route: 'initializers', device }) : { ...tfjsSampler(model), description: 'tfjs', syncStats: () => ({ syncs: 0, seconds: 0 }), dispose: async () => {} };
    const gen: GenerateOptions = {
      numGenerations: opts.num,
      maxNewTokens,
      temperature: opts.greedy ? 0 : opts.temperature,
      topK: opts.topK,
      topP: opts.topP,
      eosTokenId: tokenizer.eosTokenId,
      padTokenId: tokenizer.padTokenId,
      vocabLimit: Math.min(tokenizer.vocabSize, model.dims.vocabSize),
      rng: new Rng(opts.seed),
      batchSize: opts.batchSize,
      ...(opts.stop.length > 0 ? { stop: { strings: opts.stop, decode: (c: number[]) => tokenizer.decode(c, { skipSpecialTokens: true }) } } : {}),
    };
    const t0 = performance.now();
    const r = await sampler.generate(ids, gen);
    const seconds = (performance.now() - t0) / 1000;
    const completions = r.completionIds.map((c, i) => ({
      prompt: texts[Math.floor(i / opts.num)]!,
      completion: tokenizer.decode(c, { skipSpecialTokens: true }),
      tokens: c,
      finishReason: r.finishReasons[i]!,
      meanLogprob: c.length ? r.logprobs[i]!.reduce((a, b) => a + b, 0) / c.length : 0,
    }));
    return { engine: sampler.description, completions, tokens: completions.reduce((n, c) => n + c.tokens.length, 0), seconds };
  } finally {
    await sampler?.dispose();
    model.dispose();
  }
}

export function register(program: Command): void {
  program
    .command('generate')
    .description('sample completions from a model folder: try a model from the command line')
    .requiredOption('--model <dir>', 'a Hugging Face model folder (config.json, model.safetensors, tokenizer files), e.g. runs/grpo/final')
    .option('--prompt <text>', 'a prompt (repeatable)', collect, [] as string[])
    .option('--prompts <file>', 'JSONL file of prompts (a "prompt" column per line)')
    .option('--num <n>', 'completions per prompt', positiveInt, 1)
    .option('--max-new-tokens <n>', 'most new tokens per completion (EOS included; capped by the context left)', positiveInt, 64)
    .option('--greedy', 'greedy decoding (temperature 0)', false)
    .option('--temperature <t>', 'sampling temperature', finiteNumber('--temperature', 0, 10), 1)
    .option('--top-k <k>', 'sample among the k most likely tokens; 0 = off', (v) => finiteNumber('--top-k', 0, 1e9)(v), 0)
    .option('--top-p <p>', 'nucleus sampling; 1 = off', finiteNumber('--top-p', 1e-9, 1), 1)
    .option('--seed <n>', 'seed of the draws (the same seed gives the same completions for any batch size)', (v) => finiteNumber('--seed', 0, 2 ** 32)(v), 0)
    .option('--stop <text>', 'stop a completion when this text appears (repeatable)', collect, [] as string[])
    .option('--batch-size <n>', 'most sequences per forward (bounds KV-cache memory); default all', positiveInt)
    .addOption(engineOption('engine that samples', 'auto'))
    .addOption(deviceOption())
    .addOption(backendOption())
    .option('--json', 'one JSON object per completion on stdout', false)
    .action(async (opts: GenerateCliOptions & { backend: 'auto' | 'wasm' | 'cpu' | 'tensorflow' | 'tensorflow-gpu' }) => {
      if (!Number.isInteger(opts.topK)) throw new Error(`--top-k must be an integer, got ${opts.topK}`);
      const engine = await initEngine({ backend: opts.backend, quiet: true });
      const controller = new AbortController();
      const onSigint = (): void => controller.abort(new Error('interrupted (Ctrl-C)'));
      process.once('SIGINT', onSigint);
      let report: GenerateReport;
      try {
        report = await runGenerate(opts, controller.signal);
      } catch (e) {
        if (controller.signal.aborted) {
          process.stderr.write('generate: interrupted\n');
          process.exit(130);
        }
        throw e;
      } finally {
        process.off('SIGINT', onSigint);
      }
      if (opts.json) {
        for (const c of report.completions) process.stdout.write(JSON.stringify(c) + '\n');
        return;
      }
      let last: string | null = null;
      for (const c of report.completions) {
        if (c.prompt !== last) process.stdout.write(`${last === null ? '' : '\n'}prompt: ${JSON.stringify(c.prompt)}\n`);
        last = c.prompt;
        process.stdout.write(`  -> ${JSON.stringify(c.completion)}  (${c.tokens.length} tokens, ${c.finishReason})\n`);
      }
      const rate = report.tokens / Math.max(report.seconds, 1e-9);
      process.stdout.write(`\n${report.tokens} tokens in ${report.seconds.toFixed(2)} s (${rate.toFixed(0)} tokens/s) on ${report.engine}; ${describeEngine(engine).replace(/^engine: /, 'model loaded with ')}\n`);
    });
}
