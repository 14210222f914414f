/**
 * loadPromptTable: plain and conversational prompts, malformed messages named by file, line
 * and field, system messages, column maps, the GSM8K adapter, and the committed gsm8k-mini
 * fixture read the same from JSONL, a Hub parquet folder and its chat-formatted parquet.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseMessages } from '../../datasets/chat.ts';
import { fromGsm8k, gsm8kFinalAnswer } from '../../datasets/gsm8k.ts';
import { loadPromptTable, mapColumns, parseColumnMap } from '../../datasets/prompts.ts';
import { GSM8K_MINI, splits } from '../fixtures/datasets/make-gsm8k-mini.ts';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'rlvr-prompt-data-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const jsonl = (name: string, rows: unknown[]): string => {
  const p = join(dir, name);
  writeFileSync(p, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return p;
};
const user = (content: string) => ({ role: 'user', content });

describe('conversational prompts', () => {
  it('a list of messages is a conversational prompt; the other columns go to the rewards', async () => {
    const p = jsonl('chat.jsonl', [
      { prompt: [{ role: 'system', content: 'Be brief.', name: 'x' }, user('2+2?')], answer: '4' },
      { prompt: [user('3+4?')], answer: '7' },
    ]);
    const t = await loadPromptTable(p);
    expect(t.conversational).toBe(true);
    expect(t.rows).toEqual([
      { prompt: [{ role: 'system', content: 'Be brief.' }, user('2+2?')], columns: { answer: '4' }, source: `${p}:1` },
      { prompt: [user('3+4?')], columns: { answer: '7' }, source: `${p}:2` },
    ]);
  });

  it('malformed messages are errors naming the file, the line and the field', async () => {
    const cases: Array<[unknown, string]> = [
      [[user('a'), { role: 'user', content: null }], ':2: "prompt[1].content" must be a string, got null'],
      [[{ content: 'a' }], ':2: "prompt[0].role" must be a non-empty string, got undefined'],
      [[{ role: '', content: 'a' }], ':2: "prompt[0].role" must be a non-empty string, got an empty string'],
      [[user('a'), 'b'], ':2: "prompt[1]" must be a { role, content } message, got a string'],
      [[], ':2: "prompt" is an empty list of messages'],
      [[user('a'), { role: 'assistant', content: 'b' }], ':2: "prompt" ends with an assistant message'],
      [{ role: 'user', content: 'a' }, ':2: column "prompt" must be a string or a list of { role, content } messages, got object'],
      [7, ':2: column "prompt" must be a string or a list of { role, content } messages, got number'],
    ];
    for (const [i, [prompt, message]] of cases.entries()) {
      const p = jsonl(`bad-${i}.jsonl`, [{ prompt: [user('fine')] }, { prompt }]);
      await expect(loadPromptTable(p), JSON.stringify(prompt)).rejects.toThrow(`${p}${message}`);
    }
    expect(() => parseMessages('x', 'here', 'messages')).toThrow('here: "messages" must be a string or a list of { role, content } messages, got a string');
  });

  it('a data set mixing plain and conversational prompts names both rows', async () => {
    const p = jsonl('mixed.jsonl', [{ prompt: 'a' }, { prompt: [user('b')] }]);
    await expect(loadPromptTable(p)).rejects.toThrow(`${p}:2: a conversational prompt, but ${p}:1 has a plain-text prompt; a data set holds one kind or the other`);
  });

  it('system puts a system message first (plain prompts become [system, user]); chat turns plain prompts into user messages', async () => {
    const plain = jsonl('plain.jsonl', [{ prompt: 'a' }, { prompt: 'b' }]);
    expect((await loadPromptTable(plain)).rows.map((r) => r.prompt)).toEqual(['a', 'b']);
    expect((await loadPromptTable(plain, { chat: true })).rows.map((r) => r.prompt)).toEqual([[user('a')], [user('b')]]);
    const sys = { role: 'system', content: 'S' };
    const withSystem = await loadPromptTable(plain, { system: 'S' });
    expect(withSystem.conversational).toBe(true);
    expect(withSystem.rows.map((r) => r.prompt)).toEqual([[sys, user('a')], [sys, user('b')]]);
    const chat = jsonl('own-system.jsonl', [{ prompt: [{ role: 'system', content: 'own' }, user('a')] }, { prompt: [user('b')] }]);
    expect((await loadPromptTable(chat, { system: 'S' })).rows.map((r) => r.prompt)).toEqual([[{ role: 'system', content: 'own' }, user('a')], [sys, user('b')]]);
  });

  it('rows keep the same columns and no reserved name, as before', async () => {
    const ragged = jsonl('ragged.jsonl', [{ prompt: 'a', answer: '1' }, { prompt: 'b' }]);
    await expect(loadPromptTable(ragged)).rejects.toThrow(`${ragged}:2: missing column "answer" (line 1 has it;`);
    const reserved = jsonl('reserved.jsonl', [{ prompt: 'a', completions: 1 }]);
    await expect(loadPromptTable(reserved)).rejects.toThrow(`${reserved}:1: column "completions" is reserved for the reward batch itself`);
    const empty = join(dir, 'empty.jsonl');
    writeFileSync(empty, '\n');
    await expect(loadPromptTable(empty)).rejects.toThrow(`${empty}: no prompts (the file is empty)`);
  });
});

describe('column maps', () => {
  it('renames columns all at once (so a swap works) and names a missing or clashing column', async () => {
    expect(mapColumns({ question: 'q', solution: 's', id: 1 }, { prompt: 'question', answer: 'solution' }, 'w')).toEqual({ id: 1, prompt: 'q', answer: 's' });
    expect(mapColumns({ a: 1, b: 2 }, { a: 'b', b: 'a' }, 'w')).toEqual({ a: 2, b: 1 });
    expect(() => mapColumns({ q: 1 }, { prompt: 'question' }, 'f:3')).toThrow('f:3: no column "question" to map to "prompt" (columns: q)');
    expect(() => mapColumns({ question: 1, prompt: 2 }, { prompt: 'question' }, 'f:3')).toThrow('f:3: mapping "question" to "prompt", but the row already has a "prompt" column');
    const p = jsonl('qa.jsonl', [{ question: 'a', solution: '1' }]);
    expect((await loadPromptTable(p, { columns: { prompt: 'question', answer: 'solution' } })).rows[0]).toEqual({ prompt: 'a', columns: { answer: '1' }, source: `${p}:1` });
    await expect(loadPromptTable(p)).rejects.toThrow(`${p}:1: missing required column "prompt" (columns: question, solution; name the prompt column with --map prompt=<column>)`);
  });

  it('parses --map new=old,new=old', () => {
    expect(parseColumnMap('prompt=question, answer = solution')).toEqual({ prompt: 'question', answer: 'solution' });
    expect(() => parseColumnMap('prompt')).toThrow('column map entry "prompt" must be new=old, e.g. prompt=question');
    expect(() => parseColumnMap('a=b,a=c')).toThrow('column map names "a" twice');
    expect(() => parseColumnMap(',')).toThrow('holds no new=old entries');
  });
});

describe('GSM8K', () => {
  it('reads the number after the last ####', () => {
    expect(gsm8kFinalAnswer('3 * 12 = 36\n#### 36')).toBe('36');
    expect(gsm8kFinalAnswer('...\n#### 1,820')).toBe('1820');
    expect(gsm8kFinalAnswer('#### -7')).toBe('-7');
    expect(gsm8kFinalAnswer('#### 29.25')).toBe('29.25');
    expect(gsm8kFinalAnswer('#### $270.')).toBe('270');
    expect(gsm8kFinalAnswer('no marker, 42')).toBeNull();
    expect(gsm8kFinalAnswer('#### forty-two')).toBeNull();
    expect(gsm8kFinalAnswer('#### 12,34')).toBeNull();
  });

  it('a row becomes prompt = question, answer = the number, solution = the worked answer; bad rows name the row and field', () => {
    expect(fromGsm8k({ question: 'Q?', answer: 'a\n#### 5', id: 3 }, 'w')).toEqual({ prompt: 'Q?', answer: '5', solution: 'a\n#### 5', id: 3 });
    expect(() => fromGsm8k({ question: 'Q?', answer: 'five' }, 'f row 2')).toThrow('f row 2: "answer" does not end in "#### <number>" (it ends "five")');
    expect(() => fromGsm8k({ problem: 'Q?', answer: '#### 5' }, 'f row 2')).toThrow('f row 2: GSM8K rows need a "question" string, got no such column (columns: problem, answer; rename with --map question=<column>)');
    expect(() => fromGsm8k({ question: 'Q?', answer: 5 }, 'f row 2')).toThrow('f row 2: GSM8K rows need an "answer" string ending in "#### <number>", got number');
  });

  it('the fixture reads the same from JSONL, from the Hub parquet folder, and (prompts as messages) from the chat parquet', async () => {
    const fromJsonl = await loadPromptTable(join(GSM8K_MINI, 'jsonl', 'train.jsonl'), { format: 'gsm8k' });
    const fromFolder = await loadPromptTable(join(GSM8K_MINI, 'parquet'), { format: 'gsm8k' });
    const strip = (t: typeof fromJsonl) => t.rows.map(({ prompt, columns }) => ({ prompt, columns }));
    expect(strip(fromFolder)).toEqual(strip(fromJsonl));
    expect(fromJsonl.rows.map((r) => r.columns['answer'])).toEqual(['27', '270', '16', '775', '1820', '360', '16', '1960', '29.25', '80', '16', '60']);
    expect(fromFolder.split).toBe('train');
    const test = await loadPromptTable(join(GSM8K_MINI, 'parquet'), { format: 'gsm8k', split: 'test' });
    expect(test.rows.map((r) => r.prompt)).toEqual(splits().test.map(([q]) => q));

    const chat = await loadPromptTable(join(GSM8K_MINI, 'chat', 'data', 'train-00000-of-00001.parquet'));
    expect(chat.conversational).toBe(true);
    expect(chat.rows.map((r) => r.prompt)).toEqual(fromJsonl.rows.map((r) => [user(r.prompt as string)]));
    expect(chat.rows.map((r) => r.columns)).toEqual(fromJsonl.rows.map((r) => ({ answer: r.columns['answer'] })));

    // Without the format, the error says which one these rows look like.
    await expect(loadPromptTable(join(GSM8K_MINI, 'parquet'))).rejects.toThrow('row 0: missing required column "prompt" (these look like GSM8K rows: pass --format gsm8k)');
  });
});
