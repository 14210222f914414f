/**
 * Config validation at the boundary, shared by every trainer (GRPO, PPO, SFT, control).
 *
 * A trainer declares its config once as a zod object schema whose fields carry their
 * defaults (`.default(...)`) and a why-comment (`.describe(...)`):
 *
 *   export const GrpoConfig = defineConfig(z.object({
 *     learningRate: z.number().gt(0).lte(1).default(1e-6).describe('Adam step size'),
 *   }));
 *   const cfg = GrpoConfig.resolve({ file: 'grpo.json', set: ['learningRate=3e-6'] });
 *
 * Layers merge as defaults < config file < `--set key=value` < explicit CLI flags. Every
 * problem found (unknown keys, with a "did you mean" for near misses; wrong types; values
 * out of range) is reported at once in one readable `ConfigError`:
 *
 *   Invalid config (grpo.json): "learningRate" must be > 0 and <= 1, got -3
 *
 * Schema introspection reads zod 4's `_zod.def` (its documented introspection surface).
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { z } from 'zod';

/** Any zod object schema used as a config. */
export type ConfigSchema = z.ZodObject;

/** The validated config type of a definition or schema. */
export type ConfigOf<T> = T extends ConfigDefinition<infer S> ? z.output<S> : T extends z.ZodType ? z.output<T> : never;

