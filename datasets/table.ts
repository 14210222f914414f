/**
 * Rows of a data set, from any of the layouts people keep them in:
 *
 * - `.jsonl`: one JSON object per line, read as a stream (blank lines skipped, a UTF-8 BOM
 *   and CRLF accepted); a row is named `file:line`.
 * - `.json`: an array of objects (a row is `file[i]`), or JSON Lines under a .json name, as
 *   the Hugging Face `datasets` library also accepts.
 * - `.parquet`: read row group by row group (`./parquet.ts`); a row is `file row i`,
 *   counting from 0 as `datasets` and pandas do.
 * - a folder laid out as the Hugging Face Hub lays one out: files named by split
 *   (`train-00000-of-00002.parquet`, `test.jsonl`), at the top or under `data/`, or one
 *   folder per split (`train/0000.parquet`, `data/test/*.jsonl`). The shards of a split are
 *   read in name order. A folder of configurations (`main/`, `socratic/`, each with its
 *   splits) is an error listing them.
 *
 * Size: rows are held in memory, so a data source is checked against a memory budget (by
 * default half of the heap V8 still has room for) before and while it is read: a parquet
 * file by the decompressed size its footer gives, a JSON(L) file by its size, both at about
 * `BYTES_PER_INPUT_BYTE` bytes of JavaScript objects per byte of data. Going over is an
 * error naming the file, its size, the budget and the two ways out (read fewer rows with
 * `maxRows`, give Node more heap), never an out-of-memory crash halfway. A .json file
 * too big to be one JavaScript string is an error saying to convert it to JSON Lines.
 */
