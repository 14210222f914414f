/**
 * Configuration of the supervised warm-start (SFT) trainer: one typed object, every field
 * with its default and a why-comment, validated once at the boundary.
 *
 * Field checks (types, ranges, unknown keys) come from the zod schema through
 * `defineConfig`; `checkSftConfig` adds the checks that involve several fields (exactly
 * one model source, exactly one data source, head counts that divide the width, ...).
 * Both throw a `ConfigError` whose lines name the field and the allowed values.
 */
import { z } from 'zod';
import { ConfigError, type ParseOptions, type ResolveOptions, defineConfig } from '../core/config.ts';

const int = () => z.number().int();

/** The engines (`--engine`): onnxruntime samples, and computes SFT's gradients; tfjs runs everything else. */
export const ENGINES = ['auto', 'onnxruntime', 'tfjs'] as const;
export type EngineChoice = (typeof ENGINES)[number];

/** The `engine` config field, shared by every trainer. */
export const engineField = z
  .enum(ENGINES)
  .default('auto')
  .describe('engine that samples completions, trains the warm start and computes the updates\' forward and backward passes (policy, reference, critic): onnxruntime (both cores), tfjs, or auto (onnxruntime when onnxruntime-node loads); clipping and AdamW run on tfjs');

/** The `saveTotalLimit` config field, shared by every trainer (TRL's name). */
export const saveTotalLimitField = z
  .number()
  .int()
  .min(1)
  .max(1_000_000)
  .nullable()
  .default(null)
  .describe('keep only the newest N checkpoint-<step> folders (older ones are deleted after each save; never final/ or the checkpoint resumed from); null = keep all');

/** Where onnxruntime runs (`--device`). */
export const DEVICES = ['cpu', 'cuda'] as const;
export type DeviceChoice = (typeof DEVICES)[number];

/** The `device` config field, shared by every trainer. */
export const deviceField = z
  .enum(DEVICES)
  .default('cpu')
  .describe("where onnxruntime runs: cpu, or cuda (onnxruntime-node's CUDA build, installed with ONNXRUNTIME_NODE_INSTALL=cuda12, and an NVIDIA GPU); needs engine onnxruntime or auto; tfjs picks its own backend with --backend");

const ArithmeticGenerateSchema = z.object({
  task: z.enum(['arithmetic']).default('arithmetic').describe('task generator (datasets/arithmetic)'),
  trainSize: int().min(1).max(1_000_000).default(5000).describe('number of training problems'),
  testSize: int().min(1).max(100_000).default(500).describe('held-out problems; no prompt is shared with training'),
  digits: z
    .array(int().min(1).max(15))
    .length(2)
    .default([1, 2])
    .describe('[min, max] digits per operand'),
  operations: z.array(z.enum(['+', '-', '*'])).min(1).default(['+']).describe('operations, drawn uniformly'),
  format: z.enum(['plain', 'answer-tag']).default('plain').describe('completion "46" or "<answer>46</answer>"'),
  allowNegative: z.boolean().default(false).describe('allow subtraction results below zero'),
  seed: int().default(0).describe('seed of the problem set (independent of the run seed, so runs with different seeds see the same data)'),
});

const InitSchema = z.object({
  architecture: z.enum(['gpt2', 'llama']).default('gpt2').describe('gpt2: learned positions, LayerNorm, GELU; llama: RoPE, RMSNorm, SwiGLU'),
  hiddenSize: int().min(4).max(8192).default(128).describe('model width D'),
  layers: int().min(1).max(128).default(4).describe('transformer blocks'),
  heads: int().min(1).max(256).default(4).describe('attention heads; must divide hiddenSize'),
  kvHeads: int().min(1).max(256).nullable().default(null).describe('llama: key/value heads (grouped-query attention), must divide heads; null = heads'),
  intermediateSize: int().min(1).max(65536).nullable().default(null).describe('MLP width; null = 4 x hiddenSize (gpt2) or 8/3 x hiddenSize rounded up to a multiple of 8 (llama)'),
  contextLength: int().min(2).max(65536).default(32).describe('longest sequence (prompt + completion + EOS) the model can see'),
  ropeTheta: z.number().gt(0).default(10000).describe('llama: RoPE base'),
  initializerRange: z.number().gt(0).max(1).default(0.02).describe('std of the normal initialisation of matrices and embeddings'),
});

