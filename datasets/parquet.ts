/**
 * Parquet files as rows, through hyparquet (pure JavaScript, no dependencies, the reader the
 * Hugging Face Hub's own viewer stack funds; snappy built in). GZIP and BROTLI pages are
 * decompressed with node:zlib, ZSTD too where this Node has it; any other codec is an
 * error naming the file and the codec.
 *
 * Values come out as JSON-like data the rest of the toolkit can hash, log and hand to
 * reward functions: INT64 as numbers (as strings past 2^53), dates and timestamps as ISO
 * strings, unannotated binary as UTF-8 text (hyparquet's default), nested lists and
 * structs as arrays and objects (a chat-formatted `prompt` column, list<struct<role,
 * content>>, arrives as a list of messages).
 *
 * Row groups are read one at a time; before reading, the uncompressed size of the rows
 * asked for is checked against the memory budget (`./table.ts`).
 */
import * as zlib from 'node:zlib';
import { type AsyncBuffer, asyncBufferFromFile, type Compressors, type FileMetaData, parquetMetadataAsync, parquetReadObjects } from 'hyparquet';

const decompressors: Compressors = {
  GZIP: (input) => new Uint8Array(zlib.gunzipSync(input)),
  BROTLI: (input) => new Uint8Array(zlib.brotliDecompressSync(input)),
};
const zstd = (zlib as unknown as { zstdDecompressSync?: (b: Uint8Array) => Buffer }).zstdDecompressSync;
if (zstd) decompressors.ZSTD = (input) => new Uint8Array(zstd(input));

/** A parquet value as plain JSON-like data (see the file header). */
export function plainValue(v: unknown): unknown {
  if (typeof v === 'bigint') return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? null : v.toISOString();
  if (v instanceof Uint8Array) return Buffer.from(v).toString('utf8');
  if (Array.isArray(v)) return v.map(plainValue);
  if (ArrayBuffer.isView(v)) return Array.from(v as unknown as ArrayLike<number>, plainValue);
  if (typeof v === 'object' && v !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = plainValue(x);
    return out;
  }
  return v;
}

/** What the footer says: rows, columns and the bytes of each row group once decompressed. */
export interface ParquetInfo {
  numRows: number;
  columns: string[];
  rowGroups: Array<{ numRows: number; uncompressedBytes: number }>;
}

type Opened = { file: AsyncBuffer; meta: FileMetaData; info: ParquetInfo };

async function open(path: string): Promise<Opened> {
  try {
    const file = await asyncBufferFromFile(path);
    const meta = await parquetMetadataAsync(file);
    const info: ParquetInfo = {
      numRows: Number(meta.num_rows),
      columns: topLevelColumns(meta.schema),
      rowGroups: meta.row_groups.map((g) => ({
        numRows: Number(g.num_rows),
        uncompressedBytes: g.columns.reduce((s, c) => s + Number(c.meta_data?.total_uncompressed_size ?? 0), 0),
      })),
    };
    return { file, meta, info };
  } catch (e) {
    throw new Error(`${path}: not a readable Parquet file (${(e as Error).message})`);
  }
}

/** Reads the footer of `path` (cheap: the end of the file only). Errors name the file. */
export async function parquetInfo(path: string): Promise<ParquetInfo> {
  return (await open(path)).info;
}

/** The top-level column names of a flattened parquet schema (depth-first, `num_children` per group). */
function topLevelColumns(schema: ReadonlyArray<{ name: string; num_children?: number }>): string[] {
  const names: string[] = [];
  let i = 1;
  const skip = (): void => {
    const n = schema[i]?.num_children ?? 0;
    i++;
    for (let k = 0; k < n; k++) skip();
  };
  const rootChildren = schema[0]?.num_children ?? 0;
  for (let k = 0; k < rootChildren && i < schema.length; k++) {
    names.push(schema[i]!.name);
    skip();
  }
  return names;
}

/**
 * The rows `[rowStart, rowEnd)` of `path` as objects of plain values, read one row group at
 * a time; `onGroup` runs after each (the caller's memory check). Errors name the file.
 */
export async function readParquetRows(
  path: string,
  range: { rowStart: number; rowEnd: number },
  onGroup?: (rowsSoFar: number) => void,
): Promise<Record<string, unknown>[]> {
  const { file, meta, info } = await open(path);
  const rows: Record<string, unknown>[] = [];
  let groupStart = 0;
  for (const g of info.rowGroups) {
    const groupEnd = groupStart + g.numRows;
    const start = Math.max(groupStart, range.rowStart);
    const end = Math.min(groupEnd, range.rowEnd);
    if (start < end) {
      let got: Record<string, unknown>[];
      try {
        got = await parquetReadObjects({ file, rowStart: start, rowEnd: end, compressors: decompressors, metadata: meta });
      } catch (e) {
        const msg = (e as Error).message;
        const codec = /unsupported compression codec: (\w+)/.exec(msg)?.[1];
        if (codec) throw new Error(`${path}: pages compressed with ${codec}, which this reader cannot decompress (supported: SNAPPY, GZIP, BROTLI${zstd ? ', ZSTD' : ''}, UNCOMPRESSED); rewrite the file with one of those`);
        throw new Error(`${path}: cannot read rows ${start}..${end - 1}: ${msg}`);
      }
      for (const r of got) rows.push(plainValue(r) as Record<string, unknown>);
      onGroup?.(rows.length);
    }
    groupStart = groupEnd;
    if (groupStart >= range.rowEnd) break;
  }
  return rows;
}
