/**
 * The wasm kernel fixes give the same numbers as the pure-JS cpu backend, forward and
 * gradient, and leak no backend memory.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../../src/core/rng.ts';
import { applyWasmFixes, WASM_FIX_NAMES } from '../../../src/engine/tfjs/kernels/index.ts';

type Arr = { shape: number[]; values: number[] };

function data(shape: number[], seed: number): Float32Array {
  let n = 1;
  for (const d of shape) n *= d;
  return new Rng(seed).fillNormal(new Float32Array(n)) as Float32Array;
}

async function on(backend: 'cpu' | 'wasm', f: () => tf.Tensor[]): Promise<Arr[]> {
  await tf.setBackend(backend);
  await tf.ready();
  const outs = tf.tidy(f);
  const res = outs.map((t) => ({ shape: [...t.shape], values: Array.from(t.dataSync()) }));
  tf.dispose(outs);
  return res;
}

function expectClose(actual: Arr[], expected: Arr[], what: string, tol = 1e-4): void {
  expect(actual.length, what).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    expect(a.shape, `${what} output ${i} shape`).toEqual(e.shape);
    let scale = 1;
    for (const v of e.values) scale = Math.max(scale, Math.abs(v));
    for (let j = 0; j < e.values.length; j++) {
      const diff = Math.abs(a.values[j]! - e.values[j]!);
      if (!(diff <= tol * scale)) {
        throw new Error(`${what} output ${i} element ${j}: wasm ${a.values[j]} vs cpu ${e.values[j]}`);
      }
    }
  }
}

/**
 * Forward value and, unless `forwardOnly`, the gradients (w.r.t. a and b) of
 * sum(matMul(a, b) * w), with w fixed random.
 */
function matMulCase(aShape: number[], bShape: number[], ta: boolean, tb: boolean, fused: boolean, forwardOnly = false): () => tf.Tensor[] {
  return () => {
    const a = tf.tensor(data(aShape, 1), aShape);
    const b = tf.tensor(data(bShape, 2), bShape);
    const prod = (x: tf.Tensor, y: tf.Tensor): tf.Tensor =>
      fused ? tf.fused.matMul({ a: x, b: y, transposeA: ta, transposeB: tb }) : tf.matMul(x, y, ta, tb);
    const out = prod(a, b);
    if (forwardOnly) return [out];
    const w = tf.tensor(data(out.shape, 3), out.shape);
    const [ga, gb] = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(prod(x, y), w)))([a, b]);
    return [out, ga!, gb!];
  };
}

/**
 * Shapes before transposition: a is [..., m, k], b is [..., k, n]. tfjs broadcasts batch
 * dimensions in the forward product (when one side's batch is 1 or absent) but its
 * BatchMatMul gradient does not (on every backend), so broadcast cases check the forward only.
 */
type ShapeCase = { name: string; a: number[]; b: number[]; broadcast?: boolean };

const SHAPES: ShapeCase[] = [
  { name: '2-D small', a: [5, 7], b: [7, 3] },
  { name: '2-D', a: [33, 17], b: [17, 20] },
  { name: '2-D vector-like', a: [1, 9], b: [9, 4] },
  { name: '3-D batch 4', a: [4, 6, 8], b: [4, 8, 5] },
  { name: '3-D broadcast a', a: [1, 6, 8], b: [3, 8, 5], broadcast: true },
  { name: '3-D broadcast b', a: [3, 6, 8], b: [1, 8, 5], broadcast: true },
  { name: 'rank 2 x rank 3', a: [6, 8], b: [3, 8, 5], broadcast: true },
  { name: 'rank 3 x rank 2', a: [3, 6, 8], b: [8, 5], broadcast: true },
  { name: 'rank 4 x rank 3 (b batch 1)', a: [2, 3, 6, 8], b: [1, 8, 5], broadcast: true },
  { name: '4-D attention-like', a: [2, 3, 7, 4], b: [2, 3, 4, 7] },
];

function transposed(shape: number[], t: boolean): number[] {
  if (!t) return shape;
  const s = [...shape];
  const r = s.length;
  [s[r - 2], s[r - 1]] = [s[r - 1]!, s[r - 2]!];
  return s;
}

/** (transposeA, transposeB) pairs. */
const ALL_TRANSPOSES: ReadonlyArray<readonly [boolean, boolean]> = [
  [false, false],
  [true, false],
  [false, true],
  [true, true],
];

