/**
 * Runs one untrusted program in a bubblewrap (`bwrap`) sandbox and always kills it.
 *
 * Layout of one run:
 *
 *   node (us) --spawn, detached--> bwrap (outside)        new process group and session
 *                                   `-> bwrap (pid 1 of a new pid namespace)
 *                                        `-> prlimit --as --data --cpu --core --fsize --nofile
 *                                             `(exec)-> interpreter /box/main.py
 *
 * GUARANTEED (each proven by test/rewards/sandbox.test.ts with real processes):
 * - Wall-clock limit: when `timeoutMs` passes we SIGKILL the pid-namespace init (found
 *   through `--info-fd` and checked to be bwrap's child) and bwrap's process group.
 *   Killing a pid namespace's init makes the kernel kill every process inside it, so
 *   daemonised (setsid, double fork) or fork-looping descendants die too. The run only
 *   returns once that init is gone. The same kill runs after every normal exit, so
 *   nothing started by the program survives a run. `--die-with-parent` also kills the
 *   sandbox if our process dies. RLIMIT_CPU (timeout + 1 s) backs up the timer.
 * - Memory: RLIMIT_DATA = `memoryMb` (heap and private writable mappings) and
 *   RLIMIT_AS = `memoryMb` + the interpreter's reserve (which also bounds shared
 *   anonymous mappings, which RLIMIT_DATA does not count). Node also gets
 *   `--max-old-space-size`. A program that allocates past them fails inside its own
 *   process (MemoryError, heap out of memory); our process is unaffected.
 * - Output: stdout + stderr are read up to `outputLimitBytes` (default 1 MiB) in total;
 *   past that we stop reading and kill the run, so a program printing gigabytes does not
 *   grow our memory.
 * - No network: `--unshare-net` gives an empty network namespace (a private loopback),
 *   so no connection can reach any host listener, 127.0.0.1 included; abstract unix
 *   sockets are per namespace too.
 * - No file access outside the interpreter: the root is an empty tmpfs holding read-only
 *   binds of /usr (plus /bin, /lib, /lib64, /sbin as the host has them: symlinks or
 *   read-only binds) and the interpreter's own prefix (e.g. the pyenv version folder);
 *   nothing else of the host (not /etc, /home, /root, /tmp, the project) exists inside.
 *   The program's files are read-only copies under /box. After setup the root and /dev
 *   are remounted read-only: nothing is writable except /dev/null-like devices, and
 *   nothing persists after the run. RLIMIT_FSIZE = 0 and RLIMIT_CORE = 0 as well.
 * - No child processes (x86-64 and arm64): a seccomp filter (`seccomp.ts`) makes fork,
 *   vfork, clone3 and non-thread clone fail, so `subprocess`/`child_process` fail with
 *   EPERM. `execve` stays possible but only replaces the program in place.
 * - Empty environment (`--clearenv`): none of our environment variables are visible; the
 *   program sees only PWD=/box (set by bwrap after `--chdir`).
 * - Our process survives anything the program does: the program runs in its own pid
 *   namespace (it cannot see or signal any host process; `kill(getppid())` targets the
 *   namespace init, which ignores it), a new session (`--new-session`: no terminal
 *   injection), a new user namespace with all capabilities dropped, further user
 *   namespaces disabled, and `no_new_privs`.
 *
 * NOT GUARANTEED:
 * - CPU share: the program may use a whole core until its time limit; concurrency is
 *   bounded by the caller (p-limit), not by cgroups.
 * - On other architectures than x86-64/arm64 there is no seccomp filter: child processes
 *   are then possible but still die with the namespace at the end of the run, and
 *   RLIMIT_NPROC is not applied (it does not bind uid 0, which the sandbox maps to when
 *   the caller is root).
 * - The program runs as the caller's uid outside the user namespace (uid 0 when the
 *   caller is root), without capabilities. Kernel vulnerabilities are out of scope.
 * - Memory is limited per process through rlimits, not by a cgroup: page cache, kernel
 *   memory and pipe buffers are not counted.
 * - `unsafe: true` runs without bubblewrap: only the timeout, the rlimits, the output
 *   cap and an empty environment apply; file system, network and descendants that leave
 *   the process group are not contained.
 *
 * Where bwrap is missing or cannot create namespaces, `probeSandbox()` says why and the
 * code runner refuses to run untrusted code unless the caller passes `unsafe: true`.
 * `RLVR_BWRAP` may name the bwrap binary when it is not on PATH.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, lstatSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join, posix } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { seccompFilter } from './seccomp.ts';

/** What one sandboxed run executes and under which limits. */
export interface SandboxRequest {
  /** Command inside the sandbox; argv[0] is an absolute path visible inside (e.g. under /usr). */
  argv: string[];
  /** Read-only files placed in the working folder `/box`, by file name (no slashes). */
  files?: Record<string, string | Buffer>;
  /** Host folders bound read-only at the same path (the interpreter's prefix). */
  readOnlyDirs?: string[];
  /** Written to the program's stdin, which is then closed. */
  stdin?: string;
  /** Wall-clock limit in milliseconds, sandbox start-up included. */
  timeoutMs: number;
  /** RLIMIT_DATA in MiB. */
  dataMb: number;
  /** RLIMIT_AS in MiB (must cover the interpreter's address-space reservations). */
  addressSpaceMb: number;
  /** Cap on stdout + stderr bytes kept; the run is killed when it is exceeded. */
  outputLimitBytes: number;
  /** Leave out the seccomp filter, so the program may start processes (they still die with the run). */
  allowSubprocesses?: boolean;
  /** Run without bubblewrap (no file-system, network or descendant containment). */
  unsafe?: boolean;
  /** Aborting kills the run. */
  signal?: AbortSignal;
}

