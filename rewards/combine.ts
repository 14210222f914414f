/**
 * Scores one batch with several reward functions and combines them with weights; loads
 * reward functions by built-in name or from a user module.
 *
 * Combined reward of completion i:
 *
 *   r_i = sum over functions f with v_f(i) != null of  w_f * v_f(i)
 *
 * A completion for which every function gave `null` has no reward: `r_i` is 0 by default
 * (the same as TRL's nansum) or NaN with `allNull: 'nan'`; `missing[i]` is 1 either way,
 * so a trainer can mask it.
 *
 * Failures never stop scoring. A function that throws, rejects, times out, returns the
 * wrong number of values, or returns anything but finite numbers and nulls is reported
 * in `errors` (its name, the first error message and the head of its stack, and how many
 * problems were found — the count behind the metric `reward/<name>/errors`) and counts as
 * all-`null` for that batch.
 *
 * Functions run concurrently, at most `concurrency` at a time (p-limit). A synchronous
 * function that never returns blocks the event loop and cannot be timed out: long work
 * belongs in async functions (the code runner is one). Functions must not mutate the batch.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { existsSync, statSync } from 'node:fs';
import { basename, extname, isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import pLimit from 'p-limit';
import { codeReward, type CodeRewardOptions } from './code/reward.ts';
import {
  exactMatchReward,
  numericAnswerReward,
  overlongPenalty,
  tagFormatReward,
  type ExactMatchOptions,
  type NumericAnswerOptions,
  type OverlongOptions,
  type TagFormatOptions,
} from './format.ts';
import { mathReward, type MathRewardOptions } from './math/index.ts';
import { MissingColumnError, type RewardBatch, type RewardFunction, type RewardSpec, type RewardValue, withTextCompletions } from './types.ts';

export interface ScoreOptions {
  /** Reward functions running at the same time. Default 4; range [1, 1024]. */
  concurrency?: number;
  /** Milliseconds each function may take before it counts as failed. Default 120000. */
  timeoutMs?: number;
  /** Combined reward of a completion that no function scored: `'zero'` (default) or `'nan'`. */
  allNull?: 'zero' | 'nan';
}

export interface RewardError {
  /** The reward function's name. */
  name: string;
  /** The first error message. */
  message: string;
  /** Problems found in this batch (1 for a throw, timeout or wrong length; else the number of bad values). */
  count: number;
  /** The dataset column the function asked for and the batch lacks (a `MissingColumnError`), if that was the failure. */
  missingColumn?: string;
  /** The first lines of the thrown error's stack (where in the function it failed), when it threw an Error. */
  stack?: string;
}

export interface ScoreResult {
  /** Weighted sum per completion (see the file header). */
  rewards: Float32Array;
  /** Each function's values after validation (`null` where it failed). */
  perFunction: Record<string, RewardValue[]>;
  errors: RewardError[];
  /** 1 where no function gave a value. */
  missing: Uint8Array;
}

export const SCORE_DEFAULTS = { concurrency: 4, timeoutMs: 120_000, allNull: 'zero' } as const;

/** Checks the batch shape and returns the number of completions; errors name the column. */
export function validateBatch(batch: RewardBatch): number {
  if (batch === null || typeof batch !== 'object') throw new Error('reward batch must be an object of columns');
  for (const key of ['prompts', 'completions', 'completionIds'] as const) {
    if (!Array.isArray(batch[key])) throw new Error(`reward batch: '${key}' must be an array, got ${typeof batch[key]}`);
  }
  const n = batch.completions.length;
  for (const [key, values] of Object.entries(batch)) {
    if (!Array.isArray(values)) throw new Error(`reward batch: column '${key}' must be an array, got ${typeof values}`);
    if (values.length !== n) {
      throw new Error(`reward batch: column '${key}' has ${values.length} entries but there are ${n} completions`);
    }
  }
  // One form throughout: strings, or (conversational) lists of { role, content } messages.
  const conversational = n > 0 && typeof batch.completions[0] !== 'string';
  (batch.completions as unknown[]).forEach((c, i) => {
    if (!conversational) {
      if (typeof c !== 'string') throw new Error(`reward batch: completions[${i}] must be a string like completions[0], got ${Array.isArray(c) ? 'a message list' : typeof c}`);
      return;
    }
    if (!Array.isArray(c)) throw new Error(`reward batch: completions[${i}] must be a list of { role, content } messages like completions[0], got ${typeof c}`);
    c.forEach((m: unknown, j) => {
      const { role, content } = (typeof m === 'object' && m !== null ? m : {}) as Record<string, unknown>;
      if (typeof role !== 'string' || typeof content !== 'string') throw new Error(`reward batch: completions[${i}][${j}] must be a { role, content } message with string fields`);
    });
  });
  return n;
}

