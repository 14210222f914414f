/**
 * Evaluation on held-out data, shared by the trainers.
 *
 * RL trainers (GRPO, PPO): greedy completions of the held-out prompts, scored by every
 * reward function; a prompt counts as correct when the reward named `accuracyReward` gives
 * it >= 1 (`eval/accuracy`). Greedy decoding makes the figure a property of the policy, not
 * of a sampling draw, and the same for every algorithm compared on it.
 *
 * SFT: exact match of a greedy completion against the example's answer (`exactMatch`).
 */
import { ANSWER_CLOSE, ANSWER_OPEN } from '../../datasets/arithmetic/generate.ts';
import type { RewardError, ScoreOptions } from '../../rewards/combine.ts';
import type { RewardSpec, RewardValue } from '../../rewards/types.ts';
import { Rng } from '../core/rng.ts';
import type { Sampler } from '../lm/sampler.ts';
import type { Tokenizer } from '../lm/tokenizer.ts';
import type { EncodedPromptRow, SftExample } from './prompts.ts';
import { sampleRollout, scoreRollout } from './rollout.ts';
import type { RunOutput } from './run.ts';
import { METRIC_NAMES } from '../report/metric-names.ts';

export interface PromptEvalSample {
  prompt: string;
  completion: string;
  rewards: Record<string, RewardValue>;
}

export interface PromptEvalResult {
  /** Fraction of prompts whose greedy completion gets >= 1 from the accuracy reward. */
  accuracy: number;
  /** Mean combined reward of the greedy completions. */
  meanReward: number;
  numExamples: number;
  samples: PromptEvalSample[];
  /** The reward functions' failures on these completions (rewards/combine.ts). */
  errors: RewardError[];
}

/**
 * Greedy completions of `rows`, scored by every reward function; accuracy is decided by
 * the reward named `accuracyReward` (value >= 1 = correct).
 */
export async function evaluatePrompts(
  sampler: Sampler,
  tokenizer: Tokenizer,
  rows: EncodedPromptRow[],
  rewards: RewardSpec[],
  options: { maxCompletionLength: number; batchSize: number; accuracyReward: string; score?: ScoreOptions },
): Promise<PromptEvalResult> {
  if (rows.length === 0) throw new Error('evaluatePrompts: no rows to evaluate');
  if (!rewards.some((r) => r.name === options.accuracyReward)) {
    throw new Error(`evaluatePrompts: accuracyReward "${options.accuracyReward}" is not one of the rewards (${rewards.map((r) => r.name).join(', ')})`);
  }
  const rollout = await sampleRollout(sampler, tokenizer, rows, {
    numGenerations: 1,
    maxCompletionLength: options.maxCompletionLength,
    temperature: 0,
    topP: 1,
    topK: 0,
    batchSize: options.batchSize,
    rng: new Rng(0), // greedy: no draw depends on it
  });
  const scored = await scoreRollout(rollout, rewards, options.score);
  const values = scored.perFunction[options.accuracyReward]!;
  let correct = 0;
  let total = 0;
  const samples = rows.map((row, i) => {
    if ((values[i] ?? 0) >= 1) correct++;
    total += scored.rewards[i]!;
    const r: Record<string, RewardValue> = {};
    for (const [name, vs] of Object.entries(scored.perFunction)) r[name] = vs[i] ?? null;
    return { prompt: row.promptText, completion: rollout.texts[i]!, rewards: r }; // the prompt as the model saw it (chat template applied)
  });
  return { accuracy: correct / rows.length, meanReward: total / rows.length, numExamples: rows.length, samples, errors: scored.errors };
}

/**
 * The run loop's `evaluate` for an RL trainer: `evaluatePrompts` on the held-out rows, logged
 * with `logPromptEvaluation`, each result handed to `onResult` (with the output, for its
 * reward failures); null without held-out rows.
 */
export function promptEvaluator(
  sampler: Sampler,
  setup: { tokenizer: Tokenizer; evalRows: EncodedPromptRow[]; rewards: RewardSpec[]; accuracyReward: string; scoreOptions: ScoreOptions },
  config: { maxCompletionLength: number; evalBatchSize: number; logSamples: number },
  onResult: (at: number, r: PromptEvalResult, out: RunOutput) => void,
): ((at: number, out: RunOutput) => Promise<void>) | null {
  if (setup.evalRows.length === 0) return null;
  return async (at, out) => {
    const r = await evaluatePrompts(sampler, setup.tokenizer, setup.evalRows, setup.rewards, {
      maxCompletionLength: config.maxCompletionLength,
      batchSize: config.evalBatchSize,
      accuracyReward: setup.accuracyReward,
      score: setup.scoreOptions,
    });
    onResult(at, r, out);
    logPromptEvaluation(at, r, config.logSamples, out);
  };
}

/** Writes an RL evaluation to the run's logs: `eval/accuracy`, the first `logSamples` completions (samples.jsonl and the console). */
export function logPromptEvaluation(at: number, r: PromptEvalResult, logSamples: number, out: RunOutput): void {
  out.metrics.log(at, { [METRIC_NAMES.eval.accuracy]: r.accuracy });
  out.progress.update(at, { [METRIC_NAMES.eval.accuracy]: r.accuracy });
  out.log(`step ${at}: eval/accuracy ${(100 * r.accuracy).toFixed(1)}% on ${r.numExamples} held-out prompts (mean reward ${r.meanReward.toFixed(3)})`);
  for (const s of r.samples.slice(0, logSamples)) {
    out.samples.log({ step: at, prompt: s.prompt, completion: s.completion, rewards: s.rewards });
    const rw = Object.entries(s.rewards).map(([k, v]) => `${k}=${v === null ? 'null' : Number(v.toFixed(3))}`).join(' ');
    out.log(`  ${JSON.stringify(s.prompt)} -> ${JSON.stringify(s.completion)}  ${rw}`);
  }
}

/** The text inside the last `<answer>...</answer>` of `text`, or null when there is none. */
export function extractTaggedAnswer(text: string): string | null {
  const open = text.lastIndexOf(ANSWER_OPEN);
  if (open < 0) return null;
  const close = text.indexOf(ANSWER_CLOSE, open + ANSWER_OPEN.length);
  return close < 0 ? null : text.slice(open + ANSWER_OPEN.length, close);
}

/**
 * Whether a generated completion (decoded, special tokens dropped) matches the example.
 * When the reference completion uses `<answer>` tags, the generated one must too, and the
 * text inside its last tag pair is compared; otherwise the whole completion is. The
 * reference is the example's `answer` when it has one, else its completion (the inside of
 * its tags when tagged). Both sides are compared after trimming surrounding white space.
 */
export function exactMatch(generated: string, example: Pick<SftExample, 'completion' | 'answer'>): boolean {
  const tagged = example.completion.includes(ANSWER_OPEN);
  const predicted = tagged ? extractTaggedAnswer(generated) : generated;
  if (predicted === null) return false;
  const gold = example.answer ?? (tagged ? (extractTaggedAnswer(example.completion) ?? example.completion) : example.completion);
  return predicted.trim() === gold.trim();
}
