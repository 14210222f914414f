/**
 * The settings every reinforcement-learning trainer for language models shares (GRPO, PPO):
 * the starting model and its warm-start, the data, the reward functions, sampling, the
 * policy's optimizer, and the run's cadences and folder. Each trainer's config spreads these
 * zod fields into its own object next to its algorithm's fields, so that one setting has one
 * name, default and range in every trainer.
 */
import { z } from 'zod';
import { PROMPT_FORMATS } from '../../datasets/prompts.ts';
import { SFT_PRESETS } from './presets.ts';
import { SftConfig, deviceField, engineField, saveTotalLimitField } from './sft-config.ts';

export const int = () => z.number().int();

/** The arithmetic generator settings, shared with the SFT config. */
export const ArithmeticGenerateSchema = SftConfig.schema.shape.data.unwrap().shape.generate.unwrap().unwrap();

const RewardEntrySchema = z.object({
  reward: z.string().min(1).describe('a built-in reward (exact_match, numeric, math, format, code, overlong) or a path to a module exporting a reward function (see rewards/README.md)'),
  weight: z.number().refine(Number.isFinite, 'must be finite').default(1).describe('multiplies this function\'s values in the combined reward'),
  name: z
    .string()
    .regex(/^[^/\s]+$/, 'must have no "/" or spaces')
    .nullable()
    .default(null)
    .describe('name in metrics (reward/<name>/mean); null = the built-in name or the module file name'),
  config: z.record(z.string(), z.unknown()).nullable().default(null).describe('options of a built-in reward, e.g. { "column": "answer" }'),
});