function describe(v: unknown): string {
  if (typeof v === 'number') return String(v);
  if (v === undefined) return 'undefined';
  if (typeof v === 'string') return `a string (${JSON.stringify(v.slice(0, 40))})`;
  return `a ${v === null ? 'null' : typeof v}`;
}

/** Validates one function's output; returns the values or the problem found. */
function checkValues(out: unknown, n: number): { values: RewardValue[] } | { message: string; count: number } {
  if (!Array.isArray(out) && !(ArrayBuffer.isView(out) && !(out instanceof DataView))) {
    return { message: `returned ${describe(out)} instead of an array of numbers or nulls`, count: 1 };
  }
  const arr = Array.from(out as ArrayLike<unknown>);
  if (arr.length !== n) return { message: `returned ${arr.length} values for ${n} completions`, count: 1 };
  let bad = 0;
  let first = '';
  for (let i = 0; i < n; i++) {
    const v = arr[i];
    if (v === null || (typeof v === 'number' && Number.isFinite(v))) continue;
    if (bad === 0) first = `value ${i} is ${describe(v)}; expected a finite number or null`;
    bad++;
  }
  return bad > 0 ? { message: first, count: bad } : { values: arr as RewardValue[] };
}

/**
 * Every reward function runs inside this async context, holding its name: code that the
 * function runs later (its promises, timers, callbacks) carries it too, so a trainer can
 * tell which reward an unhandled rejection or a process.exit() came from.
 */
const rewardScope = new AsyncLocalStorage<string>();

/** The name of the reward function whose code is running (in its async context), or undefined. */
export function runningReward(): string | undefined {
  return rewardScope.getStore();
}

/** The combiner's own timeout: its stack would point here, not into the reward function. */
class RewardTimeout extends Error {}

/** How many stack frames a `RewardError` keeps. */
const STACK_FRAMES = 4;

/** The first frames of an error's stack (without its message line), or undefined. */
function stackHead(err: unknown): string | undefined {
  if (!(err instanceof Error) || err instanceof RewardTimeout || typeof err.stack !== 'string') return undefined;
  const frames = err.stack.split('\n').filter((l) => /^\s+at /.test(l));
  return frames.length ? frames.slice(0, STACK_FRAMES).map((l) => l.trim()).join('\n') : undefined;
}

async function runOne(
  spec: RewardSpec,
  batch: RewardBatch,
  n: number,
  timeoutMs: number,
): Promise<{ values: RewardValue[] } | { message: string; count: number; missingColumn?: string; stack?: string }> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const work = Promise.resolve().then(() => rewardScope.run(spec.name, () => spec.fn(batch, { signal: controller.signal })));
  work.catch(() => {}); // a late rejection after a timeout is not unhandled
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(new RewardTimeout(`timed out after ${timeoutMs} ms`));
    }, timeoutMs);
  });
  try {
    return checkValues(await Promise.race([work, timeout]), n);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (err instanceof MissingColumnError) return { message, count: 1, missingColumn: err.column };
    const stack = stackHead(err);
    return stack ? { message, count: 1, stack } : { message, count: 1 };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs every reward function on the batch and combines their values with weights.
 * Throws only for a malformed batch or function list; failures of the functions
 * themselves are reported in `errors`.
 */
export async function scoreCompletions(
  batch: RewardBatch,
  functions: RewardSpec[],
  options: ScoreOptions = {},
): Promise<ScoreResult> {
  const n = validateBatch(batch);
  const concurrency = options.concurrency ?? SCORE_DEFAULTS.concurrency;
  const timeoutMs = options.timeoutMs ?? SCORE_DEFAULTS.timeoutMs;
  const allNull = options.allNull ?? SCORE_DEFAULTS.allNull;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 1024) {
    throw new Error(`scoreCompletions: concurrency must be an integer in [1, 1024], got ${concurrency}`);
  }
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new Error(`scoreCompletions: timeoutMs must be a positive number, got ${timeoutMs}`);
  }
  if (allNull !== 'zero' && allNull !== 'nan') {
    throw new Error(`scoreCompletions: allNull must be 'zero' or 'nan', got ${JSON.stringify(allNull)}`);
  }
  if (!Array.isArray(functions) || functions.length === 0) {
    throw new Error('scoreCompletions: functions must be a non-empty array of { name, fn, weight? }');
  }
  const seen = new Set<string>();
  functions.forEach((f, i) => {
    if (typeof f?.name !== 'string' || f.name === '') throw new Error(`scoreCompletions: functions[${i}].name must be a non-empty string`);
    if (seen.has(f.name)) throw new Error(`scoreCompletions: duplicate reward name '${f.name}' (functions[${i}])`);
    seen.add(f.name);
    if (typeof f.fn !== 'function') throw new Error(`scoreCompletions: functions[${i}] ('${f.name}').fn must be a function`);
    if (f.weight !== undefined && !Number.isFinite(f.weight)) {
      throw new Error(`scoreCompletions: functions[${i}] ('${f.name}').weight must be a finite number, got ${f.weight}`);
    }
  });

  const limit = pLimit(concurrency);
  const outcomes = await Promise.all(functions.map((f) => limit(() => runOne(f, batch, n, timeoutMs))));

  const sums = new Float64Array(n);
  const counts = new Uint32Array(n);
  const perFunction: Record<string, RewardValue[]> = {};
  const errors: RewardError[] = [];
  functions.forEach((f, k) => {
    const outcome = outcomes[k] as (typeof outcomes)[number];
    if (!('values' in outcome)) {
      errors.push({
        name: f.name,
        message: outcome.message,
        count: outcome.count,
        ...('missingColumn' in outcome && outcome.missingColumn ? { missingColumn: outcome.missingColumn } : {}),
        ...('stack' in outcome && outcome.stack ? { stack: outcome.stack } : {}),
      });
      perFunction[f.name] = new Array<RewardValue>(n).fill(null);
      return;
    }
    perFunction[f.name] = outcome.values;
    const w = f.weight ?? 1;
    outcome.values.forEach((v, i) => {
      if (v === null) return;
      sums[i] = (sums[i] as number) + w * v;
      counts[i] = (counts[i] as number) + 1;
    });
  });
  const rewards = new Float32Array(n);
  const missing = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    if (counts[i] === 0) {
      missing[i] = 1;
      rewards[i] = allNull === 'nan' ? Number.NaN : 0;
    } else rewards[i] = sums[i] as number;
  }
  return { rewards, perFunction, errors, missing };
}

