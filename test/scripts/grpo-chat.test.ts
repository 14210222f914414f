/**
 * End to end: `rlvr grpo --model <a Qwen3 folder> --data <a chat-formatted .parquet>
 * --reward math` on a tiny random Qwen3 (Qwen3's 151936-row vocabulary, one 16-wide layer)
 * saved with the real Qwen3 tokenizer, through bin/rlvr.mjs as `npx rlvr` runs it, one step:
 * it runs, the math reward scores every completion without a failure, and samples.jsonl
 * shows each prompt as the chat template renders it (system message, generation prompt,
 * the empty thinking block of --no-thinking). In-process, the reward functions are handed
 * TRL's conversational batch: the prompt's messages and [{ role: 'assistant', content }].
 *
 * The wasm backend: tfjs's cpu backend takes minutes on the embedding gradient of a
 * 151936-row vocabulary.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadRewardFunction, type RewardBatch, type RewardSpec } from '../../rewards/index.ts';
import { Rng } from '../../src/core/rng.ts';
import { initEngine } from '../../src/engine/tfjs/backend.ts';
import { saveCausalLM } from '../../src/lm/checkpoint.ts';
import { tinyQwen3Config } from '../../src/lm/config.ts';
import { CausalLM } from '../../src/lm/model.ts';
import { loadTokenizer, type Tokenizer } from '../../src/lm/tokenizer.ts';
import { readMetrics, readSamples } from '../../src/report/metrics.ts';
import { trainGrpo } from '../../src/trainers/grpo.ts';
import { parseGrpoConfig } from '../../src/trainers/grpo-config.ts';
import { GSM8K_MINI, splits } from '../fixtures/datasets/make-gsm8k-mini.ts';
import { qwen3TokenizerDir } from '../lm/real-tokenizer.ts';
import { runCli } from './cli-helpers.ts';

const TRAIN = join(GSM8K_MINI, 'chat', 'data', 'train-00000-of-00001.parquet');
const TEST = join(GSM8K_MINI, 'chat', 'data', 'test-00000-of-00001.parquet');
const SYSTEM = 'Reason briefly, then put the final answer in \\boxed{}.';

let dir: string;
let modelDir: string;
let tok: Tokenizer;

beforeAll(async () => {
  await initEngine({ backend: 'wasm', quiet: true });
  dir = mkdtempSync(join(tmpdir(), 'rlvr-grpo-chat-'));
  modelDir = join(dir, 'qwen3-tiny');
  tok = await loadTokenizer(await qwen3TokenizerDir());
  const config = tinyQwen3Config({
    vocab_size: 151936, hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, head_dim: 8,
    intermediate_size: 32, max_position_embeddings: 160, eos_token_id: 151645, pad_token_id: 151643, initializer_range: 0.02,
  });
  const model = CausalLM.create(config, new Rng(7));
  await saveCausalLM(model, tok, modelDir);
  model.dispose();
}, 120_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** What the Qwen3 template writes for a test question with the system message and --no-thinking, by hand. */
const rendered = (question: string): string =>
  `<|im_start|>system\n${SYSTEM}<|im_end|>\n<|im_start|>user\n${question}<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n`;

describe('rlvr grpo on a Qwen3 folder and a chat-formatted parquet file', () => {
  it('runs, scores with math, and logs the prompts as the chat template renders them', async () => {
    const out = join(dir, 'run-cli');
    const r = await runCli([
      'grpo', '--model', modelDir, '--data', TRAIN, '--eval-data', TEST, '--reward', 'math', '--out', out, '--steps', '1',
      '--system', SYSTEM, '--no-thinking', '--backend', 'wasm', '--engine', 'tfjs',
      '--set', 'promptsPerStep=2', '--set', 'numGenerations=2', '--set', 'maxCompletionLength=4', '--set', 'evalSize=2',
      '--set', 'beta=0', '--set', 'warmupSteps=0', '--set', 'report=false',
    ]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('grpo done: 1 steps');
    expect(r.stdout).toContain('data.enableThinking=false');

    const questions = splits().test.slice(0, 2).map(([q]) => q);
    const samples = readSamples(join(out, 'samples.jsonl'));
    expect(samples.map((s) => s.step)).toEqual([0, 0, 1, 1]);
    expect(samples.map((s) => s.prompt)).toEqual([...questions, ...questions].map(rendered));
    // The same text as the tokenizer's own template gives.
    expect(samples[0]!.prompt).toBe(tok.applyChatTemplate!([{ role: 'system', content: SYSTEM }, { role: 'user', content: questions[0]! }], { addGenerationPrompt: true, variables: { enable_thinking: false } }));
    for (const s of samples) expect([0, 1]).toContain(s.rewards['math']);

    const metrics = readMetrics(join(out, 'metrics.jsonl'));
    const step1 = metrics.find((m) => m.step === 1 && m['reward/math/errors'] !== undefined)!;
    expect(step1['reward/math/errors']).toBe(0);
    expect(existsSync(join(out, 'final', 'model.safetensors'))).toBe(true);
    expect(readFileSync(join(out, 'config.json'), 'utf8')).toContain(`"trainFile": ${JSON.stringify(TRAIN)}`);
  }, 180_000);

  it('reward functions receive the prompt messages and completions as [{ role: "assistant", content }]', async () => {
    const batches: RewardBatch[] = [];
    const spy: RewardSpec = { name: 'spy', fn: (b) => (batches.push(b), b.completions.map(() => 0)) };
    const rewards: RewardSpec[] = [{ name: 'math', fn: await loadRewardFunction('math') }, spy];
    const config = parseGrpoConfig({
      model: { modelDir }, data: { trainFile: TRAIN, system: SYSTEM, enableThinking: false }, engine: 'tfjs',
      steps: 1, promptsPerStep: 2, numGenerations: 2, maxCompletionLength: 3, beta: 0, warmupSteps: 0, report: false, saveEvery: 0,
      outDir: join(dir, 'run-spy'),
    });
    const result = await trainGrpo(config, { rewards, quiet: true, handleSigint: false });
    expect(result.step).toBe(1);
    const train = batches.find((b) => b.completions.length === 4)!; // 2 prompts x 2 completions (the column check's batch has 1)
    const questions = new Set(splits().train.map(([q]) => q));
    for (const [i, prompt] of train.prompts.entries()) {
      expect(prompt).toEqual([{ role: 'system', content: SYSTEM }, { role: 'user', content: expect.any(String) }]);
      expect(questions.has((prompt as Array<{ content: string }>)[1]!.content), `prompt ${i}`).toBe(true);
    }
    for (const c of train.completions) {
      expect(c).toEqual([{ role: 'assistant', content: expect.any(String) }]);
    }
    expect(train.completionIds).toHaveLength(4);
    expect(train['answer']).toHaveLength(4);
  }, 120_000);
});
