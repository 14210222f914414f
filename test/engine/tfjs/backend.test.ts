import * as tf from '@tensorflow/tfjs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { describeEngine, initEngine, type EngineInfo } from '../../../src/engine/tfjs/backend.ts';
import { WASM_FIX_NAMES } from '../../../src/engine/tfjs/kernels/index.ts';

function installed(pkg: string): boolean {
  try {
    createRequire(import.meta.url).resolve(pkg);
    return true;
  } catch {
    return false;
  }
}
const HAS_NATIVE = installed('@tensorflow/tfjs-node') || installed('@tensorflow/tfjs-node-gpu');

describe('initEngine', () => {
  it('wasm: resolves, applies the kernel fixes, reports threads', async () => {
    const info = await initEngine({ backend: 'wasm' });
    expect(info.backend).toBe('wasm');
    expect(info.tfBackend).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(info.threads).toBeGreaterThanOrEqual(1);
    expect(info.fixesApplied).toEqual(Object.values(WASM_FIX_NAMES));
    // The gather gradient works once the engine is up.
    const g = tf.tidy(() =>
      Array.from(tf.grad((t: tf.Tensor) => tf.sum(tf.gather(t, tf.tensor1d([2, 2, 0], 'int32'))))(tf.ones([3, 2])).dataSync()),
    );
    expect(g).toEqual([1, 1, 0, 0, 2, 2]);
  });

  it('is idempotent: the same backend again returns the same description', async () => {
    const a = await initEngine({ backend: 'wasm' });
    const b = await initEngine({ backend: 'wasm' });
    expect(b).toEqual(a);
    b.fixesApplied.push('mutated');
    expect((await initEngine({ backend: 'wasm' })).fixesApplied).toHaveLength(Object.keys(WASM_FIX_NAMES).length); // callers get copies
  });

  it('switches between backends', async () => {
    const cpu = await initEngine({ backend: 'cpu', quiet: true });
    expect(cpu).toEqual({ backend: 'cpu', tfBackend: 'cpu', threads: 1, fixesApplied: [] });
    expect(tf.getBackend()).toBe('cpu');
    const wasm = await initEngine({ backend: 'wasm' });
    expect(wasm.backend).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
  });

  it('re-activates the backend when something else switched tfjs away from it', async () => {
    await initEngine({ backend: 'wasm' });
    await tf.setBackend('cpu');
    const info = await initEngine({ backend: 'wasm' });
    expect(info.backend).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
  });

  it.skipIf(HAS_NATIVE)('auto falls back to wasm when the native packages are absent', async () => {
    await initEngine({ backend: 'cpu', quiet: true });
    const info = await initEngine({ backend: 'auto' });
    expect(info.backend).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(await initEngine()).toEqual(info);
  });

  it.skipIf(HAS_NATIVE)('a named native backend that is not installed says how to install it', async () => {
    await expect(initEngine({ backend: 'tensorflow-gpu' })).rejects.toThrow(
      /backend 'tensorflow-gpu' is not available: @tensorflow\/tfjs-node-gpu could not be loaded .*npm install @tensorflow\/tfjs-node-gpu \(needs internet at install time to download libtensorflow/,
    );
    await expect(initEngine({ backend: 'tensorflow' })).rejects.toThrow(
      /backend 'tensorflow' is not available: .*npm install @tensorflow\/tfjs-node \(needs internet/,
    );
  });

  it('rejects an unknown backend name', async () => {
    await expect(initEngine({ backend: 'webgpu' as 'wasm' })).rejects.toThrow(
      'initEngine: options.backend must be one of auto, tensorflow-gpu, tensorflow, wasm, cpu; got "webgpu"',
    );
  });
});

describe('describeEngine', () => {
  it('names the backend, tfjs version, threads and fixed kernels', () => {
    const info: EngineInfo = {
      backend: 'wasm',
      tfBackend: 'wasm',
      threads: 1,
      fixesApplied: [WASM_FIX_NAMES.batchMatMul, WASM_FIX_NAMES.unsortedSegmentSum],
    };
    expect(describeEngine(info)).toBe(`engine: wasm (tfjs ${tf.version_core}, 1 thread, kernel fixes: BatchMatMul, UnsortedSegmentSum)`);
    expect(describeEngine({ backend: 'tensorflow-gpu', tfBackend: 'tensorflow', fixesApplied: [] })).toBe(
      `engine: tensorflow-gpu (tfjs ${tf.version_core}, tf backend 'tensorflow')`,
    );
    expect(describeEngine({ backend: 'cpu', tfBackend: 'cpu', threads: 1, fixesApplied: [] })).toBe(
      `engine: cpu (tfjs ${tf.version_core}, 1 thread)`,
    );
  });
});