/** Starting model, data, rewards and sampling (the rollout's settings). */
export const rolloutFields = {
  model: z
    .object({
      modelDir: z.string().min(1).nullable().default(null).describe('starting policy: a Hugging Face folder (config.json, model.safetensors, tokenizer files)'),
      warmStart: z
        .object({
          preset: z.enum(Object.keys(SFT_PRESETS) as [string, ...string[]]).default('arithmetic-tiny').describe('SFT preset that trains the starting policy'),
          steps: int().min(1).max(10_000_000).nullable().default(1000).describe('SFT budget (optimizer steps), overriding the preset\'s; null = the preset\'s'),
          teacherCarryErrors: z
            .number()
            .min(0)
            .max(1)
            .default(0.6)
            .describe('imperfect demonstrations: this fraction of the training additions that need a carry are answered without carrying (47+38 -> 75); 0 = correct data'),
          cacheDir: z.string().min(1).default('.cache/rlvr/sft').describe('finished warm-starts are kept here, one folder per SFT config, and reused'),
        })
        .default({ preset: 'arithmetic-tiny', steps: 1000, teacherCarryErrors: 0.6, cacheDir: '.cache/rlvr/sft' })
        .describe('used when modelDir is null: train the starting policy with SFT (or reuse the cached one)'),
    })
    .default({ modelDir: null, warmStart: { preset: 'arithmetic-tiny', steps: 1000, teacherCarryErrors: 0.6, cacheDir: '.cache/rlvr/sft' } }),
  data: z
    .object({
      trainFile: z
        .string()
        .min(1)
        .nullable()
        .default(null)
        .describe('training prompts: a .jsonl, .json or .parquet file, or a Hugging Face dataset folder (data/train-*.parquet, train/*.parquet; see data.split); a "prompt" column (text, or a list of { role, content } chat messages) plus the columns the rewards read (e.g. "answer")'),
      testFile: z.string().min(1).nullable().default(null).describe('held-out prompts (a file or a dataset folder), same columns, for eval/accuracy; null = the folder\'s data.evalSplit when trainFile is a folder, else no evaluation (unless generated)'),
      split: z.string().min(1).default('train').describe('split of a dataset folder to train on'),
      evalSplit: z.string().min(1).nullable().default(null).describe('split of a dataset folder held out for eval/accuracy; null = the first of test, validation, valid, val, dev, eval the folder has (none = no evaluation)'),
      columns: z
        .record(z.string().min(1), z.string().min(1))
        .default({})
        .describe('rename columns, new name -> column in the file, e.g. { "prompt": "question", "answer": "solution" } (--map prompt=question,answer=solution)'),
      format: z
        .enum(PROMPT_FORMATS)
        .default('prompt')
        .describe('prompt: rows with a "prompt" column; gsm8k: { question, answer } rows whose answer ends in "#### <number>", read as prompt = question, answer = the number, solution = the worked answer'),
      chat: z.boolean().default(false).describe('plain-text prompts become one user message each, rendered by the tokenizer\'s chat template'),
      system: z.string().nullable().default(null).describe('a system message put first in every prompt (plain prompts become [system, user] and go through the chat template; a prompt with its own system message keeps it); null = none'),
      enableThinking: z
        .boolean()
        .nullable()
        .default(null)
        .describe('the chat template\'s thinking switch (Qwen3\'s enable_thinking) for conversational prompts; an error if the template has none; null = the template\'s default'),
      maxRows: int().min(1).nullable().default(null).describe('read only the first N training rows (bounds memory on a huge file); null = all'),
      generate: ArithmeticGenerateSchema.nullable()
        .default(null)
        .describe('or: generate arithmetic train/test splits; null with no trainFile = the warm-start preset\'s data (its held-out split is the eval set)'),
    })
    .default({ trainFile: null, testFile: null, split: 'train', evalSplit: null, columns: {}, format: 'prompt', chat: false, system: null, enableThinking: null, maxRows: null, generate: null }),
  rewards: z
    .array(RewardEntrySchema)
    .min(1)
    .default([{ reward: 'exact_match', weight: 1, name: null, config: null }])
    .describe('reward functions, combined as the weighted sum of their values'),
  evalReward: z.string().min(1).nullable().default(null).describe('metric name of the reward whose value >= 1 marks an eval completion correct (e.g. "exact_match"); null = the first reward'),
  rewardConcurrency: int().min(1).max(1024).default(4).describe('reward functions running at once (p-limit)'),
  rewardTimeoutMs: int().min(1).default(120_000).describe('a reward function taking longer counts as failed for that batch'),
  maxFailedRewardSteps: int()
    .min(0)
    .max(1_000_000)
    .default(3)
    .describe('stop the run when the rewards failed on every completion for this many consecutive steps (nothing to learn from); 0 = never stop'),

  promptsPerStep: int().min(1).max(65536).default(16).describe('prompts per step (each gets numGenerations completions)'),
  numGenerations: int().min(2).max(1024).default(8).describe('K, completions per prompt (the group); typical 4..16'),
  maxCompletionLength: int().min(1).max(65536).default(6).describe('most tokens per completion, EOS included; longer ones are cut (truncated)'),
  temperature: z.number().gt(0).max(10).default(1).describe('sampling temperature; the loss uses softmax(logits / temperature), the distribution sampled from'),
  topP: z.number().gt(0).max(1).default(1).describe('nucleus sampling; 1 = off'),
  topK: int().min(0).default(0).describe('sample among the k most likely tokens; 0 = off'),
  samplingBatchSize: int().min(1).max(65536).nullable().default(null).describe('most sequences per sampler forward (bounds KV-cache memory); null = all'),
  engine: engineField,
  device: deviceField,
};

/** The policy's AdamW and learning-rate schedule. */
export const optimizerFields = {
  learningRate: z.number().gt(0).max(1).default(5e-5).describe('peak AdamW learning rate; typical 1e-6..1e-5 for pretrained models; 5e-5 for the tiny demo model (1e-4 and above destabilised it)'),
  lrSchedule: z.enum(['constant', 'cosine', 'linear']).default('constant').describe('learning-rate schedule over the training steps, after warm-up'),
  warmupSteps: int().min(0).default(5).describe('linear warm-up from 0 to learningRate over these steps (a fresh AdamW\'s first steps are full-size)'),
  minLrRatio: z.number().min(0).max(1).default(0.1).describe('cosine/linear decay ends at learningRate x minLrRatio'),
  weightDecay: z.number().min(0).max(1).default(0).describe('AdamW decoupled decay on matrices and embeddings'),
  beta1: z.number().min(0).lt(1).default(0.9).describe('AdamW first-moment decay'),
  beta2: z.number().min(0).lt(1).default(0.99).describe('AdamW second-moment decay; 0.95..0.999'),
  adamEpsilon: z.number().gt(0).max(1).default(1e-8).describe('AdamW denominator term'),
  gradClip: z.number().min(0).default(1).describe('clip the global gradient norm to this; 0 = no clipping'),
  optimizerFromStart: z
    .boolean()
    .default(false)
    .describe('start AdamW from the moments in the starting checkpoint\'s optimizer.safetensors (an SFT checkpoint has one), instead of zeros'),
};

