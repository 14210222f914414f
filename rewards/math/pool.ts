/**
 * A small pool of worker threads with a hard time limit per job.
 *
 * - Workers start lazily, when a job is waiting and no worker is free (up to `size`).
 * - Each job gets its own timer, started when a worker takes it. A job past its limit
 *   resolves `{ status: 'timeout' }` at once, and its worker is terminated (a synchronous
 *   infinite loop cannot be interrupted any other way) and replaced on demand.
 * - A worker that crashes or exits resolves its job `{ status: 'crashed' }` and is replaced.
 * - Idle workers are `unref()`ed: the pool never keeps the process alive on its own. A
 *   worker with a job (or starting for a queued one) is ref'd until the job settles.
 * - `close()` terminates every worker and rejects the jobs still waiting; the pool can be
 *   used again afterwards (new workers start on demand).
 *
 * The module a worker runs calls `serveWorker(handler)`. When that module is TypeScript
 * (sources run untranspiled under tsx or vitest), the worker first registers tsx's loader;
 * a built package runs the emitted `.js` directly.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parentPort, Worker } from 'node:worker_threads';

export type PoolResult<T> =
  | { status: 'ok'; value: T }
  | { status: 'error'; error: string }
  | { status: 'timeout' }
  | { status: 'crashed'; error: string };

export interface WorkerPoolOptions {
  /** Module each worker runs; it must call `serveWorker`. */
  entry: URL;
  /** Most workers alive at once (1..64). */
  size: number;
  /** V8 old-generation heap limit per worker, in MB (default 256). */
  maxHeapMb?: number;
  /** Name used in error messages. */
  name: string;
}

interface Job {
  id: number;
  payload: unknown;
  timeoutMs: number;
  resolve: (r: PoolResult<unknown>) => void;
  reject: (e: Error) => void;
  timer?: NodeJS.Timeout;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  dead: boolean;
  job: Job | null;
}

type WorkerMessage = { type: 'ready' } | { id: number; ok: true; value: unknown } | { id: number; ok: false; error: string };

/** Failed starts in a row after which queued jobs are rejected instead of retried. */
const MAX_START_FAILURES = 3;

export function validatePoolSize(size: unknown, where: string): number {
  if (typeof size !== 'number' || !Number.isInteger(size) || size < 1 || size > 64) {
    throw new RangeError(`${where}: poolSize must be an integer in [1, 64], got ${String(size)}`);
  }
  return size;
}

export class WorkerPool {
  private slots: Slot[] = [];
  private queue: Job[] = [];
  private nextId = 1;
  private startFailures = 0;
  private sizeLimit: number;

  constructor(private readonly options: WorkerPoolOptions) {
    this.sizeLimit = validatePoolSize(options.size, options.name);
  }

  get size(): number {
    return this.sizeLimit;
  }

  set size(n: number) {
    this.sizeLimit = validatePoolSize(n, this.options.name);
    this.pump();
  }

  /** Workers currently alive (started or starting). */
  get workerCount(): number {
    return this.slots.length;
  }

  /** Runs `payload` on a worker; settles within `timeoutMs` of a worker taking it. */
  run<T>(payload: unknown, timeoutMs: number): Promise<PoolResult<T>> {
    if (!(timeoutMs > 0) || !Number.isFinite(timeoutMs)) {
      throw new RangeError(`${this.options.name}: timeoutMs must be a positive number, got ${timeoutMs}`);
    }
    return new Promise<PoolResult<T>>((resolve, reject) => {
      this.queue.push({ id: this.nextId++, payload, timeoutMs, resolve: resolve as Job['resolve'], reject });
      this.pump();
    });
  }

  /** Terminates every worker; jobs not yet finished are rejected. */
  async close(): Promise<void> {
    const slots = this.slots;
    const queued = this.queue;
    this.slots = [];
    this.queue = [];
    const error = new Error(`${this.options.name}: the pool was closed before this job finished`);
    for (const job of queued) job.reject(error);
    for (const slot of slots) {
      slot.dead = true;
      if (slot.job) {
        clearTimeout(slot.job.timer);
        slot.job.reject(error);
        slot.job = null;
      }
    }
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }

  private pump(): void {
    while (this.queue.length > 0) {
      const idle = this.slots.find((s) => s.ready && s.job === null);
      if (idle) {
        this.assign(idle, this.queue.shift()!);
        continue;
      }
      const starting = this.slots.filter((s) => !s.ready).length;
      if (this.slots.length < this.sizeLimit && starting < this.queue.length) {
        this.spawn();
        continue;
      }
      break;
    }
    // A smaller size takes effect as workers fall idle.
    for (const slot of [...this.slots]) {
      if (this.slots.length <= this.sizeLimit) break;
      if (slot.ready && slot.job === null) this.retire(slot);
    }
    for (const slot of this.slots) {
      if (slot.job !== null || (!slot.ready && this.queue.length > 0)) slot.worker.ref();
      else slot.worker.unref();
    }
  }

