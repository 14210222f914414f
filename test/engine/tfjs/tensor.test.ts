import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../../../src/engine/tfjs/backend.ts';
import { Rng } from '../../../src/core/rng.ts';
import type { SafetensorsTensor } from '../../../src/core/safetensors.ts';
import {
  assertShape,
  numElements,
  randomNormal,
  randomUniform,
  safetensorsFromTensor,
  tensorFromSafetensors,
} from '../../../src/engine/tfjs/tensor.ts';

beforeAll(async () => {
  await initEngine({ backend: 'cpu', quiet: true });
});

describe('numElements', () => {
  it('multiplies dimensions; a scalar has one element', () => {
    expect(numElements([])).toBe(1);
    expect(numElements([2, 3, 4])).toBe(24);
    expect(numElements([5, 0, 7])).toBe(0);
  });
  it('names the bad dimension', () => {
    expect(() => numElements([2, -1])).toThrow(/dimension 1 of shape \[2, -1\] must be a non-negative integer/);
    expect(() => numElements([1.5])).toThrow(/dimension 0/);
  });
});

describe('random tensors from Rng', () => {
  it('randomNormal draws exactly the Rng stream, row-major, scaled by std', () => {
    const t = randomNormal([3, 4], 0.02, new Rng(7));
    expect(t.shape).toEqual([3, 4]);
    expect(t.dtype).toBe('float32');
    const ref = new Rng(7);
    const expected = Array.from({ length: 12 }, () => Math.fround(ref.normal(0, 0.02)));
    expect(Array.from(t.dataSync())).toEqual(expected);
    t.dispose();
  });

  it('randomNormal with a mean, and the same seed on another backend gives the same values', async () => {
    const a = Array.from(randomNormal([50], 2, new Rng(3), 5).dataSync());
    await initEngine({ backend: 'wasm' });
    const b = Array.from(randomNormal([50], 2, new Rng(3), 5).dataSync());
    await initEngine({ backend: 'cpu', quiet: true });
    expect(b).toEqual(a);
    const ref = new Rng(3);
    expect(a[0]).toBe(Math.fround(ref.normal(5, 2)));
  });

  it('randomNormal has the requested moments (large sample)', () => {
    const n = 20000;
    const v = randomNormal([n], 3, new Rng(11), -1).dataSync();
    let mean = 0;
    for (const x of v) mean += x / n;
    let variance = 0;
    for (const x of v) variance += (x - mean) ** 2 / (n - 1);
    expect(Math.abs(mean + 1)).toBeLessThan((4 * 3) / Math.sqrt(n)); // 4 standard errors
    expect(Math.abs(Math.sqrt(variance) - 3)).toBeLessThan(0.1);
  });

  it('randomUniform draws the Rng stream within [lo, hi)', () => {
    const t = randomUniform([1000], -0.5, 2, new Rng(5));
    const v = t.dataSync();
    const ref = new Rng(5);
    for (let i = 0; i < v.length; i++) {
      expect(v[i]).toBe(Math.fround(-0.5 + 2.5 * ref.uniform()));
      expect(v[i]).toBeGreaterThanOrEqual(-0.5);
      expect(v[i]).toBeLessThanOrEqual(2);
    }
    t.dispose();
  });

  it('rejects bad parameters', () => {
    expect(() => randomNormal([2], -1, new Rng(1))).toThrow(/std must be a finite number >= 0/);
    expect(() => randomUniform([2], 1, 0, new Rng(1))).toThrow(/need finite lo <= hi, got lo=1, hi=0/);
    expect(() => randomUniform([2, -3], 0, 1, new Rng(1))).toThrow(/dimension 1/);
  });
});

describe('assertShape', () => {
  it('accepts matching shapes and wildcards, names the tensor otherwise', () => {
    const t = tf.zeros([2, 3, 4]);
    expect(() => assertShape(t, [2, null, 4], 'logits')).not.toThrow();
    expect(() => assertShape(t, [2, 3], 'logits')).toThrow('logits: expected shape [2, 3], got [2, 3, 4]');
    expect(() => assertShape(t, [2, null, 5], 'mask')).toThrow('mask: expected shape [2, ?, 5], got [2, 3, 4]');
    t.dispose();
  });
});

describe('safetensors <-> tf', () => {
  it('float dtypes become float32, F16/BF16 decoded exactly', () => {
    const h: SafetensorsTensor = { dtype: 'F16', shape: [2, 2], data: new Uint16Array([0x3c00, 0xc000, 0x0001, 0x7bff]) };
    const t = tensorFromSafetensors(h, 'h');
    expect(t.dtype).toBe('float32');
    expect(t.shape).toEqual([2, 2]);
    expect(Array.from(t.dataSync())).toEqual([1, -2, 2 ** -24, 65504]);
    const b = tensorFromSafetensors({ dtype: 'BF16', shape: [1], data: new Uint16Array([0x3fc0]) });
    expect(Array.from(b.dataSync())).toEqual([1.5]);
    tf.dispose([t, b]);
  });

  it('integers become int32 (I64 range-checked), BOOL becomes bool', () => {
    const i = tensorFromSafetensors({ dtype: 'I64', shape: [3], data: new BigInt64Array([-3n, 0n, 2147483647n]) });
    expect(i.dtype).toBe('int32');
    expect(Array.from(i.dataSync())).toEqual([-3, 0, 2147483647]);
    expect(() => tensorFromSafetensors({ dtype: 'I64', shape: [2], data: new BigInt64Array([0n, 2n ** 31n]) }, 'ids')).toThrow(
      /tensor "ids": I64 value 2147483648 at flat index 1 does not fit in int32/,
    );
    const u = tensorFromSafetensors({ dtype: 'U8', shape: [2], data: new Uint8Array([0, 255]) });
    expect(Array.from(u.dataSync())).toEqual([0, 255]);
    const m = tensorFromSafetensors({ dtype: 'BOOL', shape: [2], data: new Uint8Array([1, 0]) });
    expect(m.dtype).toBe('bool');
    expect(Array.from(m.dataSync())).toEqual([1, 0]);
    expect(() => tensorFromSafetensors({ dtype: 'F32', shape: [3], data: new Float32Array(2) }, 'w')).toThrow(
      /tensor "w": shape \[3\] has 3 elements but data has 2/,
    );
    tf.dispose([i, u, m]);
  });

  it('round trip through safetensorsFromTensor, with F16/BF16 rounding', () => {
    const t = tf.tensor2d([1, 0.1, -65520, 3], [2, 2]);
    const f32 = safetensorsFromTensor(t);
    expect(f32.dtype).toBe('F32');
    expect(Array.from(tensorFromSafetensors(f32).dataSync())).toEqual(Array.from(t.dataSync()));
    const f16 = safetensorsFromTensor(t, 'F16');
    expect(Array.from(f16.data as Uint16Array)).toEqual([0x3c00, 0x2e66, 0xfc00, 0x4200]);
    const bf16 = safetensorsFromTensor(t, 'BF16');
    expect(Array.from(bf16.data as Uint16Array)).toEqual([0x3f80, 0x3dcd, 0xc780, 0x4040]);
    const i = safetensorsFromTensor(tf.tensor1d([4, -5], 'int32'));
    expect(i).toEqual({ dtype: 'I32', shape: [2], data: new Int32Array([4, -5]) });
    expect(() => safetensorsFromTensor(t, 'I8')).toThrow(/float32 tensor can be stored as F32, F16 or BF16, not I8/);
    t.dispose();
  });
});