/**
 * One test per shape and transpose pair: the wasm product (plain or fused) matches cpu
 * forward and, except for broadcast shapes, in its gradients.
 */
function itMatchesCpu(shapes: readonly ShapeCase[], transposes: ReadonlyArray<readonly [boolean, boolean]>, fused: boolean): void {
  for (const { name, a, b, broadcast } of shapes) {
    for (const [ta, tb] of transposes) {
      it(`${name}, transposeA=${ta}, transposeB=${tb}: forward${broadcast ? '' : ' and gradients'} match cpu`, async () => {
        const f = matMulCase(transposed(a, ta), transposed(b, tb), ta, tb, fused, broadcast);
        expectClose(await on('wasm', f), await on('cpu', f), `${fused ? 'fused ' : ''}${name} ${ta} ${tb}`);
      });
    }
  }
}

beforeAll(() => {
  expect(applyWasmFixes()).toEqual(Object.values(WASM_FIX_NAMES));
  expect(applyWasmFixes()).toHaveLength(Object.keys(WASM_FIX_NAMES).length); // idempotent
});

describe('BatchMatMul fix', () => {
  itMatchesCpu(SHAPES, ALL_TRANSPOSES, false);

  it('matches a hand-computed product', async () => {
    // a^T b with a = [[1, 2], [3, 4], [5, 6]] (3x2), b = [[1, 0], [0, 1], [1, 1]] (3x2):
    // a^T = [[1, 3, 5], [2, 4, 6]]; a^T b = [[1 + 5, 3 + 5], [2 + 6, 4 + 6]] = [[6, 8], [8, 10]]
    const [r] = await on('wasm', () => [tf.matMul(tf.tensor2d([1, 2, 3, 4, 5, 6], [3, 2]), tf.tensor2d([1, 0, 0, 1, 1, 1], [3, 2]), true, false)]);
    expect(r!.values).toEqual([6, 8, 8, 10]);
    // a b^T with a = [[1, 2]], b = [[3, 4], [5, 6]]: [[11, 17]]
    const [s] = await on('wasm', () => [tf.matMul(tf.tensor2d([1, 2], [1, 2]), tf.tensor2d([3, 4, 5, 6], [2, 2]), false, true)]);
    expect(s!.values).toEqual([11, 17]);
  });

  it('frees its temporary transposes (wasm backend data ids stay flat)', async () => {
    await tf.setBackend('wasm');
    const a = tf.tensor(data([4, 6, 8], 1), [4, 6, 8]);
    const b = tf.tensor(data([4, 5, 8], 2), [4, 5, 8]);
    tf.matMul(a, b, false, true).dispose(); // warm up
    const before = tf.engine().backend.numDataIds();
    const tensorsBefore = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      tf.matMul(a, b, false, true).dispose();
      tf.matMul(a, a, true, false).dispose();
    }
    expect(tf.engine().backend.numDataIds()).toBe(before);
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    a.dispose();
    b.dispose();
  });
});

describe('_FusedMatMul fix', () => {
  itMatchesCpu(
    SHAPES.filter((s) => s.a.length === s.b.length && s.a.length <= 3),
    ALL_TRANSPOSES.filter(([ta, tb]) => ta || tb),
    true,
  );

  it('with bias and relu, transposed: matches cpu', async () => {
    const f = (): tf.Tensor[] => {
      const a = tf.tensor(data([8, 6], 4), [8, 6]); // used as a^T: [6, 8]
      const b = tf.tensor(data([5, 8], 5), [5, 8]); // used as b^T: [8, 5]
      const bias = tf.tensor(data([5], 6), [5]);
      const out = tf.fused.matMul({ a, b, bias, transposeA: true, transposeB: true, activation: 'relu' });
      const [ga, gb, gbias] = tf.grads((x: tf.Tensor, y: tf.Tensor, z: tf.Tensor) =>
        tf.sum(tf.fused.matMul({ a: x, b: y, bias: z, transposeA: true, transposeB: true, activation: 'relu' })),
      )([a, b, bias]);
      return [out, ga!, gb!, gbias!];
    };
    expectClose(await on('wasm', f), await on('cpu', f), 'fused bias relu');
  });
});

