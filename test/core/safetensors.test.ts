import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import {
  bf16BitsToNumber,
  f16BitsToNumber,
  fromFloat32,
  numberToBf16Bits,
  numberToF16Bits,
  parseSafetensors,
  readSafetensors,
  serializeSafetensors,
  toFloat32,
  writeSafetensors,
  type SafetensorsTensor,
} from '../../src/core/safetensors.ts';

const FIXTURE = fileURLToPath(new URL('../fixtures/safetensors/numpy-written.safetensors', import.meta.url));

/** Build file bytes from a header object and a data buffer, the way the format defines it (no padding). */
function build(header: unknown, data: Uint8Array, headerText = JSON.stringify(header)): Uint8Array {
  const json = new TextEncoder().encode(headerText);
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function f32(v: number): number {
  return Math.fround(v);
}

describe('round trip', () => {
  const tensors: Record<string, SafetensorsTensor> = {
    f64: { dtype: 'F64', shape: [2, 2], data: new Float64Array([Math.PI, -1e300, 5e-324, -0]) },
    f32: { dtype: 'F32', shape: [3], data: new Float32Array([1.5, -Infinity, 3.4028234663852886e38]) },
    f16: { dtype: 'F16', shape: [2], data: new Uint16Array([0x3c00, 0x7e00]) },
    bf16: { dtype: 'BF16', shape: [1, 2], data: new Uint16Array([0x3f80, 0xc000]) },
    i64: { dtype: 'I64', shape: [3], data: new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n, 42n]) },
    i32: { dtype: 'I32', shape: [2], data: new Int32Array([-(2 ** 31), 2 ** 31 - 1]) },
    i16: { dtype: 'I16', shape: [3], data: new Int16Array([-32768, 0, 32767]) },
    i8: { dtype: 'I8', shape: [3], data: new Int8Array([-128, 1, 127]) },
    u8: { dtype: 'U8', shape: [1], data: new Uint8Array([255]) },
    bool: { dtype: 'BOOL', shape: [2], data: new Uint8Array([1, 0]) },
    scalar: { dtype: 'F32', shape: [], data: new Float32Array([7]) },
    empty: { dtype: 'I32', shape: [0, 5], data: new Int32Array(0) },
  };

  it('every dtype comes back with the same dtype, shape and values', () => {
    const bytes = serializeSafetensors(tensors, { format: 'pt', note: 'héllo' });
    const file = parseSafetensors(bytes, 'roundtrip');
    expect(file.metadata).toEqual({ format: 'pt', note: 'héllo' });
    expect([...file.tensors.keys()].sort()).toEqual(Object.keys(tensors).sort());
    for (const [name, t] of Object.entries(tensors)) {
      const back = file.tensors.get(name)!;
      expect(back.dtype, name).toBe(t.dtype);
      expect(back.shape, name).toEqual(t.shape);
      expect(back.data.constructor, name).toBe(t.data.constructor);
      expect(Array.from(back.data as ArrayLike<number | bigint>), name).toEqual(Array.from(t.data as ArrayLike<number | bigint>));
    }
  });

  it('writes the header padded with spaces to a multiple of 8 and the tensors in name order', () => {
    const bytes = serializeSafetensors(tensors);
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(n % 8).toBe(0);
    const text = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    expect(text.trimEnd().length).toBeLessThan(n + 1);
    expect(text.slice(text.trimEnd().length)).toMatch(/^ *$/);
    const header = JSON.parse(text) as Record<string, { data_offsets: [number, number] }>;
    expect(header['__metadata__']).toBeUndefined(); // no metadata given, none written
    const byOffset = Object.entries(header)
      .sort(([, a], [, b]) => a.data_offsets[0] - b.data_offsets[0] || a.data_offsets[1] - b.data_offsets[1])
      .map(([k]) => k);
    // Zero-size tensors share an offset with their successor; name order decides only among the rest.
    const nonEmpty = byOffset.filter((k) => k !== 'empty');
    expect(nonEmpty).toEqual([...nonEmpty].sort());
    expect(bytes.length).toBe(8 + n + Object.values(tensors).reduce((s, t) => s + t.data.byteLength, 0));
  });

  it('accepts a Map and gives the same bytes as a record', () => {
    const a = serializeSafetensors(tensors, { k: 'v' });
    const b = serializeSafetensors(new Map(Object.entries(tensors).reverse()), { k: 'v' });
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
  });

  describe('files', () => {
    let dir = '';
    afterAll(async () => {
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('writeSafetensors then readSafetensors, atomically (no temporary file left, overwrite works)', async () => {
      dir = await mkdtemp(join(tmpdir(), 'rlvr-st-'));
      const path = join(dir, 'model.safetensors');
      await writeSafetensors(path, { a: tensors['f32']! }, { step: '1' });
      await writeSafetensors(path, tensors, { step: '2' });
      const file = await readSafetensors(path);
      expect(file.metadata).toEqual({ step: '2' });
      expect(file.tensors.size).toBe(Object.keys(tensors).length);
      expect(Array.from(file.tensors.get('i64')!.data as BigInt64Array)).toEqual([-(2n ** 63n), 2n ** 63n - 1n, 42n]);
      expect(await readdir(dir)).toEqual(['model.safetensors']);
    });

    it('reports a missing file with its path', async () => {
      await expect(readSafetensors('/nonexistent/dir/x.safetensors')).rejects.toThrow(/\/nonexistent\/dir\/x\.safetensors.*cannot read/);
    });

    it('a failed write names the path and leaves nothing behind', async () => {
      // The parent "folder" is a regular file, so no write can succeed there.
      await writeFile(join(dir, 'not-a-dir'), 'x');
      await expect(writeSafetensors(join(dir, 'not-a-dir', 'x.safetensors'), tensors)).rejects.toThrow(/not-a-dir.*write failed/);
      expect((await readdir(dir)).filter((n) => n.includes('.tmp'))).toEqual([]);
    });
  });
});

describe('known bytes', () => {
  it('a hand-built buffer parses to the values put in it', () => {
    // "w": F32 [2] = 1.0 (0x3f800000), -2.5 (0xc0200000); "n": I16 [1] = -2 (0xfffe); "b": BF16 [1] = 1.0 (0x3f80)
    const data = new Uint8Array([0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x20, 0xc0, 0xfe, 0xff, 0x80, 0x3f]);
    const header = {
      n: { dtype: 'I16', shape: [1], data_offsets: [8, 10] },
      __metadata__: { source: 'hand' },
      w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      b: { dtype: 'BF16', shape: [], data_offsets: [10, 12] },
    };
    const file = parseSafetensors(build(header, data), 'hand.safetensors');
    expect(file.metadata).toEqual({ source: 'hand' });
    expect(Array.from(file.tensors.get('w')!.data as Float32Array)).toEqual([1, -2.5]);
    expect(Array.from(file.tensors.get('n')!.data as Int16Array)).toEqual([-2]);
    const b = file.tensors.get('b')!;
    expect(b.shape).toEqual([]);
    expect(Array.from(b.data as Uint16Array)).toEqual([0x3f80]);
    expect(Array.from(toFloat32(b))).toEqual([1]);
  });

  it('copies tensors that are unaligned in the file into aligned arrays', () => {
    // The header text has odd length, so the F32 tensor starts at an odd file offset.
    const data = new Uint8Array(new Float32Array([3.25, -1]).buffer);
    const text = JSON.stringify({ x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }) + ' ';
    const bytes = build(null, data, text.length % 2 === 1 ? text : text + ' ');
    expect((8 + new DataView(bytes.buffer).getUint32(0, true)) % 4).not.toBe(0);
    const x = parseSafetensors(bytes).tensors.get('x')!;
    expect(x.data.byteOffset % 4).toBe(0);
    expect(Array.from(x.data as Float32Array)).toEqual([3.25, -1]);
  });

  it('reads the file written by the numpy + struct script', async () => {
    const file = await readSafetensors(FIXTURE);
    expect(file.metadata).toEqual({ format: 'pt', writer: 'numpy+struct' });
    const get = (name: string): SafetensorsTensor => {
      const t = file.tensors.get(name);
      if (!t) throw new Error(`fixture lacks ${name}`);
      return t;
    };
    expect(get('bytes')).toMatchObject({ dtype: 'U8', shape: [3] });
    expect(Array.from(get('bytes').data as Uint8Array)).toEqual([0, 7, 255]);
    expect(get('weight').shape).toEqual([2, 3]);
    expect(Array.from(get('weight').data as Float32Array)).toEqual([1.5, -2.25, 3, 0, f32(1e-3), -7]);
    expect(Array.from(get('small').data as Int8Array)).toEqual([-128, 127]);
    expect(Array.from(get('ids').data as BigInt64Array)).toEqual([-1n, 0n, 2n ** 40n, 123456789n]);
    expect(Array.from(get('mask').data as Uint8Array)).toEqual([1, 0, 1]);
    expect(Array.from(get('i16').data as Int16Array)).toEqual([-32768, 1, 32767]);
    expect(get('i32').shape).toEqual([2, 1]);
    expect(Array.from(get('i32').data as Int32Array)).toEqual([-2147483648, 2147483647]);
    expect(Array.from(get('f64').data as Float64Array)).toEqual([Math.PI, -1e300]);
    expect(Array.from(toFloat32(get('bf16')))).toEqual([1, -2, 0.5, 3, -0, Infinity]);
    expect(get('empty')).toMatchObject({ dtype: 'F32', shape: [0, 4] });
    expect(get('empty').data.length).toBe(0);
    // numpy's float32 -> float16 cast and ours agree bit for bit.
    const src = get('half_source');
    const ours = fromFloat32(src.data as Float32Array, src.shape, 'F16');
    expect(Array.from(ours.data as Uint16Array).map((h) => h.toString(16))).toEqual(
      Array.from(get('half').data as Uint16Array).map((h) => h.toString(16)),
    );
    expect(Array.from(get('half').data as Uint16Array).slice(0, 4)).toEqual([0x3c00, 0xc000, 0x7bff, 0x0001]);
  });
});

describe('F16 and BF16', () => {
  it('decodes known F16 bit patterns', () => {
    expect(f16BitsToNumber(0x3c00)).toBe(1);
    expect(f16BitsToNumber(0xc000)).toBe(-2);
    expect(f16BitsToNumber(0x7bff)).toBe(65504);
    expect(f16BitsToNumber(0x0001)).toBe(2 ** -24); // smallest subnormal
    expect(f16BitsToNumber(0x03ff)).toBe(1023 * 2 ** -24); // largest subnormal
    expect(f16BitsToNumber(0x0400)).toBe(2 ** -14); // smallest normal
    expect(f16BitsToNumber(0x3555)).toBe(f32(0.333251953125));
    expect(Object.is(f16BitsToNumber(0x8000), -0)).toBe(true);
    expect(f16BitsToNumber(0x7c00)).toBe(Infinity);
    expect(f16BitsToNumber(0xfc00)).toBe(-Infinity);
    expect(f16BitsToNumber(0x7e00)).toBeNaN();
    expect(f16BitsToNumber(0xfc01)).toBeNaN();
  });

  it('encodes F16 with round-to-nearest-even', () => {
    expect(numberToF16Bits(1)).toBe(0x3c00);
    expect(numberToF16Bits(-2)).toBe(0xc000);
    expect(numberToF16Bits(65504)).toBe(0x7bff);
    expect(numberToF16Bits(65519)).toBe(0x7bff); // below the midpoint to 65536
    expect(numberToF16Bits(65520)).toBe(0x7c00); // midpoint, odd mantissa: up to infinity
    expect(numberToF16Bits(1e6)).toBe(0x7c00);
    expect(numberToF16Bits(-1e6)).toBe(0xfc00);
    expect(numberToF16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie -> even
    expect(numberToF16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie -> even
    expect(numberToF16Bits(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01); // just above the tie
    expect(numberToF16Bits(2 ** -24)).toBe(0x0001);
    expect(numberToF16Bits(2 ** -25)).toBe(0x0000); // tie between 0 and the smallest subnormal
    expect(numberToF16Bits(3 * 2 ** -25)).toBe(0x0002); // tie -> even
    expect(numberToF16Bits(2 ** -25 + 2 ** -40)).toBe(0x0001);
    expect(numberToF16Bits(2 ** -14 - 2 ** -25)).toBe(0x0400); // rounds up out of the subnormals
    expect(numberToF16Bits(-0)).toBe(0x8000);
    expect(numberToF16Bits(Infinity)).toBe(0x7c00);
    const nan = numberToF16Bits(NaN);
    expect(nan & 0x7c00).toBe(0x7c00);
    expect(nan & 0x03ff).not.toBe(0);
  });

  it('every F16 value round-trips and every midpoint rounds to the even neighbour', () => {
    for (let h = 0; h < 0x10000; h++) {
      const v = f16BitsToNumber(h);
      if (Number.isNaN(v)) {
        expect(Number.isNaN(f16BitsToNumber(numberToF16Bits(v)))).toBe(true);
        continue;
      }
      if (numberToF16Bits(v) !== h) throw new Error(`F16 round trip failed for 0x${h.toString(16)}`);
    }
    for (let h = 0; h < 0x7bff; h++) {
      const lo = f16BitsToNumber(h);
      const hi = f16BitsToNumber(h + 1);
      const mid = (lo + hi) / 2; // exact in float32 (12 significant bits)
      expect(Math.fround(mid)).toBe(mid);
      const even = (h & 1) === 0 ? h : h + 1;
      if (numberToF16Bits(mid) !== even) throw new Error(`midpoint after 0x${h.toString(16)} rounded wrongly`);
      if (numberToF16Bits(-mid) !== (even | 0x8000)) throw new Error(`negative midpoint after 0x${h.toString(16)} rounded wrongly`);
      const ulp32 = Math.max(mid * 2 ** -23, 2 ** -149);
      if (numberToF16Bits(mid + 2 * ulp32) !== h + 1) throw new Error(`above midpoint after 0x${h.toString(16)} rounded wrongly`);
      if (mid - 2 * ulp32 > lo && numberToF16Bits(mid - 2 * ulp32) !== h) {
        throw new Error(`below midpoint after 0x${h.toString(16)} rounded wrongly`);
      }
    }
  });

  it('decodes and encodes BF16 known bit patterns', () => {
    expect(bf16BitsToNumber(0x3f80)).toBe(1);
    expect(bf16BitsToNumber(0xc000)).toBe(-2);
    expect(bf16BitsToNumber(0x7f7f)).toBe(f32(3.3895313892515355e38)); // largest finite
    expect(bf16BitsToNumber(0x0001)).toBe(2 ** -133); // smallest subnormal
    expect(bf16BitsToNumber(0x7f80)).toBe(Infinity);
    expect(bf16BitsToNumber(0xff80)).toBe(-Infinity);
    expect(bf16BitsToNumber(0x7fc0)).toBeNaN();
    expect(numberToBf16Bits(1)).toBe(0x3f80);
    expect(numberToBf16Bits(-2)).toBe(0xc000);
    expect(numberToBf16Bits(1 + 2 ** -8)).toBe(0x3f80); // tie -> even
    expect(numberToBf16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82); // tie -> even
    expect(numberToBf16Bits(1 + 2 ** -8 + 2 ** -20)).toBe(0x3f81);
    expect(numberToBf16Bits(2 ** -133)).toBe(0x0001);
    expect(numberToBf16Bits(3.4028234663852886e38)).toBe(0x7f80); // max float32 rounds to infinity
    expect(numberToBf16Bits(3.3895313892515355e38)).toBe(0x7f7f);
    const nan = numberToBf16Bits(NaN);
    expect(nan & 0x7f80).toBe(0x7f80);
    expect(nan & 0x7f).not.toBe(0);
  });

  it('fromFloat32 and toFloat32 agree with the scalar codecs', () => {
    const values = new Float32Array([0, -0, 1, -2, 0.1, 65504, 65520, 2 ** -24, 2 ** -25, 1e-9, Infinity, NaN, 1 + 2 ** -8]);
    const h = fromFloat32(values, [values.length], 'F16');
    const b = fromFloat32(values, [values.length], 'BF16');
    expect(h.dtype).toBe('F16');
    expect(Array.from(h.data as Uint16Array)).toEqual(Array.from(values, numberToF16Bits));
    expect(Array.from(b.data as Uint16Array)).toEqual(Array.from(values, numberToBf16Bits));
    expect(Array.from(toFloat32(h))).toEqual(Array.from(h.data as Uint16Array, f16BitsToNumber));
    expect(Array.from(toFloat32(b))).toEqual(Array.from(b.data as Uint16Array, bf16BitsToNumber));
    const copy = fromFloat32(values, [values.length], 'F32');
    expect(copy.data).not.toBe(values);
    expect(Array.from(copy.data as Float32Array)).toEqual(Array.from(values));
    expect(() => fromFloat32(values, [2, 2], 'F16')).toThrow(/has 4 elements but data has 13/);
  });

  it('toFloat32 converts integer and bool dtypes', () => {
    expect(Array.from(toFloat32({ dtype: 'I64', shape: [2], data: new BigInt64Array([-5n, 2n ** 40n]) }))).toEqual([-5, 2 ** 40]);
    expect(Array.from(toFloat32({ dtype: 'I8', shape: [2], data: new Int8Array([-128, 3]) }))).toEqual([-128, 3]);
    expect(Array.from(toFloat32({ dtype: 'U8', shape: [1], data: new Uint8Array([200]) }))).toEqual([200]);
    expect(Array.from(toFloat32({ dtype: 'BOOL', shape: [2], data: new Uint8Array([1, 0]) }))).toEqual([1, 0]);
    expect(Array.from(toFloat32({ dtype: 'F64', shape: [1], data: new Float64Array([0.1]) }))).toEqual([f32(0.1)]);
  });
});

describe('malformed files', () => {
  const w = { dtype: 'F32', shape: [2], data_offsets: [0, 8] };
  const data8 = new Uint8Array(8);
  const data12 = new Uint8Array(12);

  it('truncated before the header length', () => {
    expect(() => parseSafetensors(new Uint8Array(5), 'tiny.safetensors')).toThrow(/tiny\.safetensors: truncated file: 5 bytes/);
  });

  it('header length beyond the end of the file', () => {
    const bytes = build({ w }, data8).subarray(0, 20);
    expect(() => parseSafetensors(bytes, 'cut.safetensors')).toThrow(/cut\.safetensors: header length \d+ goes beyond the end of the file \(20 bytes/);
    const huge = new Uint8Array(16);
    new DataView(huge.buffer).setBigUint64(0, 2n ** 60n, true);
    expect(() => parseSafetensors(huge, 'huge')).toThrow(/huge: header length \d+ exceeds/);
  });

  it('invalid JSON and a non-object header', () => {
    expect(() => parseSafetensors(build(null, data8, '{"w": {'), 'bad.safetensors')).toThrow(/bad\.safetensors: header is not valid JSON/);
    expect(() => parseSafetensors(build([1, 2], new Uint8Array(0)), 'arr')).toThrow(/arr: header must be a JSON object/);
    expect(() =>
      parseSafetensors(build({ __metadata__: { a: 1 } }, new Uint8Array(0)), 'meta'),
    ).toThrow(/meta: metadata value "a" must be a string/);
  });

  it('unknown dtype names the tensor', () => {
    const bytes = build({ w, q: { dtype: 'F8_E4M3', shape: [4], data_offsets: [8, 12] } }, data12);
    expect(() => parseSafetensors(bytes, 'f.safetensors')).toThrow(/f\.safetensors: tensor "q": unknown dtype "F8_E4M3"/);
  });

  it('data_offsets that disagree with shape x dtype size name the tensor', () => {
    const bytes = build({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, data8);
    expect(() => parseSafetensors(bytes, 'f')).toThrow(/tensor "w": data_offsets \[0, 8\] span 8 bytes but shape \[3\] of F32 needs 12/);
    const neg = build({ w: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } }, data8);
    expect(() => parseSafetensors(neg, 'f')).toThrow(/tensor "w": shape must be an array of non-negative integers/);
    const rev = build({ w: { dtype: 'F32', shape: [0], data_offsets: [8, 0] } }, data8);
    expect(() => parseSafetensors(rev, 'f')).toThrow(/tensor "w": data_offsets must be \[begin, end\]/);
  });

  it('offsets out of range name the tensor', () => {
    const bytes = build({ w, v: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } }, data8);
    expect(() => parseSafetensors(bytes, 'f')).toThrow(/tensor "v": data_offsets \[8, 12\] go beyond the data buffer \(8 bytes/);
  });

  it('overlapping offsets name both tensors', () => {
    const bytes = build({ w, v: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, data8);
    expect(() => parseSafetensors(bytes, 'f')).toThrow(/tensor "v": data_offsets \[4, 8\] overlap tensor "w"/);
  });

  it('a gap between tensors names the tensor after it', () => {
    const bytes = build({ w, v: { dtype: 'F32', shape: [1], data_offsets: [12, 16] } }, new Uint8Array(16));
    expect(() => parseSafetensors(bytes, 'f')).toThrow(/tensor "v": data_offsets \[12, 16\] leave a gap: expected it to start at 8 \(where tensor "w" ends\)/);
    const first = build({ v: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, data8);
    expect(() => parseSafetensors(first, 'f')).toThrow(/tensor "v": .* leave a gap: expected it to start at 0/);
  });

  it('trailing bytes after the last tensor', () => {
    const bytes = build({ w }, data12);
    expect(() => parseSafetensors(bytes, 'f')).toThrow(/f: the data buffer has 12 bytes but the tensors cover 8 \(last tensor "w"\)/);
  });

  it('a truncated data section names the tensor that runs past the end', () => {
    const full = build({ w }, data8);
    expect(() => parseSafetensors(full.subarray(0, full.length - 1), 'cut')).toThrow(/cut: tensor "w": .* go beyond the data buffer \(7 bytes/);
  });
});

describe('serialize validation', () => {
  it('names the tensor with the wrong array type or length', () => {
    expect(() => serializeSafetensors({ a: { dtype: 'F16', shape: [2], data: new Float32Array(2) } })).toThrow(
      /tensor "a": dtype F16 needs its data in a Uint16Array, got Float32Array/,
    );
    expect(() => serializeSafetensors({ b: { dtype: 'I32', shape: [2, 2], data: new Int32Array(3) } })).toThrow(
      /tensor "b": shape \[2, 2\] has 4 elements but data has 3/,
    );
    expect(() => serializeSafetensors({ c: { dtype: 'X' as 'F32', shape: [1], data: new Float32Array(1) } })).toThrow(/tensor "c": unknown dtype "X"/);
    expect(() => serializeSafetensors({ __metadata__: { dtype: 'F32', shape: [1], data: new Float32Array(1) } })).toThrow(/reserved/);
    expect(() => serializeSafetensors({}, { k: 3 as unknown as string })).toThrow(/metadata value "k" must be a string/);
  });

  it('writes subarray views correctly (uses byteOffset)', () => {
    const big = new Float32Array([9, 1, 2, 9]);
    const file = parseSafetensors(serializeSafetensors({ x: { dtype: 'F32', shape: [2], data: big.subarray(1, 3) } }));
    expect(Array.from(file.tensors.get('x')!.data as Float32Array)).toEqual([1, 2]);
  });
});
