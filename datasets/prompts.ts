/**
 * Prompt data sets for the RL trainers: rows of any layout `./table.ts` reads, turned into
 * prompt rows `{ prompt, columns, source }`:
 *
 * 1. `columns` renames columns, `{ prompt: 'question', answer: 'solution' }` (new name ->
 *    column in the file), all at once (so `{ a: 'b', b: 'a' }` swaps two columns). A name
 *    to map from that a row lacks, or a new name that the file already has and that is not
 *    itself mapped away, is an error naming the row.
 * 2. `format: 'gsm8k'` reads `{ question, answer: '... #### 42' }` rows (`./gsm8k.ts`).
 * 3. `prompt` is a string (plain text) or a list of `{ role, content }` messages (a
 *    conversational prompt, `./chat.ts`); a data set is one or the other throughout.
 *    `chat: true` turns plain prompts into one user message each; `system` puts a system
 *    message first (plain prompts become [system, user]; a conversational prompt that has a
 *    system message keeps it).
 * 4. Every other column goes to the reward functions. Every row must have the same columns
 *    (null where a value does not apply); `prompts`, `completions` and `completionIds` are
 *    the reward batch's own names and may not be columns.
 */
import { type ChatMessage, parseMessages, withSystemMessage } from './chat.ts';
import { fromGsm8k } from './gsm8k.ts';
import { readTable, type TableRow } from './table.ts';

/** Row formats `loadPromptTable` reads. */
export const PROMPT_FORMATS = ['prompt', 'gsm8k'] as const;
export type PromptFormat = (typeof PROMPT_FORMATS)[number];

export interface PromptTableOptions {
  /** The split of a dataset folder. Default `train`. */
  split?: string;
  /** New column name -> column in the file (see the file header). */
  columns?: Readonly<Record<string, string>>;
  /** `prompt` (default): rows with a `prompt` column; `gsm8k`: `{ question, answer }` rows. */
  format?: PromptFormat;
  /** Plain-text prompts become one user message each. Default false. */
  chat?: boolean;
  /** A system message put first in every prompt (which makes plain prompts conversational). */
  system?: string | null;
  /** Read at most this many rows (the first ones); null = all. */
  maxRows?: number | null;
  /** Memory budget of the rows, in bytes (see `./table.ts`); default half the free heap. */
  memoryBudgetBytes?: number;
}

/** One prompt with the columns the reward functions may read, and where it came from. */
export interface PromptTableRow {
  /** Plain text, or (conversational) the messages the chat template renders. */
  prompt: string | ChatMessage[];
  columns: Record<string, unknown>;
  /** `train.jsonl:12`, `data/train-00000-of-00001.parquet row 11`. */
  source: string;
}

export interface PromptTable {
  rows: PromptTableRow[];
  /** True when the prompts are lists of messages. */
  conversational: boolean;
  /** The split read (a dataset folder), else null. */
  split: string | null;
  files: string[];
}

/** Column names the reward batch uses itself; a dataset column may not take them. */
export const RESERVED_COLUMNS = ['prompts', 'completions', 'completionIds'] as const;

const columnList = (values: Record<string, unknown>): string => Object.keys(values).join(', ') || 'none';

/** Applies a column map to one row (see the file header). */
export function mapColumns(values: Record<string, unknown>, map: Readonly<Record<string, string>>, where: string): Record<string, unknown> {
  const entries = Object.entries(map);
  if (entries.length === 0) return values;
  const sources = new Set(entries.map(([, from]) => from));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(values)) if (!sources.has(k)) out[k] = v;
  for (const [to, from] of entries) {
    if (!(from in values)) throw new Error(`${where}: no column "${from}" to map to "${to}" (columns: ${columnList(values)})`);
    if (to in out) throw new Error(`${where}: mapping "${from}" to "${to}", but the row already has a "${to}" column; map that one away too (e.g. ${to}_original=${to})`);
    out[to] = values[from];
  }
  return out;
}

function missingPromptHint(values: Record<string, unknown>): string {
  if ('question' in values && typeof values['answer'] === 'string' && values['answer'].includes('####')) {
    return ' (these look like GSM8K rows: pass --format gsm8k)';
  }
  return ` (columns: ${columnList(values)}; name the prompt column with --map prompt=<column>)`;
}

