/**
 * Kernel fixes for the tfjs wasm backend (figures measured with scripts/bench-engine.ts,
 * scripts/bench-lm.ts and their profiles, in CPU time of one process on this machine class).
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
 *    sharing a buffer (reshapes in stock tfjs, and the shared outputs of items 3, 6 and 7)
 *    share the id: every product that lets XNNPACK cache under b's own id first checks that
 *    the buffer was not cached with another [k, n] (`cacheable`), else b goes in under a
 *    temporary id. Without the check, a [1, 4] gradient seen as [4, 1] after a no-op
 *    transpose reused the operator packed for the other shape and returned garbage.
 *
 * 2. `UnsortedSegmentSum` is not registered for wasm, so the gradient of `tf.gather`
 *    (every embedding lookup) throws. The fix registers a JavaScript kernel that reads
 *    the inputs from the wasm heap and writes the sums into an output allocated there.
 *    Semantics follow TensorFlow: out[s, ...] = sum of x[i, ...] over i with ids[i] = s;
 *    negative ids are dropped; an id >= numSegments is an error (TensorFlow rejects it
 *    too; the tfjs cpu backend silently drops it).
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
 * 5. `Sum` over leading axes (the gradient of every bias and norm gain: [N, D] -> [D])
 *    transposed the input and reduced the rows with a scalar loop (~4-8 ns per element).
 *    The fix adds the two halves of the rows with the (vectorised) `Add` kernel, in place
 *    views of the input, halving until one row is left (pairwise summation, which is also
 *    more accurate): ~0.3 ns per element, 10-25x faster.
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
 *
 * The fixes only touch kernels registered for the 'wasm' backend; other backends are
 * unaffected. `applyWasmFixes` is idempotent and `removeWasmFixes` restores the
 * original kernels (used by the benchmark to measure the difference).
 *
 * Items 1 (split, temporary ids, the cache guard) and 5 address tensors inside the wasm
 * heap through internals of tfjs-backend-wasm 4.22 (the backend's id counter, its data map,
 * the exported C functions `_BatchMatMul`, `register_tensor` and `dispose_data`); items 4
 * and 8 copy within the module's `HEAPU8` at `getMemoryOffset`. The package version is
 * pinned. When the internals are missing the wrappers fall back to the stock kernels.
 *
 * When XNNPACK cannot allocate its operator (heap exhausted) the stock C++ kernel prints
 * "XNN status ... 6" and returns without writing the output, so the product silently holds
 * garbage. Every BatchMatMul that reaches XNNPACK now goes through the direct route, which
 * marks each output and throws a clear error if the mark survives the call (_FusedMatMul,
 * unused by rlvr's models, keeps the stock behaviour).
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

type KernelArgs = Parameters<tf.KernelFunc>[0];

/** Names of the fixes, as reported in `EngineInfo.fixesApplied`. */
export const WASM_FIX_NAMES = {
  batchMatMul:
    'BatchMatMul: transposes materialised, single-matrix b folded, batched products split per entry, so XNNPACK runs',
  fusedMatMul: '_FusedMatMul: transposes materialised and single-matrix b folded, so XNNPACK runs',
  unsortedSegmentSum: 'UnsortedSegmentSum: JS kernel (gradient of gather / embedding lookup)',
  identity: 'Identity: shares the input buffer instead of copying it (tensors saved for gradients)',
  slice: 'Slice, SplitV: read the input in place instead of copying all of it first',
  sum: 'Sum: leading-axis reductions as pairwise vectorised adds',
  cast: 'Cast: to the same dtype shares the input buffer instead of copying it',
  transpose: 'Transpose: last-two-axes swaps of large planes blocked for the cache; no-op permutations share the buffer',
  copies: 'GatherV2, Concat: axis-0 gathers and concatenations as row copies within the heap',
} as const;

/** The kernel configs that were registered before the fixes, by kernel name (null: none was). */
const originals = new Map<string, tf.KernelConfig | null>();

// -----------------------------------------------------------------------------------------
// Addressing sub-ranges of the wasm heap.

/** What the backend's data map holds per tensor (tfjs-backend-wasm's `TensorData`). */
interface HeapTensorData {
  id: number;
  memoryOffset: number;
  shape: number[];
  dtype: tf.DataType;
  refCount: number;
}

/** The untyped parts of a tfjs-backend-wasm 4.22 backend that the fixes rely on. */
interface WasmInternals {
  dataIdNextNumber: number;
  dataIdMap: {
    get(dataId: object): HeapTensorData | undefined;
    set(dataId: object, value: HeapTensorData): void;
    delete(dataId: object): boolean;
  };
  wasm: {
    HEAPU8: Uint8Array;
    _malloc(bytes: number): number;
    // (a_id, a_shape*, a_rank, b_id, b_shape*, b_rank, transpose_a, transpose_b, out_id)
    _BatchMatMul(...args: number[]): void;
    tfjs: { registerTensor(id: number, size: number, offset: number): void; disposeData(id: number): void };
  };
}