import { constants as bufferConstants } from 'node:buffer';
import { createReadStream, existsSync, readdirSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { getHeapStatistics } from 'node:v8';
import { parquetInfo, readParquetRows } from './parquet.ts';

/** File kinds a data source may hold. */
export const DATA_EXTENSIONS = ['.jsonl', '.json', '.parquet'] as const;

/** Estimated bytes of JavaScript objects per byte of JSON text or decompressed parquet data. */
export const BYTES_PER_INPUT_BYTE = 3;

/** Split names tried, in order, for held-out data when none is named. */
export const EVAL_SPLITS = ['test', 'validation', 'valid', 'val', 'dev', 'eval'] as const;

/** One row and where it came from. */
export interface TableRow {
  values: Record<string, unknown>;
  /** The file it was read from. */
  file: string;
  /** Where in the file: `line 3` (JSONL), `[3]` (JSON array) or `row 3` (parquet, from 0). */
  at: string;
  /** Both, as errors name a row: `train.jsonl:3`, `train.json[3]`, `train.parquet row 3`. */
  source: string;
}

export interface ReadTableOptions {
  /** The split to read when `path` is a folder. Default `train`. */
  split?: string;
  /** Read at most this many rows (the first ones, in file order); null = all. */
  maxRows?: number | null;
  /** Bytes the rows may take in memory; default half the heap V8 has left (see the file header). */
  memoryBudgetBytes?: number;
  /** Largest .json document read whole; default the longest string V8 can make. */
  maxJsonDocumentBytes?: number;
}

export interface Table {
  rows: TableRow[];
  /** The files read, in order. */
  files: string[];
  /** The split read, when `path` was a folder. */
  split: string | null;
}

const gib = (n: number): string => (n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(1)} GiB` : n >= 2 ** 20 ? `${(n / 2 ** 20).toFixed(1)} MiB` : `${Math.max(1, Math.round(n / 1024))} KiB`);

/** Half of what the V8 heap still has room for. */
export function defaultMemoryBudget(): number {
  const h = getHeapStatistics();
  return Math.max(0, (h.heap_size_limit - h.used_heap_size) / 2);
}

/** The message for data that does not fit the budget. */
function tooBig(file: string, what: string, estimate: number, budget: number): Error {
  return new Error(
    `${file}: ${what} would take about ${gib(estimate)} in memory, more than the ${gib(budget)} budget for data ` +
      '(half the heap this process has left): read fewer rows (data.maxRows, --max-rows N), ' +
      'split the file, or give Node more heap (NODE_OPTIONS=--max-old-space-size=<MiB>)',
  );
}

const isDataFile = (name: string): boolean => (DATA_EXTENSIONS as readonly string[]).includes(extname(name).toLowerCase());

/** The split a Hub-style file name stands for: `train-00000-of-00001.parquet`, `test.jsonl`, `validation_0.json`. */
export function splitOfFileName(name: string): string | null {
  if (!isDataFile(name)) return null;
  const m = /^([A-Za-z][A-Za-z0-9]*)(?:[-_.][^/]*)?$/.exec(basename(name, extname(name)));
  return m ? m[1]!.toLowerCase() : null;
}

const sorted = (dir: string): string[] => readdirSync(dir).sort();
const isDir = (p: string): boolean => existsSync(p) && statSync(p).isDirectory();

/**
 * The splits of a Hub-style folder and their files (see the file header). Empty when the
 * folder holds no data files in a known layout.
 */
export function datasetSplits(dir: string): Map<string, string[]> {
  const splits = new Map<string, string[]>();
  const add = (split: string, file: string): void => {
    const list = splits.get(split) ?? [];
    list.push(file);
    splits.set(split, list);
  };
  for (const base of [dir, join(dir, 'data')]) {
    if (!isDir(base)) continue;
    for (const name of sorted(base)) {
      if (name.startsWith('.')) continue;
      const p = join(base, name);
      if (isDir(p)) {
        if (base === dir && name === 'data') continue;
        const files = sorted(p).filter((f) => isDataFile(f) && !isDir(join(p, f)));
        for (const f of files) add(name.toLowerCase(), join(p, f));
      } else {
        const split = splitOfFileName(name);
        if (split !== null) add(split, p);
      }
    }
  }
  return splits;
}

/** Subfolders that are configurations of a data set (`main/train-*.parquet`: files named by another split than the folder). */
function configFolders(dir: string): string[] {
  return sorted(dir).filter((name) => {
    const p = join(dir, name);
    if (name.startsWith('.') || !isDir(p)) return false;
    return sorted(p).some((f) => {
      const split = splitOfFileName(f);
      return split !== null && split !== name.toLowerCase() && !isDir(join(p, f));
    });
  });
}

/** The files of `split` in folder `dir`; errors list what the folder has. */
export function splitFiles(dir: string, split: string): string[] {
  const splits = datasetSplits(dir);
  const configs = configFolders(dir);
  if (configs.length > 0 && [...splits.keys()].every((s) => configs.includes(s))) {
    throw new Error(`${dir} holds several configurations of the data set (${configs.join(', ')}); pass one of their folders, e.g. ${join(dir, configs[0]!)}`);
  }
  if (splits.size === 0) {
    throw new Error(`${dir}: no data files found (expected ${DATA_EXTENSIONS.join(', ')} files named by split, e.g. data/train-00000-of-00001.parquet, or one folder per split, e.g. train/0000.parquet)`);
  }
  const files = splits.get(split.toLowerCase());
  if (!files) throw new Error(`${dir}: no split "${split}" (splits: ${[...splits.keys()].join(', ')})`);
  return files;
}

/** True when `path` is a folder (a Hugging Face dataset folder, for the data options). */
export function isDatasetFolder(path: string): boolean {
  return isDir(path);
}

/** The held-out split of a folder: `wanted` when given (an error when missing), else the first of EVAL_SPLITS present other than `trainSplit`, else null. */
export function pickEvalSplit(dir: string, trainSplit: string | null, wanted: string | null): string | null {
  const splits = datasetSplits(dir);
  if (wanted !== null) {
    if (!splits.has(wanted.toLowerCase())) throw new Error(`${dir}: no split "${wanted}" for evaluation (splits: ${[...splits.keys()].join(', ') || 'none'})`);
    return wanted.toLowerCase();
  }
  return EVAL_SPLITS.find((s) => s !== trainSplit?.toLowerCase() && splits.has(s)) ?? null;
}

/** A memory account over the rows read so far: `add` bytes of input, an error once over the budget. */
class MemoryAccount {
  private bytes = 0;
  constructor(private readonly budget: number) {}
  /** Fails now when `inputBytes` more would not fit (a whole file about to be read). */
  check(file: string, inputBytes: number, what: string): void {
    const estimate = (this.bytes + inputBytes) * BYTES_PER_INPUT_BYTE;
    if (estimate > this.budget) throw tooBig(file, what, estimate, this.budget);
  }
  add(file: string, inputBytes: number, what: () => string): void {
    this.bytes += inputBytes;
    if (this.bytes * BYTES_PER_INPUT_BYTE > this.budget) throw tooBig(file, what(), this.bytes * BYTES_PER_INPUT_BYTE, this.budget);
  }
}

function parseObject(line: string, at: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (e) {
    throw new Error(`${at}: invalid JSON (${(e as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error(`${at}: expected a JSON object, got ${value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value}`);
  }
  return value as Record<string, unknown>;
}

async function readJsonlFile(file: string, out: TableRow[], limit: number, account: MemoryAccount): Promise<void> {
  const input = createReadStream(file, { encoding: 'utf8' });
  const lines = createInterface({ input, crlfDelay: Infinity });
  if (limit === Infinity) {
    const size = statSync(file).size;
    account.check(file, size, `its ${gib(size)} of rows`);
  }
  let n = 0;
  try {
    for await (const raw of lines) {
      n++;
      const line = n === 1 ? raw.replace(/^\uFEFF/, '') : raw;
      account.add(file, raw.length + 1, () => `the rows up to line ${n}`);
      if (line.trim() === '') continue;
      const source = `${file}:${n}`;
      out.push({ values: parseObject(line, source), file, at: `line ${n}`, source });
      if (out.length >= limit) break;
    }
  } catch (e) {
    if ((e as Error).message.startsWith(file)) throw e;
    throw new Error(`${file}:${n + 1}: cannot read: ${(e as Error).message}`);
  } finally {
    lines.close();
    input.destroy();
  }
}

async function readJsonFile(file: string, out: TableRow[], limit: number, account: MemoryAccount, maxDocument: number): Promise<void> {
  // A .json file may be JSON Lines (the `datasets` library reads both): look at its first character.
  const head = await new Promise<string>((resolve, reject) => {
    const s = createReadStream(file, { encoding: 'utf8', start: 0, end: 4095 });
    let text = '';
    s.on('data', (c) => (text += c));
    s.on('error', reject);
    s.on('end', () => resolve(text));
  });
  if (!/^\uFEFF?\s*\[/.test(head)) return readJsonlFile(file, out, limit, account);
  const size = statSync(file).size;
  if (size > maxDocument) {
    throw new Error(`${file}: a ${gib(size)} JSON document is more than one JavaScript string can hold (${gib(maxDocument)}); convert it to JSON Lines (one object per line), which is read as a stream`);
  }
  account.add(file, size, () => `the whole ${gib(size)} document`);
  let value: unknown;
  try {
    value = JSON.parse((await readFile(file, 'utf8')).replace(/^\uFEFF/, ''));
  } catch (e) {
    throw new Error(`${file}: invalid JSON (${(e as Error).message})`);
  }
  if (!Array.isArray(value)) throw new Error(`${file}: expected a JSON array of objects (or JSON Lines)`);
  for (const [i, v] of value.entries()) {
    if (out.length >= limit) break;
    const source = `${file}[${i}]`;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${source}: expected a JSON object, got ${v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v}`);
    out.push({ values: v as Record<string, unknown>, file, at: `[${i}]`, source });
  }
}

async function readParquetFile(file: string, out: TableRow[], limit: number, account: MemoryAccount): Promise<void> {
  const info = await parquetInfo(file);
  const want = Math.min(info.numRows, limit - out.length);
  // Check the decompressed size of the row groups to be read before reading any of them.
  let rows = 0;
  let bytes = 0;
  for (const g of info.rowGroups) {
    if (rows >= want) break;
    const take = Math.min(g.numRows, want - rows);
    bytes += g.numRows > 0 ? (g.uncompressedBytes * take) / g.numRows : 0;
    rows += take;
  }
  account.add(file, bytes, () => `${want} rows (${gib(bytes)} decompressed)`);
  const values = await readParquetRows(file, { rowStart: 0, rowEnd: want });
  values.forEach((v, i) => out.push({ values: v, file, at: `row ${i}`, source: `${file} row ${i}` }));
}

/**
 * Reads the rows of `path`: a .jsonl, .json or .parquet file, or a Hub-style folder (its
 * `split`). Errors name the file and the row; see the file header for sizes.
 */
export async function readTable(path: string, options: ReadTableOptions = {}): Promise<Table> {
  if (!existsSync(path)) throw new Error(`data not found: ${path}`);
  const limit = options.maxRows ?? Infinity;
  if (!(limit >= 1)) throw new Error(`readTable: maxRows must be a positive integer, got ${options.maxRows}`);
  let files: string[];
  let split: string | null = null;
  if (isDir(path)) {
    split = (options.split ?? 'train').toLowerCase();
    files = splitFiles(path, split);
  } else {
    if (!isDataFile(path)) throw new Error(`${path}: expected a ${DATA_EXTENSIONS.join(', ')} file or a dataset folder`);
    files = [path];
  }
  const account = new MemoryAccount(options.memoryBudgetBytes ?? defaultMemoryBudget());
  const maxDocument = options.maxJsonDocumentBytes ?? bufferConstants.MAX_STRING_LENGTH;
  const rows: TableRow[] = [];
  for (const file of files) {
    if (rows.length >= limit) break;
    const ext = extname(file).toLowerCase();
    if (ext === '.parquet') await readParquetFile(file, rows, limit, account);
    else if (ext === '.json') await readJsonFile(file, rows, limit, account, maxDocument);
    else await readJsonlFile(file, rows, limit, account);
  }
  return { rows, files, split };
}
