/**
 * TensorFlow.js backend selection: one call at start-up, printed in every run header.
 *
 * Order tried by 'auto':
 *   1. tensorflow-gpu  @tensorflow/tfjs-node-gpu (libtensorflow with CUDA)
 *   2. tensorflow      @tensorflow/tfjs-node (libtensorflow on the CPU)
 *   3. wasm            @tensorflow/tfjs-backend-wasm (XNNPACK), with the kernel fixes of
 *                      kernels/; the default on machines without libtensorflow
 *   4. cpu             the pure-JavaScript backend (about 20x slower than wasm)
 * The two native packages are optional peers: their install script downloads
 * libtensorflow, which needs internet at install time, so they are loaded with a dynamic
 * import and skipped when absent.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { applyWasmFixes } from './kernels/index.ts';

export type EngineBackend = 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';

export interface EngineOptions {
  /** Which backend to use; 'auto' (default) takes the first that loads, in the order above. */
  backend?: 'auto' | EngineBackend;
  /** Silence tfjs's start-up banner and the notice printed when 'auto' falls back to cpu. */
  quiet?: boolean;
}

export interface EngineInfo {
  /** The backend that was resolved. */
  backend: EngineBackend;
  /** `tf.getBackend()` after initialisation ('tensorflow' for both native packages). */
  tfBackend: string;
  /** Worker threads of the backend, when it reports them (wasm: getThreadsCount(); cpu: 1). */
  threads?: number;
  /** Kernel fixes registered by initEngine (wasm only; empty otherwise). */
  fixesApplied: string[];
}

const BACKENDS: readonly EngineBackend[] = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];

const NATIVE_PACKAGE: Record<'tensorflow-gpu' | 'tensorflow', string> = {
  'tensorflow-gpu': '@tensorflow/tfjs-node-gpu',
  tensorflow: '@tensorflow/tfjs-node',
};

const INSTALL_HINT: Record<EngineBackend, string> = {
  'tensorflow-gpu':
    'npm install @tensorflow/tfjs-node-gpu (needs internet at install time to download libtensorflow; Linux x64 with CUDA and cuDNN)',
  tensorflow: 'npm install @tensorflow/tfjs-node (needs internet at install time to download libtensorflow)',
  wasm: 'npm install @tensorflow/tfjs-backend-wasm@4.22.0 (it is a regular dependency of rlvr; reinstall with npm ci)',
  cpu: 'npm ci (the cpu backend ships inside @tensorflow/tfjs)',
};

/** What initEngine resolved last; `requested` is the option it was called with. */
let current: { requested: 'auto' | EngineBackend; info: EngineInfo } | null = null;
/** Which native package registered the 'tensorflow' backend in this process, if any. */
let nativeLoaded: 'tensorflow-gpu' | 'tensorflow' | null = null;

class BackendUnavailable extends Error {}

async function loadNative(kind: 'tensorflow-gpu' | 'tensorflow'): Promise<void> {
  if (nativeLoaded !== null && nativeLoaded !== kind) {
    // Both packages register the backend under the name 'tensorflow'; one process holds one.
    throw new BackendUnavailable(`${NATIVE_PACKAGE[nativeLoaded]} is already loaded in this process; restart to use ${NATIVE_PACKAGE[kind]}`);
  }
  if (nativeLoaded === null) {
    const spec: string = NATIVE_PACKAGE[kind]; // a variable, so TypeScript does not resolve the optional peer
    try {
      await import(spec);
    } catch (e) {
      throw new BackendUnavailable(`${spec} could not be loaded (${firstLine(e)})`);
    }
    nativeLoaded = kind;
  }
}

function firstLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split('\n')[0] ?? msg;
}

async function activate(backend: EngineBackend, quiet: boolean): Promise<EngineInfo> {
  const tfName = backend === 'tensorflow-gpu' || backend === 'tensorflow' ? 'tensorflow' : backend;
  if (tfName === 'tensorflow') await loadNative(backend as 'tensorflow-gpu' | 'tensorflow');
  const fixesApplied = backend === 'wasm' ? applyWasmFixes() : [];
  let ok: boolean;
  try {
    ok = await tf.setBackend(tfName);
    await tf.ready();
  } catch (e) {
    throw new BackendUnavailable(`tf.setBackend('${tfName}') failed (${firstLine(e)})`);
  }
  if (!ok || tf.getBackend() !== tfName) {
    throw new BackendUnavailable(`tf.setBackend('${tfName}') did not initialise the backend`);
  }
  if (quiet && tfName === 'cpu') {
    // The cpu backend prints a "install tfjs-node" banner on its first tensor upload.
    (tf.backend() as unknown as { firstUse?: boolean }).firstUse = false;
  }
  const info: EngineInfo = { backend, tfBackend: tf.getBackend(), fixesApplied };
  if (backend === 'wasm') info.threads = getThreadsCount();
  else if (backend === 'cpu') info.threads = 1;
  return info;
}

/**
 * Choose and initialise the tfjs backend. Idempotent: a second call with the same
 * backend returns the cached result; a call with another backend switches to it.
 * A named backend that cannot load throws an error that says how to install it.
 */
export async function initEngine(options: EngineOptions = {}): Promise<EngineInfo> {
  const requested = options.backend ?? 'auto';
  const quiet = options.quiet ?? false;
  if (requested !== 'auto' && !BACKENDS.includes(requested)) {
    throw new Error(`initEngine: options.backend must be one of auto, ${BACKENDS.join(', ')}; got ${JSON.stringify(requested)}`);
  }
  if (current !== null && tf.getBackend() === current.info.tfBackend) {
    if (requested === current.requested || requested === current.info.backend) return cloneInfo(current.info);
  }

  if (requested !== 'auto') {
    try {
      const info = await activate(requested, quiet);
      current = { requested, info };
      return cloneInfo(info);
    } catch (e) {
      if (!(e instanceof BackendUnavailable)) throw e;
      throw new Error(`initEngine: backend '${requested}' is not available: ${e.message}. Install it with: ${INSTALL_HINT[requested]}`);
    }
  }

  const failures: string[] = [];
  for (const backend of BACKENDS) {
    try {
      const info = await activate(backend, quiet);
      if (backend === 'cpu' && !quiet) {
        console.warn(`rlvr: using the slow pure-JS cpu backend (${failures.join('; ')})`);
      }
      current = { requested, info };
      return cloneInfo(info);
    } catch (e) {
      if (!(e instanceof BackendUnavailable)) throw e;
      failures.push(`${backend}: ${e.message}`);
    }
  }
  throw new Error(`initEngine: no tfjs backend could be initialised:\n  ${failures.join('\n  ')}`);
}

function cloneInfo(info: EngineInfo): EngineInfo {
  return { ...info, fixesApplied: [...info.fixesApplied] };
}

/** One line for run headers, e.g. "engine: wasm (tfjs 4.22.0, 1 thread, 3 kernel fixes)". */
export function describeEngine(info: EngineInfo): string {
  const parts = [`tfjs ${tf.version_core}`];
  if (info.tfBackend !== info.backend) parts.push(`tf backend '${info.tfBackend}'`);
  if (info.threads !== undefined) parts.push(`${info.threads} thread${info.threads === 1 ? '' : 's'}`);
  if (info.fixesApplied.length > 0) {
    const kernels = info.fixesApplied.map((f) => f.split(':')[0]).join(', ');
    parts.push(`kernel fixes: ${kernels}`);
  }
  return `engine: ${info.backend} (${parts.join(', ')})`;
}
