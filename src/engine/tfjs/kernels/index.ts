/**
 * Kernel fixes for the tfjs wasm backend (figures measured with scripts/bench-engine.ts,
 * scripts/bench-lm.ts and their profiles, in CPU time of one process on this machine class).
 * Each fix is explained at the top of the file that implements it; by file:
 *
 *   matmul.ts
 *     1. BatchMatMul, _FusedMatMul: transposes materialised, single-matrix b folded and
 *        (BatchMatMul) batched products split per entry, so XNNPACK runs; b passed under a
 *        temporary id for tall a; an output XNNPACK left unwritten is an error.
 *   reductions.ts
 *     2. UnsortedSegmentSum: a JavaScript kernel (none is registered for wasm).
 *     5. Sum over leading axes: pairwise vectorised adds.
 *   copies.ts
 *     3. Identity: shares the input buffer.
 *     4. Slice, SplitV: read the input in place.
 *     6. Cast to the same dtype: shares the input buffer.
 *     7. Transpose: large last-two-axes swaps blocked for the cache; no-op permutations
 *        share the buffer.
 *     8. GatherV2 (axis 0), Concat: row copies within the heap.
 *   heap.ts
 *     addressing sub-ranges of the wasm heap (the tfjs-backend-wasm 4.22 internals that
 *     items 1 and 5 rely on, and the heap offsets of items 4 and 8).
 *   index.ts (this file)
 *     registration: `applyWasmFixes`, `removeWasmFixes`, `wasmFixesApplied`, `WASM_FIX_NAMES`.
 *
 * The fixes only touch kernels registered for the 'wasm' backend; other backends are
 * unaffected. `applyWasmFixes` is idempotent and `removeWasmFixes` restores the
 * original kernels (used by the benchmark to measure the difference).
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { blockedTranspose, inPlaceSlice, inPlaceSplitV, rowGather, runConcat, sharedIdentity, sharedSameDtypeCast } from './copies.ts';
import { fastPathMatMul } from './matmul.ts';
import { leadingAxesSum, unsortedSegmentSum } from './reductions.ts';

export { splitBatchPays, UNCACHED_B_MIN_ROWS } from './matmul.ts';

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