/** Per backend instance: its internals and a 6-word scratch area for two [1, rows, cols] shapes. */
const heapAccess = new WeakMap<object, { ix: WasmInternals; shapes: number } | null>();

function access(backend: BackendWasm): { ix: WasmInternals; shapes: number } | null {
  let entry = heapAccess.get(backend);
  if (entry !== undefined) return entry;
  // The members below are private or untyped in the package's declarations; checked here.
  const ix = backend as unknown as WasmInternals;
  const w = ix.wasm as Partial<WasmInternals['wasm']> | undefined;
  const ok =
    typeof ix.dataIdNextNumber === 'number' &&
    typeof ix.dataIdMap?.get === 'function' &&
    typeof ix.dataIdMap?.set === 'function' &&
    typeof ix.dataIdMap?.delete === 'function' &&
    w !== undefined &&
    typeof w._BatchMatMul === 'function' &&
    typeof w._malloc === 'function' &&
    typeof w.tfjs?.registerTensor === 'function' &&
    typeof w.tfjs?.disposeData === 'function';
  entry = ok ? { ix, shapes: w!._malloc!(24) >>> 0 } : null;
  heapAccess.set(backend, entry);
  return entry;
}

function offsetOf(ix: WasmInternals, t: tf.TensorInfo): number {
  const d = ix.dataIdMap.get(t.dataId);
  if (d === undefined) throw new Error('wasm kernel fix: tensor data is not on the wasm backend');
  return d.memoryOffset;
}

function idOf(ix: WasmInternals, t: tf.TensorInfo): number {
  const d = ix.dataIdMap.get(t.dataId);
  if (d === undefined) throw new Error('wasm kernel fix: tensor data is not on the wasm backend');
  return d.id;
}

/** A new C-side tensor id for `size` elements at byte `offset`; release it with `dropId`. */
function viewId(ix: WasmInternals, offset: number, size: number): number {
  const id = ix.dataIdNextNumber++;
  ix.wasm.tfjs.registerTensor(id, size, offset);
  return id;
}

/** Forget a temporary id (also deletes the XNNPACK operator cached on it); the memory stays. */
function dropId(ix: WasmInternals, id: number): void {
  ix.wasm.tfjs.disposeData(id);
}

/** A tensor that kernels can read, aliasing `size(shape)` elements at byte `offset`; release with `dropView`. */
function view(ix: WasmInternals, offset: number, shape: number[], dtype: tf.DataType): tf.TensorInfo {
  const dataId = {};
  const id = viewId(ix, offset, shape.reduce((p, d) => p * d, 1));
  ix.dataIdMap.set(dataId, { id, memoryOffset: offset, shape, dtype, refCount: 1 });
  return { dataId, shape, dtype };
}

function dropView(ix: WasmInternals, t: tf.TensorInfo): void {
  const id = idOf(ix, t);
  ix.dataIdMap.delete(t.dataId);
  dropId(ix, id);
}