export interface SandboxOutcome {
  /** Exit status (bwrap reports a program killed by signal N as 128 + N). */
  exitCode: number | null;
  /** Signal that ended the outermost process, if any. */
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  outputLimitExceeded: boolean;
  aborted: boolean;
  /** Wall-clock milliseconds from spawn to the end of the run. */
  timeMs: number;
}

export interface SandboxStatus {
  available: boolean;
  /** Why the sandbox is unavailable (with what to install), when it is. */
  reason?: string;
  bwrap?: string;
  prlimit?: string;
  /** Whether the seccomp filter forbidding child processes is applied on this architecture. */
  seccomp: boolean;
}

export const INSTALL_HINT = 'install bubblewrap (apt-get install bubblewrap) and make sure user namespaces are enabled';

const SANDBOX_DIR = '/box';
// uid/gid inside the user namespace: "nobody".
const SANDBOX_ID = '65534';
// How long we wait for a killed pid namespace to be torn down before giving up.
const TEARDOWN_WAIT_MS = 2000;

/** Finds an executable by name on PATH and the usual system folders. */
export function findExecutable(name: string): string | null {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/bin', '/bin', '/usr/local/bin', '/usr/sbin', '/sbin'];
  for (const d of dirs) {
    if (d === '') continue;
    const p = join(d, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return null;
}

function isUnder(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir.endsWith('/') ? dir : `${dir}/`);
}

/** bwrap arguments that rebuild the host's top-level system folders (/bin, /lib, ...). */
function systemMounts(): string[] {
  const args = ['--ro-bind', '/usr', '/usr'];
  for (const top of ['/bin', '/sbin', '/lib', '/lib64', '/lib32', '/libx32']) {
    let st;
    try {
      st = lstatSync(top);
    } catch {
      continue;
    }
    if (st.isSymbolicLink()) args.push('--symlink', readlinkSync(top), top);
    else if (st.isDirectory()) args.push('--ro-bind', top, top);
  }
  return args;
}

interface ProcInfo {
  pid: number;
  startTime: string;
}

/** Reads state, parent pid and start time of a process from /proc, or null when it is gone. */
function procStat(pid: number): { state: string; ppid: number; startTime: string } | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // "pid (comm) state ppid ..." — comm may hold spaces and parentheses.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: fields[0] ?? '?', ppid: Number(fields[1]), startTime: fields[19] ?? '' };
}