describe('UnsortedSegmentSum / gather gradient', () => {
  it('gather forward and gradient with repeated indices match cpu and a hand computation', async () => {
    const ids = [
      [1, 3, 3],
      [0, 9, 1],
      [3, 3, 3],
    ];
    const f = (): tf.Tensor[] => {
      const table = tf.tensor(data([10, 4], 7), [10, 4]);
      const idx = tf.tensor2d(ids, [3, 3], 'int32');
      const w = tf.tensor(data([3, 3, 4], 8), [3, 3, 4]);
      const out = tf.gather(table, idx);
      const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, idx), w)))(table);
      return [out, g];
    };
    const wasm = await on('wasm', f);
    expectClose(wasm, await on('cpu', f), 'gather');
    // The gradient of row r is the sum of w[i, j, :] over positions (i, j) with ids[i][j] = r.
    const w = data([3, 3, 4], 8);
    const expected = new Float64Array(40);
    ids.flat().forEach((r, p) => {
      for (let c = 0; c < 4; c++) expected[r * 4 + c]! += w[p * 4 + c]!;
    });
    const g = wasm[1]!.values;
    for (let i = 0; i < 40; i++) expect(g[i]).toBeCloseTo(expected[i]!, 5);
    expect(g.slice(2 * 4, 3 * 4)).toEqual([0, 0, 0, 0]); // row 2 never looked up
  });

  it('gather along axis 1 (gradient transposes around the segment sum) matches cpu', async () => {
    const f = (): tf.Tensor[] => {
      const x = tf.tensor(data([3, 7, 2], 9), [3, 7, 2]);
      const idx = tf.tensor1d([6, 0, 6, 2, 6], 'int32');
      const w = tf.tensor(data([3, 5, 2], 10), [3, 5, 2]);
      const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, idx, 1), w)))(x);
      return [tf.gather(x, idx, 1), g];
    };
    expectClose(await on('wasm', f), await on('cpu', f), 'gather axis 1');
  });

  it('unsortedSegmentSum: known values, int32, multi-dimensional ids, negative ids dropped', async () => {
    const [r, ri, rm] = await on('wasm', () => [
      tf.unsortedSegmentSum(tf.tensor2d([1, 2, 3, 4, 5, 6, 7, 8], [4, 2]), tf.tensor1d([2, 0, 2, -1], 'int32'), 3),
      tf.unsortedSegmentSum(tf.tensor1d([5, 6, 7], 'int32'), tf.tensor1d([1, 1, 0], 'int32'), 2),
      // The op's typings say 1-D ids; the kernel contract (as in TensorFlow) allows any prefix of x's shape.
      tf.unsortedSegmentSum(tf.tensor3d([1, 2, 3, 4, 5, 6, 7, 8], [2, 2, 2]), tf.tensor2d([[0, 1], [1, 1]], [2, 2], 'int32') as tf.Tensor as tf.Tensor1D, 2),
    ]);
    expect(r!.shape).toEqual([3, 2]);
    expect(r!.values).toEqual([3, 4, 0, 0, 1 + 5, 2 + 6]);
    expect(ri!.values).toEqual([7, 11]);
    expect(rm!.shape).toEqual([2, 2]);
    expect(rm!.values).toEqual([1, 2, 3 + 5 + 7, 4 + 6 + 8]);
  });

  it('an id >= numSegments is a clear error and leaks nothing', async () => {
    await tf.setBackend('wasm');
    const x = tf.tensor1d([1, 2]);
    const ids = tf.tensor1d([0, 5], 'int32');
    const before = tf.engine().backend.numDataIds();
    expect(() => tf.unsortedSegmentSum(x, ids, 3)).toThrow(/segment id 5 at flat index 1 is >= numSegments \(3\)/);
    expect(tf.engine().backend.numDataIds()).toBe(before);
    tf.dispose([x, ids]);
  });
});

/**
 * Batched products above the split threshold (one XNNPACK product per entry), products with
 * many rows (b under a temporary id), and edge sizes (k = 1, n = 1, one entry). a is
 * [..., m, k], b is [..., k, n] before transposition.
 */
