/**
 * Wasm kernel fixes 3, 4, 6, 7 and 8 (overview and registration in index.ts; figures
 * measured with scripts/bench-engine.ts, scripts/bench-lm.ts and their profiles, in CPU time
 * of one process on this machine class): kernels that copied where no copy is needed, or
 * copied slowly. Copies within the heap take their offsets from heap.ts's `heapElements`.
 *
 * 3. `Identity` copies its input on wasm (the cpu backend shares the buffer). tfjs calls it
 *    for every tensor it saves for the backward pass, so during a training step each saved
 *    activation and each weight used in the forward pass existed twice. Tensor buffers are
 *    never written after creation, so the fix shares the buffer (reference count + 1), as
 *    `Reshape` already does. Training a 30-layer 135M model: the wasm heap drops by about
 *    the size of all saved tensors.
 *
 * 4. `Slice` (and `SplitV`, which slices) copied the whole input out of the wasm heap
 *    (`readSync`) on every call before copying the slice; splitting a [N, 3D] projection
 *    into Q, K, V copied it four times, and slicing [B, T, V] logits made a full JS-side
 *    copy of them. The fix reads the input in place and copies only the slice (contiguous
 *    runs of the innermost axes); SplitV is re-registered on the same code, since the
 *    stock one calls the stock Slice function directly.
 *
 * 6. `Cast` to the input's own dtype copied; it shares the buffer now, as Identity does
 *    (~20 ms of copies per d=256 bench-engine step, from gradients that cast dy).
 *
 * 7. `Transpose` of the last two axes is a naive loop whose writes stride a whole row; for
 *    planes beyond the cache (the X^T of every dW = X^T dY, [2048, 1024] at d=256) it ran
 *    ~8 ns per element. Large planes are now permuted as [..., r, c/16, 16] -> [..., c/16,
 *    16, r] (same bytes as the transpose), which the stock 3-D loop walks cache-friendly:
 *    ~1.3 ns per element at [2048, 256], ~4-5 at [2048, 1024] (power-of-two widths keep
 *    some cache-set conflicts). Per d=256 step: Transpose 144 -> 84 ms. A permutation that
 *    moves no bytes (identity, or only size-1 axes moving) shares the buffer instead of
 *    copying it: the gradient of every embedding lookup asked for one, a 113 MB copy of the
 *    [49152, 576] table gradient in a 135M-model step.
 *
 * 8. `GatherV2` along axis 0 (embedding lookups) ran a generic index loop (~15 ms for 2048
 *    rows of 256); `Concat` allocated a typed-array view per copied run. Both now copy rows
 *    with `copyWithin` inside the heap (GatherV2 0.9 ms, Concat 16 -> 10 ms per d=256
 *    step), and so do Slice and SplitV.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { heapElements } from './heap.ts';

type KernelArgs = Parameters<tf.KernelFunc>[0];

// -----------------------------------------------------------------------------------------
// 3. Identity.

export function sharedIdentity(original: tf.KernelFunc): tf.KernelFunc {
  return (args: KernelArgs) => {
    const x = args.inputs['x'];
    if (x === undefined) throw new Error('Identity (wasm): expected input x');
    if (x.dtype === 'string') return original(args);
    (args.backend as BackendWasm).incRef(x.dataId);
    return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
  };
}

// -----------------------------------------------------------------------------------------
// 4. Slice, SplitV.

/** Copy x[begin : begin + size] (any rank, numeric dtypes) out of the wasm heap without copying the rest of x. */
function sliceInPlace(backend: BackendWasm, x: tf.TensorInfo, begin: number[], size: number[]): tf.TensorInfo {
  const shape = x.shape;
  const r = shape.length;
  for (let d = 0; d < r; d++) {
    if (begin[d]! < 0 || size[d]! < 0 || begin[d]! + size[d]! > shape[d]!) {
      throw new Error(
        `Slice (wasm): begin [${begin.join(', ')}] + size [${size.join(', ')}] is outside the input shape [${shape.join(', ')}] on axis ${d}`,
      );
    }
  }
  const out = backend.makeOutput([...size], x.dtype);
  const total = size.reduce((p, d) => p * d, 1);
  if (total === 0) return out;
  // The innermost axes whose slice is the whole axis, plus the one before them, form
  // contiguous runs in the input.
  let j = r - 1;
  let run = r === 0 ? 1 : size[j]!;
  while (j > 0 && size[j] === shape[j]) {
    j--;
    run *= size[j]!;
  }
  const strides = new Array<number>(r).fill(1);
  for (let d = r - 2; d >= 0; d--) strides[d] = strides[d + 1]! * shape[d + 1]!;
  let base = 0;
  for (let d = 0; d < r; d++) base += begin[d]! * strides[d]!;
  // The heap view is taken after the allocation: growing the wasm heap detaches older views.
  const { heap, x0, out0 } = heapElements(backend, x, out);
  if (run === total) {
    heap.copyWithin(out0, x0 + base, x0 + base + run);
    return out;
  }
  // Odometer over the axes before j.
  const idx = new Array<number>(j).fill(0);
  for (let o = 0; o < total; o += run) {
    let src = x0 + base;
    for (let d = 0; d < j; d++) src += idx[d]! * strides[d]!;
    heap.copyWithin(out0 + o, src, src + run);
    for (let d = j - 1; d >= 0; d--) {
      if (++idx[d]! < size[d]!) break;
      idx[d] = 0;
    }
  }
  return out;
}

