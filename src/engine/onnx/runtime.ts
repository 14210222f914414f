/**
 * onnxruntime-node sessions for our graphs: loading the native binding (with a clear error
 * when it is missing), session options (both cores by default) and typed feeds.
 *
 * `session.run` is synchronous native work scheduled behind a promise: it blocks the event
 * loop for its duration, so callers that must stay responsive (Ctrl-C, progress) yield
 * between runs, as the sampler does between tokens.
 */
import { availableParallelism } from 'node:os';
import type * as ortTypes from 'onnxruntime-node';

export type Ort = typeof ortTypes;
export type OrtSession = ortTypes.InferenceSession;
export type OrtTensor = ortTypes.Tensor;

let ortModule: Ort | null = null;
let loadError: Error | null = null;

/** The onnxruntime-node module, loaded on first use; throws a clear error when it cannot load. */
export async function loadOrt(): Promise<Ort> {
  if (ortModule) return ortModule;
  if (loadError) throw loadError;
  try {
    const m = (await import('onnxruntime-node')) as Ort & { default?: Ort };
    ortModule = (m.InferenceSession ? m : m.default) as Ort;
    return ortModule;
  } catch (e) {
    loadError = new Error(`onnxruntime-node could not be loaded (${(e as Error).message}); use --engine tfjs, or reinstall with npm ci`);
    throw loadError;
  }
}

/** Whether onnxruntime-node loads on this machine (for `--engine auto`). */
export async function ortAvailable(): Promise<boolean> {
  try {
    await loadOrt();
    return true;
  } catch {
    return false;
  }
}

export interface SessionOptions {
  /** Threads of one operator; default all cores (2 on the reference machine). */
  threads?: number;
  /** Execution provider: 'cpu' (default) or 'cuda' (needs onnxruntime-node's CUDA build). */
  device?: 'cpu' | 'cuda';
  /**
   * Let idle intra-op threads spin between runs (onnxruntime's default). Off by default
   * here: the sampler alternates with tfjs work on the same cores, which spinning threads
   * would slow down.
   */
  spin?: boolean;
}

export function defaultThreads(): number {
  return Math.max(1, Math.min(availableParallelism(), 16));
}

/** A session from model bytes and optional external data held in memory. */
export async function createSession(
  model: Uint8Array,
  externalData: { path: string; data: Uint8Array } | null,
  options: SessionOptions = {},
): Promise<OrtSession> {
  const ort = await loadOrt();
  const threads = options.threads ?? defaultThreads();
  if (!Number.isInteger(threads) || threads < 1) throw new Error(`onnxruntime: threads must be an integer >= 1, got ${threads}`);
  const so: ortTypes.InferenceSession.SessionOptions = {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    executionProviders: [options.device === 'cuda' ? 'cuda' : 'cpu'],
    extra: { session: { intra_op: { allow_spinning: options.spin ? '1' : '0' }, inter_op: { allow_spinning: options.spin ? '1' : '0' } } },
  };
  if (externalData) so.externalData = [{ path: externalData.path, data: externalData.data }];
  try {
    return await ort.InferenceSession.create(model, so);
  } catch (e) {
    const msg = (e as Error).message;
    if (options.device === 'cuda') {
      throw new Error(`onnxruntime: the CUDA execution provider is not available (${msg}); install onnxruntime-node with ONNXRUNTIME_NODE_INSTALL=cuda12 on a machine with an NVIDIA GPU, or use --device cpu`);
    }
    throw new Error(`onnxruntime: could not create a session (${msg})`);
  }
}

/** int64 tensor from int32 values. */
export function int64Tensor(ort: Ort, values: ArrayLike<number>, dims: number[]): OrtTensor {
  const data = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) data[i] = BigInt(values[i]!);
  return new ort.Tensor('int64', data, dims);
}

export function floatTensor(ort: Ort, data: Float32Array, dims: number[]): OrtTensor {
  return new ort.Tensor('float32', data, dims);
}
