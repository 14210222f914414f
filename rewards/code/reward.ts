/**
 * `codeReward`: the fraction of a row's test cases that the completion's program passes,
 * run in the sandbox.
 *
 * Code extraction (`extractCode`): the last fenced block tagged with the language
 * (```python / ```py, or ```javascript / ```js / ```node / ```mjs), else the last fenced
 * block with no tag, else the whole completion. The last block is taken because models
 * usually revise and state their final program last.
 *
 * The tests come from a dataset column (default `tests`): per row, an array of
 * `{ input, expectedOutput }`. A row whose tests are `null`/`undefined` or empty gets
 * `null` (not applicable). Every (completion, test) run of the batch shares one p-limit
 * queue of size `concurrency`.
 */
import pLimit from 'p-limit';
import { batchColumn, completionTexts, namedReward, type RewardBatch, type RewardContext, type RewardFunction, type RewardValue } from '../types.ts';
import type { Language } from './languages.ts';
import { runCodeWith, validateRunSettings, validateTests, type RunCodeOptions } from './run.ts';

const FENCE_TAGS: Record<Language, string[]> = {
  python: ['python', 'py', 'python3'],
  javascript: ['javascript', 'js', 'node', 'mjs', 'cjs'],
};

const FENCE = /```[ \t]*([\w+-]*)[^\n]*\n([\s\S]*?)```/g;

/** The program in `completion` for `language` (see the file header). */
export function extractCode(completion: string, language: Language): string {
  let tagged: string | null = null;
  let untagged: string | null = null;
  for (const m of completion.matchAll(FENCE)) {
    const tag = (m[1] ?? '').toLowerCase();
    const body = m[2] ?? '';
    if (FENCE_TAGS[language].includes(tag)) tagged = body;
    else if (tag === '') untagged = body;
  }
  return tagged ?? untagged ?? completion;
}

export interface CodeRewardOptions extends Omit<RunCodeOptions, 'code' | 'tests' | 'signal' | 'language'> {
  /** Language of the programs. Default `'python'`. */
  language?: Language;
  /** Dataset column holding each row's tests. Default `'tests'`. */
  column?: string;
}

/** Pass fraction of the completion's program on its row's tests (sandboxed); see the file header. */
export function codeReward(options: CodeRewardOptions = {}): RewardFunction {
  const column = options.column ?? 'tests';
  const settings = validateRunSettings({ ...options, language: options.language ?? 'python' }, 'codeReward');
  return namedReward('code', async (batch: RewardBatch, context?: RewardContext): Promise<RewardValue[]> => {
    const rows = batchColumn(batch, column, 'code');
    const tests = rows.map((t, i) =>
      t === null || t === undefined ? null : validateTests(t, `code: column '${column}' row ${i}`),
    );
    const limit = pLimit(settings.concurrency);
    const run = context?.signal ? { ...settings, signal: context.signal } : settings;
    return Promise.all(
      completionTexts(batch).map(async (completion, i): Promise<RewardValue> => {
        const t = tests[i];
        if (t === null || t === undefined || t.length === 0) return null;
        const r = await runCodeWith(extractCode(completion, run.language), t, run, limit);
        return r.passed / r.total;
      }),
    );
  });
}