export function inPlaceSlice(original: tf.KernelFunc): tf.KernelFunc {
  return (args: KernelArgs) => {
    const x = args.inputs['x'];
    if (x === undefined) throw new Error('Slice (wasm): expected input x');
    if (x.dtype === 'string') return original(args);
    const params = tf.slice_util.parseSliceParams(
      x as tf.Tensor,
      args.attrs?.['begin'] as number | number[],
      args.attrs?.['size'] as number | number[] | undefined,
    );
    return sliceInPlace(args.backend as BackendWasm, x, params[0]!, params[1]!);
  };
}

/** SplitV as slices read in place (the stock kernel calls the stock Slice directly). */
export function inPlaceSplitV(original: tf.KernelFunc): tf.KernelFunc {
  return (args: KernelArgs) => {
    const x = args.inputs['x'];
    if (x === undefined) throw new Error('SplitV (wasm): expected input x');
    if (x.dtype === 'string') return original(args);
    const backend = args.backend as BackendWasm;
    const axis = tf.util.parseAxisParam(args.attrs?.['axis'] as number, x.shape)[0]!;
    const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, args.attrs?.['numOrSizeSplits'] as number | number[], axis);
    const begin = new Array<number>(x.shape.length).fill(0);
    const outs: tf.TensorInfo[] = [];
    try {
      for (const s of sizes) {
        const size = [...x.shape];
        size[axis] = s;
        outs.push(sliceInPlace(backend, x, [...begin], size));
        begin[axis]! += s;
      }
    } catch (e) {
      for (const t of outs) backend.disposeData(t.dataId);
      throw e;
    }
    return outs;
  };
}

// -----------------------------------------------------------------------------------------
// 6. Cast to the same dtype.

/** Cast to the input's own dtype (a copy on stock wasm) shares the buffer, as Identity does. */
export function sharedSameDtypeCast(original: tf.KernelFunc): tf.KernelFunc {
  return (args: KernelArgs) => {
    const x = args.inputs['x'];
    if (x === undefined) throw new Error('Cast (wasm): expected input x');
    if (x.dtype === 'string' || args.attrs?.['dtype'] !== x.dtype) return original(args);
    (args.backend as BackendWasm).incRef(x.dataId);
    return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
  };
}

// -----------------------------------------------------------------------------------------
// 7. Transpose.

/** Smallest plane (rows x cols) that the blocked transpose handles; smaller planes stay in cache. */
const BLOCKED_TRANSPOSE_MIN = 32768;

/**
 * Transpose of the last two axes of large planes, blocked. The stock 2-D kernel walks the
 * input row by row and writes the output with a stride of a whole row, which misses the
 * cache on every write once a plane outgrows it (~8 ns per element at [2048, 256]). Viewing
 * [..., r, c] as [..., r, c/16, 16] and permuting to [..., c/16, 16, r] gives the same bytes
 * as [..., c, r], but the stock 3-D loop then writes sequentially and reads 16 columns at a
 * time from lines that stay cached (~1.3 ns per element at [2048, 256]; widths that are
 * large powers of two gain less, ~8 -> 4-5 ns at [2048, 1024], from cache-set conflicts).
 */
export function blockedTranspose(original: tf.KernelFunc): tf.KernelFunc {
  return (args: KernelArgs) => {
    const x = args.inputs['x'];
    const perm = args.attrs?.['perm'] as number[] | undefined;
    if (x === undefined || perm === undefined) throw new Error('Transpose (wasm): expected input x and attribute perm');
    if (x.dtype === 'string' || perm.length !== x.shape.length) return original(args);
    // Drop size-1 axes (their position does not move any bytes), as the stock kernel does.
    const keep = x.shape.map((d) => d !== 1);
    const newIndex: number[] = [];
    let k = 0;
    for (let i = 0; i < x.shape.length; i++) newIndex.push(keep[i] ? k++ : -1);
    const shape = x.shape.filter((_, i) => keep[i]);
    const p = perm.filter((ax) => keep[ax]).map((ax) => newIndex[ax]!);
    const r = shape.length;
    if (p.every((ax, i) => ax === i)) {
      // Moves no bytes (the gradient of every axis-0 gather asks for one): share the buffer.
      (args.backend as BackendWasm).incRef(x.dataId);
      return { dataId: x.dataId, shape: perm.map((ax) => x.shape[ax]!), dtype: x.dtype };
    }
    if (r < 2 || p[r - 2] !== r - 1 || p[r - 1] !== r - 2 || p.slice(0, r - 2).some((ax, i) => ax !== i)) return original(args);
    const rows = shape[r - 2]!;
    const cols = shape[r - 1]!;
    const block = cols % 16 === 0 ? 16 : cols % 8 === 0 ? 8 : 0;
    if (block === 0 || rows * cols < BLOCKED_TRANSPOSE_MIN) return original(args);
    const lead = shape.slice(0, r - 2);
    const x2: tf.TensorInfo = { dataId: x.dataId, shape: [...lead, rows, cols / block, block], dtype: x.dtype };
    const perm2 = [...lead.map((_, i) => i), r - 1, r, r - 2];
    const out = original({ inputs: { x: x2 }, backend: args.backend, attrs: { perm: perm2 } }) as tf.TensorInfo; // [..., cols/b, b, rows]
    return { dataId: out.dataId, shape: perm.map((ax) => x.shape[ax]!), dtype: out.dtype };
  };
}

