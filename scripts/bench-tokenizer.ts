/**
 * Tokenizer throughput: the native CharTokenizer against transformers.js running the
 * tokenizer.json it saves (same ids), on arithmetic prompts + completions.
 *
 *   npx tsx scripts/bench-tokenizer.ts [count]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateArithmetic } from '../datasets/arithmetic/generate.ts';
import { arithmeticTokenizer } from '../src/trainers/from-scratch.ts';
import { TransformersTokenizer, type Tokenizer } from '../src/lm/tokenizer.ts';

const count = Number(process.argv[2] ?? 20000);
const texts = generateArithmetic({ count, seed: 0, operations: ['+', '-', '*'], digits: [1, 3], format: 'answer-tag' }).map((e) => e.prompt + e.completion);

const dir = await mkdtemp(join(tmpdir(), 'rlvr-bench-tok-'));
const native = arithmeticTokenizer();
await native.save(dir);
const hf = await TransformersTokenizer.load(dir);

/** Best of 5 timed runs after a warm-up, in seconds (the machine is shared and noisy). */
function time(fn: () => void): number {
  fn();
  let best = Infinity;
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    fn();
    best = Math.min(best, (performance.now() - t0) / 1000);
  }
  return best;
}

const genSeconds = time(() => generateArithmetic({ count, seed: 1, operations: ['+', '-', '*'], digits: [1, 3], format: 'answer-tag' }));
const rows: Array<[string, string, string]> = [];
for (const [name, tok] of [
  ['CharTokenizer (native)', native],
  ['transformers.js, same tokenizer.json', hf],
] as Array<[string, Tokenizer]>) {
  const encoded = texts.map((t) => tok.encode(t));
  const enc = time(() => texts.forEach((t) => tok.encode(t)));
  const dec = time(() => encoded.forEach((ids) => tok.decode(ids, { skipSpecialTokens: true })));
  rows.push([name, `${((count / enc) / 1000).toFixed(0)}k`, `${((count / dec) / 1000).toFixed(0)}k`]);
}
await rm(dir, { recursive: true, force: true });

const avgLen = texts.reduce((s, t) => s + t.length, 0) / texts.length;
console.log(`${count} arithmetic texts, ${avgLen.toFixed(1)} characters on average; generator: ${((count / genSeconds) / 1000).toFixed(0)}k problems/s\n`);
console.log('| tokenizer | encode texts/s | decode texts/s |');
console.log('| --- | --- | --- |');
for (const r of rows) console.log(`| ${r.join(' | ')} |`);
