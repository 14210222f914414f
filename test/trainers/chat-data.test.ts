/**
 * Conversational prompts in the RL trainers' shared stages: the real Qwen3 chat template
 * renders them with the generation prompt (enable_thinking as a template variable, refused
 * by a template without that switch), the reward batch carries TRL's form, and
 * loadPromptData reads dataset folders with their held-out split and the data options.
 */
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { collectColumnMap } from '../../scripts/commands/rl-command.ts';
import { TransformersTokenizer, type Tokenizer } from '../../src/lm/tokenizer.ts';
import { arithmeticTokenizer } from '../../src/trainers/from-scratch.ts';
import { parseGrpoConfig } from '../../src/trainers/grpo-config.ts';
import { encodePromptRows, type PromptRow } from '../../src/trainers/prompts.ts';
import { loadPromptData, rewardBatch } from '../../src/trainers/rollout.ts';
import { GSM8K_MINI, splits } from '../fixtures/datasets/make-gsm8k-mini.ts';
import { qwen3TokenizerDir } from '../lm/real-tokenizer.ts';

const TINY_BPE = join(import.meta.dirname, '..', 'fixtures', 'tokenizers', 'tiny-bpe');
const limits = { maxPositions: 4096, vocabSize: 151936, maxCompletionLength: 8 };
const chatRow = (templateVariables?: Record<string, unknown>): PromptRow => ({
  prompt: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'What is 2+2?' }],
  columns: { answer: '4' },
  source: 'chat.jsonl:1',
  ...(templateVariables ? { templateVariables } : {}),
});

let qwen: Tokenizer;
beforeAll(async () => {
  qwen = await TransformersTokenizer.load(await qwen3TokenizerDir());
}, 60_000);

describe('rendering conversational prompts', () => {
  it('the Qwen3 template renders the messages with the generation prompt, encoded without extra special tokens', () => {
    const [row] = encodePromptRows([chatRow()], qwen, limits);
    const chatml = '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n';
    expect(row!.promptText).toBe(chatml);
    expect(row!.promptIds).toEqual(qwen.encode(chatml, { addSpecialTokens: false }));
    expect(row!.promptIds.slice(0, 1)).toEqual([151644]); // <|im_start|>, no BOS in front
    // enable_thinking = false: Qwen3's template writes an empty thinking block after the header.
    const [off] = encodePromptRows([chatRow({ enable_thinking: false })], qwen, limits);
    expect(off!.promptText).toBe(`${chatml}<think>\n\n</think>\n\n`);
    expect(encodePromptRows([chatRow({ enable_thinking: true })], qwen, limits)[0]!.promptText).toBe(chatml);
    // Plain prompts are unchanged: the text itself.
    const [plain] = encodePromptRows([{ prompt: '2+2=', columns: {}, source: 'p:1' }], qwen, limits);
    expect(plain!.promptText).toBe('2+2=');
  });

  it('enable_thinking with a template that has no such switch, or messages with no template at all, are errors naming the row', async () => {
    const bpe = await TransformersTokenizer.load(TINY_BPE);
    const quiet = { ...limits, vocabSize: bpe.vocabSize, warn: () => {} }; // its 40-token vocabulary has no '<'
    expect(encodePromptRows([chatRow()], bpe, quiet)[0]!.promptText).toBe('<s><|system|>Be brief.<|end|><|user|>What is 2+2?<|end|><|assistant|>');
    expect(() => encodePromptRows([chatRow({ enable_thinking: false })], bpe, quiet)).toThrow(
      'chat.jsonl:1: enable_thinking = false is set, but this tokenizer\'s chat template does not read "enable_thinking" (it renders the same either way); unset it',
    );
    expect(() => encodePromptRows([chatRow()], arithmeticTokenizer(), { ...limits, vocabSize: 22 })).toThrow('chat.jsonl:1: the prompt is a list of chat messages, but the tokenizer has no chat template');
  });
});

