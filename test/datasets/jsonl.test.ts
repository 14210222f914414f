import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadJsonl, parseJsonl, writeJsonl } from '../../datasets/jsonl.ts';

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'rlvr-jsonl-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('parseJsonl', () => {
  it('reads objects, skipping blank lines, with CRLF line ends and a byte-order mark', () => {
    const text = '\uFEFF{"prompt":"1+1=","answer":"2"}\r\n\r\n   \n{"prompt":"2+2=","answer":"4","extra":[1]}\n';
    expect(parseJsonl(text)).toEqual([
      { prompt: '1+1=', answer: '2' },
      { prompt: '2+2=', answer: '4', extra: [1] },
    ]);
    expect(parseJsonl('')).toEqual([]);
  });

  it('names the line (blank lines counted) and the JSON problem', () => {
    const text = '{"prompt":"a","answer":"b"}\n\n{"prompt": "a",\n';
    expect(() => parseJsonl(text, { source: 'd.jsonl' })).toThrow(/^d\.jsonl:3: invalid JSON \(/);
  });

  it('rejects lines that are not objects, naming what they are', () => {
    expect(() => parseJsonl('{}\n[1,2]', { source: 'f' })).toThrow('f:2: expected a JSON object, got array');
    expect(() => parseJsonl('3', { source: 'f' })).toThrow('f:1: expected a JSON object, got number');
    expect(() => parseJsonl('null', { source: 'f' })).toThrow('f:1: expected a JSON object, got null');
    expect(() => parseJsonl('"x"', { source: 'f' })).toThrow('f:1: expected a JSON object, got string');
  });

  it('checks required columns: presence (null counts as missing) and kind', () => {
    const required = { prompt: 'string', answer: 'string' } as const;
    expect(() => parseJsonl('{"prompt":"a","answer":"b"}\n{"prompt":"a"}', { source: 'f', requiredColumns: required })).toThrow('f:2: missing required column "answer"');
    expect(() => parseJsonl('{"prompt":"a","answer":null}', { source: 'f', requiredColumns: required })).toThrow('f:1: missing required column "answer"');
    expect(() => parseJsonl('{"prompt":"a","answer":4}', { source: 'f', requiredColumns: required })).toThrow('f:1: column "answer" must be a string, got number');
    expect(() => parseJsonl('{"tags":{}}', { source: 'f', requiredColumns: { tags: 'array' } })).toThrow('f:1: column "tags" must be an array, got object');
    // the list form checks presence only
    expect(parseJsonl('{"prompt":"a","answer":4}', { requiredColumns: ['prompt', 'answer'] })).toEqual([{ prompt: 'a', answer: 4 }]);
    expect(() => parseJsonl('{"prompt":"a"}', { source: 'f', requiredColumns: ['prompt', 'answer'] })).toThrow('f:1: missing required column "answer"');
  });
});

describe('loadJsonl / writeJsonl', () => {
  it('round-trips rows through a file, creating parent folders, leaving no temporary file', async () => {
    const rows = [
      { prompt: '1+2=', answer: '3', a: 1, nested: { x: [1, 'two', null] } },
      { prompt: 'é😀\n"quoted"', answer: '-0.5' },
    ];
    const path = join(work, 'a', 'b', 'rows.jsonl');
    await writeJsonl(path, rows);
    const text = await readFile(path, 'utf8');
    expect(text.split('\n')).toHaveLength(3); // two lines and the final newline
    expect(await loadJsonl(path, { requiredColumns: { prompt: 'string', answer: 'string' } })).toEqual(rows);
    expect(await readdir(join(work, 'a', 'b'))).toEqual(['rows.jsonl']);
  });

  it('reports errors of a file with its path and line', async () => {
    const path = join(work, 'bad.jsonl');
    await writeFile(path, '{"prompt":"a","answer":"b"}\n{"prompt":"c"}\n');
    await expect(loadJsonl(path, { requiredColumns: ['prompt', 'answer'] })).rejects.toThrow(`${path}:2: missing required column "answer"`);
    await expect(loadJsonl(join(work, 'missing.jsonl'))).rejects.toThrow(/cannot read .*missing\.jsonl/);
  });

  it('refuses rows JSON cannot hold, and leaves an existing file untouched', async () => {
    const path = join(work, 'keep.jsonl');
    await writeJsonl(path, [{ prompt: 'old' }]);
    await expect(writeJsonl(path, [{ prompt: 'x' }, { prompt: 'y', score: Number.NaN }])).rejects.toThrow(/row 1, key "score" is NaN/);
    await expect(writeJsonl(path, [{ prompt: 'x' }, [1, 2]])).rejects.toThrow(/row 1 must be an object, got array/);
    await expect(writeJsonl(path, [{ n: 1n } as object])).rejects.toThrow(/row 0, key "n" is a bigint/);
    expect(await loadJsonl(path)).toEqual([{ prompt: 'old' }]);
    await writeJsonl(path, []);
    expect(await readFile(path, 'utf8')).toBe('');
  });
});