/**
 * Per-function metrics of one scored batch: `reward/<name>/mean` (over non-null values;
 * NaN when there are none) and `reward/<name>/errors` (the error count, 0 when none).
 */
export function rewardMetrics(result: ScoreResult): Record<string, number> {
  const m: Record<string, number> = {};
  for (const [name, values] of Object.entries(result.perFunction)) {
    const vs = values.filter((v): v is number => v !== null);
    m[`reward/${name}/mean`] = vs.length === 0 ? Number.NaN : vs.reduce((a, b) => a + b, 0) / vs.length;
    m[`reward/${name}/errors`] = result.errors.filter((e) => e.name === name).reduce((a, e) => a + e.count, 0);
  }
  return m;
}

// ---------------------------------------------------------------------------------------
// Loading

interface Builtin {
  /** Keys the factory's config accepts (anything else is an error naming the key). */
  keys: readonly string[];
  create: (config: Record<string, unknown> | undefined) => RewardFunction;
}

/** Built-in rewards by name: a factory and the config keys it accepts. */
export const BUILTIN_REWARDS: Record<string, Builtin> = {
  exact_match: { keys: ['column', 'normalise', 'tag'], create: (c) => exactMatchReward(c as ExactMatchOptions) },
  numeric: { keys: ['column', 'tolerance', 'tag'], create: (c) => numericAnswerReward(c as NumericAnswerOptions) },
  format: { keys: ['tags', 'strict', 'partialCredit'], create: (c) => tagFormatReward(c as TagFormatOptions) },
  code: {
    keys: ['column', 'language', 'timeoutMs', 'memoryMb', 'outputLimitBytes', 'concurrency', 'unsafe'],
    create: (c) => codeReward(c as CodeRewardOptions),
  },
  // mathReward reads text completions; the wrapper gives it the assistant message's content in a conversational batch.
  math: { keys: ['column', 'timeoutMs', 'relTol'], create: (c) => withTextCompletions(mathReward(c as MathRewardOptions)) },
  overlong: {
    keys: ['maxCompletionLength', 'cacheLength'],
    create: (c) => {
      if (c === undefined) throw new Error("reward 'overlong' needs config { maxCompletionLength, cacheLength }");
      return overlongPenalty(c as unknown as OverlongOptions);
    },
  },
};

const MODULE_EXTENSIONS = ['.ts', '.mts', '.js', '.mjs', '.cjs'];

function looksLikePath(spec: string): boolean {
  return spec.startsWith('.') || isAbsolute(spec) || spec.includes('/') || spec.includes('\\') || MODULE_EXTENSIONS.includes(extname(spec));
}

