/**
 * JSON Lines: one JSON object per line. The loader checks every line and reports the
 * first bad one as `<file>:<line>: <problem>`; blank lines are skipped, a UTF-8 byte-order
 * mark and CRLF line ends are accepted. The writer is atomic (temp file + rename).
 */
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../src/core/atomic.ts';

/** JSON value kinds a required column can be constrained to. */
export type JsonType = 'string' | 'number' | 'boolean' | 'object' | 'array';

export interface JsonlOptions {
  /**
   * Columns every row must have (present and not null). A list only checks presence; a
   * record also checks the kind, e.g. `{ prompt: 'string', answer: 'string' }`.
   */
  requiredColumns?: readonly string[] | Readonly<Record<string, JsonType>>;
}

export type JsonRow = Record<string, unknown>;

function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

/** Parses JSONL text; `source` names the text in errors (a file path, usually). */
export function parseJsonl<T extends JsonRow = JsonRow>(text: string, options: JsonlOptions & { source?: string } = {}): T[] {
  const source = options.source ?? '<jsonl>';
  const required: Array<[string, JsonType | null]> = Array.isArray(options.requiredColumns)
    ? (options.requiredColumns as readonly string[]).map((c) => [c, null])
    : Object.entries((options.requiredColumns ?? {}) as Record<string, JsonType>);
  const lines = text.replace(/^\uFEFF/, '').split('\n');
  const rows: T[] = [];
  lines.forEach((raw, i) => {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.trim() === '') return;
    const at = `${source}:${i + 1}`;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (e) {
      throw new Error(`${at}: invalid JSON (${(e as Error).message})`);
    }
    if (kindOf(value) !== 'object') throw new Error(`${at}: expected a JSON object, got ${kindOf(value)}`);
    const row = value as JsonRow;
    for (const [column, kind] of required) {
      const v = row[column];
      if (v === undefined || v === null) throw new Error(`${at}: missing required column "${column}"`);
      if (kind !== null && kindOf(v) !== kind) throw new Error(`${at}: column "${column}" must be ${kind === 'array' || kind === 'object' ? 'an' : 'a'} ${kind}, got ${kindOf(v)}`);
    }
    rows.push(row as T);
  });
  return rows;
}

/** Reads and checks a JSONL file (see `parseJsonl`). */
export async function loadJsonl<T extends JsonRow = JsonRow>(path: string, options: JsonlOptions = {}): Promise<T[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new Error(`loadJsonl: cannot read ${path}: ${(e as Error).message}`);
  }
  return parseJsonl<T>(text, { ...options, source: path });
}


/**
 * Writes `rows` as JSONL to `path` (parent folders are created). The file appears
 * complete or not at all: it is written under a temporary name and renamed. Rows must
 * be objects; numbers must be finite (JSON would silently turn NaN into null).
 */
export async function writeJsonl(path: string, rows: readonly object[]): Promise<void> {
  const lines: string[] = [];
  rows.forEach((row, i) => {
    if (kindOf(row) !== 'object') throw new Error(`writeJsonl(${path}): row ${i} must be an object, got ${kindOf(row)}`);
    lines.push(
      JSON.stringify(row, (key, v: unknown) => {
        if (typeof v === 'number' && !Number.isFinite(v)) {
          throw new Error(`writeJsonl(${path}): row ${i}, key "${key}" is ${v}, which JSON cannot represent`);
        }
        if (typeof v === 'bigint') throw new Error(`writeJsonl(${path}): row ${i}, key "${key}" is a bigint; convert it to a string`);
        return v;
      }),
    );
  });
  writeFileAtomic(path, lines.length > 0 ? lines.join('\n') + '\n' : '');
}