  private assign(slot: Slot, job: Job): void {
    slot.job = job;
    job.timer = setTimeout(() => {
      if (slot.job !== job) return;
      slot.job = null;
      this.retire(slot);
      job.resolve({ status: 'timeout' });
      this.pump();
    }, job.timeoutMs);
    slot.worker.postMessage({ id: job.id, payload: job.payload });
  }

  private spawn(): void {
    const worker = startWorker(this.options.entry, this.options.maxHeapMb ?? 256);
    const slot: Slot = { worker, ready: false, dead: false, job: null };
    worker.on('message', (msg: WorkerMessage) => this.onMessage(slot, msg));
    worker.on('error', (err) => this.onFailure(slot, err instanceof Error ? err.message : String(err)));
    worker.on('exit', (code) => this.onFailure(slot, `worker exited with code ${code}`));
    this.slots.push(slot);
  }

  private onMessage(slot: Slot, msg: WorkerMessage): void {
    if (slot.dead) return;
    if ('type' in msg) {
      slot.ready = true;
      this.startFailures = 0;
    } else if (slot.job && msg.id === slot.job.id) {
      const job = slot.job;
      slot.job = null;
      clearTimeout(job.timer);
      job.resolve(msg.ok ? { status: 'ok', value: msg.value } : { status: 'error', error: msg.error });
    }
    this.pump();
  }

  private onFailure(slot: Slot, error: string): void {
    if (slot.dead) return;
    const wasReady = slot.ready;
    const job = slot.job;
    slot.job = null;
    this.retire(slot);
    if (job) {
      clearTimeout(job.timer);
      job.resolve({ status: 'crashed', error });
    } else if (!wasReady && ++this.startFailures >= MAX_START_FAILURES) {
      this.startFailures = 0;
      const queued = this.queue;
      this.queue = [];
      for (const q of queued) q.reject(new Error(`${this.options.name}: worker failed to start: ${error}`));
    }
    this.pump();
  }

  private retire(slot: Slot): void {
    slot.dead = true;
    this.slots = this.slots.filter((s) => s !== slot);
    void slot.worker.terminate();
  }
}

/** Starts a worker on `entry`; a `.ts` entry is loaded through tsx's ESM loader. */
function startWorker(entry: URL, maxHeapMb: number): Worker {
  const resourceLimits = { maxOldGenerationSizeMb: maxHeapMb };
  if (!entry.pathname.endsWith('.ts')) return new Worker(entry, { resourceLimits });
  const code = `import { register } from ${JSON.stringify(tsxApiUrl())};\nregister();\nawait import(${JSON.stringify(entry.href)});\n`;
  return new Worker(new URL(`data:text/javascript,${encodeURIComponent(code)}`), { resourceLimits });
}

let cachedTsxApi: string | undefined;

/** file: URL of tsx's ESM register API, found through its package.json exports. */
function tsxApiUrl(): string {
  if (cachedTsxApi) return cachedTsxApi;
  const require = createRequire(import.meta.url);
  let pkgPath: string;
  try {
    pkgPath = require.resolve('tsx/package.json');
  } catch {
    throw new Error('worker pool: running TypeScript sources in worker threads needs the tsx package (npm install -D tsx)');
  }
  const pkg = JSON.parse(readFileSync(pkgPath, 'utf8')) as { exports?: Record<string, { import?: { default?: string } }> };
  const rel = pkg.exports?.['./esm/api']?.import?.default ?? './dist/esm/api/index.mjs';
  cachedTsxApi = pathToFileURL(join(dirname(pkgPath), rel)).href;
  return cachedTsxApi;
}

/**
 * Inside a worker: answers each job with `handler(payload)` (a thrown error is reported
 * as `{ status: 'error' }`), after announcing that the worker is ready.
 */
export function serveWorker(handler: (payload: unknown) => unknown): void {
  const port = parentPort;
  if (!port) throw new Error('serveWorker: not running in a worker thread');
  port.on('message', (msg: { id: number; payload: unknown }) => {
    let reply: WorkerMessage;
    try {
      reply = { id: msg.id, ok: true, value: handler(msg.payload) };
    } catch (e) {
      reply = { id: msg.id, ok: false, error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) };
    }
    port.postMessage(reply);
  });
  port.postMessage({ type: 'ready' } satisfies WorkerMessage);
}
