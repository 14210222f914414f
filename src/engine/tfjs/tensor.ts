/**
 * Small tensor helpers shared across rlvr.
 *
 * Random tensors are drawn from our seeded `Rng` on the JavaScript side and uploaded,
 * never from `tf.random*`: the same seed gives the same values on every backend.
 */
import * as tf from '@tensorflow/tfjs';
import type { Rng } from '../../core/rng.ts';
import type { SafetensorsDType, SafetensorsTensor } from '../../core/safetensors.ts';
import { fromFloat32, toFloat32 } from '../../core/safetensors.ts';

/** Number of elements of a shape ([] is a scalar: 1). Throws on a dimension that is not a non-negative integer. */
export function numElements(shape: readonly number[]): number {
  let n = 1;
  for (let i = 0; i < shape.length; i++) {
    const d = shape[i]!;
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new Error(`numElements: dimension ${i} of shape [${shape.join(', ')}] must be a non-negative integer, got ${d}`);
    }
    n *= d;
  }
  return n;
}

/** A float32 tensor of N(mean, std^2) draws from `rng` (row-major fill order). */
export function randomNormal(shape: number[], std: number, rng: Rng, mean = 0): tf.Tensor {
  if (!(std >= 0) || !Number.isFinite(std)) throw new Error(`randomNormal: std must be a finite number >= 0, got ${std}`);
  if (!Number.isFinite(mean)) throw new Error(`randomNormal: mean must be finite, got ${mean}`);
  const values = rng.fillNormal(new Float32Array(numElements(shape)), mean, std) as Float32Array;
  return tf.tensor(values, shape, 'float32');
}

/** A float32 tensor of U[lo, hi) draws from `rng` (row-major fill order). */
export function randomUniform(shape: number[], lo: number, hi: number, rng: Rng): tf.Tensor {
  if (!Number.isFinite(lo) || !Number.isFinite(hi) || !(hi >= lo)) {
    throw new Error(`randomUniform: need finite lo <= hi, got lo=${lo}, hi=${hi}`);
  }
  const values = rng.fillUniform(new Float32Array(numElements(shape)), lo, hi) as Float32Array;
  return tf.tensor(values, shape, 'float32');
}

/**
 * Throw unless `t` has the expected shape; `null` in `expected` matches any size.
 * `what` names the tensor in the error ("logits", "attention mask of batch 3").
 */
export function assertShape(t: tf.Tensor | { shape: readonly number[] }, expected: ReadonlyArray<number | null>, what: string): void {
  const s = t.shape;
  const ok = s.length === expected.length && expected.every((e, i) => e === null || e === s[i]);
  if (!ok) {
    const fmt = expected.map((e) => (e === null ? '?' : String(e))).join(', ');
    throw new Error(`${what}: expected shape [${fmt}], got [${s.join(', ')}]`);
  }
}

/**
 * A tf tensor from a safetensors tensor: float dtypes become float32 (F16/BF16 decoded
 * exactly), integer dtypes int32 (an I64 value outside the int32 range is an error), BOOL bool.
 * `name` is used in error messages.
 */
export function tensorFromSafetensors(t: SafetensorsTensor, name = '<tensor>'): tf.Tensor {
  const n = numElements(t.shape);
  if (t.data.length !== n) {
    throw new Error(`tensor "${name}": shape [${t.shape.join(', ')}] has ${n} elements but data has ${t.data.length}`);
  }
  switch (t.dtype) {
    case 'F64':
    case 'F32':
    case 'F16':
    case 'BF16':
      return tf.tensor(toFloat32(t), t.shape, 'float32');
    case 'I64': {
      const d = t.data as BigInt64Array;
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const v = d[i]!;
        if (v < -2147483648n || v > 2147483647n) {
          throw new Error(`tensor "${name}": I64 value ${v} at flat index ${i} does not fit in int32`);
        }
        out[i] = Number(v);
      }
      return tf.tensor(out, t.shape, 'int32');
    }
    case 'I32':
    case 'I16':
    case 'I8':
    case 'U8':
      return tf.tensor(Int32Array.from(t.data as Int32Array | Int16Array | Int8Array | Uint8Array), t.shape, 'int32');
    case 'BOOL':
      return tf.tensor(Uint8Array.from(t.data as Uint8Array, (v) => (v ? 1 : 0)), t.shape, 'bool');
    default:
      throw new Error(`tensor "${name}": unknown dtype ${JSON.stringify((t as { dtype: unknown }).dtype)}`);
  }
}

/**
 * A safetensors tensor from a tf tensor (reads it synchronously). float32 tensors are
 * stored as `dtype` (F32 by default; F16/BF16 round to nearest even), int32 as I32, bool as BOOL.
 */
export function safetensorsFromTensor(t: tf.Tensor, dtype?: SafetensorsDType): SafetensorsTensor {
  const shape = [...t.shape];
  if (t.dtype === 'float32') {
    const target = dtype ?? 'F32';
    if (target !== 'F32' && target !== 'F16' && target !== 'BF16') {
      throw new Error(`safetensorsFromTensor: a float32 tensor can be stored as F32, F16 or BF16, not ${target}`);
    }
    return fromFloat32(t.dataSync() as Float32Array, shape, target);
  }
  if (t.dtype === 'int32') {
    if (dtype !== undefined && dtype !== 'I32') {
      throw new Error(`safetensorsFromTensor: an int32 tensor is stored as I32, not ${dtype}`);
    }
    return { dtype: 'I32', shape, data: new Int32Array(t.dataSync() as Int32Array) };
  }
  if (t.dtype === 'bool') {
    if (dtype !== undefined && dtype !== 'BOOL') {
      throw new Error(`safetensorsFromTensor: a bool tensor is stored as BOOL, not ${dtype}`);
    }
    return { dtype: 'BOOL', shape, data: Uint8Array.from(t.dataSync() as Uint8Array, (v) => (v ? 1 : 0)) };
  }
  throw new Error(`safetensorsFromTensor: cannot store a ${t.dtype} tensor`);
}