const XNN_SHAPES: ShapeCase[] = [
  { name: 'batched 3 x [20, 16] x [16, 24]', a: [3, 20, 16], b: [3, 16, 24] },
  { name: '4-D attention scores [2, 3, 33, 8] x [2, 3, 8, 33]', a: [2, 3, 33, 8], b: [2, 3, 8, 33] },
  { name: '4-D attention context [2, 2, 40, 40] x [2, 2, 40, 8]', a: [2, 2, 40, 40], b: [2, 2, 40, 8] },
  { name: 'grouped-query rows [1, 2, 48, 16] x [1, 2, 16, 24]', a: [1, 2, 48, 16], b: [1, 2, 16, 24] },
  { name: 'k = 1', a: [4, 32, 1], b: [4, 1, 32] },
  { name: 'n = 1', a: [3, 64, 16], b: [3, 16, 1] },
  { name: 'one entry, rank 3', a: [1, 40, 12], b: [1, 12, 20] },
  { name: 'shared a [1, 24, 16] x [3, 16, 20]', a: [1, 24, 16], b: [3, 16, 20], broadcast: true },
  { name: 'rank 2 a x batched b', a: [24, 16], b: [3, 16, 20], broadcast: true },
  { name: 'many rows [300, 7] x [7, 5]', a: [300, 7], b: [7, 5] },
  { name: 'many rows folded [3, 100, 9] x [9, 4]', a: [3, 100, 9], b: [9, 4], broadcast: true },
];

describe('BatchMatMul on XNNPACK per entry and with uncached b', () => {
  itMatchesCpu(XNN_SHAPES, ALL_TRANSPOSES, false);

  it('matches an independent float64 product per entry, and frees everything it registers', async () => {
    await tf.setBackend('wasm');
    const [N, m, k, n] = [5, 17, 11, 13];
    const av = data([N, m, k], 21);
    const bv = data([N, k, n], 22);
    const a = tf.tensor3d(av, [N, m, k]);
    const b = tf.tensor3d(bv, [N, k, n]);
    tf.matMul(a, b).dispose(); // warm up
    const before = tf.engine().backend.numDataIds();
    const got = tf.matMul(a, b);
    const g = got.dataSync();
    for (let e = 0; e < N; e++) {
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) {
          let s = 0;
          for (let t = 0; t < k; t++) s += av[(e * m + i) * k + t]! * bv[(e * k + t) * n + j]!;
          expect(Math.abs(g[(e * m + i) * n + j]! - s)).toBeLessThan(1e-4);
        }
      }
    }
    got.dispose();
    expect(tf.engine().backend.numDataIds()).toBe(before);
    tf.dispose([a, b]);
  });
});

describe("XNNPACK's operator cache and buffers shared between shapes", () => {
  it('one buffer used as b with two shapes (a reshape) gives the right products, in either order and path', async () => {
    const f = (): tf.Tensor[] => {
      const w = tf.tensor(data([3, 4], 91), [3, 4]);
      const w2 = tf.reshape(w, [4, 3]); // same buffer, same id on wasm
      const x = tf.tensor(data([5, 3], 92), [5, 3]);
      const y = tf.tensor(data([5, 4], 93), [5, 4]);
      const outs: tf.Tensor[] = [];
      for (let i = 0; i < 2; i++) {
        outs.push(tf.matMul(x, w), tf.matMul(y, w2)); // stock path, few rows
        outs.push(tf.matMul(tf.transpose(x), w, true, false), tf.matMul(tf.transpose(y), w2, true, false)); // direct path
        outs.push(tf.fused.matMul({ a: y, b: w2, bias: tf.ones([3]) }), tf.fused.matMul({ a: x, b: w }));
      }
      // A [1, 4] buffer seen as [4, 1] (a transpose that moves no bytes) in a gradient.
      const a = tf.tensor(data([9, 1], 94), [9, 1]);
      const b = tf.tensor(data([9, 4], 95), [9, 4]);
      const v = tf.tensor(data([1, 4], 96), [1, 4]);
      const [ga, gb] = tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.sum(tf.mul(tf.matMul(p, q, true, false), v)))([a, b]);
      return [...outs, ga!, gb!];
    };
    expectClose(await on('wasm', f), await on('cpu', f), 'shared buffer');
  });
});

