/**
 * Containment tests for the code runner's sandbox: each one runs a real program that
 * tries to break a guarantee listed in rewards/code/sandbox.ts. Where it matters, the
 * same program runs once with `unsafe: true` as a positive control, showing that the
 * check would notice a breach.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  probeSandbox,
  resetSandboxProbe,
  resolveInterpreter,
  runCode,
  runSandboxed,
  seccompFilter,
  type SandboxRequest,
} from '../../rewards/index.ts';
import { findExecutable } from '../../rewards/code/sandbox.ts';

const SLEEP = findExecutable('sleep') ?? '/usr/bin/sleep';
let markerCount = 0;
/** A unique `sleep` argument: processes carrying it in their command line are ours. */
function marker(): string {
  markerCount++;
  return `${4000 + (process.pid % 1000)}.${markerCount}${process.pid % 97}`;
}

/** Running (non-zombie) processes whose command line holds `mark`. */
function processesWith(mark: string): number[] {
  const found: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8');
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      if (cmd.split('\0').includes(mark) && state !== 'Z') found.push(Number(d));
    } catch {
      // exited while we looked
    }
  }
  return found;
}

async function python(code: string, extra: Partial<SandboxRequest> = {}) {
  const py = await resolveInterpreter('python');
  return runSandboxed({
    argv: py.argv('/box/main.py', 256),
    files: { 'main.py': code },
    readOnlyDirs: py.readOnlyDirs,
    timeoutMs: 3000,
    dataMb: 256,
    addressSpaceMb: 256 + py.addressSpaceReserveMb,
    outputLimitBytes: 1 << 20,
    ...extra,
  });
}

beforeAll(async () => {
  const status = await probeSandbox();
  if (!status.available) throw new Error(`sandbox tests need bubblewrap: ${status.reason}`);
});

describe('wall-clock limit and process-tree kill', () => {
  it('kills a busy loop at the timeout', async () => {
    const r = await runCode({ language: 'python', code: 'while True:\n    pass\n', tests: [{ input: '', expectedOutput: '' }], timeoutMs: 700 });
    expect(r.cases[0]?.status).toBe('timeout');
    const j = await runCode({ language: 'javascript', code: 'for (;;) {}', tests: [{ input: '', expectedOutput: '' }], timeoutMs: 700 });
    expect(j.cases[0]?.status).toBe('timeout');
  });

  const daemonise = (mark: string, tail: string) => `
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv(${JSON.stringify(SLEEP)}, ['sleep', ${JSON.stringify(mark)}])
    os._exit(0)
time.sleep(0.3)
print('spawned', flush=True)
${tail}
`;

  it('leaves no daemonised (setsid, double fork) survivor after a normal exit', async () => {
    const mark = marker();
    const r = await python(daemonise(mark, ''), { allowSubprocesses: true });
    expect(r.stdout).toContain('spawned');
    expect(r.exitCode).toBe(0);
    expect(processesWith(mark)).toEqual([]);
  });

  it('leaves no daemonised survivor after a timeout', async () => {
    const mark = marker();
    const r = await python(daemonise(mark, 'while True:\n    pass'), { allowSubprocesses: true, timeoutMs: 2500 });
    expect(r.stdout).toContain('spawned');
    expect(r.timedOut).toBe(true);
    expect(processesWith(mark)).toEqual([]);
  });

  it('positive control: without the sandbox the daemon does survive', async () => {
    const mark = marker();
    const r = await python(daemonise(mark, ''), { unsafe: true });
    expect(r.stdout).toContain('spawned');
    const survivors = processesWith(mark);
    for (const pid of survivors) process.kill(pid, 'SIGKILL');
    expect(survivors.length).toBe(1);
  });

  it('kills every child of a program that forks in a loop', async () => {
    const mark = marker();
    const code = `
import os
for i in range(30):
    if os.fork() == 0:
        os.execv(${JSON.stringify(SLEEP)}, ['sleep', ${JSON.stringify(mark)}])
print('forked', flush=True)
while True:
    pass
`;
    const r = await python(code, { allowSubprocesses: true, timeoutMs: 2500 });
    expect(r.stdout).toContain('forked');
    expect(r.timedOut).toBe(true);
    expect(processesWith(mark)).toEqual([]);
  });
});

