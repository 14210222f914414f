/**
 * Addressing sub-ranges of the wasm heap, for the kernel fixes in this folder (overview in
 * index.ts).
 *
 * Item 1 (matmul.ts: the per-entry split, temporary ids, the cache guard) and item 5
 * (reductions.ts) address tensors inside the wasm heap through internals of
 * tfjs-backend-wasm 4.22 (the backend's id counter, its data map, the exported C functions
 * `_BatchMatMul`, `register_tensor` and `dispose_data`); items 4 and 8 (copies.ts) copy
 * within the module's `HEAPU8` at `getMemoryOffset`. The package version is pinned. When
 * the internals are missing (`access` returns null) the wrappers fall back to the stock
 * kernels.
 */
import type * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

/** What the backend's data map holds per tensor (tfjs-backend-wasm's `TensorData`). */
export interface HeapTensorData {
  id: number;
  memoryOffset: number;
  shape: number[];
  dtype: tf.DataType;
  refCount: number;
}

/** The untyped parts of a tfjs-backend-wasm 4.22 backend that the fixes rely on. */
export interface WasmInternals {
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

export function access(backend: BackendWasm): { ix: WasmInternals; shapes: number } | null {
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

export function offsetOf(ix: WasmInternals, t: tf.TensorInfo): number {
  const d = ix.dataIdMap.get(t.dataId);
  if (d === undefined) throw new Error('wasm kernel fix: tensor data is not on the wasm backend');
  return d.memoryOffset;
}

export function idOf(ix: WasmInternals, t: tf.TensorInfo): number {
  const d = ix.dataIdMap.get(t.dataId);
  if (d === undefined) throw new Error('wasm kernel fix: tensor data is not on the wasm backend');
  return d.id;
}

/** A new C-side tensor id for `size` elements at byte `offset`; release it with `dropId`. */
export function viewId(ix: WasmInternals, offset: number, size: number): number {
  const id = ix.dataIdNextNumber++;
  ix.wasm.tfjs.registerTensor(id, size, offset);
  return id;
}

/** Forget a temporary id (also deletes the XNNPACK operator cached on it); the memory stays. */
export function dropId(ix: WasmInternals, id: number): void {
  ix.wasm.tfjs.disposeData(id);
}

/** A tensor that kernels can read, aliasing `size(shape)` elements at byte `offset`; release with `dropView`. */
export function view(ix: WasmInternals, offset: number, shape: number[], dtype: tf.DataType): tf.TensorInfo {
  const dataId = {};
  const id = viewId(ix, offset, shape.reduce((p, d) => p * d, 1));
  ix.dataIdMap.set(dataId, { id, memoryOffset: offset, shape, dtype, refCount: 1 });
  return { dataId, shape, dtype };
}

export function dropView(ix: WasmInternals, t: tf.TensorInfo): void {
  const id = idOf(ix, t);
  ix.dataIdMap.delete(t.dataId);
  dropId(ix, id);
}

/**
 * A view of the whole wasm heap in elements of x's dtype, and the element indices of x and
 * out in it (for `copyWithin`, which copies runs without allocating a view per run).
 */
export function heapElements(backend: BackendWasm, x: tf.TensorInfo, out: tf.TensorInfo): { heap: Float32Array | Int32Array | Uint8Array; x0: number; out0: number } {
  const buffer = (backend.wasm as unknown as { HEAPU8: Uint8Array }).HEAPU8.buffer;
  const bytes = x.dtype === 'bool' ? 1 : 4;
  const heap = bytes === 1 ? new Uint8Array(buffer) : new Float32Array(buffer); // copyWithin moves bytes, whatever the type
  return { heap, x0: backend.getMemoryOffset(x.dataId) / bytes, out0: backend.getMemoryOffset(out.dataId) / bytes };
}