describe('Identity shares the buffer', () => {
  it('a clone keeps its values after the original is disposed, and shares the data id', async () => {
    await tf.setBackend('wasm');
    const x = tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3]);
    const y = tf.clone(x);
    expect(y.dataId).toBe(x.dataId);
    const before = tf.engine().backend.numDataIds();
    x.dispose();
    expect(tf.engine().backend.numDataIds()).toBe(before); // y still holds the buffer
    expect(Array.from(y.dataSync())).toEqual([1, 2, 3, 4, 5, 6]);
    y.dispose();
    expect(tf.engine().backend.numDataIds()).toBe(before - 1);
  });

  it('saved tensors of a gradient still give cpu-identical gradients', async () => {
    const f = (): tf.Tensor[] => {
      const x = tf.tensor(data([6, 5], 31), [6, 5]);
      const w = tf.tensor(data([5, 4], 32), [5, 4]);
      const [gx, gw] = tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.sum(tf.square(tf.sigmoid(tf.matMul(tf.exp(p), q)))))([x, w]);
      return [gx!, gw!];
    };
    expectClose(await on('wasm', f), await on('cpu', f), 'saved tensors');
  });
});

describe('Slice reads in place', () => {
  const CASES: Array<{ shape: number[]; begin: number[]; size: number[] }> = [
    { shape: [10], begin: [3], size: [5] },
    { shape: [6, 9], begin: [1, 0], size: [4, 9] }, // contiguous rows
    { shape: [6, 9], begin: [2, 3], size: [3, 4] },
    { shape: [6, 9], begin: [0, 8], size: [-1, 1] }, // last column, -1 = to the end
    { shape: [3, 4, 5], begin: [1, 1, 0], size: [2, 2, 5] },
    { shape: [3, 4, 5], begin: [0, 0, 2], size: [3, 4, 3] },
    { shape: [2, 3, 4, 5], begin: [1, 0, 1, 1], size: [1, 3, 2, 3] },
    { shape: [2, 3, 2, 4, 3], begin: [0, 1, 1, 0, 2], size: [2, 2, 1, 4, 1] }, // rank 5
    { shape: [4, 7], begin: [1, 2], size: [0, 3] }, // empty
  ];
  for (const { shape, begin, size } of CASES) {
    it(`[${shape}] begin [${begin}] size [${size}]: float32, int32, bool and the gradient match cpu`, async () => {
      const f = (): tf.Tensor[] => {
        const x = tf.tensor(data(shape, 41), shape);
        const xi = tf.cast(tf.mul(x, 10), 'int32');
        const xb = tf.greater(x, 0);
        const g = tf.grad((t: tf.Tensor) => tf.sum(tf.square(tf.slice(t, begin, size))))(x);
        return [tf.slice(x, begin, size), tf.slice(xi, begin, size), tf.cast(tf.slice(xb, begin, size), 'int32'), g];
      };
      expectClose(await on('wasm', f), await on('cpu', f), `slice [${shape}]`, 0);
    });
  }

  it('split along the last axis (Q, K, V of a fused projection) matches known values', async () => {
    const [q, k, v] = await on('wasm', () => tf.split(tf.tensor2d([0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15], [2, 6]), 3, 1));
    expect(q!.values).toEqual([0, 1, 10, 11]);
    expect(k!.values).toEqual([2, 3, 12, 13]);
    expect(v!.values).toEqual([4, 5, 14, 15]);
  });

  it('split with sizes (and -1) along each axis: values and gradients match cpu', async () => {
    const f = (): tf.Tensor[] => {
      const x = tf.tensor(data([4, 6, 5], 42), [4, 6, 5]);
      const outs: tf.Tensor[] = [];
      for (const [axis, sizes] of [
        [0, [1, 3]],
        [1, [2, -1, 1]],
        [2, [3, 2]],
        [-1, 5],
      ] as Array<[number, number | number[]]>) {
        outs.push(...tf.split(x, sizes, axis));
        const w = tf.tensor(data([4, 6, 5], 43), [4, 6, 5]);
        outs.push(tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.concat(tf.split(t, sizes, axis).map((p, i) => tf.mul(p, i + 1)), axis), w)))(x));
      }
      return outs;
    };
    expectClose(await on('wasm', f), await on('cpu', f), 'split', 1e-6);
  });

  it('an out-of-range slice is a clear error', async () => {
    await tf.setBackend('wasm');
    const x = tf.zeros([3, 4]);
    expect(() => tf.slice(x, [1, 2], [2, 3])).toThrow(/outside the input shape \[3, 4\] on axis 1/);
    x.dispose();
  });
});

