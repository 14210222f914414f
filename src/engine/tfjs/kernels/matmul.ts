/**
 * Wasm kernel fix 1 (overview and registration in index.ts; figures measured with
 * scripts/bench-engine.ts, scripts/bench-lm.ts and their profiles, in CPU time of one
 * process on this machine class). Tensors are addressed inside the wasm heap with heap.ts.
 *
 * 1. Matmul off the fast path. The wasm `BatchMatMul` and `_FusedMatMul` kernels call
 *    XNNPACK only for a single, untransposed product (batch 1 on both sides, neither
 *    `transposeA` nor `transposeB`); anything else runs a scalar blocked loop that is
 *    ~10x slower (~2 GFLOP/s instead of 25-30). Autodiff of every dense layer emits
 *    transposed products (dX = dY W^T, dW = X^T dY), and attention multiplies batches of
 *    matrices on both sides. The fix re-registers both kernels with a wrapper that
 *    - materialises each transposed operand with the wasm `Transpose` kernel (as a 3-D
 *      [batch, rows, cols] transpose, which stays on the fast low-rank path) and calls the
 *      product with both flags false;
 *    - folds a's batch into its rows when b is a single matrix ([..., m, k] x [k, n] is
 *      one [(...) m, k] x [k, n] product), so rank-3 activations times a weight matrix
 *      reach XNNPACK too;
 *    - (BatchMatMul) runs a product with a batch on both sides ([N, m, k] x [N, k, n], or a
 *      single a against a batched b) as N single XNNPACK products, one per batch entry,
 *      written straight into the output: each entry is addressed in place by registering
 *      a temporary tensor id for its sub-range of the wasm heap (no slicing copies). Each
 *      call packs its b entry afresh (XNNPACK's `fully_connected` operator copies the
 *      weights into its own layout, ~4.5 ns per element here) and has a fixed cost of
 *      ~0.3 us, so it only pays when the rows amortise the packing. The cost model
 *      (fitted on this machine; the loop runs ~1 ns per multiply-add):
 *        per entry, slow loop  ~ 1.0 m k n ns;   per entry, XNNPACK ~ 300 + 4.5 k n + 0.13 m k n ns,
 *      and the split is used when it predicts XNNPACK at least 10 % faster: attention at
 *      T = 32..128 runs 5-8x faster ([24] 128x64x128: 23 ms -> 3.2 ms), while one-row
 *      decode products (m = 1) keep the loop, which is 4x faster there, with their transpose
 *      flags (the loop reads a transposed operand in place at the same speed);
 *    - (BatchMatMul) passes b under a temporary id when a has >= 256 rows. XNNPACK caches
 *      the packed copy of b per tensor id until that tensor is disposed; for a model's
 *      weights in a training step that is a second copy of every matrix held to the end
 *      of the step (0.5 GB at 135M parameters) and never reused, since the optimizer
 *      replaces the weights. Products with fewer rows (decoding) keep the cache, because
 *      they reuse the same weights every token.
 *    Same arithmetic per entry as XNNPACK's single product; results match the slow loop to
 *    float32 rounding. XNNPACK's operator cache is keyed by b's tensor id alone, and tensors
 *    sharing a buffer (reshapes in stock tfjs, and the shared outputs of items 3, 6 and 7 in
 *    copies.ts) share the id: every product that lets XNNPACK cache under b's own id first
 *    checks that the buffer was not cached with another [k, n] (`cacheable`), else b goes in
 *    under a temporary id. Without the check, a [1, 4] gradient seen as [4, 1] after a no-op
 *    transpose reused the operator packed for the other shape and returned garbage.
 *
 * When XNNPACK cannot allocate its operator (heap exhausted) the stock C++ kernel prints
 * "XNN status ... 6" and returns without writing the output, so the product silently holds
 * garbage. Every BatchMatMul that reaches XNNPACK now goes through the direct route, which
 * marks each output and throws a clear error if the mark survives the call (_FusedMatMul,
 * unused by rlvr's models, keeps the stock behaviour).
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { access, dropId, dropView, idOf, offsetOf, view, viewId, type WasmInternals } from './heap.ts';

type KernelArgs = Parameters<tf.KernelFunc>[0];

function swapLastTwoAxes(x: tf.TensorInfo, backend: BackendWasm, transpose: tf.KernelFunc): tf.TensorInfo {
  const r = x.shape.length;
  if (r < 2) throw new Error(`wasm matmul fix: operand must have rank >= 2, got shape [${x.shape.join(', ')}]`);
  const rows = x.shape[r - 2]!;
  const cols = x.shape[r - 1]!;
  let batch = 1;
  for (let i = 0; i < r - 2; i++) batch *= x.shape[i]!;
  const x3: tf.TensorInfo = { dataId: x.dataId, shape: [batch, rows, cols], dtype: x.dtype };
  const t = transpose({ inputs: { x: x3 }, backend, attrs: { perm: [0, 2, 1] } }) as tf.TensorInfo; // [batch, cols, rows]
  return { dataId: t.dataId, shape: [...x.shape.slice(0, -2), cols, rows], dtype: t.dtype };
}

function batchOf(shape: readonly number[]): number {
  let n = 1;
  for (let i = 0; i < shape.length - 2; i++) n *= shape[i]!;
  return n;
}

/** Bit pattern of a NaN that no arithmetic produces from ordinary inputs: marks an output XNNPACK did not write. */
const UNWRITTEN = 0x7fa5a5a5;