describe('the reward batch of conversational prompts', () => {
  it('holds the prompt messages and each completion as [{ role: "assistant", content }] (TRL\'s form)', () => {
    const plain: PromptRow = { prompt: 'x', columns: { answer: '1' }, source: 'p:1' };
    const batch = rewardBatch([chatRow()], 2, ['4', 'four'], [[1], [2]]);
    expect(batch.prompts).toEqual([chatRow().prompt, chatRow().prompt]);
    expect(batch.completions).toEqual([[{ role: 'assistant', content: '4' }], [{ role: 'assistant', content: 'four' }]]);
    expect(batch['answer']).toEqual(['4', '4']);
    expect(rewardBatch([plain], 1, ['1'], [[1]]).completions).toEqual(['1']);
    expect(() => rewardBatch([chatRow(), plain], 1, ['a', 'b'], [[1], [2]])).toThrow('rewardBatch: p:1 and chat.jsonl:1 mix plain-text and conversational prompts in one batch');
  });
});

describe('loadPromptData', () => {
  const config = (data: Record<string, unknown>, extra: Record<string, unknown> = {}) => parseGrpoConfig({ model: { modelDir: 'm' }, data, ...extra });

  it('a dataset folder trains on data.split and evaluates on its test split, read up to evalSize rows', async () => {
    const { train, test } = await loadPromptData(config({ trainFile: join(GSM8K_MINI, 'parquet'), format: 'gsm8k' }, { evalSize: 3 }));
    expect(train.map((r) => r.prompt)).toEqual(splits().train.map(([q]) => q));
    expect(test.map((r) => r.prompt)).toEqual(splits().test.slice(0, 3).map(([q]) => q));
    const swapped = await loadPromptData(config({ trainFile: join(GSM8K_MINI, 'parquet'), format: 'gsm8k', split: 'test', evalSplit: 'train', maxRows: 2 }));
    expect(swapped.train).toHaveLength(2);
    expect(swapped.test).toHaveLength(12);
    // A single file has no held-out split; a test file is read as given.
    const file = join(GSM8K_MINI, 'chat', 'data', 'train-00000-of-00001.parquet');
    expect((await loadPromptData(config({ trainFile: file }))).test).toEqual([]);
    const both = await loadPromptData(config({ trainFile: file, testFile: join(GSM8K_MINI, 'chat', 'data', 'test-00000-of-00001.parquet'), enableThinking: false, system: 'S' }));
    expect(both.test).toHaveLength(4);
    for (const r of [...both.train, ...both.test]) {
      expect(r.templateVariables).toEqual({ enable_thinking: false });
      expect((r.prompt as Array<{ role: string }>).map((m) => m.role)).toEqual(['system', 'user']);
    }
  });

  it('enableThinking on plain-text prompts is an error naming the row; the data options need a data file', async () => {
    const jsonl = join(GSM8K_MINI, 'jsonl', 'train.jsonl');
    await expect(loadPromptData(config({ trainFile: jsonl, format: 'gsm8k', enableThinking: true }))).rejects.toThrow(`${jsonl}:1: "data.enableThinking" is set, but the prompts are plain text`);
    expect((await loadPromptData(config({ trainFile: jsonl, format: 'gsm8k', enableThinking: true, chat: true }))).train[0]!.templateVariables).toEqual({ enable_thinking: true });
    expect(() => parseGrpoConfig({ data: { system: 'S', format: 'gsm8k' } })).toThrow('"data.format", "data.system" apply to data files and need "data.trainFile"');
    expect(() => parseGrpoConfig({ data: { system: 'S' } })).toThrow('"data.system" applies to data files');
    expect(() => parseGrpoConfig({ model: { modelDir: 'm' }, data: { trainFile: jsonl, format: 'csv' } })).toThrow(/data\.format/);
  });

  it('--map flags merge, and a bad or repeated entry is a usage error', () => {
    const once = collectColumnMap('prompt=question', undefined);
    expect(collectColumnMap('answer=solution', once)).toEqual({ prompt: 'question', answer: 'solution' });
    expect(() => collectColumnMap('prompt=problem', once)).toThrow('column "prompt" is mapped twice');
    expect(() => collectColumnMap('prompt', undefined)).toThrow('column map entry "prompt" must be new=old');
  });
});