describe('Sum over leading axes', () => {
  const CASES: Array<{ shape: number[]; axis: number | number[]; keepDims?: boolean }> = [
    { shape: [2048, 3], axis: 0 },
    { shape: [37, 64], axis: 0 }, // odd row counts at several levels
    { shape: [1000, 33], axis: 0, keepDims: true },
    { shape: [2, 512], axis: 0 },
    { shape: [5, 7, 40], axis: [0, 1] },
    { shape: [5, 7, 40], axis: [1, 0], keepDims: true },
    { shape: [9, 130], axis: -2 },
    { shape: [64, 6, 5], axis: 0 },
    { shape: [40, 50], axis: 1 }, // innermost: the stock kernel
    { shape: [6, 40, 50], axis: [0, 2] }, // not a prefix: the stock kernel
    { shape: [3, 4], axis: 0 }, // small: the stock kernel
  ];
  for (const { shape, axis, keepDims } of CASES) {
    it(`[${shape}] axis ${JSON.stringify(axis)}${keepDims ? ' keepDims' : ''}: value and gradient match cpu`, async () => {
      const f = (): tf.Tensor[] => {
        const x = tf.tensor(data(shape, 51), shape);
        const g = tf.grad((t: tf.Tensor) => tf.sum(tf.square(tf.sum(t, axis, keepDims))))(x);
        return [tf.sum(x, axis, keepDims), g];
      };
      expectClose(await on('wasm', f), await on('cpu', f), `sum [${shape}]`, 1e-5);
    });
  }

  it('sums 0..N-1 down the rows exactly, and leaks nothing', async () => {
    await tf.setBackend('wasm');
    const N = 1001;
    const D = 4;
    const x = tf.tensor2d(Float32Array.from({ length: N * D }, (_, i) => Math.floor(i / D) * (1 + (i % D))), [N, D]);
    tf.sum(x, 0).dispose(); // warm up
    const before = tf.engine().backend.numDataIds();
    const s = tf.sum(x, 0);
    // column c holds r (c + 1) in row r: sum = (c + 1) N (N - 1) / 2, exact in float32 below 2^24
    expect(Array.from(s.dataSync())).toEqual([1, 2, 3, 4].map((c) => (c * N * (N - 1)) / 2));
    s.dispose();
    expect(tf.engine().backend.numDataIds()).toBe(before);
    x.dispose();
  });
});

describe('Cast to the same dtype shares the buffer', () => {
  it('values, the shared data id, and a cast to another dtype still converting', async () => {
    await tf.setBackend('wasm');
    const x = tf.tensor1d([1.5, -2.25, 3]);
    const y = tf.cast(x, 'float32');
    expect(y.dataId).toBe(x.dataId);
    x.dispose();
    expect(Array.from(y.dataSync())).toEqual([1.5, -2.25, 3]);
    const z = tf.cast(y, 'int32');
    expect(z.dataId).not.toBe(y.dataId);
    expect(Array.from(z.dataSync())).toEqual([1, -2, 3]);
    tf.dispose([y, z]);
  });
});