// -----------------------------------------------------------------------------------------
// 8. GatherV2, Concat.

/**
 * Gather along axis 0 (embedding lookups) as row copies. The stock kernel's generic index
 * loop took ~15 ms to gather 2048 rows of 256 floats; row copies take well under 1 ms.
 */
export function rowGather(original: tf.KernelFunc): tf.KernelFunc {
  return (args: KernelArgs) => {
    const x = args.inputs['x'];
    const indices = args.inputs['indices'];
    if (x === undefined || indices === undefined) throw new Error('GatherV2 (wasm): expected inputs x and indices');
    const axis = tf.util.parseAxisParam((args.attrs?.['axis'] as number | undefined) ?? 0, x.shape)[0];
    const batchDims = (args.attrs?.['batchDims'] as number | undefined) ?? 0;
    if (axis !== 0 || batchDims !== 0 || (x.dtype !== 'float32' && x.dtype !== 'int32') || indices.dtype !== 'int32' || x.shape.length < 1) {
      return original(args);
    }
    const backend = args.backend as BackendWasm;
    const rows = x.shape[0]!;
    const rowShape = x.shape.slice(1);
    const width = rowShape.reduce((q, d) => q * d, 1);
    const ids = backend.typedArrayFromHeap(indices) as Int32Array;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (id < 0 || id >= rows) throw new Error(`GatherV2 (wasm): index ${id} at flat position ${i} is outside [0, ${rows - 1}]`);
    }
    const out = backend.makeOutput([...indices.shape, ...rowShape], x.dtype);
    if (ids.length === 0 || width === 0) return out;
    const { heap, x0, out0 } = heapElements(backend, x, out);
    const idv = backend.typedArrayFromHeap(indices) as Int32Array; // taken again: the allocation may have moved the heap
    for (let i = 0; i < idv.length; i++) {
      const src = x0 + idv[i]! * width;
      heap.copyWithin(out0 + i * width, src, src + width);
    }
    return out;
  };
}

/** Concat of numeric tensors as run copies within the heap (the stock kernel allocates a view per run). */
export function runConcat(original: tf.KernelFunc): tf.KernelFunc {
  return (args: KernelArgs) => {
    const inputs = Object.values(args.inputs).filter((t): t is tf.TensorInfo => t !== undefined);
    const first = inputs[0];
    if (first === undefined) return original(args);
    const dtype = first.dtype;
    if ((dtype !== 'float32' && dtype !== 'int32') || inputs.some((t) => t.dtype !== dtype || t.shape.length !== first.shape.length)) {
      return original(args);
    }
    const axis = tf.util.parseAxisParam(args.attrs?.['axis'] as number, first.shape)[0]!;
    tf.backend_util.assertParamsConsistent(inputs.map((t) => t.shape), axis);
    const parts = inputs.filter((t) => t.shape.reduce((q, d) => q * d, 1) > 0);
    if (parts.length < 2) return original(args);
    const outShape = tf.backend_util.computeOutShape(inputs.map((t) => t.shape), axis);
    const backend = args.backend as BackendWasm;
    const out = backend.makeOutput(outShape, dtype);
    let outer = 1;
    for (let i = 0; i < axis; i++) outer *= first.shape[i]!;
    const inner = parts.map((t) => t.shape.slice(axis).reduce((q, d) => q * d, 1));
    const total = inner.reduce((q, d) => q + d, 0);
    const buffer = (backend.wasm as unknown as { HEAPU8: Uint8Array }).HEAPU8.buffer;
    const heap = new Float32Array(buffer); // copyWithin moves bytes, whatever the 4-byte type
    const out0 = backend.getMemoryOffset(out.dataId) / 4;
    const starts = parts.map((t) => backend.getMemoryOffset(t.dataId) / 4);
    for (let b = 0; b < outer; b++) {
      let dst = out0 + b * total;
      for (let i = 0; i < parts.length; i++) {
        const w = inner[i]!;
        const src = starts[i]! + b * w;
        heap.copyWithin(dst, src, src + w);
        dst += w;
      }
    }
    return out;
  };
}