/** Seed, evaluation, logging, checkpoint and report cadences, and the run folder (default `outDir`). */
export function runFields(outDir: string) {
  return {
    seed: int().default(0).describe('seed of prompt order and sampling'),
    evalEvery: int().min(0).default(10).describe('evaluate every N steps, and before the first and after the last; 0 = only before and after'),
    evalSize: int().min(1).default(500).describe('held-out prompts per evaluation (the first N)'),
    evalBatchSize: int().min(1).max(65536).default(256).describe('prompts per greedy-generation batch during evaluation'),
    logEvery: int().min(1).default(1).describe('write a metrics line every N steps (the metrics of that step)'),
    logSamples: int().min(0).max(1000).default(4).describe('eval completions written to samples.jsonl and the console at each evaluation'),
    saveEvery: int().min(0).default(25).describe('write checkpoint-<step> every N steps (and on Ctrl-C, SIGTERM or SIGHUP); 0 = only the final checkpoint'),
    saveTotalLimit: saveTotalLimitField,
    report: z.boolean().default(true).describe('write report.html into outDir at the end'),
    outDir: z.string().min(1).default(outDir).describe('run folder: metrics.jsonl, samples.jsonl, config.json, checkpoints, final/, report.html'),
  };
}

const RlConfigSchema = z.object({ ...rolloutFields, ...optimizerFields, ...runFields('runs/rl') });
/** The shared fields as a trainer's parsed config holds them. */
export type RlConfig = z.output<typeof RlConfigSchema>;
export type RlRewardEntry = RlConfig['rewards'][number];

/** The cross-field checks of the shared fields (data sources, reward names); one problem per line. */
export function rlCrossFieldProblems(c: RlConfig): string[] {
  const p: string[] = [];
  const { trainFile, testFile, generate } = c.data;
  if (trainFile !== null && generate !== null) p.push('"data.trainFile" and "data.generate" are both set; keep one (set the other to null)');
  if (generate !== null && testFile !== null) p.push('"data.testFile" must be null with "data.generate" (the generator makes its own test split)');
  if (trainFile === null && generate === null && c.model.modelDir !== null) {
    p.push('"data" needs a source when "model.modelDir" is set: "data.trainFile" (JSONL) or "data.generate" (the warm-start preset\'s data is only the default for the warm-started model)');
  }
  if (testFile !== null && trainFile === null) p.push('"data.testFile" needs "data.trainFile"');
  if (trainFile === null) {
    const d = c.data;
    const set = [
      ...(Object.keys(d.columns).length ? ['columns'] : []),
      ...(d.format !== 'prompt' ? ['format'] : []),
      ...(d.chat ? ['chat'] : []),
      ...(d.system !== null ? ['system'] : []),
      ...(d.enableThinking !== null ? ['enableThinking'] : []),
      ...(d.maxRows !== null ? ['maxRows'] : []),
    ];
    if (set.length) p.push(`${set.map((k) => `"data.${k}"`).join(', ')} ${set.length === 1 ? 'applies' : 'apply'} to data files and need "data.trainFile" (the generated arithmetic data is plain text for a character tokenizer)`);
  }
  if (generate) {
    const [lo = 1, hi = 1] = generate.digits;
    if (lo > hi) p.push(`"data.generate.digits" must be [min, max] with min <= max, got [${lo}, ${hi}]`);
  }
  const seen = new Set<string>();
  c.rewards.forEach((r, i) => {
    if (r.name !== null) {
      if (seen.has(r.name)) p.push(`"rewards[${i}].name" repeats "${r.name}"; reward names must be unique`);
      seen.add(r.name);
    }
  });
  return p;
}
