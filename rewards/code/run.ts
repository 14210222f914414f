/**
 * `runCode`: runs a program against stdin/stdout test cases in the sandbox
 * (`sandbox.ts`), one sandboxed process per test case.
 *
 * A case passes when the program exits with status 0 and its stdout equals the expected
 * output after normalising both (`normaliseOutput`: CRLF to LF, trailing whitespace
 * removed from every line, trailing empty lines dropped). Otherwise its status is:
 * - `timeout`: the wall-clock limit (or the CPU-time backstop) ended it;
 * - `memory`: it exited non-zero with an out-of-memory message from its interpreter;
 * - `error`: any other non-zero exit, a crash, or output past the cap;
 * - `failed`: it exited 0 but printed something else.
 */
import pLimit, { type LimitFunction } from 'p-limit';
import { LANGUAGES, resolveInterpreter, type Language } from './languages.ts';
import { runSandboxed } from './sandbox.ts';

export interface CodeTest {
  /** Written to the program's stdin. */
  input: string;
  /** Expected stdout (compared after `normaliseOutput`). */
  expectedOutput: string;
}

export interface RunCodeOptions {
  language: Language;
  /** Program source. */
  code: string;
  tests: CodeTest[];
  /** Wall-clock limit per test case in ms, sandbox start-up included. Default 3000; range [1, 600000]. */
  timeoutMs?: number;
  /** Memory limit per test case in MiB (RLIMIT_DATA; node's heap limit too). Default 512; range [32, 65536]. */
  memoryMb?: number;
  /** Cap on stdout + stderr bytes per test case; the run is killed past it. Default 1 MiB. */
  outputLimitBytes?: number;
  /** Test cases run at the same time. Default 2 (the machine's core count is a good value). */
  concurrency?: number;
  /** Run without the bubblewrap sandbox (timeout and rlimits only). Default false. */
  unsafe?: boolean;
  /** Aborting kills every running case; the remaining ones report `error`. */
  signal?: AbortSignal;
}

export type CaseStatus = 'passed' | 'failed' | 'timeout' | 'memory' | 'error';

export interface CaseResult {
  status: CaseStatus;
  stdout: string;
  stderr: string;
  timeMs: number;
  exitCode: number | null;
}

export interface RunCodeResult {
  passed: number;
  total: number;
  cases: CaseResult[];
}

export const RUN_CODE_DEFAULTS = {
  timeoutMs: 3000,
  memoryMb: 512,
  outputLimitBytes: 1 << 20,
  concurrency: 2,
} as const;

// bwrap reports a program killed by signal N as exit status 128 + N.
const SIGXCPU_STATUS = 128 + 24;

/** CRLF to LF, trailing whitespace off every line, trailing empty lines dropped. */
export function normaliseOutput(text: string): string {
  const lines = text.replace(/\r\n?/g, '\n').split('\n').map((l) => l.trimEnd());
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines.join('\n');
}

/** Whether `actual` stdout matches `expected` after `normaliseOutput`. */
export function outputsMatch(actual: string, expected: string): boolean {
  return normaliseOutput(actual) === normaliseOutput(expected);
}

function checkInt(name: string, value: number, lo: number, hi: number): number {
  if (!Number.isInteger(value) || value < lo || value > hi) {
    throw new Error(`runCode: ${name} must be an integer in [${lo}, ${hi}], got ${value}`);
  }
  return value;
}

type Settings = Required<Omit<RunCodeOptions, 'signal' | 'tests' | 'code'>> & { signal?: AbortSignal };

