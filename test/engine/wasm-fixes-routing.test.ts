/**
 * The matmul fix routes transposed products through the original kernel with both
 * transpose flags off, and removeWasmFixes puts the original kernels back.
 * (Its own file: it swaps registered kernels, which is process-wide state.)
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyWasmFixes, removeWasmFixes, wasmFixesApplied } from '../../src/engine/wasm-fixes.ts';

const seen: Array<{ kernel: string; transposeA: boolean; transposeB: boolean; aShape: number[]; bShape: number[] }> = [];
const originals = new Map<string, tf.KernelConfig>();

/** Register a spy in front of the stock kernel; the fix then wraps the spy. */
function installSpy(kernelName: string): void {
  const original = tf.getKernel(kernelName, 'wasm')!;
  originals.set(kernelName, original);
  tf.unregisterKernel(kernelName, 'wasm');
  tf.registerKernel({
    ...original,
    kernelFunc: (args) => {
      seen.push({
        kernel: kernelName,
        transposeA: Boolean(args.attrs?.['transposeA']),
        transposeB: Boolean(args.attrs?.['transposeB']),
        aShape: [...args.inputs['a']!.shape],
        bShape: [...args.inputs['b']!.shape],
      });
      return original.kernelFunc(args);
    },
  });
}

beforeAll(async () => {
  installSpy('BatchMatMul');
  installSpy('_FusedMatMul');
  await tf.setBackend('wasm');
  await tf.ready();
});

afterAll(() => {
  removeWasmFixes();
  for (const [name, config] of originals) {
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel(config);
  }
});

describe('routing', () => {
  const a = (): tf.Tensor => tf.tensor3d([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], [2, 3, 2]); // [2, 3, 2]
  const b = (): tf.Tensor => tf.tensor3d([1, 0, 2, 1, 0, 1, 3, 1, 1, 2, 0, 1], [2, 2, 3]); // [2, 2, 3]

  it('without the fix, transposed products reach the kernel with their flags', () => {
    expect(wasmFixesApplied()).toBe(false);
    seen.length = 0;
    tf.tidy(() => tf.matMul(a(), a(), true, false).dataSync());
    expect(seen).toEqual([{ kernel: 'BatchMatMul', transposeA: true, transposeB: false, aShape: [2, 3, 2], bShape: [2, 3, 2] }]);
  });

  it('without the fix, the gather gradient has no wasm kernel', () => {
    expect(() =>
      tf.tidy(() => tf.grad((t: tf.Tensor) => tf.sum(tf.gather(t, tf.tensor1d([0, 0], 'int32'))))(tf.ones([3, 2]))),
    ).toThrow(/UnsortedSegmentSum.*not registered/);
  });

  it('with the fix, the kernel sees materialised transposes and no flags, and the result is unchanged', () => {
    const expected = tf.tidy(() => Array.from(tf.matMul(a(), b(), true, true).dataSync()));
    applyWasmFixes();
    seen.length = 0;
    const got = tf.tidy(() => Array.from(tf.matMul(a(), b(), true, true).dataSync()));
    expect(got).toEqual(expected);
    expect(seen).toEqual([{ kernel: 'BatchMatMul', transposeA: false, transposeB: false, aShape: [2, 2, 3], bShape: [2, 3, 2] }]);

    seen.length = 0;
    tf.tidy(() => tf.fused.matMul({ a: a(), b: a(), transposeB: true }).dataSync());
    expect(seen).toEqual([{ kernel: '_FusedMatMul', transposeA: false, transposeB: false, aShape: [2, 3, 2], bShape: [2, 2, 3] }]);
  });

  it("a batched a times a single matrix b is folded into one tall product", () => {
    seen.length = 0;
    const x = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
    const got = tf.tidy(() => {
      const r = tf.matMul(tf.tensor3d(x, [2, 3, 2]), tf.tensor2d([1, 0, 1, 1, 0, 2], [2, 3]));
      return { shape: r.shape, values: Array.from(r.dataSync()) };
    });
    expect(seen).toEqual([{ kernel: 'BatchMatMul', transposeA: false, transposeB: false, aShape: [1, 6, 2], bShape: [1, 2, 3] }]);
    // row [p, q] times [[1, 0, 1], [1, 0, 2]] = [p + q, 0, p + 2q]
    expect(got.shape).toEqual([2, 3, 3]);
    const expected: number[] = [];
    for (let i = 0; i < 6; i++) {
      const p = x[2 * i]!;
      const q = x[2 * i + 1]!;
      expected.push(p + q, 0, p + 2 * q);
    }
    expect(got.values).toEqual(expected);
  });

  it('an untransposed product goes straight through', () => {
    seen.length = 0;
    tf.tidy(() => tf.matMul(tf.ones([2, 3]), tf.ones([3, 4])).dataSync());
    expect(seen).toEqual([{ kernel: 'BatchMatMul', transposeA: false, transposeB: false, aShape: [2, 3], bShape: [3, 4] }]);
  });

  it('removeWasmFixes restores the previous kernels', () => {
    removeWasmFixes();
    expect(wasmFixesApplied()).toBe(false);
    expect(tf.getKernel('UnsortedSegmentSum', 'wasm')).toBeUndefined();
    seen.length = 0;
    tf.tidy(() => tf.matMul(a(), a(), false, true).dataSync());
    expect(seen[0]).toMatchObject({ transposeA: false, transposeB: true });
  });
});
