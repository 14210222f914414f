/**
 * Wasm kernel fixes 2 and 5 (overview and registration in index.ts; figures measured with
 * scripts/bench-engine.ts, scripts/bench-lm.ts and their profiles, in CPU time of one
 * process on this machine class): reductions. Item 5 adds halves of its input through
 * heap.ts's in-place views.
 *
 * 2. `UnsortedSegmentSum` is not registered for wasm, so the gradient of `tf.gather`
 *    (every embedding lookup) throws. The fix registers a JavaScript kernel that reads
 *    the inputs from the wasm heap and writes the sums into an output allocated there.
 *    Semantics follow TensorFlow: out[s, ...] = sum of x[i, ...] over i with ids[i] = s;
 *    negative ids are dropped; an id >= numSegments is an error (TensorFlow rejects it
 *    too; the tfjs cpu backend silently drops it).
 *
 * 5. `Sum` over leading axes (the gradient of every bias and norm gain: [N, D] -> [D])
 *    transposed the input and reduced the rows with a scalar loop (~4-8 ns per element).
 *    The fix adds the two halves of the rows with the (vectorised) `Add` kernel, in place
 *    views of the input, halving until one row is left (pairwise summation, which is also
 *    more accurate): ~0.3 ns per element, 10-25x faster.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { access, dropView, offsetOf, view, type WasmInternals } from './heap.ts';

type KernelArgs = Parameters<tf.KernelFunc>[0];

// -----------------------------------------------------------------------------------------
// 2. UnsortedSegmentSum.

export function unsortedSegmentSum(args: KernelArgs): tf.TensorInfo {
  const backend = args.backend as BackendWasm;
  const x = args.inputs['x'];
  const ids = args.inputs['segmentIds'];
  const numSegments = args.attrs?.['numSegments'];
  if (x === undefined || ids === undefined) throw new Error('UnsortedSegmentSum (wasm): expected inputs x and segmentIds');
  if (typeof numSegments !== 'number' || !Number.isInteger(numSegments) || numSegments < 0) {
    throw new Error(`UnsortedSegmentSum (wasm): numSegments must be a non-negative integer, got ${String(numSegments)}`);
  }
  if (x.dtype !== 'float32' && x.dtype !== 'int32') {
    throw new Error(`UnsortedSegmentSum (wasm): x must be float32 or int32, got ${x.dtype}`);
  }
  if (ids.dtype !== 'int32') throw new Error(`UnsortedSegmentSum (wasm): segmentIds must be int32, got ${ids.dtype}`);
  const k = ids.shape.length;
  if (k > x.shape.length || ids.shape.some((d, i) => d !== x.shape[i])) {
    throw new Error(
      `UnsortedSegmentSum (wasm): segmentIds shape [${ids.shape.join(', ')}] must be a prefix of x shape [${x.shape.join(', ')}]`,
    );
  }
  const innerShape = x.shape.slice(k);
  let inner = 1;
  for (const d of innerShape) inner *= d;
  let count = 1;
  for (const d of ids.shape) count *= d;

  // Check ids before allocating, so a bad id leaks nothing.
  const idsCheck = backend.typedArrayFromHeap(ids) as Int32Array;
  for (let i = 0; i < count; i++) {
    const s = idsCheck[i]!;
    if (s >= numSegments) {
      throw new Error(`UnsortedSegmentSum (wasm): segment id ${s} at flat index ${i} is >= numSegments (${numSegments})`);
    }
  }
  const out = backend.makeOutput([numSegments, ...innerShape], x.dtype);
  // Views are taken after the allocation: growing the wasm heap detaches older views.
  const o = backend.typedArrayFromHeap(out) as Float32Array | Int32Array;
  const xv = backend.typedArrayFromHeap(x) as Float32Array | Int32Array;
  const iv = backend.typedArrayFromHeap(ids) as Int32Array;
  o.fill(0); // the heap allocation is not zeroed
  for (let i = 0; i < count; i++) {
    const s = iv[i]!;
    if (s < 0) continue;
    const src = i * inner;
    const dst = s * inner;
    for (let j = 0; j < inner; j++) o[dst + j] = o[dst + j]! + xv[src + j]!;
  }
  return out;
}

// -----------------------------------------------------------------------------------------
// 5. Sum over leading axes.

/** Sum a float32 [N, D] tensor over its rows by halving: rows [0, h) + rows [h, 2h) with the Add kernel. */
function sumRows(backend: BackendWasm, ix: WasmInternals, add: tf.KernelFunc, x: tf.TensorInfo, N: number, D: number): tf.TensorInfo {
  let cur = x; // [rows, D]
  let owned = false;
  let rows = N;
  try {
    while (rows > 1) {
      const h = Math.floor(rows / 2);
      const off = offsetOf(ix, cur);
      const lo = view(ix, off, [h, D], 'float32');
      const hi = view(ix, off + 4 * h * D, [h, D], 'float32');
      let next: tf.TensorInfo;
      try {
        next = add({ inputs: { a: lo, b: hi }, backend, attrs: {} }) as tf.TensorInfo; // [h, D]
      } finally {
        dropView(ix, lo);
        dropView(ix, hi);
      }
      if (rows % 2 === 1) {
        // Fold the odd last row into row 0 of the new buffer.
        const nOff = offsetOf(ix, next);
        const first = view(ix, nOff, [1, D], 'float32');
        const last = view(ix, off + 4 * 2 * h * D, [1, D], 'float32');
        let s: tf.TensorInfo;
        try {
          s = add({ inputs: { a: first, b: last }, backend, attrs: {} }) as tf.TensorInfo; // [1, D]
        } finally {
          dropView(ix, first);
          dropView(ix, last);
        }
        const heap = ix.wasm.HEAPU8.buffer;
        new Float32Array(heap, offsetOf(ix, next), D).set(new Float32Array(heap, offsetOf(ix, s), D));
        backend.disposeData(s.dataId);
      }
      if (owned) backend.disposeData(cur.dataId);
      cur = next;
      owned = true;
      rows = h;
    }
  } catch (e) {
    if (owned) backend.disposeData(cur.dataId);
    throw e;
  }
  return cur;
}

export function leadingAxesSum(original: tf.KernelFunc): tf.KernelFunc {
  return (args: KernelArgs) => {
    const x = args.inputs['x'];
    if (x === undefined) throw new Error('Sum (wasm): expected input x');
    const backend = args.backend as BackendWasm;
    const acc = access(backend);
    const add = tf.getKernel('Add', 'wasm');
    if (acc === null || add === undefined || x.dtype !== 'float32') return original(args);
    const axes = [...new Set(tf.util.parseAxisParam(args.attrs?.['axis'] as number | number[], x.shape))].sort((p, q) => p - q);
    const p = axes.length;
    if (p === 0 || p === x.shape.length || axes.some((ax, i) => ax !== i)) return original(args); // not a proper prefix
    let N = 1;
    for (let i = 0; i < p; i++) N *= x.shape[i]!;
    let D = 1;
    for (let i = p; i < x.shape.length; i++) D *= x.shape[i]!;
    if (N < 2 || D === 0 || N * D < 1024) return original(args); // small: the stock kernel is as fast
    const out = sumRows(backend, acc.ix, add.kernelFunc, x, N, D);
    const keepDims = Boolean(args.attrs?.['keepDims']);
    const shape = keepDims ? x.shape.map((d, i) => (i < p ? 1 : d)) : x.shape.slice(p);
    return { dataId: out.dataId, shape, dtype: 'float32' };
  };
}