/** Validates everything but `code` and `tests`; errors name the field and the allowed range. */
export function validateRunSettings(options: Partial<RunCodeOptions>, where = 'runCode'): Settings {
  if (!LANGUAGES.includes(options.language as Language)) {
    throw new Error(`${where}: language must be one of ${LANGUAGES.join(', ')}, got ${JSON.stringify(options.language)}`);
  }
  const s: Settings = {
    language: options.language as Language,
    timeoutMs: checkInt('timeoutMs', options.timeoutMs ?? RUN_CODE_DEFAULTS.timeoutMs, 1, 600_000),
    memoryMb: checkInt('memoryMb', options.memoryMb ?? RUN_CODE_DEFAULTS.memoryMb, 32, 65_536),
    outputLimitBytes: checkInt('outputLimitBytes', options.outputLimitBytes ?? RUN_CODE_DEFAULTS.outputLimitBytes, 1, 1 << 30),
    concurrency: checkInt('concurrency', options.concurrency ?? RUN_CODE_DEFAULTS.concurrency, 1, 256),
    unsafe: options.unsafe ?? false,
  };
  if (options.signal !== undefined) s.signal = options.signal;
  return s;
}

/** Checks a list of test cases; `where` names the source in errors (e.g. "column 'tests' row 3"). */
export function validateTests(tests: unknown, where: string): CodeTest[] {
  if (!Array.isArray(tests)) throw new Error(`${where}: tests must be an array of { input, expectedOutput }, got ${typeof tests}`);
  tests.forEach((t, i) => {
    const c = t as Partial<CodeTest> | null;
    if (c === null || typeof c !== 'object' || typeof c.input !== 'string' || typeof c.expectedOutput !== 'string') {
      throw new Error(`${where}: test ${i} must be { input: string, expectedOutput: string }, got ${JSON.stringify(t)}`);
    }
  });
  return tests as CodeTest[];
}

/** Runs `code` on every test through `limit`; shared by `runCode` and `codeReward`. */
export async function runCodeWith(
  code: string,
  tests: CodeTest[],
  settings: Settings,
  limit: LimitFunction,
): Promise<RunCodeResult> {
  const interp = await resolveInterpreter(settings.language);
  const file = `/box/${interp.fileName}`;
  const cases = await Promise.all(
    tests.map((test) =>
      limit(async (): Promise<CaseResult> => {
        if (settings.signal?.aborted) {
          return { status: 'error', stdout: '', stderr: 'aborted before start', timeMs: 0, exitCode: null };
        }
        const r = await runSandboxed({
          argv: interp.argv(file, settings.memoryMb),
          files: { [interp.fileName]: code },
          readOnlyDirs: interp.readOnlyDirs,
          stdin: test.input,
          timeoutMs: settings.timeoutMs,
          dataMb: settings.memoryMb,
          addressSpaceMb: settings.memoryMb + interp.addressSpaceReserveMb,
          outputLimitBytes: settings.outputLimitBytes,
          unsafe: settings.unsafe,
          ...(settings.signal ? { signal: settings.signal } : {}),
        });
        let status: CaseStatus;
        let stderr = r.stderr;
        if (r.timedOut || r.exitCode === SIGXCPU_STATUS) status = 'timeout';
        else if (r.outputLimitExceeded) {
          status = 'error';
          stderr += `\n[output limit of ${settings.outputLimitBytes} bytes exceeded; run killed]`;
        } else if (r.aborted) status = 'error';
        else if (r.exitCode !== 0) status = interp.outOfMemory.test(r.stderr) ? 'memory' : 'error';
        else status = outputsMatch(r.stdout, test.expectedOutput) ? 'passed' : 'failed';
        return { status, stdout: r.stdout, stderr, timeMs: r.timeMs, exitCode: r.exitCode };
      }),
    ),
  );
  return { passed: cases.filter((c) => c.status === 'passed').length, total: cases.length, cases };
}

/**
 * Runs a javascript (node) or python (python3) program against stdin/stdout tests in
 * the sandbox. Throws when no sandbox is available, unless `unsafe: true`.
 */
export async function runCode(options: RunCodeOptions): Promise<RunCodeResult> {
  const settings = validateRunSettings(options);
  if (typeof options.code !== 'string') throw new Error(`runCode: code must be a string, got ${typeof options.code}`);
  const tests = validateTests(options.tests, 'runCode');
  return runCodeWith(options.code, tests, settings, pLimit(settings.concurrency));
}