describe('our process dying', () => {
  it('takes the sandbox with it (--die-with-parent)', async () => {
    const mark = marker();
    const dir = mkdtempSync(join(tmpdir(), 'rlvr-orphan-'));
    const script = join(dir, 'run.mts');
    const index = join(process.cwd(), 'rewards', 'index.ts');
    writeFileSync(
      script,
      `import { runCode } from ${JSON.stringify(index)};\n` +
        `await runCode({ language: 'python', code: "import os\\nos.execv(${JSON.stringify(SLEEP).replaceAll('"', "'")}, ['sleep', '${mark}'])", ` +
        `tests: [{ input: '', expectedOutput: '' }], timeoutMs: 60000 });\n`,
    );
    const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: process.cwd(), stdio: 'ignore' });
    try {
      let seen = false;
      for (let i = 0; i < 3000 && !seen; i++) {
        seen = processesWith(mark).length > 0;
        if (!seen) await new Promise((r) => setTimeout(r, 10));
      }
      expect(seen).toBe(true);
      child.kill('SIGKILL');
      for (let i = 0; i < 200 && processesWith(mark).length > 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(processesWith(mark)).toEqual([]);
    } finally {
      child.kill('SIGKILL');
      for (const pid of processesWith(mark)) process.kill(pid, 'SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(seccompFilter() === null)('no child processes (seccomp)', () => {
  it('makes fork and subprocess fail with EPERM, in a loop, in python', async () => {
    const mark = marker();
    const code = `
import os, subprocess
ok, errs = 0, set()
for i in range(200):
    try:
        if os.fork() == 0:
            os.execv(${JSON.stringify(SLEEP)}, ['sleep', ${JSON.stringify(mark)}])
        ok += 1
    except OSError as e:
        errs.add(e.errno)
try:
    subprocess.run([${JSON.stringify(SLEEP)}, '0'])
    sub = 'ran'
except OSError as e:
    sub = e.errno
print(ok, sorted(errs), sub)
`;
    const r = await python(code);
    expect(r.stdout.trim()).toBe('0 [1] 1');
    expect(processesWith(mark)).toEqual([]);
  });

  it('makes child_process fail in node but keeps threads and workers working', async () => {
    const code = `
const cp = require('child_process');
let spawned = 'ran';
try { cp.execFileSync('/usr/bin/true'); } catch (e) { spawned = e.code; }
const { Worker } = require('worker_threads');
new Worker('require("worker_threads").parentPort.postMessage(6 * 7)', { eval: true })
  .on('message', (m) => console.log(spawned, m));
`;
    const r = await runCode({ language: 'javascript', code, tests: [{ input: '', expectedOutput: 'EPERM 42' }] });
    expect(r.cases[0]?.stdout.trim()).toBe('EPERM 42');
    expect(r.passed).toBe(1);
  });

  it('keeps python threads working', async () => {
    const code = 'import threading\nout = []\nts = [threading.Thread(target=out.append, args=(i,)) for i in range(4)]\n[t.start() for t in ts]\n[t.join() for t in ts]\nprint(sum(out))\n';
    const r = await runCode({ language: 'python', code, tests: [{ input: '', expectedOutput: '6' }] });
    expect(r.passed).toBe(1);
  });
});

describe('memory and output limits', () => {
  it('stops python and node programs that allocate 2 GB', async () => {
    const tests = [{ input: '', expectedOutput: '' }];
    const before = process.memoryUsage().rss;
    const py = await runCode({ language: 'python', code: 'x = bytearray(2 * 1024**3)\nprint(len(x))', tests, memoryMb: 256 });
    const mm = await runCode({ language: 'python', code: 'import mmap\nm = mmap.mmap(-1, 2 * 1024**3)\nm[-1:] = b"x"\nprint("mapped")', tests, memoryMb: 256 });
    const js = await runCode({ language: 'javascript', code: 'const b = Buffer.alloc(2 * 1024 ** 3, 1); console.log(b.length)', tests, memoryMb: 256 });
    const heap = await runCode({ language: 'javascript', code: 'const a = []; for (;;) a.push(new Array(1e6).fill(1.5));', tests, memoryMb: 128, timeoutMs: 10_000 });
    for (const r of [py, mm, js, heap]) {
      expect(['memory', 'error']).toContain(r.cases[0]?.status);
      expect(r.cases[0]?.stdout).toBe('');
    }
    expect(py.cases[0]?.status).toBe('memory');
    expect(heap.cases[0]?.status).toBe('memory');
    // Our own process did not take the allocation.
    expect(process.memoryUsage().rss - before).toBeLessThan(512 * 1024 * 1024);
  });

  it('caps output: a program printing without end is cut at the limit and killed', async () => {
    const before = process.memoryUsage().rss;
    const r = await runCode({
      language: 'python',
      code: 'import sys\nwhile True:\n    sys.stdout.write("x" * 65536)\n',
      tests: [{ input: '', expectedOutput: '' }],
      outputLimitBytes: 256 * 1024,
      timeoutMs: 10_000,
    });
    const c = r.cases[0];
    expect(c?.status).toBe('error');
    expect(c?.stdout.length).toBe(256 * 1024);
    expect(c?.stderr).toContain('output limit');
    expect(process.memoryUsage().rss - before).toBeLessThan(256 * 1024 * 1024);
  });
});

describe('no network', () => {
  let server: Server;
  let port = 0;
  let connections = 0;
  beforeAll(async () => {
    server = createServer((s) => {
      connections++;
      s.destroy();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const connect = () => `
import socket
try:
    socket.create_connection(('127.0.0.1', ${port}), timeout=1).close()
    print('connected')
except OSError as e:
    print('blocked', type(e).__name__)
`;

  it('a connection to a listener on 127.0.0.1 never arrives', async () => {
    const r = await python(connect());
    expect(r.stdout).toContain('blocked');
    const js = await runCode({
      language: 'javascript',
      code: `require('net').connect(${port}, '127.0.0.1').on('connect', () => console.log('connected')).on('error', (e) => console.log('blocked', e.code));`,
      tests: [{ input: '', expectedOutput: 'blocked ECONNREFUSED' }],
    });
    expect(js.cases[0]?.stdout.trim()).toMatch(/^blocked/);
    expect(connections).toBe(0);
  });

  it('positive control: without the sandbox the connection arrives', async () => {
    const r = await python(connect(), { unsafe: true });
    expect(r.stdout).toContain('connected');
    await new Promise((res) => setTimeout(res, 50));
    expect(connections).toBe(1);
    connections = 0;
  });
});

describe('file system', () => {
  const secret = 'rlvr-sandbox-secret-3141';
  let tmpSecret = '';
  let projectSecret = '';
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'rlvr-secret-'));
    tmpSecret = join(dir, 'secret.txt');
    writeFileSync(tmpSecret, secret);
    projectSecret = join(process.cwd(), `.sandbox-secret-${process.pid}.txt`);
    writeFileSync(projectSecret, secret);
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(projectSecret, { force: true });
  });

  const probe = (writes: string[]) => `
import os, json
out = {}
for p in PATHS:
    try:
        with open(p) as f:
            out[p] = f.read()
    except OSError as e:
        out[p] = 'denied:' + type(e).__name__
for p in ${JSON.stringify(writes)}:
    try:
        with open(p, 'w') as f:
            f.write('x')
        out['write:' + p] = 'wrote'
    except OSError as e:
        out['write:' + p] = 'denied:' + type(e).__name__
print(json.dumps(out))
`;

  it('cannot read secrets in /tmp or the project, nor write anywhere', async () => {
    const writes = ['/tmp/x', '/box/x', '/usr/x', '/x', '/dev/shm/x', '/dev/x', join(dir, 'new.txt'), join(process.cwd(), `.sandbox-write-${process.pid}`)];
    const code = probe(writes).replace('PATHS', JSON.stringify([tmpSecret, projectSecret, '/etc/passwd', '/etc/hostname', '/proc/1/environ']));
    const r = await python(code);
    expect(r.exitCode).toBe(0);
    const out = JSON.parse(r.stdout) as Record<string, string>;
    for (const [k, v] of Object.entries(out)) {
      expect(v, k).toMatch(/^denied:/);
      expect(v).not.toContain(secret);
    }
    expect(Object.keys(out).length).toBe(5 + writes.length);
    // Nothing appeared on the host.
    expect(readdirSync(dir)).toEqual(['secret.txt']);
    expect(readdirSync(process.cwd()).some((f) => f.startsWith('.sandbox-write-'))).toBe(false);
  });

  it('sees only the interpreter folders at the root', async () => {
    const r = await python('import os\nprint(sorted(os.listdir("/")))');
    const top = JSON.parse(r.stdout.replaceAll("'", '"')) as string[];
    for (const name of top) expect(['bin', 'box', 'dev', 'lib', 'lib32', 'lib64', 'libx32', 'sbin', 'usr', 'root', 'home', 'opt']).toContain(name);
    expect(top).not.toContain('tmp');
    expect(top).not.toContain('etc');
    expect(top).not.toContain('work');
  });

  it('positive control: without the sandbox the secret is readable', async () => {
    const code = probe([]).replace('PATHS', JSON.stringify([tmpSecret]));
    const r = await python(code, { unsafe: true });
    expect((JSON.parse(r.stdout) as Record<string, string>)[tmpSecret]).toBe(secret);
  });
});

describe('environment and parent process', () => {
  it('shows the program none of our environment variables', async () => {
    process.env.RLVR_SANDBOX_TEST_SECRET = 'hunter2';
    try {
      const py = await runCode({ language: 'python', code: 'import os, json\nprint(json.dumps(dict(os.environ)))', tests: [{ input: '', expectedOutput: '' }] });
      const js = await runCode({ language: 'javascript', code: 'console.log(JSON.stringify(process.env))', tests: [{ input: '', expectedOutput: '' }] });
      // bwrap sets PWD after --chdir; python adds LC_CTYPE when it coerces the C locale.
      expect(JSON.parse(py.cases[0]?.stdout ?? '')).toEqual({ PWD: '/box', LC_CTYPE: 'C.UTF-8' });
      expect(JSON.parse(js.cases[0]?.stdout ?? '')).toEqual({ PWD: '/box' });
    } finally {
      delete process.env.RLVR_SANDBOX_TEST_SECRET;
    }
  });

  it('survives a program that kills its parent and every pid it can name', async () => {
    const ppidBefore = process.ppid;
    const code = `
import os, signal
try:
    os.kill(os.getppid(), signal.SIGKILL)
except OSError:
    pass
hits = 0
for pid in range(1, 70000):
    if pid == os.getpid():
        continue
    try:
        os.kill(pid, signal.SIGKILL)
        hits += 1
    except OSError:
        pass
print('alive', os.getppid())
`;
    const r = await runCode({ language: 'python', code, tests: [{ input: '', expectedOutput: 'alive 1' }], timeoutMs: 5000 });
    expect(r.cases[0]?.stdout.trim()).toBe('alive 1');
    const js = await runCode({
      language: 'javascript',
      code: "try { process.kill(process.ppid, 'SIGKILL'); } catch {} console.log('alive', process.ppid)",
      tests: [{ input: '', expectedOutput: 'alive 1' }],
    });
    expect(js.passed).toBe(1);
    // We are still here, with the same parent, and the runner still works.
    expect(process.ppid).toBe(ppidBefore);
    const again = await runCode({ language: 'python', code: 'print(input())', tests: [{ input: 'ok', expectedOutput: 'ok' }] });
    expect(again.passed).toBe(1);
  });
});

describe('without a working sandbox', () => {
  it('refuses untrusted code with an install hint unless unsafe is set', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rlvr-fake-bwrap-'));
    const fake = join(dir, 'bwrap');
    writeFileSync(fake, '#!/bin/sh\necho "bwrap: No permissions to create new namespace" >&2\nexit 1\n');
    chmodSync(fake, 0o755);
    const saved = process.env.RLVR_BWRAP;
    process.env.RLVR_BWRAP = fake;
    resetSandboxProbe();
    try {
      const status = await probeSandbox();
      expect(status.available).toBe(false);
      expect(status.reason).toContain('No permissions to create new namespace');
      const tests = [{ input: '2 3', expectedOutput: '5' }];
      const code = 'print(sum(map(int, input().split())))';
      await expect(runCode({ language: 'python', code, tests })).rejects.toThrow(/apt-get install bubblewrap/);
      const r = await runCode({ language: 'python', code, tests, unsafe: true });
      expect(r.passed).toBe(1);
      process.env.RLVR_BWRAP = join(dir, 'missing-bwrap');
      resetSandboxProbe();
      await expect(runCode({ language: 'python', code, tests })).rejects.toThrow(/sandbox unavailable.*apt-get install bubblewrap/);
    } finally {
      if (saved === undefined) delete process.env.RLVR_BWRAP;
      else process.env.RLVR_BWRAP = saved;
      resetSandboxProbe();
      rmSync(dir, { recursive: true, force: true });
    }
    expect((await probeSandbox()).available).toBe(true);
  });
});
