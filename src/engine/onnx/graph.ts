/**
 * A small ONNX graph builder: named values, nodes with typed attributes, initializers held
 * as float32/int64 arrays, and serialisation to a `ModelProto` with protobufjs.
 *
 * The schema is ONNX's own `onnx.proto` (vendored beside this file from ONNX 1.23.1,
 * Apache-2.0), parsed once by protobufjs at first use: the current schema (IR 13, every
 * data type) without generated code to keep in step. protobufjs is the most used protobuf
 * implementation for JavaScript and already sits in the dependency tree (onnxruntime-web,
 * which `@huggingface/transformers` loads, depends on it).
 *
 * Target: IR version 10, ai.onnx opset 21, com.microsoft version 1 (onnxruntime 1.30
 * accepts IR <= 13 and opset <= 26).
 *
 * Initializers can be stored inside the protobuf or as external data
 * (`data_location = EXTERNAL`, one blob with 64-byte aligned offsets): a session is then
 * created from the small graph bytes plus the blob (`externalData`), and an exported model
 * writes the blob as `model.onnx_data`, which keeps models past protobuf's 2 GB limit.
 */
import { readFileSync } from 'node:fs';
import protobuf from 'protobufjs';

export const IR_VERSION = 10;
export const OPSET = 21;
export const MS_DOMAIN = 'com.microsoft';

/** ONNX TensorProto.DataType values used here. */
export const DType = { float: 1, int32: 6, int64: 7, bool: 9 } as const;
export type DTypeName = keyof typeof DType;

/** A dimension: a fixed size or a symbolic name (`batch_size`, `sequence_length`, ...). */
export type Dim = number | string;

export type AttrValue = number | string | number[] | { ints: number[] } | { floats: number[] } | { tensor: ConstTensor };

interface ConstTensor {
  dtype: DTypeName;
  dims: number[];
  data: Float32Array | BigInt64Array | Int32Array | Uint8Array;
}

let root: protobuf.Root | null = null;
function schema(): protobuf.Root {
  if (!root) {
    const text = readFileSync(new URL('./onnx.proto', import.meta.url), 'utf8');
    root = protobuf.parse(text, { keepCase: true }).root;
  }
  return root;
}

function bytesOf(a: Float32Array | BigInt64Array | Int32Array | Uint8Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function tensorProto(name: string, t: ConstTensor): Record<string, unknown> {
  return { name, data_type: DType[t.dtype], dims: t.dims, raw_data: bytesOf(t.data) };
}

function attribute(name: string, v: AttrValue): Record<string, unknown> {
  // AttributeProto.AttributeType: FLOAT 1, INT 2, STRING 3, TENSOR 4, FLOATS 6, INTS 7.
  if (typeof v === 'number') return Number.isInteger(v) ? { name, type: 2, i: v } : { name, type: 1, f: v };
  if (typeof v === 'string') return { name, type: 3, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: 7, ints: v };
  if ('ints' in v) return { name, type: 7, ints: v.ints };
  if ('floats' in v) return { name, type: 6, floats: v.floats };
  return { name, type: 4, t: tensorProto('', v.tensor) };
}

function valueInfo(name: string, dtype: DTypeName, shape: Dim[]): Record<string, unknown> {
  return {
    name,
    type: {
      tensor_type: {
        elem_type: DType[dtype],
        shape: { dim: shape.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) },
      },
    },
  };
}

/** What `GraphBuilder.serialize` returns: the model bytes and, with external data, the blob and its file name. */
export interface SerializedModel {
  model: Uint8Array;
  externalData: { path: string; data: Uint8Array } | null;
}

export class GraphBuilder {
  private readonly nodes: Record<string, unknown>[] = [];
  private readonly inputs: Record<string, unknown>[] = [];
  private readonly outputs: Record<string, unknown>[] = [];
  private readonly inits: { name: string; t: ConstTensor }[] = [];
  private readonly constCache = new Map<string, string>();
  private readonly names = new Set<string>();
  private counter = 0;
  usesMsDomain = false;

  constructor(readonly graphName: string) {}

  /** A fresh value name with a readable prefix. */
  fresh(prefix: string): string {
    let n = `${prefix}_${this.counter++}`;
    while (this.names.has(n)) n = `${prefix}_${this.counter++}`;
    this.names.add(n);
    return n;
  }

  input(name: string, dtype: DTypeName, shape: Dim[]): string {
    this.names.add(name);
    this.inputs.push(valueInfo(name, dtype, shape));
    return name;
  }

  output(name: string, dtype: DTypeName, shape: Dim[]): void {
    this.outputs.push(valueInfo(name, dtype, shape));
  }

  /** A weight (float32) or other constant tensor as an initializer. */
  initializer(name: string, data: Float32Array | BigInt64Array | Int32Array, dims: number[]): string {
    const dtype: DTypeName = data instanceof Float32Array ? 'float' : data instanceof BigInt64Array ? 'int64' : 'int32';
    const size = dims.reduce((a, b) => a * b, 1);
    if (data.length !== size) throw new Error(`GraphBuilder: initializer ${name} has ${data.length} values, shape [${dims}] needs ${size}`);
    this.names.add(name);
    this.inits.push({ name, t: { dtype, dims, data } });
    return name;
  }