/** True while `p` still runs (not exited, not a zombie, and not a recycled pid). */
function stillRunning(p: ProcInfo): boolean {
  const s = procStat(p.pid);
  return s !== null && s.startTime === p.startTime && s.state !== 'Z' && s.state !== 'X';
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function limitArgs(req: SandboxRequest): string[] {
  const mib = 1024 * 1024;
  const cpu = Math.ceil(req.timeoutMs / 1000) + 1;
  return [
    `--as=${req.addressSpaceMb * mib}`,
    `--data=${req.dataMb * mib}`,
    `--cpu=${cpu}:${cpu + 1}`,
    '--core=0',
    '--fsize=0',
    '--nofile=256',
    '--',
  ];
}

interface Plan {
  command: string;
  args: string[];
  cwd?: string;
  /** Data written to extra fds (index = fd number). */
  inputs: Map<number, Buffer>;
  /** Fd on which bwrap reports the namespace init's pid, if any. */
  infoFd: number | null;
  cleanup: () => void;
}

function bwrapPlan(req: SandboxRequest, bwrap: string, prlimit: string): Plan {
  const inputs = new Map<number, Buffer>();
  const args = [
    '--unshare-all', // user, ipc, pid, net, uts, cgroup namespaces
    '--unshare-user',
    '--uid', SANDBOX_ID,
    '--gid', SANDBOX_ID,
    '--disable-userns',
    '--cap-drop', 'ALL',
    '--die-with-parent',
    '--new-session',
    '--clearenv',
    ...systemMounts(),
  ];
  for (const d of req.readOnlyDirs ?? []) {
    if (!isUnder(d, '/usr')) args.push('--ro-bind', d, d);
  }
  args.push('--dev', '/dev', '--remount-ro', '/dev', '--info-fd', '3');
  let fd = 4;
  const filter = req.allowSubprocesses ? null : seccompFilter();
  if (filter !== null) {
    inputs.set(fd, filter);
    args.push('--seccomp', String(fd++));
  }
  args.push('--dir', SANDBOX_DIR);
  for (const [name, content] of Object.entries(req.files ?? {})) {
    inputs.set(fd, Buffer.from(content));
    args.push('--ro-bind-data', String(fd++), posix.join(SANDBOX_DIR, name));
  }
  args.push('--remount-ro', '/', '--chdir', SANDBOX_DIR, '--', prlimit, ...limitArgs(req), ...req.argv);
  return { command: bwrap, args, inputs, infoFd: 3, cleanup: () => {} };
}

function unsafePlan(req: SandboxRequest, prlimit: string | null): Plan {
  const dir = mkdtempSync(join(tmpdir(), 'rlvr-run-'));
  for (const [name, content] of Object.entries(req.files ?? {})) writeFileSync(join(dir, name), content);
  // Paths under /box in argv refer to the working folder.
  const argv = req.argv.map((a) => (isUnder(a, SANDBOX_DIR) ? join(dir, a.slice(SANDBOX_DIR.length)) : a));
  const [command, args] =
    prlimit === null ? [argv[0] as string, argv.slice(1)] : [prlimit, [...limitArgs(req), ...argv]];
  return {
    command,
    args,
    cwd: dir,
    inputs: new Map(),
    infoFd: null,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

function validateRequest(req: SandboxRequest): void {
  if (!Array.isArray(req.argv) || req.argv.length === 0 || !req.argv.every((a) => typeof a === 'string')) {
    throw new Error('sandbox: argv must be a non-empty array of strings');
  }
  for (const [k, v] of [
    ['timeoutMs', req.timeoutMs],
    ['dataMb', req.dataMb],
    ['addressSpaceMb', req.addressSpaceMb],
    ['outputLimitBytes', req.outputLimitBytes],
  ] as const) {
    if (!Number.isInteger(v) || v <= 0) throw new Error(`sandbox: ${k} must be a positive integer, got ${v}`);
  }
  for (const name of Object.keys(req.files ?? {})) {
    if (name === '' || name.includes('/') || name === '.' || name === '..') {
      throw new Error(`sandbox: file name '${name}' must be a plain name without '/'`);
    }
  }
}

/** Spawns the plan, captures output under the cap, enforces the timeout, and kills everything at the end. */
function execute(req: SandboxRequest, plan: Plan): Promise<SandboxOutcome> {
  return new Promise<SandboxOutcome>((resolvePromise, rejectPromise) => {
    const started = performance.now();
    const extra = Math.max(plan.infoFd ?? 0, ...plan.inputs.keys(), 2);
    const stdio: Array<'pipe' | 'ignore'> = [];
    for (let i = 0; i <= extra; i++) stdio.push(i <= 2 || plan.inputs.has(i) || i === plan.infoFd ? 'pipe' : 'ignore');

    let child: ChildProcess;
    try {
      child = spawn(plan.command, plan.args, { stdio, detached: true, env: {}, cwd: plan.cwd });
    } catch (err) {
      plan.cleanup();
      rejectPromise(new Error(`sandbox: could not start ${plan.command}: ${(err as Error).message}`));
      return;
    }

    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let kept = 0;
    let timedOut = false;
    let outputLimitExceeded = false;
    let aborted = false;
    let nsInit: ProcInfo | null = null;
    let settled = false;

    const killAll = (): void => {
      if (nsInit !== null && stillRunning(nsInit)) {
        try {
          process.kill(nsInit.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      if (child.pid !== undefined) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // group already gone
        }
      }
    };

    const capture = (into: Buffer[]) => (chunk: Buffer) => {
      if (outputLimitExceeded) return;
      const room = req.outputLimitBytes - kept;
      if (chunk.length > room) {
        into.push(chunk.subarray(0, room));
        kept = req.outputLimitBytes;
        outputLimitExceeded = true;
        killAll();
        child.stdout?.destroy();
        child.stderr?.destroy();
        return;
      }
      into.push(chunk);
      kept += chunk.length;
    };
    child.stdout?.on('data', capture(out));
    child.stderr?.on('data', capture(err));

    if (plan.infoFd !== null) {
      const info = child.stdio[plan.infoFd] as Readable | null;
      let text = '';
      info?.on('data', (chunk: Buffer) => {
        if (nsInit !== null || text.length > 65536) return;
        text += chunk.toString('utf8');
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch {
          return; // incomplete
        }
        const pid = (parsed as Record<string, unknown>)['child-pid'];
        if (typeof pid !== 'number' || !Number.isInteger(pid) || pid <= 1) return;
        // Accept only bwrap's own child: the namespace init.
        const st = procStat(pid);
        if (st !== null && st.ppid === child.pid) nsInit = { pid, startTime: st.startTime };
        if (timedOut || aborted || outputLimitExceeded) killAll();
      });
      info?.on('error', () => {});
    }

    for (const [fd, data] of plan.inputs) {
      const s = child.stdio[fd] as Writable | null;
      s?.on('error', () => {});
      s?.end(data);
    }
    child.stdin?.on('error', () => {}); // the program may exit without reading its input
    child.stdin?.end(req.stdin ?? '');

    const timer = setTimeout(() => {
      timedOut = true;
      killAll();
    }, req.timeoutMs);
    const onAbort = (): void => {
      aborted = true;
      killAll();
    };
    if (req.signal?.aborted) onAbort();
    else req.signal?.addEventListener('abort', onAbort, { once: true });

    let exitCode: number | null = null;
    let exitSignal: NodeJS.Signals | null = null;
    let closeGrace: NodeJS.Timeout | null = null;
    child.on('exit', (code, sig) => {
      exitCode = code;
      exitSignal = sig;
      // Whatever the program left behind (daemons, children still holding our pipes) dies now.
      killAll();
      // Unsafe runs: a descendant that left the process group can hold the pipes open.
      closeGrace = setTimeout(() => {
        child.stdout?.destroy();
        child.stderr?.destroy();
      }, 200);
    });

    const finish = async (spawnError?: Error): Promise<void> => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.signal?.removeEventListener('abort', onAbort);
      if (spawnError === undefined) {
        // Return only once the namespace (and with it every process inside) is gone.
        const deadline = performance.now() + TEARDOWN_WAIT_MS;
        while (nsInit !== null && stillRunning(nsInit) && performance.now() < deadline) {
          killAll();
          await sleep(2);
        }
      }
      if (closeGrace !== null) clearTimeout(closeGrace);
      plan.cleanup();
      if (spawnError !== undefined) {
        rejectPromise(new Error(`sandbox: could not start ${plan.command}: ${spawnError.message}`));
        return;
      }
      resolvePromise({
        exitCode,
        signal: exitSignal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        timedOut,
        outputLimitExceeded,
        aborted,
        timeMs: performance.now() - started,
      });
    };
    child.on('error', (e) => {
      killAll();
      void finish(e);
    });
    child.on('close', () => void finish());
  });
}

let probe: Promise<SandboxStatus> | null = null;

/** Forgets the cached probe result (after installing bubblewrap or changing RLVR_BWRAP). */
export function resetSandboxProbe(): void {
  probe = null;
}

/**
 * Checks once per process whether bubblewrap can build the sandbox here, by running
 * `true` inside it with the full set of options. Cached; see `resetSandboxProbe`.
 */
export function probeSandbox(): Promise<SandboxStatus> {
  probe ??= (async (): Promise<SandboxStatus> => {
    const seccomp = seccompFilter() !== null;
    if (process.platform !== 'linux') {
      return { available: false, seccomp, reason: `the sandbox needs Linux (this is ${process.platform})` };
    }
    const bwrap = process.env.RLVR_BWRAP ?? findExecutable('bwrap');
    if (bwrap === null) return { available: false, seccomp, reason: `bwrap not found: ${INSTALL_HINT}` };
    const prlimit = findExecutable('prlimit');
    if (prlimit === null || (!isUnder(prlimit, '/usr') && !isUnder(prlimit, '/bin'))) {
      return { available: false, seccomp, bwrap, reason: 'prlimit (util-linux) not found under /usr or /bin: apt-get install util-linux' };
    }
    const trueBin = findExecutable('true') ?? '/bin/true';
    try {
      const req: SandboxRequest = { argv: [trueBin], timeoutMs: 10_000, dataMb: 64, addressSpaceMb: 256, outputLimitBytes: 65536 };
      const r = await execute(req, bwrapPlan(req, bwrap, prlimit));
      if (r.exitCode !== 0) {
        const why = (r.stderr.trim() || `exit status ${r.exitCode}`).split('\n')[0];
        return { available: false, seccomp, bwrap, prlimit, reason: `${bwrap} failed (${why}): ${INSTALL_HINT}` };
      }
    } catch (e) {
      return { available: false, seccomp, bwrap, prlimit, reason: `${(e as Error).message}: ${INSTALL_HINT}` };
    }
    return { available: true, seccomp, bwrap, prlimit };
  })();
  return probe;
}

/**
 * Runs `req` in the sandbox (or, with `unsafe: true`, directly with rlimits only).
 * Throws when the sandbox is unavailable and `unsafe` is not set.
 */
export async function runSandboxed(req: SandboxRequest): Promise<SandboxOutcome> {
  validateRequest(req);
  if (req.unsafe) return execute(req, unsafePlan(req, findExecutable('prlimit')));
  const status = await probeSandbox();
  if (!status.available || status.bwrap === undefined || status.prlimit === undefined) {
    throw new Error(
      `sandbox unavailable: ${status.reason ?? 'unknown reason'}. ` +
        'Untrusted code is not run without a sandbox; pass unsafe: true to run it with only a timeout and rlimits.',
    );
  }
  return execute(req, bwrapPlan(req, status.bwrap, status.prlimit));
}