export class ConfigError extends Error {
  /** One line per problem, each naming the field path. */
  readonly problems: string[];
  readonly source: string | undefined;
  constructor(problems: string[], source?: string) {
    const head = `Invalid config${source ? ` (${source})` : ''}:`;
    super(problems.length === 1 ? `${head} ${problems[0]}` : `${head}\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
    this.source = source;
  }
}

export interface ParseOptions {
  /** Where the input came from, named in errors: a file name, `--set`, `GrpoTrainer options`. */
  source?: string;
  /** Per-field origin (dotted path -> label), appended to problems as `(from <label>)`. */
  origins?: ReadonlyMap<string, string>;
}

type Path = ReadonlyArray<PropertyKey>;
type Def = { type: string; [k: string]: unknown };

function defOf(schema: z.ZodType): Def {
  return schema._zod.def as unknown as Def;
}

const WRAPPERS = new Set(['default', 'prefault', 'optional', 'nullable', 'readonly', 'catch', 'nonoptional']);

/** Strips default/optional/nullable/readonly wrappers. */
function unwrap(schema: z.ZodType): z.ZodType {
  let s = schema;
  for (let guard = 0; guard < 16 && WRAPPERS.has(defOf(s).type); guard++) s = defOf(s).innerType as z.ZodType;
  return s;
}

function acceptsNull(schema: z.ZodType): boolean {
  let s = schema;
  for (let guard = 0; guard < 16; guard++) {
    const d = defOf(s);
    if (d.type === 'nullable' || d.type === 'null') return true;
    if (!WRAPPERS.has(d.type)) return false;
    s = d.innerType as z.ZodType;
  }
  return false;
}

function objectShape(schema: z.ZodType): Record<string, z.ZodType> | null {
  const d = defOf(unwrap(schema));
  return d.type === 'object' ? (d.shape as Record<string, z.ZodType>) : null;
}

/** Whether an object schema rejects or strips keys it does not declare (not a loose object). */
function isClosedObject(schema: z.ZodType): boolean {
  const d = defOf(unwrap(schema));
  if (d.type !== 'object') return false;
  const catchall = d.catchall as z.ZodType | undefined;
  return catchall === undefined || defOf(catchall).type === 'never';
}

/** The sub-schema at a path (through objects, arrays, records), or null. */
function schemaAt(schema: z.ZodType, path: Path): z.ZodType | null {
  let s: z.ZodType = schema;
  for (const key of path) {
    const d = defOf(unwrap(s));
    if (d.type === 'object') {
      const next = (d.shape as Record<string, z.ZodType>)[String(key)];
      if (!next) return null;
      s = next;
    } else if (d.type === 'array') {
      s = d.element as z.ZodType;
    } else if (d.type === 'record') {
      s = d.valueType as z.ZodType;
    } else {
      return null;
    }
  }
  return s;
}

export function formatPath(path: Path): string {
  let out = '';
  for (const k of path) {
    if (typeof k === 'number') out += `[${k}]`;
    else out += out ? `.${String(k)}` : String(k);
  }
  return out || '(root)';
}

function valueAt(input: unknown, path: Path): unknown {
  let v = input;
  for (const k of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[k];
  }
  return v;
}

function showValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = String(v);
  }
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** "> 0 and <= 1" from a number schema's checks, or '' when unbounded. */
function numberRange(checks: ReadonlyArray<{ _zod: { def: unknown } }>): string {
  const parts: string[] = [];
  for (const c of checks) {
    const d = c._zod.def as { check: string; value?: unknown; inclusive?: boolean };
    if (d.check === 'greater_than') parts.push(`${d.inclusive ? '>=' : '>'} ${String(d.value)}`);
    else if (d.check === 'less_than') parts.push(`${d.inclusive ? '<=' : '<'} ${String(d.value)}`);
    else if (d.check === 'multiple_of') parts.push(`a multiple of ${String(d.value)}`);
  }
  return parts.join(' and ');
}

function lengthRange(checks: ReadonlyArray<{ _zod: { def: unknown } }>, unit: string): string {
  const parts: string[] = [];
  for (const c of checks) {
    const d = c._zod.def as { check: string; minimum?: number; maximum?: number; length?: number };
    const n = (k: number | undefined): string => `${k} ${k === 1 ? unit.replace(/s$/, '') : unit}`;
    if (d.check === 'min_length') parts.push(`at least ${n(d.minimum)}`);
    else if (d.check === 'max_length') parts.push(`at most ${n(d.maximum)}`);
    else if (d.check === 'length_equals') parts.push(`exactly ${n(d.length)}`);
  }
  return parts.join(' and ');
}

/** Human description of what a schema accepts: "a number > 0 and <= 1", 'one of "a", "b"'. */
export function describeType(schema: z.ZodType): string {
  const outer = schema;
  const s = unwrap(schema);
  const d = defOf(s);
  const checks = (d.checks as ReadonlyArray<{ _zod: { def: unknown } }> | undefined) ?? [];
  let text: string;
  switch (d.type) {
    case 'number': {
      const isInt = checks.some((c) => (c._zod.def as { check: string; format?: string }).format?.includes('int'));
      const range = numberRange(checks);
      text = `${isInt ? 'an integer' : 'a number'}${range ? ` ${range}` : ''}`;
      break;
    }
    case 'string': {
      const len = lengthRange(checks, 'characters');
      text = len === 'at least 1 character' ? 'a non-empty string' : `a string${len ? ` of ${len}` : ''}`;
      break;
    }
    case 'boolean':
      text = 'true or false';
      break;
    case 'enum':
      text = `one of ${Object.values(d.entries as Record<string, string | number>).map((v) => JSON.stringify(v)).join(', ')}`;
      break;
    case 'literal':
      text = (d.values as unknown[]).map((v) => JSON.stringify(v)).join(' or ');
      break;
    case 'array': {
      const len = lengthRange(checks, 'items');
      const element = describeType(d.element as z.ZodType);
      // "a list of strings" for simple element types; spell out compound ones.
      const list = /^an? \w+$/.test(element) ? `a list of ${element.replace(/^an? /, '')}s` : `a list, each element ${element}`;
      text = `${list}${len ? ` (${len})` : ''}`;
      break;
    }
    case 'object':
      text = 'an object';
      break;
    case 'record':
      text = `a map of ${describeType(d.valueType as z.ZodType)}`;
      break;
    case 'union':
      text = (d.options as z.ZodType[]).map((o) => describeType(o)).join(' or ');
      break;
    case 'null':
      text = 'null';
      break;
    default:
      text = `a ${d.type}`;
  }
  return acceptsNull(outer) && d.type !== 'null' ? `${text} or null` : text;
}

/** Levenshtein distance, case-insensitive. */
function editDistance(a: string, b: string): number {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  let prev = Array.from({ length: y.length + 1 }, (_, j) => j);
  for (let i = 1; i <= x.length; i++) {
    const cur = [i];
    for (let j = 1; j <= y.length; j++) {
      const sub = prev[j - 1]! + (x[i - 1] === y[j - 1] ? 0 : 1);
      cur.push(Math.min(prev[j]! + 1, cur[j - 1]! + 1, sub));
    }
    prev = cur;
  }
  return prev[y.length]!;
}

/** The closest candidate within a third of the word's length (at least 2 edits), or null. */
export function didYouMean(word: string, candidates: Iterable<string>): string | null {
  let best: string | null = null;
  let bestD = Infinity;
  const limit = Math.max(2, Math.floor(word.length / 3));
  for (const c of candidates) {
    const d = editDistance(word, c);
    if (d < bestD) {
      best = c;
      bestD = d;
    }
  }
  return bestD <= limit ? best : null;
}

function unknownKeyProblem(path: Path, key: string, known: string[]): string {
  const where = path.length ? ` in "${formatPath(path)}"` : '';
  const guess = didYouMean(key, known);
  return `unknown key "${key}"${where}${guess ? ` (did you mean "${guess}"?)` : ''}; allowed keys: ${known.join(', ')}`;
}

/** Walks the input beside the schema and lists keys that no closed object schema declares. */
function findUnknownKeys(schema: z.ZodType, input: unknown, path: PropertyKey[], out: string[]): void {
  if (input === null || typeof input !== 'object') return;
  const d = defOf(unwrap(schema));
  if (d.type === 'object') {
    if (Array.isArray(input)) return;
    const shape = d.shape as Record<string, z.ZodType>;
    const closed = isClosedObject(schema);
    for (const [k, v] of Object.entries(input)) {
      const sub = shape[k];
      if (sub) findUnknownKeys(sub, v, [...path, k], out);
      else if (closed) out.push(unknownKeyProblem(path, k, Object.keys(shape)));
    }
  } else if (d.type === 'array' && Array.isArray(input)) {
    input.forEach((v, i) => findUnknownKeys(d.element as z.ZodType, v, [...path, i], out));
  } else if (d.type === 'record' && !Array.isArray(input)) {
    for (const [k, v] of Object.entries(input)) findUnknownKeys(d.valueType as z.ZodType, v, [...path, k], out);
  }
}

function issueProblem(root: ConfigSchema, input: unknown, issue: z.core.$ZodIssue): string {
  const path = issue.path;
  const field = `"${formatPath(path)}"`;
  const got = valueAt(input, path);
  const sub = schemaAt(root, path);
  const expected = sub ? describeType(sub) : null;
  switch (issue.code) {
    case 'invalid_type':
      if (got === undefined) return `${field} is required (${expected ?? issue.expected})`;
      return `${field} must be ${expected ?? issue.expected}, got ${showValue(got)}`;
    case 'too_small':
    case 'too_big': {
      const inner = sub ? defOf(unwrap(sub)) : null;
      const checks = (inner?.checks as ReadonlyArray<{ _zod: { def: unknown } }> | undefined) ?? [];
      const range =
        inner?.type === 'number' ? numberRange(checks) : inner?.type === 'string' ? lengthRange(checks, 'characters') : inner?.type === 'array' ? lengthRange(checks, 'items') : '';
      if (range) return `${field} must ${inner?.type === 'number' ? 'be' : 'have'} ${range}, got ${showValue(got)}`;
      const bound = issue.code === 'too_small' ? issue.minimum : issue.maximum;
      const op = issue.code === 'too_small' ? (issue.inclusive ? '>=' : '>') : issue.inclusive ? '<=' : '<';
      return `${field} must be ${op} ${String(bound)}, got ${showValue(got)}`;
    }
    case 'invalid_value': {
      const options = issue.values.map((v) => JSON.stringify(v));
      const guess = typeof got === 'string' ? didYouMean(got, issue.values.map(String)) : null;
      return `${field} must be one of ${options.join(', ')}, got ${showValue(got)}${guess ? ` (did you mean "${guess}"?)` : ''}`;
    }
    case 'unrecognized_keys': {
      const shape = objectShape(schemaAt(root, path) ?? root);
      const known = shape ? Object.keys(shape) : [];
      return issue.keys.map((k) => unknownKeyProblem(path, k, known)).join('; ');
    }
    case 'invalid_union':
      return `${field} must be ${expected ?? 'one of the allowed forms'}, got ${showValue(got)}`;
    default:
      return `${field}: ${issue.message}, got ${showValue(got)}`;
  }
}

/**
 * Validates one config object against its schema and fills defaults. Unknown keys are
 * rejected even when the schema is a plain (stripping) `z.object`; loose objects
 * (`z.looseObject`) and records accept any key. Throws a `ConfigError` listing every problem.
 */
export function parseConfig<S extends ConfigSchema>(schema: S, input: unknown, options: ParseOptions = {}): z.output<S> {
  const value = input === undefined ? {} : input;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError([`expected an object of settings, got ${showValue(value)}`], options.source);
  }
  const problems: string[] = [];
  findUnknownKeys(schema, value, [], problems);
  const result = schema.safeParse(value);
  if (!result.success) {
    for (const issue of result.error.issues) {
      let p = issueProblem(schema, value, issue);
      const origin = options.origins?.get(formatPath(issue.path));
      if (origin) p += ` (from ${origin})`;
      problems.push(p);
    }
  }
  if (problems.length) throw new ConfigError(problems, options.source);
  return result.data as z.output<S>;
}

/** Reads a JSON config file. Errors name the file and, for syntax errors, the line and column. */
export function loadConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError([`cannot read config file ${path}: ${(e as Error).message}`], basename(path));
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    const msg = (e as Error).message;
    const m = /position (\d+)/.exec(msg);
    let where = '';
    if (m) {
      const pos = Number(m[1]);
      const before = text.slice(0, pos);
      const line = before.split('\n').length;
      const col = pos - before.lastIndexOf('\n');
      where = ` at line ${line}, column ${col}`;
    }
    throw new ConfigError([`${path} is not valid JSON${where}: ${msg}`], basename(path));
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError([`${path} must hold a JSON object of settings, got ${showValue(parsed)}`], basename(path));
  }
  return parsed as Record<string, unknown>;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Deep merge of plain objects, later layers winning; arrays and other values are replaced whole. */
export function mergeConfig(...layers: Array<Record<string, unknown> | undefined>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const layer of layers) {
    if (!layer) continue;
    for (const [k, v] of Object.entries(layer)) {
      if (v === undefined) continue;
      const prev = out[k];
      out[k] = isPlainObject(prev) && isPlainObject(v) ? mergeConfig(prev, v) : isPlainObject(v) ? mergeConfig(v) : v;
    }
  }
  return out;
}

/** Turns a command-line string into the type the schema expects at that field. */
function coerceCliValue(schema: z.ZodType | null, raw: string): unknown {
  if (raw === 'null' && schema && acceptsNull(schema)) return null;
  const type = schema ? defOf(unwrap(schema)).type : 'unknown';
  switch (type) {
    case 'string':
    case 'enum':
      return raw;
    case 'number': {
      const n = raw.trim() === '' ? NaN : Number(raw);
      return Number.isNaN(n) ? raw : n; // a non-number stays a string so the error shows it
    }
    case 'boolean':
      return raw === 'true' ? true : raw === 'false' ? false : raw;
    default:
      try {
        return JSON.parse(raw);
      } catch {
        return raw;
      }
  }
}

function setAtPath(target: Record<string, unknown>, keys: string[], value: unknown): void {
  let obj = target;
  for (const k of keys.slice(0, -1)) {
    const next = obj[k];
    obj = isPlainObject(next) ? next : (obj[k] = {});
  }
  obj[keys[keys.length - 1]!] = value;
}

/** Checks that a dotted key names a field of the schema; returns the problem or null. */
function checkKeyPath(schema: ConfigSchema, keys: string[]): string | null {
  let s: z.ZodType = schema;
  for (let i = 0; i < keys.length; i++) {
    const shape = objectShape(s);
    if (!shape) {
      if (defOf(unwrap(s)).type === 'record') return null;
      return `"${keys.slice(0, i).join('.')}" has no sub-keys, so "${keys.join('.')}" is not a setting`;
    }
    const next = shape[keys[i]!];
    if (!next) return isClosedObject(s) ? unknownKeyProblem(keys.slice(0, i), keys[i]!, Object.keys(shape)) : null;
    s = next;
  }
  return null;
}

/**
 * Parses `key=value` overrides (`--set optimizer.beta1=0.95`) into a nested object, coercing
 * each value to the type the schema declares at that key (numbers, booleans, `null` for
 * nullable fields, JSON for lists and objects). Unknown keys throw a `ConfigError`.
 */
export function parseSetOverrides(schema: ConfigSchema, pairs: readonly string[], source = '--set'): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) {
      problems.push(`"${pair}" must look like key=value`);
      continue;
    }
    const keys = pair.slice(0, eq).trim().split('.');
    const problem = checkKeyPath(schema, keys);
    if (problem) {
      problems.push(problem);
      continue;
    }
    setAtPath(out, keys, coerceCliValue(schemaAt(schema, keys), pair.slice(eq + 1)));
  }
  if (problems.length) throw new ConfigError(problems, source);
  return out;
}

/**
 * Explicit CLI flags (`{ learningRate: '3e-6', 'optimizer.beta1': 0.95 }`, as commander
 * gives them) as a nested override object. Undefined values (flags not given) are skipped;
 * string values are coerced like `--set` values.
 */
export function flagOverrides(schema: ConfigSchema, flags: Record<string, unknown>, source = 'command-line flags'): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [key, v] of Object.entries(flags)) {
    if (v === undefined) continue;
    const keys = key.split('.');
    const problem = checkKeyPath(schema, keys);
    if (problem) {
      problems.push(problem);
      continue;
    }
    setAtPath(out, keys, typeof v === 'string' ? coerceCliValue(schemaAt(schema, keys), v) : v);
  }
  if (problems.length) throw new ConfigError(problems, source);
  return out;
}

function recordOrigins(layer: Record<string, unknown>, label: string, prefix: string, out: Map<string, string>): void {
  for (const [k, v] of Object.entries(layer)) {
    const path = prefix ? `${prefix}.${k}` : k;
    if (isPlainObject(v)) recordOrigins(v, label, path, out);
    else out.set(path, label);
  }
}

export interface ResolveOptions {
  /** A JSON config file (path). */
  file?: string;
  /** An already-loaded config object (used instead of, or under, `file`). */
  values?: Record<string, unknown>;
  /** `key=value` strings from repeated `--set` flags. */
  set?: readonly string[];
  /** Explicit flags; undefined entries are ignored. */
  flags?: Record<string, unknown>;
}

/** Merges defaults < values < file < `--set` < flags, then validates the result. */
export function resolveConfig<S extends ConfigSchema>(schema: S, options: ResolveOptions = {}): z.output<S> {
  const layers: Array<[string, Record<string, unknown>]> = [];
  if (options.values) layers.push(['given values', options.values]);
  if (options.file) layers.push([basename(options.file), loadConfigFile(options.file)]);
  if (options.set?.length) layers.push(['--set', parseSetOverrides(schema, options.set)]);
  if (options.flags) layers.push(['command-line flags', flagOverrides(schema, options.flags)]);
  const origins = new Map<string, string>();
  for (const [label, layer] of layers) recordOrigins(layer, label, '', origins);
  const merged = mergeConfig(...layers.map(([, l]) => l));
  const source = layers.length ? layers.map(([label]) => label).join(' + ') : 'defaults';
  return parseConfig(schema, merged, { source, origins: layers.length > 1 ? origins : undefined });
}

/**
 * One line per leaf setting: `path  type/range  default  description`, for `--help` text
 * and documentation. Nested objects are expanded into dotted paths.
 */
export function describeConfig(schema: ConfigSchema): string {
  const rows: Array<[string, string, string, string]> = [];
  const walk = (s: ConfigSchema, prefix: string): void => {
    for (const [key, field] of Object.entries(objectShape(s) ?? {})) {
      const path = prefix ? `${prefix}.${key}` : key;
      const inner = unwrap(field);
      if (defOf(inner).type === 'object') {
        walk(inner as ConfigSchema, path);
        continue;
      }
      const d = defOf(field);
      let def = 'required';
      if (d.type === 'default' || d.type === 'prefault') def = `default ${showValue(d.defaultValue)}`;
      else if (d.type === 'optional') def = 'optional';
      rows.push([path, describeType(field), def, field.description ?? '']);
    }
  };
  walk(schema, '');
  const widths = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r) => r.map((c, i) => (i < 3 ? c.padEnd(widths[i]!) : c)).join('  ').trimEnd())
    .join('\n');
}

export interface ConfigDefinition<S extends ConfigSchema> {
  readonly schema: S;
  /** The config with every default filled in (throws if a field has no default). */
  defaults(): z.output<S>;
  parse(input: unknown, options?: ParseOptions): z.output<S>;
  resolve(options?: ResolveOptions): z.output<S>;
  describe(): string;
}

/** Bundles a config schema with its parse/resolve/describe helpers. */
export function defineConfig<S extends ConfigSchema>(schema: S): ConfigDefinition<S> {
  return {
    schema,
    defaults: () => parseConfig(schema, {}, { source: 'defaults' }),
    parse: (input, options) => parseConfig(schema, input, options),
    resolve: (options) => resolveConfig(schema, options),
    describe: () => describeConfig(schema),
  };
}