/** Rows of a from which b is passed under a temporary id, so XNNPACK's packed copy of it is freed at once. */
export const UNCACHED_B_MIN_ROWS = 256;

/**
 * Whether one batch entry of an [m, k] x [k, n] product is predicted faster as its own
 * XNNPACK product than in the stock scalar loop (cost model in the header, in ns).
 */
export function splitBatchPays(m: number, k: number, n: number): boolean {
  const loop = m * k * n;
  const xnn = 300 + 4.5 * k * n + 0.13 * m * k * n;
  return xnn < 0.9 * loop;
}

/**
 * The shape each buffer was first multiplied with as a cached b, by data id. XNNPACK's
 * operator cache is keyed by b's tensor id alone, not its shape, and tensors that share a
 * buffer share the id (reshapes; and the shared outputs of Identity, Cast and no-op
 * Transpose): a buffer used as b with a second shape would reuse the operator packed for
 * the first and return garbage. Other shapes get a temporary id instead (packed per call).
 */
const cachedShape = new WeakMap<object, string>();

/** Whether XNNPACK may cache its operator for b, used as a [k, n] matrix, under b's own id. */
function cacheable(b: tf.TensorInfo, k: number, n: number): boolean {
  const key = `${k}x${n}`;
  const first = cachedShape.get(b.dataId);
  if (first === undefined) cachedShape.set(b.dataId, key);
  return first === undefined || first === key;
}

/**
 * Call a stock matmul kernel with untransposed a2 [..., m, k] and b2 [..., k, n]. When it
 * would take XNNPACK (batch 1 on both sides) with a b whose buffer is cached under another
 * shape, b goes in under a temporary id.
 */
function callStock(
  original: tf.KernelFunc,
  args: KernelArgs,
  a2: tf.TensorInfo,
  b2: tf.TensorInfo,
  acc: { ix: WasmInternals } | null,
): tf.TensorInfo {
  const rb = b2.shape.length;
  const attrs = { ...args.attrs, transposeA: false, transposeB: false };
  const viaXnnpack = batchOf(a2.shape) === 1 && batchOf(b2.shape) === 1;
  if (!viaXnnpack || acc === null || cacheable(b2, b2.shape[rb - 2]!, b2.shape[rb - 1]!)) {
    return original({ inputs: { ...args.inputs, a: a2, b: b2 }, backend: args.backend, attrs }) as tf.TensorInfo;
  }
  const alias = view(acc.ix, offsetOf(acc.ix, b2), [...b2.shape], b2.dtype);
  try {
    return original({ inputs: { ...args.inputs, a: a2, b: alias }, backend: args.backend, attrs }) as tf.TensorInfo;
  } finally {
    dropView(acc.ix, alias);
  }
}

