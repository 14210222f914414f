/**
 * `verifyMathAsync`: the same check as `verifyMath`, run in a pool of worker threads so
 * that a pathological answer cannot stall the caller or the other checks. A check that
 * runs past `timeoutMs` (counted from the moment a worker takes it) resolves false at
 * once, and its worker is terminated and replaced. The pool starts on the first call,
 * holds `poolSize` workers at most (default: 2 to 4, by CPU count), and never keeps the
 * process alive when idle; `closeMathWorkers()` shuts it down.
 */
import { availableParallelism } from 'node:os';
import { validatePoolSize, WorkerPool } from './pool.ts';
import { checkText, resolveVerifyOptions, type VerifyMathOptions } from './verify.ts';

const ENTRY = new URL(import.meta.url.endsWith('.ts') ? './worker.ts' : './worker.js', import.meta.url);

let pool: WorkerPool | null = null;
let poolSize = Math.max(2, Math.min(4, availableParallelism()));

function getPool(): WorkerPool {
  pool ??= new WorkerPool({ entry: ENTRY, size: poolSize, name: 'verifyMathAsync', maxHeapMb: 256 });
  return pool;
}

/**
 * Like `verifyMath`, off the calling thread and with a hard time limit: resolves false when
 * the check exceeds `options.timeoutMs` (default 2000) or its worker dies. Rejects only on
 * invalid arguments or an internal error of the verifier.
 */
export async function verifyMathAsync(gold: string, prediction: string, options?: VerifyMathOptions): Promise<boolean> {
  const opts = resolveVerifyOptions(options, 'verifyMathAsync');
  checkText(gold, 'gold', 'verifyMathAsync');
  checkText(prediction, 'prediction', 'verifyMathAsync');
  const result = await getPool().run<boolean>({ gold, prediction, ...opts }, opts.timeoutMs);
  if (result.status === 'ok') return result.value === true;
  if (result.status === 'error') throw new Error(`verifyMathAsync: the verifier failed: ${result.error}`);
  return false;
}

export interface MathWorkerOptions {
  /** Most worker threads running checks at once (1..64). */
  poolSize?: number;
}

/** Sets the pool size (applies at once; surplus workers stop as they fall idle). */
export function configureMathWorkers(options: MathWorkerOptions): void {
  if (options.poolSize !== undefined) {
    poolSize = validatePoolSize(options.poolSize, 'configureMathWorkers');
    if (pool) pool.size = poolSize;
  }
}

/** Terminates the worker threads (checks still running reject). Later calls start new ones. */
export async function closeMathWorkers(): Promise<void> {
  const p = pool;
  pool = null;
  if (p) await p.close();
}