  /** A small int64 constant (shapes, axes, indices), shared between nodes. */
  int64s(values: number[], dims: number[] = [values.length]): string {
    const key = `i64:${dims.join('x')}:${values.join(',')}`;
    let n = this.constCache.get(key);
    if (!n) {
      n = this.initializer(this.fresh('const_i64'), BigInt64Array.from(values.map(BigInt)), dims);
      this.constCache.set(key, n);
    }
    return n;
  }

  /** A float32 scalar or small constant, shared between nodes. */
  floats(values: number[], dims: number[] = []): string {
    const key = `f32:${dims.join('x')}:${values.join(',')}`;
    let n = this.constCache.get(key);
    if (!n) {
      n = this.initializer(this.fresh('const_f32'), Float32Array.from(values), dims);
      this.constCache.set(key, n);
    }
    return n;
  }

  /**
   * Add a node; returns its output names (`outputs` given explicitly, or `numOutputs` fresh
   * names prefixed by the op type). An input name '' is an omitted optional input.
   */
  node(op: string, inputs: string[], attrs: Record<string, AttrValue> = {}, options: { outputs?: string[]; numOutputs?: number; domain?: string } = {}): string[] {
    const outputs = options.outputs ?? Array.from({ length: options.numOutputs ?? 1 }, () => this.fresh(op.toLowerCase()));
    for (const o of outputs) this.names.add(o);
    if (options.domain === MS_DOMAIN) this.usesMsDomain = true;
    this.nodes.push({
      op_type: op,
      input: inputs,
      output: outputs,
      name: this.fresh(`n_${op}`),
      domain: options.domain ?? '',
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return outputs;
  }

  /** `node` with one output. */
  op(op: string, inputs: string[], attrs: Record<string, AttrValue> = {}, options: { output?: string; domain?: string } = {}): string {
    return this.node(op, inputs, attrs, { outputs: options.output ? [options.output] : undefined, domain: options.domain })[0]!;
  }

  /** Bytes of all float32 initializers (the weights). */
  weightBytes(): number {
    return this.inits.reduce((n, i) => n + (i.t.dtype === 'float' ? i.t.data.byteLength : 0), 0);
  }

  /**
   * The ModelProto bytes. With `externalData` (a file name such as `model.onnx_data`),
   * initializers of at least `externalMinBytes` bytes (default 1 KiB) go into one blob,
   * each at a 64-byte aligned offset, and the graph refers to them by location/offset/length.
   */
  serialize(options: { externalData?: string; externalMinBytes?: number; producer?: string; docString?: string } = {}): SerializedModel {
    const minBytes = options.externalMinBytes ?? 1024;
    const ext = options.externalData;
    const pieces: { offset: number; bytes: Uint8Array }[] = [];
    let size = 0;
    const initializers = this.inits.map(({ name, t }) => {
      const bytes = bytesOf(t.data);
      if (!ext || bytes.byteLength < minBytes) return tensorProto(name, t);
      const offset = Math.ceil(size / 64) * 64;
      pieces.push({ offset, bytes });
      size = offset + bytes.byteLength;
      return {
        name,
        data_type: DType[t.dtype],
        dims: t.dims,
        data_location: 1, // EXTERNAL
        external_data: [
          { key: 'location', value: ext },
          { key: 'offset', value: String(offset) },
          { key: 'length', value: String(bytes.byteLength) },
        ],
      };
    });
    let blob: Uint8Array | null = null;
    if (ext && pieces.length > 0) {
      blob = new Uint8Array(size);
      for (const p of pieces) blob.set(p.bytes, p.offset);
    }
    const opsets = [{ domain: '', version: OPSET }];
    if (this.usesMsDomain) opsets.push({ domain: MS_DOMAIN, version: 1 });
    const ModelProto = schema().lookupType('onnx.ModelProto');
    const message = ModelProto.fromObject({
      ir_version: IR_VERSION,
      producer_name: options.producer ?? 'rlvr',
      doc_string: options.docString ?? '',
      opset_import: opsets,
      graph: {
        name: this.graphName,
        node: this.nodes,
        input: this.inputs,
        output: this.outputs,
        initializer: initializers,
      },
    });
    const model = ModelProto.encode(message).finish();
    return { model, externalData: blob && ext ? { path: ext, data: blob } : null };
  }
}

/** Decode ModelProto bytes into a plain object (tests and tooling). */
export function decodeModel(bytes: Uint8Array): Record<string, any> {
  const ModelProto = schema().lookupType('onnx.ModelProto');
  return ModelProto.toObject(ModelProto.decode(bytes), { longs: Number, bytes: Array, defaults: false }) as Record<string, any>;
}