/**
 * Reads a prompt data set (see the file header): a .jsonl, .json or .parquet file, or a
 * Hugging Face dataset folder's split. Errors name the file, the row and the field.
 */
export async function loadPromptTable(path: string, options: PromptTableOptions = {}): Promise<PromptTable> {
  const format = options.format ?? 'prompt';
  if (!PROMPT_FORMATS.includes(format)) throw new Error(`loadPromptTable: unknown format "${format}" (formats: ${PROMPT_FORMATS.join(', ')})`);
  const table = await readTable(path, { split: options.split, maxRows: options.maxRows ?? null, ...(options.memoryBudgetBytes !== undefined ? { memoryBudgetBytes: options.memoryBudgetBytes } : {}) });
  const what = table.split === null ? path : `${path} (split "${table.split}")`;
  if (table.rows.length === 0) throw new Error(`${what}: no prompts (the ${table.split === null ? 'file' : 'split'} is empty)`);
  const system = options.system ?? null;
  const chat = options.chat ?? false;

  let firstKind: { conversational: boolean; source: string } | null = null;
  const rows = table.rows.map((t: TableRow): PromptTableRow => {
    let values = mapColumns(t.values, options.columns ?? {}, t.source);
    if (format === 'gsm8k') values = fromGsm8k(values, t.source);
    const { prompt: raw, ...columns } = values;
    if (raw === undefined || raw === null) throw new Error(`${t.source}: missing required column "prompt"${missingPromptHint(values)}`);
    let prompt: string | ChatMessage[];
    if (typeof raw === 'string') prompt = raw;
    else if (Array.isArray(raw)) prompt = parseMessages(raw, t.source, 'prompt');
    else throw new Error(`${t.source}: column "prompt" must be a string or a list of { role, content } messages, got ${typeof raw}`);
    const conversational = typeof prompt !== 'string';
    firstKind ??= { conversational, source: t.source };
    if (conversational !== firstKind.conversational) {
      throw new Error(`${t.source}: a ${conversational ? 'conversational' : 'plain-text'} prompt, but ${firstKind.source} has a ${firstKind.conversational ? 'list of messages' : 'plain-text prompt'}; a data set holds one kind or the other`);
    }
    if (typeof prompt === 'string' && (chat || system !== null)) prompt = [{ role: 'user', content: prompt }];
    if (typeof prompt !== 'string' && system !== null) prompt = withSystemMessage(prompt, system);
    return { prompt, columns, source: t.source };
  });

  // Every row has the same columns; none takes a name the reward batch uses.
  const first = new Map<string, TableRow>();
  rows.forEach((r, i) => {
    for (const k of Object.keys(r.columns)) if (!first.has(k)) first.set(k, table.rows[i]!);
  });
  for (const k of RESERVED_COLUMNS) {
    const at = first.get(k);
    if (at) throw new Error(`${at.source}: column "${k}" is reserved for the reward batch itself; rename it (--map)`);
  }
  rows.forEach((r, i) => {
    const t = table.rows[i]!;
    for (const [k, at] of first) {
      if (!(k in r.columns)) {
        const other = at.file === t.file ? at.at : at.source;
        throw new Error(`${r.source}: missing column "${k}" (${other} has it; every row needs the same columns, null where a value does not apply)`);
      }
    }
  });
  return { rows, conversational: typeof rows[0]!.prompt !== 'string', split: table.split, files: table.files };
}

/**
 * Parses a `--map` value: `prompt=question,answer=solution` (new=old, comma-separated) into
 * `{ prompt: 'question', answer: 'solution' }`. Errors quote the bad entry.
 */
export function parseColumnMap(text: string): Record<string, string> {
  const map: Record<string, string> = {};
  for (const part of text.split(',')) {
    const entry = part.trim();
    if (entry === '') continue;
    const m = /^([^=\s]+)\s*=\s*([^=\s]+)$/.exec(entry);
    if (!m) throw new Error(`column map entry "${entry}" must be new=old, e.g. prompt=question`);
    if (Object.hasOwn(map, m[1]!)) throw new Error(`column map names "${m[1]}" twice`);
    map[m[1]!] = m[2]!;
  }
  if (Object.keys(map).length === 0) throw new Error(`column map "${text}" holds no new=old entries`);
  return map;
}