/**
 * Untransposed product on XNNPACK: a [..., m, k] x b [..., k, n] where b's batch is 1 (one
 * folded product) or equals a's (or a's is 1: a is shared by every entry), one product per
 * entry addressed in place. Returns the output [...outBatch, m, n].
 */
function xnnProduct(
  backend: BackendWasm,
  acc: { ix: WasmInternals; shapes: number },
  a: tf.TensorInfo,
  b: tf.TensorInfo,
  outBatch: number[],
): tf.TensorInfo {
  const { ix, shapes } = acc;
  const ra = a.shape.length;
  const rb = b.shape.length;
  const m = a.shape[ra - 2]!;
  const k = a.shape[ra - 1]!;
  const n = b.shape[rb - 1]!;
  const batchA = batchOf(a.shape);
  const batchB = batchOf(b.shape);
  const out = backend.makeOutput([...outBatch, m, n], 'float32');
  const setShapes = (rows: number): void => {
    // Views are taken now: any allocation may have grown (and detached) the heap.
    new Uint32Array(ix.wasm.HEAPU8.buffer, shapes, 6).set([1, rows, k, 1, k, n]);
  };
  const temps: number[] = [];
  // XNNPACK reports a failure (its operator could not be allocated: the heap is exhausted)
  // only on stderr and leaves the output unwritten. A marker in the first output element of
  // each call turns that into an error instead of garbage.
  const mark = (offset: number): void => {
    new Uint32Array(ix.wasm.HEAPU8.buffer, offset, 1)[0] = UNWRITTEN;
  };
  const check = (offset: number): void => {
    if (new Uint32Array(ix.wasm.HEAPU8.buffer, offset, 1)[0] === UNWRITTEN) {
      throw new Error(
        `wasm matmul fix: XNNPACK did not compute the [${m}, ${k}] x [${k}, ${n}] product (its operator could not be created; the wasm heap, 4 GiB at most, is probably exhausted)`,
      );
    }
  };
  try {
    if (batchB === 1) {
      const rows = batchA * m;
      const uncached = rows >= UNCACHED_B_MIN_ROWS || !cacheable(b, k, n);
      const bId = uncached ? viewId(ix, offsetOf(ix, b), k * n) : idOf(ix, b);
      if (uncached) temps.push(bId);
      setShapes(rows);
      const oOff = offsetOf(ix, out);
      mark(oOff);
      ix.wasm._BatchMatMul(idOf(ix, a), shapes, 3, bId, shapes + 12, 3, 0, 0, idOf(ix, out));
      check(oOff);
      return out;
    }
    const aOff = offsetOf(ix, a);
    const bOff = offsetOf(ix, b);
    const oOff = offsetOf(ix, out);
    const aShared = batchA === 1 ? idOf(ix, a) : 0;
    setShapes(m);
    for (let i = 0; i < batchB; i++) {
      const aId = batchA === 1 ? aShared : viewId(ix, aOff + 4 * i * m * k, m * k);
      const bId = viewId(ix, bOff + 4 * i * k * n, k * n);
      const oId = viewId(ix, oOff + 4 * i * m * n, m * n);
      mark(oOff + 4 * i * m * n);
      ix.wasm._BatchMatMul(aId, shapes, 3, bId, shapes + 12, 3, 0, 0, oId);
      if (batchA !== 1) dropId(ix, aId);
      dropId(ix, bId);
      dropId(ix, oId);
      check(oOff + 4 * i * m * n);
    }
    return out;
  } catch (e) {
    backend.disposeData(out.dataId);
    throw e;
  } finally {
    for (const id of temps) dropId(ix, id);
  }
}

