/**
 * Kernel fixes for the tfjs wasm backend (figures measured with scripts/bench-engine.ts).
 *
 * 1. Matmul off the fast path. The wasm `BatchMatMul` and `_FusedMatMul` kernels call
 *    XNNPACK only for a single, untransposed product (batch 1 on both sides, neither
 *    `transposeA` nor `transposeB`); anything else runs a scalar blocked loop that is
 *    ~10x slower (2-3 GFLOP/s instead of ~28). Autodiff of every dense layer emits
 *    transposed products (dX = dY W^T, dW = X^T dY). The fix re-registers both kernels
 *    with a wrapper that
 *    - materialises each transposed operand with the wasm `Transpose` kernel (as a 3-D
 *      [batch, rows, cols] transpose, which stays on the fast low-rank path) and calls the
 *      original kernel function with both flags false;
 *    - folds a's batch into its rows when b is a single matrix ([..., m, k] x [k, n] is
 *      one [(...) m, k] x [k, n] product), so rank-3 activations times a weight matrix
 *      reach XNNPACK too.
 *    Same arithmetic, plus one copy of each transposed operand. Products where both sides
 *    are batched (attention scores) still take the slow loop.
 *
 * 2. `UnsortedSegmentSum` is not registered for wasm, so the gradient of `tf.gather`
 *    (every embedding lookup) throws. The fix registers a JavaScript kernel that reads
 *    the inputs from the wasm heap and writes the sums into an output allocated there.
 *    Semantics follow TensorFlow: out[s, ...] = sum of x[i, ...] over i with ids[i] = s;
 *    negative ids are dropped; an id >= numSegments is an error (TensorFlow rejects it
 *    too; the tfjs cpu backend silently drops it).
 *
 * The fixes only touch kernels registered for the 'wasm' backend; other backends are
 * unaffected. `applyWasmFixes` is idempotent and `removeWasmFixes` restores the
 * original kernels (used by the benchmark to measure the difference).
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

type KernelArgs = Parameters<tf.KernelFunc>[0];

/** Names of the fixes, as reported in `EngineInfo.fixesApplied`. */
export const WASM_FIX_NAMES = {
  batchMatMul: 'BatchMatMul: transposes materialised and single-matrix b folded, so XNNPACK runs',
  fusedMatMul: '_FusedMatMul: transposes materialised and single-matrix b folded, so XNNPACK runs',
  unsortedSegmentSum: 'UnsortedSegmentSum: JS kernel (gradient of gather / embedding lookup)',
} as const;

/** The kernel configs that were registered before the fixes, by kernel name (null: none was). */
const originals = new Map<string, tf.KernelConfig | null>();

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

/** Wrap a matmul kernel function (inputs a, b; attrs transposeA, transposeB) as described above. */
function fastPathMatMul(original: tf.KernelFunc): tf.KernelFunc {
  return (args: KernelArgs) => {
    const { inputs, attrs } = args;
    const transposeA = Boolean(attrs?.['transposeA']);
    const transposeB = Boolean(attrs?.['transposeB']);
    const a = inputs['a'];
    const b = inputs['b'];
    if (a === undefined || b === undefined) throw new Error('wasm matmul fix: expected inputs a and b');
    const fold = batchOf(b.shape) === 1 && batchOf(a.shape) > 1;
    if (!transposeA && !transposeB && !fold) return original(args);
    const backend = args.backend as BackendWasm;
    const transposeKernel = tf.getKernel('Transpose', 'wasm');
    if (transposeKernel === undefined) throw new Error('wasm matmul fix: the wasm Transpose kernel is not registered');
    const temps: tf.TensorInfo[] = [];
    try {
      let a2 = transposeA ? swapLastTwoAxes(a, backend, transposeKernel.kernelFunc) : a; // [..., m, k]
      if (transposeA) temps.push(a2);
      let b2 = transposeB ? swapLastTwoAxes(b, backend, transposeKernel.kernelFunc) : b; // [..., k, n]
      if (transposeB) temps.push(b2);
      const flat = { ...attrs, transposeA: false, transposeB: false };
      if (!fold) return original({ inputs: { ...inputs, a: a2, b: b2 }, backend, attrs: flat });

      const ra = a2.shape.length;
      const rb = b2.shape.length;
      const m = a2.shape[ra - 2]!;
      const k = a2.shape[ra - 1]!;
      const n = b2.shape[rb - 1]!;
      const outShape = [
        ...tf.broadcast_util.assertAndGetBroadcastShape(a2.shape.slice(0, -2), b2.shape.slice(0, -2)),
        m,
        n,
      ];
      a2 = { dataId: a2.dataId, shape: [1, batchOf(a2.shape) * m, k], dtype: a2.dtype }; // same bytes, one tall matrix
      b2 = { dataId: b2.dataId, shape: [1, b2.shape[rb - 2]!, n], dtype: b2.dtype };
      const out = original({ inputs: { ...inputs, a: a2, b: b2 }, backend, attrs: flat }) as tf.TensorInfo; // [1, batch*m, n]
      return { dataId: out.dataId, shape: outShape, dtype: out.dtype }; // same bytes as [..., m, n]
    } finally {
      for (const t of temps) backend.disposeData(t.dataId);
    }
  };
}

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

function replaceKernel(kernelName: string, make: (original: tf.KernelConfig | undefined) => tf.KernelConfig): void {
  const current = tf.getKernel(kernelName, 'wasm');
  originals.set(kernelName, current ?? null);
  if (current !== undefined) tf.unregisterKernel(kernelName, 'wasm');
  tf.registerKernel(make(current));
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
  for (const kernelName of ['BatchMatMul', '_FusedMatMul']) {
    replaceKernel(kernelName, (original) => {
      if (original === undefined) throw new Error(`applyWasmFixes: the wasm ${kernelName} kernel is not registered`);
      const config: tf.KernelConfig = {
        kernelName,
        backendName: 'wasm',
        kernelFunc: fastPathMatMul(original.kernelFunc),
      };
      // The original kernel binds its wasm function in setupFunc; keep it so that a
      // backend initialised after this call still sets the binding up.
      if (original.setupFunc !== undefined) config.setupFunc = original.setupFunc;
      if (original.disposeFunc !== undefined) config.disposeFunc = original.disposeFunc;
      return config;
    });
  }
  if (tf.getKernel('UnsortedSegmentSum', 'wasm') === undefined) {
    replaceKernel('UnsortedSegmentSum', () => ({
      kernelName: 'UnsortedSegmentSum',
      backendName: 'wasm',
      kernelFunc: unsortedSegmentSum as tf.KernelFunc,
    }));
  }
  return appliedNames();
}

function appliedNames(): string[] {
  const names: string[] = [];
  if (originals.has('BatchMatMul')) names.push(WASM_FIX_NAMES.batchMatMul);
  if (originals.has('_FusedMatMul')) names.push(WASM_FIX_NAMES.fusedMatMul);
  if (originals.has('UnsortedSegmentSum')) names.push(WASM_FIX_NAMES.unsortedSegmentSum);
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
