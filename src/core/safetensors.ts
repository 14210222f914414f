/**
 * Safetensors reading and writing (the Hugging Face checkpoint format), with no
 * dependency beyond Node built-ins.
 *
 * Layout of a file:
 *   bytes [0, 8)        N, the header length, unsigned 64-bit little-endian
 *   bytes [8, 8 + N)    UTF-8 JSON: { "<name>": { "dtype": "F32", "shape": [2, 3],
 *                       "data_offsets": [begin, end] }, ..., "__metadata__": { "k": "v" } }
 *   bytes [8 + N, ...)  the byte buffer; each tensor's bytes are buffer[begin, end),
 *                       row-major, little-endian
 *
 * Validation follows the reference implementation (huggingface/safetensors): the
 * tensors' byte ranges must tile the buffer exactly (sorted by offset, the first starting
 * at 0, each starting where the previous ended, the last ending at the end of the file),
 * and each range's length must equal numElements(shape) x sizeof(dtype).
 *
 * Writing: tensors are laid out in name order and the header is padded with spaces to a
 * multiple of 8 bytes, so every tensor starts 8-byte aligned in the file. Files written
 * by other tools may leave tensors unaligned; the reader then copies those tensors into
 * fresh, aligned typed arrays. Aligned tensors are views into the bytes that were parsed
 * (no copy): mutate them only if you own those bytes.
 *
 * F16 and BF16 data stay raw 16-bit patterns (Uint16Array); `toFloat32` decodes them
 * exactly and `fromFloat32` encodes with round-to-nearest-even.
 */
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from './atomic.ts';

export type SafetensorsDType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

export interface SafetensorsTensor {
  dtype: SafetensorsDType;
  /** Row-major dimensions; [] is a scalar (one element). */
  shape: number[];
  /** F16/BF16: raw bit patterns in a Uint16Array. BOOL: 0/1 bytes in a Uint8Array. */
  data: Float64Array | Float32Array | Uint16Array | BigInt64Array | Int32Array | Int16Array | Int8Array | Uint8Array;
}

export interface SafetensorsFile {
  tensors: Map<string, SafetensorsTensor>;
  /** The optional "__metadata__" string-to-string map ({} when absent). */
  metadata: Record<string, string>;
}

type TypedArrayCtor =
  | Float64ArrayConstructor
  | Float32ArrayConstructor
  | Uint16ArrayConstructor
  | BigInt64ArrayConstructor
  | Int32ArrayConstructor
  | Int16ArrayConstructor
  | Int8ArrayConstructor
  | Uint8ArrayConstructor;

const DTYPES: Record<SafetensorsDType, { size: number; ctor: TypedArrayCtor }> = {
  F64: { size: 8, ctor: Float64Array },
  F32: { size: 4, ctor: Float32Array },
  F16: { size: 2, ctor: Uint16Array },
  BF16: { size: 2, ctor: Uint16Array },
  I64: { size: 8, ctor: BigInt64Array },
  I32: { size: 4, ctor: Int32Array },
  I16: { size: 2, ctor: Int16Array },
  I8: { size: 1, ctor: Int8Array },
  U8: { size: 1, ctor: Uint8Array },
  BOOL: { size: 1, ctor: Uint8Array },
};

/** The reference implementation refuses headers above 100 MB; so do we. */
const MAX_HEADER_BYTES = 100_000_000;
const METADATA_KEY = '__metadata__';

const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function assertLittleEndianHost(): void {
  if (!HOST_IS_LITTLE_ENDIAN) {
    throw new Error('safetensors: this implementation needs a little-endian host (typed arrays are read in place)');
  }
}

function isDType(s: unknown): s is SafetensorsDType {
  return typeof s === 'string' && Object.hasOwn(DTYPES, s);
}

/** Number of elements of a shape; [] gives 1. */
function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

interface HeaderEntry {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  begin: number;
  end: number;
}

/**
 * Parse the bytes of a .safetensors file. `source` (a file name) is used in error
 * messages. Throws on any malformation, naming the file and the tensor concerned.
 */
