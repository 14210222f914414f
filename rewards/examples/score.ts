/**
 * Scores a small batch with a built-in reward and the custom `length-penalty.ts`.
 * Run: npx tsx rewards/examples/score.ts
 */
import { fileURLToPath } from 'node:url';
import { loadRewardFunction, rewardMetrics, scoreCompletions, type RewardBatch } from '../index.ts';

const here = fileURLToPath(new URL('.', import.meta.url));

const batch: RewardBatch = {
  prompts: ['What is 2 + 3?', 'What is 2 + 3?', 'What is 7 * 6?'],
  completions: ['<think>2 + 3 = 5</think><answer>5</answer>', 'It is 6', '<think>7 * 6 = 42</think><answer>42</answer>'],
  completionIds: [new Array(12).fill(0), new Array(3).fill(0), new Array(30).fill(0)],
  answer: ['5', '5', '42'],
  targetLength: [20, 20, 20],
};

const result = await scoreCompletions(batch, [
  { name: 'numeric', fn: await loadRewardFunction('numeric') },
  { name: 'format', fn: await loadRewardFunction('format'), weight: 0.5 },
  { name: 'length', fn: await loadRewardFunction('./length-penalty.ts', { baseDir: here }), weight: 0.2 },
]);
console.log('rewards   ', Array.from(result.rewards));
console.log('per reward', result.perFunction);
console.log('metrics   ', rewardMetrics(result));