// -----------------------------------------------------------------------------------------
// 1. Matmul.

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
function fastPathMatMul(original: tf.KernelFunc, direct: boolean): tf.KernelFunc {
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

// -----------------------------------------------------------------------------------------
// 3. Identity, 4. Slice, 5. Sum.

function sharedIdentity(original: tf.KernelFunc): tf.KernelFunc {
  return (args: KernelArgs) => {
    const x = args.inputs['x'];
    if (x === undefined) throw new Error('Identity (wasm): expected input x');
    if (x.dtype === 'string') return original(args);
    (args.backend as BackendWasm).incRef(x.dataId);
    return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
  };
}

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

/**
 * A view of the whole wasm heap in elements of x's dtype, and the element indices of x and
 * out in it (for `copyWithin`, which copies runs without allocating a view per run).
 */
function heapElements(backend: BackendWasm, x: tf.TensorInfo, out: tf.TensorInfo): { heap: Float32Array | Int32Array | Uint8Array; x0: number; out0: number } {
  const buffer = (backend.wasm as unknown as { HEAPU8: Uint8Array }).HEAPU8.buffer;
  const bytes = x.dtype === 'bool' ? 1 : 4;
  const heap = bytes === 1 ? new Uint8Array(buffer) : new Float32Array(buffer); // copyWithin moves bytes, whatever the type
  return { heap, x0: backend.getMemoryOffset(x.dataId) / bytes, out0: backend.getMemoryOffset(out.dataId) / bytes };
}

function inPlaceSlice(original: tf.KernelFunc): tf.KernelFunc {
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
function inPlaceSplitV(original: tf.KernelFunc): tf.KernelFunc {
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

/** Cast to the input's own dtype (a copy on stock wasm) shares the buffer, as Identity does. */
function sharedSameDtypeCast(original: tf.KernelFunc): tf.KernelFunc {
  return (args: KernelArgs) => {
    const x = args.inputs['x'];
    if (x === undefined) throw new Error('Cast (wasm): expected input x');
    if (x.dtype === 'string' || args.attrs?.['dtype'] !== x.dtype) return original(args);
    (args.backend as BackendWasm).incRef(x.dataId);
    return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
  };
}

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
function blockedTranspose(original: tf.KernelFunc): tf.KernelFunc {
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

/**
 * Gather along axis 0 (embedding lookups) as row copies. The stock kernel's generic index
 * loop took ~15 ms to gather 2048 rows of 256 floats; row copies take well under 1 ms.
 */
function rowGather(original: tf.KernelFunc): tf.KernelFunc {
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
function runConcat(original: tf.KernelFunc): tf.KernelFunc {
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

function leadingAxesSum(original: tf.KernelFunc): tf.KernelFunc {
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

// -----------------------------------------------------------------------------------------
// 2. UnsortedSegmentSum.

function unsortedSegmentSum(args: KernelArgs): tf.TensorInfo {
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
// Registration.

function replaceKernel(kernelName: string, make: (original: tf.KernelConfig | undefined) => tf.KernelConfig): void {
  const current = tf.getKernel(kernelName, 'wasm');
  originals.set(kernelName, current ?? null);
  if (current !== undefined) tf.unregisterKernel(kernelName, 'wasm');
  tf.registerKernel(make(current));
}

/** Re-register the stock kernel `kernelName` with `wrap(original kernel function)`, keeping its setup. */
function wrapKernel(kernelName: string, wrap: (original: tf.KernelFunc) => tf.KernelFunc): void {
  replaceKernel(kernelName, (original) => {
    if (original === undefined) throw new Error(`applyWasmFixes: the wasm ${kernelName} kernel is not registered`);
    const config: tf.KernelConfig = { kernelName, backendName: 'wasm', kernelFunc: wrap(original.kernelFunc) };
    // A stock kernel binds its wasm function in setupFunc; keep it so that a backend
    // initialised after this call still sets the binding up.
    if (original.setupFunc !== undefined) config.setupFunc = original.setupFunc;
    if (original.disposeFunc !== undefined) config.disposeFunc = original.disposeFunc;
    return config;
  });
}

/** Whether the fixes are currently registered. */
export function wasmFixesApplied(): boolean {
  return originals.size > 0;
}

/**
 * Register the wasm kernel fixes (idempotent). Works before or after the wasm backend
 * is initialised. Returns the names of the fixes in place.
 */
export function applyWasmFixes(): string[] {
  if (wasmFixesApplied()) return appliedNames();
  wrapKernel('BatchMatMul', (original) => fastPathMatMul(original, true));
  wrapKernel('_FusedMatMul', (original) => fastPathMatMul(original, false));
  if (tf.getKernel('UnsortedSegmentSum', 'wasm') === undefined) {
    replaceKernel('UnsortedSegmentSum', () => ({
      kernelName: 'UnsortedSegmentSum',
      backendName: 'wasm',
      kernelFunc: unsortedSegmentSum as tf.KernelFunc,
    }));
  }
  wrapKernel('Identity', sharedIdentity);
  wrapKernel('Slice', inPlaceSlice);
  wrapKernel('SplitV', inPlaceSplitV);
  wrapKernel('Sum', leadingAxesSum);
  wrapKernel('Cast', sharedSameDtypeCast);
  wrapKernel('Transpose', blockedTranspose);
  wrapKernel('GatherV2', rowGather);
  wrapKernel('Concat', runConcat);
  return appliedNames();
}

function appliedNames(): string[] {
  const names: string[] = [];
  if (originals.has('BatchMatMul')) names.push(WASM_FIX_NAMES.batchMatMul);
  if (originals.has('_FusedMatMul')) names.push(WASM_FIX_NAMES.fusedMatMul);
  if (originals.has('UnsortedSegmentSum')) names.push(WASM_FIX_NAMES.unsortedSegmentSum);
  if (originals.has('Identity')) names.push(WASM_FIX_NAMES.identity);
  if (originals.has('Slice') && originals.has('SplitV')) names.push(WASM_FIX_NAMES.slice);
  if (originals.has('Sum')) names.push(WASM_FIX_NAMES.sum);
  if (originals.has('Cast')) names.push(WASM_FIX_NAMES.cast);
  if (originals.has('Transpose')) names.push(WASM_FIX_NAMES.transpose);
  if (originals.has('GatherV2') && originals.has('Concat')) names.push(WASM_FIX_NAMES.copies);
  return names;
}

/** Restore the kernels that were registered before `applyWasmFixes` (no-op when not applied). */
export function removeWasmFixes(): void {
  for (const [kernelName, original] of originals) {
    if (tf.getKernel(kernelName, 'wasm') !== undefined) tf.unregisterKernel(kernelName, 'wasm');
    if (original !== null) tf.registerKernel(original);
  }
  originals.clear();
}
