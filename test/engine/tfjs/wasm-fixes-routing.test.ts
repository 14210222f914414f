/**
 * The matmul fix routes transposed products through the original kernel with both
 * transpose flags off, or (BatchMatMul) straight to the wasm module's XNNPACK product, one
 * call per batch entry where that pays; removeWasmFixes puts the original kernels back.
 * (Its own file: it swaps registered kernels, which is process-wide state.)
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyWasmFixes, removeWasmFixes, wasmFixesApplied } from '../../../src/engine/tfjs/kernels/index.ts';

const seen: Array<{ kernel: string; transposeA: boolean; transposeB: boolean; aShape: number[]; bShape: number[] }> = [];
const originals = new Map<string, tf.KernelConfig>();

/** Every call of the module's BatchMatMul: the fix's direct calls and the stock kernel's (which pass the whole batch). */
const direct: Array<{ aShape: number[]; bShape: number[]; bId: number }> = [];
interface Module {
  HEAPU8: Uint8Array;
  _BatchMatMul: (...args: number[]) => void;
  /** The raw exports; `_BatchMatMul` starts as a stub that replaces itself with `asm.BatchMatMul` on first use. */
  asm: { BatchMatMul: (...args: number[]) => void };
}
let mod: Module;
/** When set, the next module BatchMatMul call does nothing (and clears the flag). */
let skipNext = false;
let realBatchMatMul: Module['_BatchMatMul'];

/** The backend's id of a tensor's data (what the C++ side and XNNPACK's operator cache see). */
function cId(t: tf.Tensor): number {
  return (tf.backend() as unknown as { dataIdMap: { get(d: object): { id: number } } }).dataIdMap.get(t.dataId).id;
}

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
  mod = (tf.backend() as unknown as { wasm: Module }).wasm;
  realBatchMatMul = mod._BatchMatMul;
  const raw = mod.asm.BatchMatMul;
  mod._BatchMatMul = (...args: number[]) => {
    const words = new Uint32Array(mod.HEAPU8.buffer);
    const shape = (ptr: number, rank: number): number[] => Array.from(words.subarray(ptr / 4, ptr / 4 + rank));
    direct.push({ aShape: shape(args[1]!, args[2]!), bShape: shape(args[4]!, args[5]!), bId: args[3]! });
    if (skipNext) skipNext = false;
    else raw(...args);
  };
});

