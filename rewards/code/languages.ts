/**
 * The interpreters the code runner knows: how to find each one on the host once, which
 * host folders the sandbox must bind read-only for it, and how it is invoked.
 *
 * - javascript: this process's own node (`process.execPath`, real path); its prefix is
 *   the folder above `bin/`. Run as `node --max-old-space-size=<memoryMb> /box/main.js`
 *   (CommonJS or ES module syntax both work).
 * - python: `python3` from PATH, resolved once with
 *   `python3 -c 'import sys; print(sys.executable, sys.prefix, sys.base_prefix)'` so that
 *   shims (pyenv) and virtual environments lead to the real interpreter and its prefix.
 *   Run as `python3 -I -S /box/main.py`: isolated mode (no PYTHON* variables, no user
 *   site) without the `site` module, so only the standard library is importable and start-up
 *   is fast.
 */
import { execFile } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { dirname } from 'node:path';

export type Language = 'javascript' | 'python';
export const LANGUAGES: readonly Language[] = ['javascript', 'python'];

export interface Interpreter {
  language: Language;
  /** Real path of the interpreter binary. */
  executable: string;
  /** Host folders the sandbox binds read-only (the prefix and anything the binary links against). */
  readOnlyDirs: string[];
  /** Name of the program file in the sandbox's working folder. */
  fileName: string;
  /** Command line inside the sandbox for a program stored at `file`. */
  argv(file: string, memoryMb: number): string[];
  /**
   * MiB of address space the interpreter reserves beyond the data it uses: RLIMIT_AS is
   * `memoryMb` plus this (V8 reserves ~0.7 GiB of virtual memory at start-up).
   */
  addressSpaceReserveMb: number;
  /** stderr patterns that mean the program ran out of memory. */
  outOfMemory: RegExp;
}

function uniqueDirs(dirs: string[]): string[] {
  const out: string[] = [];
  for (const d of dirs) {
    let real: string;
    try {
      real = realpathSync(d);
    } catch {
      continue;
    }
    if (real !== '/' && !out.includes(real)) out.push(real);
  }
  return out;
}

function resolveNode(): Interpreter {
  const executable = realpathSync(process.execPath);
  return {
    language: 'javascript',
    executable,
    readOnlyDirs: uniqueDirs([dirname(dirname(executable))]),
    fileName: 'main.js',
    argv: (file, memoryMb) => [executable, `--max-old-space-size=${memoryMb}`, file],
    addressSpaceReserveMb: 1536,
    outOfMemory:
      /JavaScript heap out of memory|Fatal process out of memory|Array buffer allocation failed|allocation failed|Cannot allocate memory|ERR_MEMORY_ALLOCATION_FAILED|std::bad_alloc/,
  };
}

function resolvePython(): Promise<Interpreter> {
  const script = 'import sys; print(sys.executable); print(sys.prefix); print(sys.base_prefix)';
  return new Promise((resolve, reject) => {
    execFile('python3', ['-c', script], { timeout: 30_000 }, (err, stdout) => {
      if (err) {
        reject(new Error(`code runner: could not run python3 to locate the interpreter: ${err.message}`));
        return;
      }
      const [exe, prefix, basePrefix] = stdout.trim().split('\n');
      if (!exe || !prefix || !basePrefix) {
        reject(new Error(`code runner: python3 did not report its executable and prefix (got ${JSON.stringify(stdout)})`));
        return;
      }
      const executable = realpathSync(exe);
      resolve({
        language: 'python',
        executable,
        readOnlyDirs: uniqueDirs([prefix, basePrefix, dirname(dirname(executable))]),
        fileName: 'main.py',
        argv: (file) => [executable, '-I', '-S', file],
        addressSpaceReserveMb: 256,
        outOfMemory: /\bMemoryError\b|Cannot allocate memory|std::bad_alloc/,
      });
    });
  });
}

const cache = new Map<Language, Promise<Interpreter>>();

/** Locates the interpreter for `language` (once per process). */
export function resolveInterpreter(language: Language): Promise<Interpreter> {
  let p = cache.get(language);
  if (p === undefined) {
    p = language === 'javascript' ? Promise.resolve().then(resolveNode) : resolvePython();
    // A failed lookup is not cached, so installing the interpreter and retrying works.
    p.catch(() => cache.delete(language));
    cache.set(language, p);
  }
  return p;
}