export const SftConfig = defineConfig(
  z.object({
    model: z
      .object({
        modelDir: z.string().min(1).nullable().default(null).describe('start from this Hugging Face folder (config.json, model.safetensors, tokenizer files)'),
        init: InitSchema.nullable().default(null).describe('or: train from scratch with this architecture and the task\'s tokenizer'),
      })
      .default({ modelDir: null, init: null }),
    data: z
      .object({
        trainFile: z.string().min(1).nullable().default(null).describe('JSONL training file: "prompt" and "completion" (or "answer") columns'),
        testFile: z.string().min(1).nullable().default(null).describe('JSONL held-out file, same columns; needed for evaluation'),
        generate: ArithmeticGenerateSchema.nullable().default(null).describe('or: generate the train/test splits'),
      })
      .default({ trainFile: null, testFile: null, generate: null }),
    steps: int().min(1).max(10_000_000).default(1000).describe('optimizer steps (the training budget)'),
    batchSize: int().min(1).max(65536).default(64).describe('examples per step'),
    learningRate: z.number().gt(0).max(1).default(1e-3).describe('peak AdamW learning rate; typical 3e-4..3e-3 from scratch, 1e-5..1e-4 for a pretrained model'),
    warmupSteps: int().min(0).default(50).describe('linear warm-up from 0 to learningRate over these steps'),
    minLrRatio: z.number().min(0).max(1).default(0.1).describe('cosine decay ends at learningRate x minLrRatio'),
    weightDecay: z.number().min(0).max(1).default(0.01).describe('AdamW decoupled decay on matrices and embeddings (not biases or norm gains)'),
    beta1: z.number().min(0).lt(1).default(0.9).describe('AdamW first-moment decay'),
    beta2: z.number().min(0).lt(1).default(0.99).describe('AdamW second-moment decay; 0.95..0.999'),
    gradClip: z.number().min(0).default(1).describe('clip the global gradient norm to this; 0 = no clipping'),
    evalEvery: int().min(0).default(100).describe('evaluate on the held-out split every N steps (and always after the last step); 0 = only after the last'),
    evalSize: int().min(1).default(500).describe('held-out examples used per evaluation (the first N of the test split)'),
    evalBatchSize: int().min(1).max(65536).default(256).describe('examples per forward pass during evaluation (loss and greedy generation)'),
    device: deviceField,
    engine: engineField.describe('engine of the forward and backward and of the evaluation\'s greedy generation: onnxruntime, tfjs, or auto (onnxruntime when it loads); clipping and AdamW run on tfjs'),
    saveEvery: int().min(0).default(0).describe('write checkpoint-<step> every N steps (and on Ctrl-C, SIGTERM or SIGHUP); 0 = only the final checkpoint'),
    saveTotalLimit: saveTotalLimitField,
    logEvery: int().min(1).default(10).describe('write a metrics line every N steps (train metrics are means over those steps)'),
    seed: int().default(0).describe('seed of initialisation and batch order'),
    outDir: z.string().min(1).default('runs/sft').describe('run folder: metrics.jsonl, config.json, checkpoints, final/'),
  }),
);

export type SftConfig = z.output<typeof SftConfig.schema>;
export type SftInitConfig = NonNullable<SftConfig['model']['init']>;
export type SftGenerateConfig = NonNullable<SftConfig['data']['generate']>;

/** The checks that involve more than one field; returns one problem per line. */
function crossFieldProblems(c: SftConfig): string[] {
  const p: string[] = [];
  const { modelDir, init } = c.model;
  if ((modelDir === null) === (init === null)) {
    p.push(
      modelDir === null
        ? '"model" needs a source: set "model.modelDir" (a Hugging Face folder) or "model.init" (train from scratch)'
        : '"model.modelDir" and "model.init" are both set; keep one (set the other to null)',
    );
  }
  if (init) {
    if (init.hiddenSize % init.heads !== 0) p.push(`"model.init.heads" must divide "model.init.hiddenSize" (${init.hiddenSize}), got ${init.heads}`);
    if (init.architecture === 'gpt2') {
      if (init.kvHeads !== null && init.kvHeads !== init.heads) p.push(`"model.init.kvHeads" must be null or equal to heads for architecture "gpt2", got ${init.kvHeads}`);
    } else {
      if (init.kvHeads !== null && init.heads % init.kvHeads !== 0) p.push(`"model.init.kvHeads" must divide "model.init.heads" (${init.heads}), got ${init.kvHeads}`);
      if (init.hiddenSize % init.heads === 0 && (init.hiddenSize / init.heads) % 2 !== 0) {
        p.push(`"model.init.hiddenSize" / "model.init.heads" (the head width, ${init.hiddenSize / init.heads}) must be even for rotary embeddings`);
      }
    }
  }
  const { trainFile, testFile, generate } = c.data;
  if ((trainFile === null) === (generate === null)) {
    p.push(
      trainFile === null
        ? '"data" needs a source: set "data.trainFile" (JSONL) or "data.generate" (a task generator)'
        : '"data.trainFile" and "data.generate" are both set; keep one (set the other to null)',
    );
  }
  if (generate && testFile !== null) p.push('"data.testFile" must be null with "data.generate" (the generator makes its own test split)');
  if (generate) {
    const [lo = 1, hi = 1] = generate.digits;
    if (lo > hi) p.push(`"data.generate.digits" must be [min, max] with min <= max, got [${lo}, ${hi}]`);
    if (new Set(generate.operations).size !== generate.operations.length) p.push(`"data.generate.operations" lists an operation twice: ${JSON.stringify(generate.operations)}`);
  }
  if (c.warmupSteps > c.steps) p.push(`"warmupSteps" must be <= steps (${c.steps}), got ${c.warmupSteps}; lower it, e.g. --set warmupSteps=${Math.max(0, Math.round(c.steps / 10))}`);
  return p;
}

/** Runs the cross-field checks on a schema-valid config; throws a `ConfigError` naming each bad field. */
export function checkSftConfig(config: SftConfig, source?: string): SftConfig {
  const problems = crossFieldProblems(config);
  if (problems.length) throw new ConfigError(problems, source);
  return config;
}

/** Validates a config object (fills defaults) and runs the cross-field checks. */
export function parseSftConfig(input: unknown, options: ParseOptions = {}): SftConfig {
  return checkSftConfig(SftConfig.parse(input, options), options.source);
}

/** Merges defaults < values < file < `--set` < flags, validates, and runs the cross-field checks. */
export function resolveSftConfig(options: ResolveOptions = {}): SftConfig {
  return checkSftConfig(SftConfig.resolve(options), options.file);
}