export interface LoadRewardOptions {
  /** Folder relative module paths are resolved against. Default `process.cwd()`. */
  baseDir?: string;
  /** Options for a built-in reward's factory (e.g. `{ maxCompletionLength: 512, cacheLength: 128 }` for `overlong`). */
  config?: Record<string, unknown>;
}

/**
 * The exports of an imported reward module. A `.ts` or `.js` file outside a package with
 * `"type": "module"` is CommonJS to Node; a TypeScript loader (tsx) compiles its `export
 * default` to `module.exports.default`, so the import's namespace is `{ default: module.exports }`
 * and the function sits one level down.
 */
function moduleExports(mod: Record<string, unknown>): Record<string, unknown> {
  const inner = mod.default;
  if (inner !== null && typeof inner === 'object' && (typeof (inner as Record<string, unknown>).default === 'function' || typeof (inner as Record<string, unknown>).reward === 'function')) {
    return inner as Record<string, unknown>;
  }
  return mod;
}

/** What to do about a module that failed to import, by Node's error code; '' when there is nothing specific to say. */
function loadHint(file: string, err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'ERR_UNKNOWN_FILE_EXTENSION' && /\.[cm]?ts$/.test(file)) {
    return ' (this process has no TypeScript loader: run it through `npx rlvr`, or start node with `--import tsx`; or write the reward as a .mjs file)';
  }
  if (code === 'ERR_REQUIRE_CYCLE_MODULE') {
    return ' (Node treats this file as CommonJS because no package.json above it says "type": "module", and only the ESM half of a TypeScript loader is registered: start node with `--import tsx` (both halves), rename the file to .mts/.mjs, or add a package.json with "type": "module" to its folder)';
  }
  return '';
}

/**
 * Loads a reward function: a built-in name (`exact_match`, `numeric`, `math`, `format`,
 * `code`, `overlong`) or a path to a module (`./my-reward.ts`, `.mts`, `.js`, `.mjs`, `.cjs`)
 * whose default export, or named export `reward`, is a reward function. A module loads from
 * any folder, with or without a package.json saying `"type": "module"`; TypeScript needs
 * a loader (`npx rlvr` registers tsx; so do `tsx` and vitest). The result carries a
 * `rewardName`: the built-in name, the function's own `rewardName`, or the file name.
 */
export async function loadRewardFunction(spec: string, options: LoadRewardOptions = {}): Promise<RewardFunction> {
  if (typeof spec !== 'string' || spec.trim() === '') throw new Error('loadRewardFunction: spec must be a non-empty string');
  const builtin = Object.hasOwn(BUILTIN_REWARDS, spec) ? BUILTIN_REWARDS[spec] : undefined;
  if (builtin !== undefined) {
    for (const key of Object.keys(options.config ?? {})) {
      if (!builtin.keys.includes(key)) {
        throw new Error(`reward '${spec}': unknown config key '${key}' (allowed: ${builtin.keys.join(', ')})`);
      }
    }
    const fn = builtin.create(options.config);
    fn.rewardName = spec;
    return fn;
  }
  if (!looksLikePath(spec)) {
    throw new Error(
      `unknown reward '${spec}': built-ins are ${Object.keys(BUILTIN_REWARDS).join(', ')}; ` +
        'a custom reward is a path to a module, e.g. ./my-reward.ts',
    );
  }
  if (options.config !== undefined) {
    throw new Error(`reward module ${spec}: config is only for built-in rewards; read settings inside the module`);
  }
  const file = resolve(options.baseDir ?? process.cwd(), spec);
  if (!existsSync(file) || !statSync(file).isFile()) throw new Error(`reward module not found: ${file} (from '${spec}')`);
  if (!MODULE_EXTENSIONS.includes(extname(file))) {
    throw new Error(`reward module ${file}: expected a ${MODULE_EXTENSIONS.join(', ')} file`);
  }
  let mod: Record<string, unknown>;
  try {
    mod = moduleExports((await import(pathToFileURL(file).href)) as Record<string, unknown>);
  } catch (err) {
    throw new Error(`reward module ${file} failed to load${loadHint(file, err)}: ${(err as Error).message}`);
  }
  const candidate = typeof mod.default === 'function' ? mod.default : mod.reward;
  if (typeof candidate !== 'function') {
    const names = Object.keys(mod).join(', ') || 'none';
    throw new Error(
      `reward module ${file} exports no reward function: expected a default export or a named export 'reward' that is a function (exports: ${names})`,
    );
  }
  const fn = candidate as RewardFunction;
  fn.rewardName ??= basename(file, extname(file));
  return fn;
}
