/**
 * readTable: JSONL, JSON and Parquet files and Hugging Face dataset folders read into rows
 * named by file and row; the memory budget refusing data that would not fit; parquet values
 * as plain data (INT64, nested messages, GZIP pages); errors that name what is wrong.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { parquetWriteFile } from 'hyparquet-writer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { datasetSplits, pickEvalSplit, readTable, splitFiles, splitOfFileName } from '../../datasets/table.ts';
import { GSM8K_MINI, splits } from '../fixtures/datasets/make-gsm8k-mini.ts';
import { writeParquet } from './parquet-writer.ts';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'rlvr-table-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const write = (name: string, text: string): string => {
  const p = join(dir, name);
  mkdirSync(join(p, '..'), { recursive: true });
  writeFileSync(p, text);
  return p;
};
const values = (t: Awaited<ReturnType<typeof readTable>>) => t.rows.map((r) => r.values);

describe('files', () => {
  it('JSONL: blank lines skipped, BOM and CRLF accepted, rows named file:line', async () => {
    const p = write('a.jsonl', '\uFEFF{"q": 1}\r\n\r\n{"q": 2}\n\n{"q": 3}');
    const t = await readTable(p);
    expect(values(t)).toEqual([{ q: 1 }, { q: 2 }, { q: 3 }]);
    expect(t.rows.map((r) => r.source)).toEqual([`${p}:1`, `${p}:3`, `${p}:5`]);
    expect(t.split).toBeNull();
    expect(values(await readTable(p, { maxRows: 2 }))).toEqual([{ q: 1 }, { q: 2 }]);
    await expect(readTable(write('bad.jsonl', '{"q": 1}\n{"q": \n'))).rejects.toThrow(`${join(dir, 'bad.jsonl')}:2: invalid JSON`);
    await expect(readTable(write('arr.jsonl', '{"q": 1}\n[1]\n'))).rejects.toThrow(`${join(dir, 'arr.jsonl')}:2: expected a JSON object, got array`);
  });

  it('JSON: an array of objects (rows named file[i]), or JSON Lines under a .json name', async () => {
    const p = write('a.json', ' [{"q": 1}, {"q": 2}]');
    const t = await readTable(p);
    expect(values(t)).toEqual([{ q: 1 }, { q: 2 }]);
    expect(t.rows[1]!.source).toBe(`${p}[1]`);
    expect(values(await readTable(write('lines.json', '{"q": 1}\n{"q": 2}\n')))).toEqual([{ q: 1 }, { q: 2 }]);
    await expect(readTable(write('b.json', '[{"q": 1}, 7]'))).rejects.toThrow(`${join(dir, 'b.json')}[1]: expected a JSON object, got number`);
    await expect(readTable(write('c.json', '[{"q": 1},'))).rejects.toThrow(`${join(dir, 'c.json')}: invalid JSON`);
  });

  it('Parquet: the same rows as the JSONL, across row groups, rows named "file row i" from 0', async () => {
    const jsonl = await readTable(join(GSM8K_MINI, 'jsonl', 'train.jsonl'));
    const file = join(GSM8K_MINI, 'parquet', 'data', 'train-00000-of-00001.parquet');
    const pq = await readTable(file);
    expect(values(pq)).toEqual(values(jsonl));
    expect(values(pq)).toEqual(splits().train.map(([question, answer]) => ({ question, answer })));
    expect(pq.rows[11]!.source).toBe(`${file} row 11`);
    // 5 rows per row group: 7 rows end inside the second one.
    expect(values(await readTable(file, { maxRows: 7 }))).toEqual(values(jsonl).slice(0, 7));
  });

  it('Parquet values come out as plain data: INT64 as numbers (strings past 2^53), doubles, nulls, nested messages', async () => {
    const p = join(dir, 'types.parquet');
    writeParquet(p, [
      { name: 'id', kind: 'int64', data: [1n, 2n ** 60n, null] },
      { name: 'x', kind: 'double', data: [0.5, -1, null] },
      { name: 's', kind: 'string', data: ['é', null, ''] },
      { name: 'prompt', kind: 'messages', data: [[{ role: 'user', content: 'hi' }], null, [{ role: 'system', content: 's' }, { role: 'user', content: 'u' }]] },
    ]);
    expect(values(await readTable(p))).toEqual([
      { id: 1, x: 0.5, s: 'é', prompt: [{ role: 'user', content: 'hi' }] },
      { id: '1152921504606846976', x: -1, s: null, prompt: null },
      { id: null, x: null, s: '', prompt: [{ role: 'system', content: 's' }, { role: 'user', content: 'u' }] },
    ]);
  });

  it('Parquet pages compressed with GZIP are read; an unsupported codec or a broken file names the file', async () => {
    const gz = join(dir, 'gzip.parquet');
    parquetWriteFile({ filename: gz, columnData: [{ name: 'q', data: ['a', 'b'], type: 'STRING' }], codec: 'GZIP', compressors: { GZIP: (b: Uint8Array) => new Uint8Array(gzipSync(b)) } });
    expect(values(await readTable(gz))).toEqual([{ q: 'a' }, { q: 'b' }]);
    const lz4 = join(dir, 'lz4.parquet');
    parquetWriteFile({ filename: lz4, columnData: [{ name: 'q', data: ['a', 'b'], type: 'STRING' }], codec: 'LZ4_RAW', compressors: { LZ4_RAW: (b: Uint8Array) => b } });
    await expect(readTable(lz4)).rejects.toThrow(`${lz4}: pages compressed with LZ4_RAW, which this reader cannot decompress`);
    const broken = write('broken.parquet', 'PAR1 not really parquet');
    await expect(readTable(broken)).rejects.toThrow(`${broken}: not a readable Parquet file`);
  });

  it('other files and missing paths are errors naming them', async () => {
    await expect(readTable(write('a.csv', 'q\n1\n'))).rejects.toThrow(`${join(dir, 'a.csv')}: expected a .jsonl, .json, .parquet file or a dataset folder`);
    await expect(readTable(join(dir, 'nope.jsonl'))).rejects.toThrow(`data not found: ${join(dir, 'nope.jsonl')}`);
  });
});

describe('size', () => {
  it('data that would not fit the memory budget is refused before it is read, naming the file, its size and the ways out', async () => {
    const lines = Array.from({ length: 200 }, (_, i) => JSON.stringify({ prompt: `p${i}`.padEnd(100, '.') })).join('\n');
    const p = write('big.jsonl', lines);
    const err = await readTable(p, { memoryBudgetBytes: 10_000 }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(new RegExp(`^${p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: its 22 KiB of rows would take about 67 KiB in memory, more than the 10 KiB budget`)); // 22.6 KB, x3
    expect((err as Error).message).toContain('--max-rows');
    expect((err as Error).message).toContain('NODE_OPTIONS=--max-old-space-size');
    // With maxRows the stream stops early and the same budget holds the first rows.
    expect((await readTable(p, { memoryBudgetBytes: 10_000, maxRows: 5 })).rows).toHaveLength(5);
    // ... but not more than the budget allows.
    await expect(readTable(p, { memoryBudgetBytes: 10_000, maxRows: 100 })).rejects.toThrow(/the rows up to line \d+ would take about/);

    const pq = join(GSM8K_MINI, 'parquet', 'data', 'train-00000-of-00001.parquet');
    await expect(readTable(pq, { memoryBudgetBytes: 1000 })).rejects.toThrow(new RegExp(`${pq.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: 12 rows \\(\\d+ KiB decompressed\\) would take about`));
    expect((await readTable(pq, { memoryBudgetBytes: 1000, maxRows: 1 })).rows).toHaveLength(1);
  });

  it('a .json document too big for one string says to convert it to JSON Lines', async () => {
    const p = write('doc.json', JSON.stringify(Array.from({ length: 50 }, (_, i) => ({ q: i }))));
    await expect(readTable(p, { maxJsonDocumentBytes: 100 })).rejects.toThrow(`${p}: a 1 KiB JSON document is more than one JavaScript string can hold (1 KiB); convert it to JSON Lines`);
  });
});

describe('Hugging Face dataset folders', () => {
  it('names splits from file names', () => {
    expect(splitOfFileName('train-00000-of-00003.parquet')).toBe('train');
    expect(splitOfFileName('test.jsonl')).toBe('test');
    expect(splitOfFileName('validation_0.json')).toBe('validation');
    expect(splitOfFileName('0000.parquet')).toBeNull();
    expect(splitOfFileName('README.md')).toBeNull();
  });

  it('data/<split>-*.parquet: the fixture folder, its splits, and the split asked for', async () => {
    const folder = join(GSM8K_MINI, 'parquet');
    expect([...datasetSplits(folder).keys()].sort()).toEqual(['test', 'train']);
    const t = await readTable(folder, { split: 'test' });
    expect(t.split).toBe('test');
    expect(t.files).toEqual([join(folder, 'data', 'test-00000-of-00001.parquet')]);
    expect(values(t)).toEqual(splits().test.map(([question, answer]) => ({ question, answer })));
    expect((await readTable(folder)).rows).toHaveLength(12); // default split: train
    await expect(readTable(folder, { split: 'validation' })).rejects.toThrow(`${folder}: no split "validation" (splits: test, train)`);
  });

  it('<split>/*.parquet and top-level <split>.jsonl; shards read in name order', async () => {
    const root = join(dir, 'per-split');
    writeParquet(join(root, 'train', '0001.parquet'), [{ name: 'q', kind: 'string', data: ['c'] }]);
    writeParquet(join(root, 'train', '0000.parquet'), [{ name: 'q', kind: 'string', data: ['a', 'b'] }]);
    write('per-split/validation.jsonl', '{"q": "v"}\n');
    expect(values(await readTable(root))).toEqual([{ q: 'a' }, { q: 'b' }, { q: 'c' }]);
    expect(values(await readTable(root, { split: 'validation' }))).toEqual([{ q: 'v' }]);
    expect(pickEvalSplit(root, 'train', null)).toBe('validation');
    expect(pickEvalSplit(join(GSM8K_MINI, 'parquet'), 'train', null)).toBe('test');
    expect(pickEvalSplit(join(GSM8K_MINI, 'parquet'), 'test', null)).toBeNull();
    expect(() => pickEvalSplit(root, 'train', 'dev')).toThrow(`${root}: no split "dev" for evaluation (splits: train, validation)`);
  });

  it('a folder of configurations, or of nothing readable, is an error saying what to pass', async () => {
    const root = join(dir, 'configs');
    write('configs/main/train-00000-of-00001.jsonl', '{"q": 1}\n');
    write('configs/socratic/train-00000-of-00001.jsonl', '{"q": 1}\n');
    expect(() => splitFiles(root, 'train')).toThrow(`${root} holds several configurations of the data set (main, socratic); pass one of their folders, e.g. ${join(root, 'main')}`);
    expect(values(await readTable(join(root, 'main')))).toEqual([{ q: 1 }]);
    const empty = join(dir, 'empty');
    write('empty/README.md', '# nothing\n');
    await expect(readTable(empty)).rejects.toThrow(`${empty}: no data files found`);
  });
});