export function parseSafetensors(bytes: Uint8Array, source = '<buffer>'): SafetensorsFile {
  assertLittleEndianHost();
  const where = `safetensors ${source}`;
  if (bytes.byteLength < 8) {
    throw new Error(`${where}: truncated file: ${bytes.byteLength} bytes, fewer than the 8-byte header length`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen64 = view.getBigUint64(0, true);
  if (headerLen64 > BigInt(MAX_HEADER_BYTES)) {
    throw new Error(`${where}: header length ${headerLen64} exceeds the ${MAX_HEADER_BYTES}-byte limit (corrupt or not a safetensors file)`);
  }
  const headerLen = Number(headerLen64);
  if (8 + headerLen > bytes.byteLength) {
    throw new Error(
      `${where}: header length ${headerLen} goes beyond the end of the file (${bytes.byteLength} bytes; truncated or not a safetensors file)`,
    );
  }
  let headerText: string;
  try {
    headerText = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLen));
  } catch {
    throw new Error(`${where}: header is not valid UTF-8`);
  }
  let header: unknown;
  try {
    header = JSON.parse(headerText);
  } catch (e) {
    throw new Error(`${where}: header is not valid JSON (${(e as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) {
    throw new Error(`${where}: header must be a JSON object`);
  }

  const metadata: Record<string, string> = {};
  const entries: HeaderEntry[] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === METADATA_KEY) {
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
        throw new Error(`${where}: "${METADATA_KEY}" must be an object of string values`);
      }
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') {
          throw new Error(`${where}: metadata value "${k}" must be a string, got ${JSON.stringify(v)}`);
        }
        metadata[k] = v;
      }
      continue;
    }
    entries.push(parseEntry(name, raw, where));
  }

  // The byte ranges must tile the data buffer exactly.
  const dataStart = 8 + headerLen;
  const bufferLen = bytes.byteLength - dataStart;
  const byOffset = [...entries].sort((x, y) => x.begin - y.begin || x.end - y.end);
  let expected = 0;
  let previous = '';
  for (const e of byOffset) {
    if (e.end > bufferLen) {
      throw new Error(
        `${where}: tensor "${e.name}": data_offsets [${e.begin}, ${e.end}] go beyond the data buffer (${bufferLen} bytes; file truncated?)`,
      );
    }
    if (e.begin < expected) {
      throw new Error(
        `${where}: tensor "${e.name}": data_offsets [${e.begin}, ${e.end}] overlap tensor "${previous}" (which ends at ${expected})`,
      );
    }
    if (e.begin > expected) {
      throw new Error(
        `${where}: tensor "${e.name}": data_offsets [${e.begin}, ${e.end}] leave a gap: expected it to start at ${expected}` +
          (previous ? ` (where tensor "${previous}" ends)` : ''),
      );
    }
    expected = e.end;
    previous = e.name;
  }
  if (expected !== bufferLen) {
    throw new Error(
      `${where}: the data buffer has ${bufferLen} bytes but the tensors cover ${expected}` +
        (previous ? ` (last tensor "${previous}")` : '') +
        '; the file has trailing bytes or a missing tensor',
    );
  }

  const tensors = new Map<string, SafetensorsTensor>();
  for (const e of entries) {
    const { size, ctor } = DTYPES[e.dtype];
    const count = (e.end - e.begin) / size;
    const absolute = bytes.byteOffset + dataStart + e.begin;
    let data: SafetensorsTensor['data'];
    if (absolute % size === 0) {
      data = new ctor(bytes.buffer as ArrayBuffer, absolute, count);
    } else {
      // Unaligned for this element size: copy into a fresh (aligned) buffer.
      // (`new Uint8Array(view)` copies; Buffer#slice would not.)
      const copy = new Uint8Array(bytes.subarray(dataStart + e.begin, dataStart + e.end));
      data = new ctor(copy.buffer, 0, count);
    }
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data });
  }
  return { tensors, metadata };
}

function parseEntry(name: string, raw: unknown, where: string): HeaderEntry {
  const at = `${where}: tensor "${name}"`;
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new Error(`${at}: header entry must be an object with dtype, shape and data_offsets`);
  }
  const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
  if (!isDType(dtype)) {
    throw new Error(`${at}: unknown dtype ${JSON.stringify(dtype)} (supported: ${Object.keys(DTYPES).join(', ')})`);
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new Error(`${at}: shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
  }
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
    offsets[0] > offsets[1]
  ) {
    throw new Error(`${at}: data_offsets must be [begin, end] with 0 <= begin <= end, got ${JSON.stringify(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  const dims = shape as number[];
  const expectedBytes = elementCount(dims) * DTYPES[dtype].size;
  if (end - begin !== expectedBytes) {
    throw new Error(
      `${at}: data_offsets [${begin}, ${end}] span ${end - begin} bytes but shape [${dims.join(', ')}] of ${dtype} needs ${expectedBytes}`,
    );
  }
  return { name, dtype, shape: [...dims], begin, end };
}

/** Read and parse a .safetensors file. */
export async function readSafetensors(path: string): Promise<SafetensorsFile> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new Error(`safetensors ${path}: cannot read file (${(e as Error).message})`);
  }
  return parseSafetensors(bytes, path);
}

function checkTensorForWrite(name: string, t: SafetensorsTensor): void {
  const at = `serializeSafetensors: tensor "${name}"`;
  if (name.length === 0) throw new Error('serializeSafetensors: tensor names must be non-empty');
  if (name === METADATA_KEY) throw new Error(`serializeSafetensors: "${METADATA_KEY}" is reserved and cannot name a tensor`);
  if (!isDType(t.dtype)) {
    throw new Error(`${at}: unknown dtype ${JSON.stringify(t.dtype)} (supported: ${Object.keys(DTYPES).join(', ')})`);
  }
  if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new Error(`${at}: shape must be an array of non-negative integers, got ${JSON.stringify(t.shape)}`);
  }
  const { ctor } = DTYPES[t.dtype];
  if (!(t.data instanceof ctor)) {
    throw new Error(`${at}: dtype ${t.dtype} needs its data in a ${ctor.name}, got ${t.data?.constructor?.name ?? typeof t.data}`);
  }
  const n = elementCount(t.shape);
  if (t.data.length !== n) {
    throw new Error(`${at}: shape [${t.shape.join(', ')}] has ${n} elements but data has ${t.data.length}`);
  }
}

/**
 * Serialise tensors (laid out in name order) and optional string metadata to the
 * bytes of a .safetensors file.
 */
export function serializeSafetensors(
  tensors: Map<string, SafetensorsTensor> | Record<string, SafetensorsTensor>,
  metadata?: Record<string, string>,
): Uint8Array {
  assertLittleEndianHost();
  const list: Array<[string, SafetensorsTensor]> =
    tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  list.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

  const header: Record<string, unknown> = {};
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') {
        throw new Error(`serializeSafetensors: metadata value "${k}" must be a string, got ${JSON.stringify(v)}`);
      }
    }
    if (Object.keys(metadata).length > 0) header[METADATA_KEY] = { ...metadata };
  }
  let offset = 0;
  for (const [name, t] of list) {
    checkTensorForWrite(name, t);
    const nbytes = t.data.byteLength;
    header[name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + nbytes] };
    offset += nbytes;
  }

  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerLen = Math.ceil(json.byteLength / 8) * 8;
  const out = new Uint8Array(8 + headerLen + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLen), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.byteLength, 8 + headerLen); // pad with spaces
  let pos = 8 + headerLen;
  for (const [, t] of list) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), pos);
    pos += t.data.byteLength;
  }
  return out;
}


/**
 * Write a .safetensors file atomically: the bytes go to a temporary file in the same
 * folder, which is flushed to disk and then renamed over `path`. A crash leaves either
 * the old file or the new one, never a partial one.
 */
export async function writeSafetensors(
  path: string,
  tensors: Map<string, SafetensorsTensor> | Record<string, SafetensorsTensor>,
  metadata?: Record<string, string>,
): Promise<void> {
  const bytes = serializeSafetensors(tensors, metadata);
  try {
    writeFileAtomic(path, bytes);
  } catch (e) {
    throw new Error(`safetensors ${path}: write failed (${(e as Error).message})`);
  }
}

// ---------------------------------------------------------------------------------
// 16-bit float conversion

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Decode one IEEE 754 binary16 bit pattern exactly (every half value is a float32 value). */
export function f16BitsToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24; // zero and subnormals
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1024 + mant) * 2 ** (exp - 25);
}

/** Encode a float32 value as binary16 bits, rounding to nearest, ties to even. */
export function numberToF16Bits(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const abs = bits & 0x7fffffff;
  if (abs > 0x7f800000) return sign | 0x7e00 | ((abs >>> 13) & 0x3ff); // NaN stays NaN (quiet bit set)
  if (abs >= 0x477ff000) return sign | 0x7c00; // >= 65520 rounds to infinity
  if (abs < 0x38800000) {
    // Below the smallest normal half (2^-14): a subnormal half counts units of 2^-24.
    const scaled = Math.abs(f32[0]!) * 2 ** 24; // f32[0] still holds x as float32; the product is exact
    let q = Math.floor(scaled);
    const rest = scaled - q;
    if (rest > 0.5 || (rest === 0.5 && (q & 1) === 1)) q += 1;
    return sign | q; // q = 1024 encodes the smallest normal, as it should
  }
  let h = ((((abs >>> 23) - 112) << 10) | ((abs >>> 13) & 0x3ff)) >>> 0; // rebias 127 -> 15
  const rest = abs & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1)) h += 1; // a carry moves into the exponent correctly
  return sign | h;
}

/** Decode one bfloat16 bit pattern exactly (it is the top half of a float32). */
export function bf16BitsToNumber(b: number): number {
  u32[0] = (b & 0xffff) << 16;
  return f32[0]!;
}

/** Encode a float32 value as bfloat16 bits, rounding to nearest, ties to even. */
export function numberToBf16Bits(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  if ((bits & 0x7fffffff) > 0x7f800000) return ((bits >>> 16) | 0x0040) & 0xffff; // NaN stays NaN
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff; // overflow to infinity is correct rounding
}

/**
 * Convert any tensor to a new Float32Array: F16 and BF16 decoded exactly (subnormals,
 * infinities and NaN included), integers and booleans converted to the nearest float32.
 */
export function toFloat32(t: SafetensorsTensor): Float32Array {
  const n = elementCount(t.shape);
  if (t.data.length !== n) {
    throw new Error(`toFloat32: shape [${t.shape.join(', ')}] has ${n} elements but data has ${t.data.length}`);
  }
  const out = new Float32Array(n);
  switch (t.dtype) {
    case 'F16': {
      const d = t.data as Uint16Array;
      for (let i = 0; i < n; i++) out[i] = f16BitsToNumber(d[i]!);
      return out;
    }
    case 'BF16': {
      const d = t.data as Uint16Array;
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) bits[i] = d[i]! << 16;
      return out;
    }
    case 'I64': {
      const d = t.data as BigInt64Array;
      for (let i = 0; i < n; i++) out[i] = Number(d[i]!);
      return out;
    }
    case 'F64':
    case 'F32':
    case 'I32':
    case 'I16':
    case 'I8':
    case 'U8':
    case 'BOOL':
      out.set(t.data as Exclude<SafetensorsTensor['data'], BigInt64Array>);
      return out;
    default:
      throw new Error(`toFloat32: unknown dtype ${JSON.stringify((t as { dtype: unknown }).dtype)}`);
  }
}

/**
 * Build a float tensor from float32 values. F32 copies `data`; F16 and BF16 round to
 * nearest, ties to even (values beyond the format's range become infinities).
 */
export function fromFloat32(data: Float32Array, shape: number[], dtype: 'F32' | 'F16' | 'BF16'): SafetensorsTensor {
  if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new Error(`fromFloat32: shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
  }
  const n = elementCount(shape);
  if (data.length !== n) {
    throw new Error(`fromFloat32: shape [${shape.join(', ')}] has ${n} elements but data has ${data.length}`);
  }
  switch (dtype) {
    case 'F32':
      return { dtype, shape: [...shape], data: new Float32Array(data) };
    case 'F16': {
      const out = new Uint16Array(n);
      for (let i = 0; i < n; i++) out[i] = numberToF16Bits(data[i]!);
      return { dtype, shape: [...shape], data: out };
    }
    case 'BF16': {
      const bits = new Uint32Array(data.buffer, data.byteOffset, n);
      const out = new Uint16Array(n);
      for (let i = 0; i < n; i++) {
        const b = bits[i]!;
        out[i] =
          (b & 0x7fffffff) > 0x7f800000 ? ((b >>> 16) | 0x0040) & 0xffff : ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
      }
      return { dtype, shape: [...shape], data: out };
    }
    default:
      throw new Error(`fromFloat32: dtype must be F32, F16 or BF16, got ${JSON.stringify(dtype)}`);
  }
}