describe('Transpose of large planes, blocked', () => {
  const CASES: Array<{ shape: number[]; perm: number[] }> = [
    { shape: [512, 128], perm: [1, 0] }, // width divisible by 16
    { shape: [1024, 40], perm: [1, 0] }, // by 8 only
    { shape: [300, 130], perm: [1, 0] }, // neither: the stock kernel
    { shape: [3, 256, 160], perm: [0, 2, 1] },
    { shape: [1, 2048, 32], perm: [0, 2, 1] }, // size-1 axis kept in place
    { shape: [2048, 1, 32], perm: [1, 2, 0] }, // size-1 axis moving
    { shape: [2, 2, 128, 144], perm: [0, 1, 3, 2] },
    { shape: [64, 32, 4, 64], perm: [0, 2, 1, 3] }, // not a last-two swap: the stock kernel
    { shape: [16, 8], perm: [1, 0] }, // small: the stock kernel
    { shape: [6, 5], perm: [0, 1] }, // identity: shared
    { shape: [6, 1, 5], perm: [1, 0, 2] }, // only a size-1 axis moves: shared
  ];
  for (const { shape, perm } of CASES) {
    it(`[${shape}] perm [${perm}]: float32, int32 and the gradient match cpu`, async () => {
      const f = (): tf.Tensor[] => {
        const x = tf.tensor(data(shape, 61), shape);
        const w = tf.tensor(data(perm.map((p) => shape[p]!), 62), perm.map((p) => shape[p]!));
        const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.transpose(t, perm), w)))(x);
        return [tf.transpose(x, perm), tf.transpose(tf.cast(tf.mul(x, 100), 'int32'), perm), g];
      };
      expectClose(await on('wasm', f), await on('cpu', f), `transpose [${shape}]`, 0);
    });
  }

  it('a permutation that moves no bytes shares the buffer', async () => {
    await tf.setBackend('wasm');
    const x = tf.tensor3d([1, 2, 3, 4, 5, 6], [2, 1, 3]);
    const y = tf.transpose(x, [1, 0, 2]);
    expect(y.dataId).toBe(x.dataId);
    expect(y.shape).toEqual([1, 2, 3]);
    x.dispose();
    expect(Array.from(y.dataSync())).toEqual([1, 2, 3, 4, 5, 6]);
    y.dispose();
  });

  it('matches a hand-built transpose', async () => {
    const [r] = await on('wasm', () => [tf.transpose(tf.tensor2d(Float32Array.from({ length: 256 * 128 }, (_, i) => i), [256, 128]))]);
    expect(r!.shape).toEqual([128, 256]);
    for (const [i, j] of [[0, 0], [0, 1], [1, 0], [127, 255], [17, 200]] as const) expect(r!.values[i * 256 + j]).toBe(j * 128 + i);
  });
});

describe('GatherV2 and Concat as row copies', () => {
  it('gather along axis 0 (embedding lookup, 1-D and 2-D ids, int32 table) matches cpu; other axes too', async () => {
    const f = (): tf.Tensor[] => {
      const table = tf.tensor(data([50, 7], 71), [50, 7]);
      const ids1 = tf.tensor1d([3, 0, 49, 3, 17], 'int32');
      const ids2 = tf.tensor2d([[1, 2, 3], [49, 48, 0]], [2, 3], 'int32');
      const t3 = tf.tensor(data([6, 4, 5], 72), [6, 4, 5]);
      return [
        tf.gather(table, ids1),
        tf.gather(table, ids2),
        tf.gather(tf.cast(tf.mul(table, 10), 'int32'), ids1),
        tf.gather(t3, tf.tensor1d([5, 5, 0], 'int32')),
        tf.gather(t3, tf.tensor1d([3, 1], 'int32'), 1), // axis 1: the stock kernel
        tf.gather(tf.tensor1d([4, 5, 6]), tf.tensor1d([2, 0], 'int32')),
      ];
    };
    expectClose(await on('wasm', f), await on('cpu', f), 'gather', 0);
  });

  it('an out-of-range id is a clear error and leaks nothing', async () => {
    await tf.setBackend('wasm');
    const table = tf.zeros([4, 3]);
    const ids = tf.tensor1d([1, 4], 'int32');
    const before = tf.engine().backend.numDataIds();
    expect(() => tf.gather(table, ids)).toThrow(/index 4 at flat position 1 is outside \[0, 3\]/);
    expect(tf.engine().backend.numDataIds()).toBe(before);
    tf.dispose([table, ids]);
  });

  it('concat along every axis, with an empty part, int32, and the gradient, matches cpu', async () => {
    const f = (): tf.Tensor[] => {
      const a = tf.tensor(data([3, 4, 5], 81), [3, 4, 5]);
      const b = tf.tensor(data([3, 2, 5], 82), [3, 2, 5]);
      const c = tf.tensor(data([3, 4, 1], 83), [3, 4, 1]);
      const w = tf.tensor(data([3, 6, 5], 84), [3, 6, 5]);
      return [
        tf.concat([a, a], 0),
        tf.concat([a, b, tf.zeros([3, 0, 5])], 1),
        tf.concat([a, c, a], 2),
        tf.concat([tf.cast(a, 'int32'), tf.cast(b, 'int32')], 1),
        tf.concat([tf.tensor1d([1, 2]), tf.tensor1d([3])]),
        tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.concat([t, b], 1), w)))(a),
      ];
    };
    expectClose(await on('wasm', f), await on('cpu', f), 'concat', 0);
  });
});