afterAll(() => {
  mod._BatchMatMul = realBatchMatMul;
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
    const w = (): tf.Tensor => tf.tensor2d([1, 0, 2, 1, 0, 1], [2, 3]); // used as w^T [3, 2]
    const expected = tf.tidy(() => Array.from(tf.matMul(a(), w(), true, true).dataSync()));
    applyWasmFixes();
    seen.length = 0;
    const got = tf.tidy(() => Array.from(tf.matMul(a(), w(), true, true).dataSync()));
    expect(got).toEqual(expected);
    // a^T [2, 2, 3] materialised and folded against the materialised w^T [3, 2]: one direct product.
    expect(seen).toEqual([]);
    expect(direct.slice(-1).map((d) => [d.aShape, d.bShape])).toEqual([[[1, 4, 3], [1, 3, 2]]]);

    seen.length = 0;
    tf.tidy(() => tf.fused.matMul({ a: a(), b: tf.tensor2d([1, 2, 3, 4, 5, 6], [3, 2]), transposeB: true }).dataSync());
    expect(seen).toEqual([{ kernel: '_FusedMatMul', transposeA: false, transposeB: false, aShape: [1, 6, 2], bShape: [1, 2, 3] }]);
  });

  it('a small batched x batched product stays in the stock loop with its flags (no copies)', () => {
    const expected = tf.tidy(() => {
      const at = tf.transpose(a(), [0, 2, 1]);
      const bt = tf.transpose(b(), [0, 2, 1]);
      return Array.from(tf.matMul(at, bt).dataSync());
    });
    seen.length = 0;
    const got = tf.tidy(() => Array.from(tf.matMul(a(), b(), true, true).dataSync()));
    expect(got).toEqual(expected);
    expect(seen).toEqual([{ kernel: 'BatchMatMul', transposeA: true, transposeB: true, aShape: [2, 3, 2], bShape: [2, 2, 3] }]);
  });

  it("a batched a times a single matrix b is folded into one tall product", () => {
    seen.length = 0;
    direct.length = 0;
    const x = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
    const got = tf.tidy(() => {
      const w = tf.tensor2d([1, 0, 1, 1, 0, 2], [2, 3]);
      const r = tf.matMul(tf.tensor3d(x, [2, 3, 2]), w);
      expect(direct).toEqual([{ aShape: [1, 6, 2], bShape: [1, 2, 3], bId: cId(w) }]); // few rows: b's own id (cached)
      return { shape: r.shape, values: Array.from(r.dataSync()) };
    });
    expect(seen).toEqual([]);
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

  it('batched times batched: one XNNPACK product per entry when the rows pay for it, the loop otherwise', () => {
    // [3, 16, 8] x [3, 8, 12]: entry i of a is all (i + 1), of b all (i + 2), so out[i] is all 8 (i + 1)(i + 2).
    const fill = (n: number, per: number, v: (i: number) => number): number[] => Array.from({ length: n * per }, (_, j) => v(Math.floor(j / per)));
    seen.length = 0;
    direct.length = 0;
    const got = tf.tidy(() => {
      const r = tf.matMul(tf.tensor3d(fill(3, 128, (i) => i + 1), [3, 16, 8]), tf.tensor3d(fill(3, 96, (i) => i + 2), [3, 8, 12]));
      return { shape: r.shape, values: Array.from(r.dataSync()) };
    });
    expect(seen).toEqual([]);
    expect(direct.map((d) => [d.aShape, d.bShape])).toEqual(Array.from({ length: 3 }, () => [[1, 16, 8], [1, 8, 12]]));
    expect(got.shape).toEqual([3, 16, 12]);
    expect(got.values).toEqual(fill(3, 192, (i) => 8 * (i + 1) * (i + 2)));

    // A shared a against a batched b, transposed on the way in: a^T [1, 16, 8], b^T [2, 8, 16].
    direct.length = 0;
    tf.tidy(() => tf.matMul(tf.ones([1, 8, 16]), tf.ones([2, 16, 8]), true, true).dataSync());
    expect(direct.map((d) => [d.aShape, d.bShape])).toEqual([[[1, 16, 8], [1, 8, 16]], [[1, 16, 8], [1, 8, 16]]]);

    // One-row entries (a decode step's attention) stay in the stock loop: one call with the whole batch.
    direct.length = 0;
    tf.tidy(() => tf.matMul(tf.ones([4, 1, 8]), tf.ones([4, 8, 12])).dataSync());
    expect(direct.map((d) => [d.aShape, d.bShape])).toEqual([[[4, 1, 8], [4, 8, 12]]]);
    expect(seen).toEqual([{ kernel: 'BatchMatMul', transposeA: false, transposeB: false, aShape: [4, 1, 8], bShape: [4, 8, 12] }]);
  });

  it('with many rows, b goes in under a temporary id (XNNPACK keeps no packed copy of it)', () => {
    seen.length = 0;
    direct.length = 0;
    tf.tidy(() => {
      const w = tf.ones([4, 5]);
      tf.matMul(tf.ones([300, 4]), w).dataSync();
      expect(direct).toHaveLength(1);
      expect(direct[0]!.aShape).toEqual([1, 300, 4]);
      expect(direct[0]!.bId).not.toBe(cId(w));
    });
    expect(seen).toEqual([]);
  });

  it('a small untransposed product goes to XNNPACK directly, under b\'s own id (its operator stays cached)', () => {
    seen.length = 0;
    direct.length = 0;
    tf.tidy(() => {
      const w = tf.ones([3, 4]);
      tf.matMul(tf.ones([2, 3]), w).dataSync();
      expect(direct).toEqual([{ aShape: [1, 2, 3], bShape: [1, 3, 4], bId: cId(w) }]);
    });
    expect(seen).toEqual([]);
  });

  it('a product XNNPACK leaves unwritten (its operator could not be allocated) is an error, not garbage', () => {
    skipNext = true; // the module call returns without writing, as XNNPACK does when out of memory
    const before = tf.engine().backend.numDataIds();
    expect(() => tf.tidy(() => tf.matMul(tf.ones([2, 3]), tf.ones([3, 4])).dataSync())).toThrow(
      /XNNPACK did not compute the \[2, 3\] x \[3, 4\] product/,
    );
    expect(skipNext).toBe(false);
    expect(tf.engine().backend.numDataIds()).toBe(before);
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