/** Wrap a matmul kernel function (inputs a, b; attrs transposeA, transposeB) as described above. */
export function fastPathMatMul(original: tf.KernelFunc, direct: boolean): tf.KernelFunc {
  return (args: KernelArgs) => {
    const { inputs, attrs } = args;
    const transposeA = Boolean(attrs?.['transposeA']);
    const transposeB = Boolean(attrs?.['transposeB']);
    const a = inputs['a'];
    const b = inputs['b'];
    if (a === undefined || b === undefined) throw new Error('wasm matmul fix: expected inputs a and b');
    if (a.shape.length < 2 || b.shape.length < 2) return original(args); // the stock kernel reports it
    const backend = args.backend as BackendWasm;
    const batchA = batchOf(a.shape);
    const batchB = batchOf(b.shape);
    const ra = a.shape.length;
    const rb = b.shape.length;
    const m = transposeA ? a.shape[ra - 1]! : a.shape[ra - 2]!;
    const k = transposeA ? a.shape[ra - 2]! : a.shape[ra - 1]!;
    const kb = transposeB ? b.shape[rb - 1]! : b.shape[rb - 2]!;
    const n = transposeB ? b.shape[rb - 2]! : b.shape[rb - 1]!;
    const fold = batchB === 1 && batchA > 1;

    // The direct XNNPACK route (BatchMatMul only: no bias or activation to apply).
    const acc = access(backend);
    let outBatch: number[] | null = null;
    if (direct && acc !== null && a.dtype === 'float32' && b.dtype === 'float32' && k === kb && m * k * n * batchA * batchB > 0) {
      const batchShape = tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
      const size = batchShape.reduce((p, d) => p * d, 1);
      const single = batchB === 1;
      const split = batchB > 1 && size === batchB && (batchA === batchB || batchA === 1) && splitBatchPays(m, k, n);
      if (single || split) outBatch = batchShape;
    }
    // Batched on b's side and not split: the stock loop runs it, and reads transposed operands
    // in place at the same speed (~1 ns per multiply-add), so materialising them only copies.
    if (outBatch === null && batchB > 1) return original(args);
    if (outBatch === null && !transposeA && !transposeB && !fold) return callStock(original, args, a, b, acc);

    const transposeKernel = tf.getKernel('Transpose', 'wasm');
    if (transposeKernel === undefined) throw new Error('wasm matmul fix: the wasm Transpose kernel is not registered');
    const temps: tf.TensorInfo[] = [];
    try {
      let a2 = transposeA ? swapLastTwoAxes(a, backend, transposeKernel.kernelFunc) : a; // [..., m, k]
      if (transposeA) temps.push(a2);
      let b2 = transposeB ? swapLastTwoAxes(b, backend, transposeKernel.kernelFunc) : b; // [..., k, n]
      if (transposeB) temps.push(b2);
      if (outBatch !== null && acc !== null) return xnnProduct(backend, acc, a2, b2, outBatch);

      if (!fold) return callStock(original, args, a2, b2, acc);
      const outShape = [
        ...tf.broadcast_util.assertAndGetBroadcastShape(a2.shape.slice(0, -2), b2.shape.slice(0, -2)),
        m,
        n,
      ];
      a2 = { dataId: a2.dataId, shape: [1, batchA * m, k], dtype: a2.dtype }; // same bytes, one tall matrix
      b2 = { dataId: b2.dataId, shape: [1, kb, n], dtype: b2.dtype };
      const out = callStock(original, args, a2, b2, acc); // [1, batch*m, n]
      return { dataId: out.dataId, shape: outShape, dtype: out.dtype }; // same bytes as [..., m, n]
    } finally {
      for (const t of temps) backend.disposeData(t.dataId);
    }
  };
}
