/**
 * Reverse-mode differentiation at graph-building time: a small set of operators that emit
 * their ONNX forward nodes and record a vector-Jacobian product (VJP) rule, and `backward`,
 * which walks the record in reverse and emits the gradient nodes into the same graph. It
 * is how onnxruntime's own gradient builder and JAX's VJPs work, written out for the
 * operators our models use, so that one set of rules serves every architecture.
 * onnxruntime ships no gradient operators in its CPU build; every rule below is composed
 * from standard operators.
 *
 * Shapes are symbolic (batch and sequence sizes are not fixed); each value carries its
 * rank, and broadcasting happens only in the forms the rules know: a bias or gain [D]
 * against [..., D], a scalar constant, and constants without gradient (masks, RoPE tables).
 *
 * Rules (g = upstream gradient):
 *   matmul   y = x W          dx = g W^T (batched: per matrix),  dW = sum over batch of x^T g
 *   add      y = a + b        da = g, db = g summed over broadcast axes
 *   mul      y = a * b        da = g b, db = g a (summed over broadcast axes)
 *   gather   y = E[ids]       dE = scatter-add of g rows into a zero [V, D]
 *   layerNorm y = xhat g + b  dx = r (dxh - mean(dxh) - xhat mean(dxh xhat)), dxh = g gamma,
 *                             r = 1 / sqrt(var + eps)
 *   rmsNorm  y = x r g        dx = r (dxh - xhat mean(dxh xhat)), r = 1 / sqrt(mean(x^2) + eps)
 *   softmax  y = softmax(x)   dx = y (g - sum(g y))
 *   gelu     y = x s(2u)      u = c (x + 0.044715 x^3): dx = g (s + x s (1 - s) 2c (1 + 3 * 0.044715 x^2))
 *   silu     y = x s(x)       dx = g s (1 + x (1 - s))
 *   rope     y = x cos + rot(x) sin, rot([x1, x2]) = [-x2, x1]:  dx = g cos + rot^T(g sin),
 *                             rot^T([a, b]) = [b, -a]
 *   reshape, transpose, split: the inverse rearrangement.
 *   lastPositions  y = x[:, S-N:]:  dx = g padded with N zeros in front along the axis
 *   tokenStats  lp = log softmax(z / tau)[label], H = -sum p log p with p = softmax(z / tau):
 *            dz = (g_lp (onehot(label) - p) - g_H p (log p + H)) / tau
 */
import { type DTypeName, type Dim, GraphBuilder } from './graph.ts';

/** A value in the graph: its name, rank, and whether gradients flow into it. */
export interface Val {
  name: string;
  rank: number;
  grad: boolean;
}

type Rule = (g: string) => void;
type MultiRule = (gs: Array<string | undefined>) => void;

export class DiffGraph {
  readonly g: GraphBuilder;
  private readonly tape: { outs: Val[]; rule: MultiRule }[] = [];
  private grads = new Map<string, string>();

  constructor(name: string) {
    this.g = new GraphBuilder(name);
  }

  // -------------------------------------------------------------------------------------
  // Leaves

  input(name: string, dtype: DTypeName, shape: Dim[], grad = false): Val {
    this.g.input(name, dtype, shape);
    return { name, rank: shape.length, grad };
  }

  /** A constant without gradient (an existing value name). */
  constant(name: string, rank: number): Val {
    return { name, rank, grad: false };
  }

  scalar(x: number): Val {
    return { name: this.g.floats([x]), rank: 0, grad: false };
  }

  // -------------------------------------------------------------------------------------
  // Gradient bookkeeping

  private record(out: Val, rule: Rule): Val {
    if (out.grad) this.tape.push({ outs: [out], rule: (gs) => rule(gs[0]!) });
    return out;
  }

  private accumulate(v: Val, g: string): void {
    if (!v.grad) return;
    const prev = this.grads.get(v.name);
    this.grads.set(v.name, prev ? this.g.op('Add', [prev, g]) : g);
  }

  /** Sum `g` (rank `from`) down to a value of rank `to` broadcast along the leading axes. */
  private unbroadcast(g: string, from: number, to: number): string {
    if (from === to) return g;
    const axes = Array.from({ length: from - to }, (_, i) => i);
    return this.g.op('ReduceSum', [g, this.g.int64s(axes)], { keepdims: 0 });
  }

  /**
   * Emit the gradients of `seed` (a value, with its upstream gradient `seedGrad` of the same
   * shape) with respect to every value that carries `grad`. Returns name -> gradient name
   * (values that the seed does not reach are absent).
   */
  backward(seed: Val, seedGrad: string): Map<string, string>;
  /** Several seeds at once (e.g. log-probs and entropies): the gradient of the sum of their products with their upstream gradients. */
  backward(seeds: ReadonlyArray<readonly [Val, string]>): Map<string, string>;
  backward(seed: Val | ReadonlyArray<readonly [Val, string]>, seedGrad?: string): Map<string, string> {
    const seeds = Array.isArray(seed) ? (seed as ReadonlyArray<readonly [Val, string]>) : [[seed as Val, seedGrad!] as const];
    this.grads = new Map();
    for (const [v, g] of seeds) this.accumulate(v, g);
    for (let i = this.tape.length - 1; i >= 0; i--) {
      const { outs, rule } = this.tape[i]!;
      const gs = outs.map((o) => this.grads.get(o.name));
      if (gs.some((g) => g !== undefined)) rule(gs);
    }
    return this.grads;
  }

  // -------------------------------------------------------------------------------------
  // Operators

  private out(prefix: string, rank: number, ...inputs: Val[]): Val {
    return { name: this.g.fresh(prefix), rank, grad: inputs.some((v) => v.grad) };
  }

  /** x [..., K] @ W [K, N] (W rank 2), or a batched product of equal-rank operands. */
  matmul(a: Val, b: Val): Val {
    const y = this.out('mm', Math.max(a.rank, b.rank), a, b);
    this.g.op('MatMul', [a.name, b.name], {}, { output: y.name });
    return this.record(y, (g) => {
      if (a.grad) {
        const bt = b.rank === 2 ? this.g.op('Transpose', [b.name], { perm: [1, 0] }) : this.g.op('Transpose', [b.name], { perm: swapLast(b.rank) });
        this.accumulate(a, this.g.op('MatMul', [g, bt]));
      }
      if (b.grad) {
        if (b.rank === 2 && a.rank > 2) {
          const a2 = this.flatten2d(a.name);
          const g2 = this.flatten2d(g);
          this.accumulate(b, this.g.op('Gemm', [a2, g2], { transA: 1 }));
        } else if (b.rank === 2) {
          this.accumulate(b, this.g.op('Gemm', [a.name, g], { transA: 1 }));
        } else {
          this.accumulate(b, this.g.op('MatMul', [this.g.op('Transpose', [a.name], { perm: swapLast(a.rank) }), g]));
        }
      }
    });
  }

  /** [..., K] -> [prod(...), K]. */
  private flatten2d(x: string): string {
    const last = this.g.op('Slice', [this.g.op('Shape', [x]), this.g.int64s([-1]), this.g.int64s([2 ** 53 - 1])]); // [1]
    return this.g.op('Reshape', [x, this.g.op('Concat', [this.g.int64s([-1]), last], { axis: 0 })]);
  }

  add(a: Val, b: Val): Val {
    const y = this.out('add', Math.max(a.rank, b.rank), a, b);
    this.g.op('Add', [a.name, b.name], {}, { output: y.name });
    return this.record(y, (g) => {
      this.accumulate(a, this.unbroadcast(g, y.rank, a.rank));
      this.accumulate(b, this.unbroadcast(g, y.rank, b.rank));
    });
  }

  /** Elementwise product; a gradient-carrying operand of lower rank is broadcast along the leading axes. */
  mul(a: Val, b: Val): Val {
    const y = this.out('mul', Math.max(a.rank, b.rank), a, b);
    this.g.op('Mul', [a.name, b.name], {}, { output: y.name });
    return this.record(y, (g) => {
      if (a.grad) this.accumulate(a, this.unbroadcast(this.g.op('Mul', [g, b.name]), y.rank, a.rank));
      if (b.grad) this.accumulate(b, this.unbroadcast(this.g.op('Mul', [g, a.name]), y.rank, b.rank));
    });
  }

  /** Rows of E [V, D] at int64 ids [..]: [.., D]. */
  gather(e: Val, ids: Val): Val {
    const y = this.out('gather', ids.rank + 1, e);
    this.g.op('Gather', [e.name, ids.name], { axis: 0 }, { output: y.name });
    return this.record(y, (g) => {
      const zeros = this.g.op('ConstantOfShape', [this.g.op('Shape', [e.name])], { value: { tensor: { dtype: 'float', dims: [1], data: new Float32Array([0]) } } });
      const idx = this.g.op('Unsqueeze', [ids.name, this.g.int64s([-1])]); // [.., 1]
      this.accumulate(e, this.g.op('ScatterND', [zeros, idx, g], { reduction: 'add' }));
    });
  }

  reshape(x: Val, shape: number[]): Val {
    const y = this.out('reshape', shape.length, x);
    this.g.op('Reshape', [x.name, this.g.int64s(shape)], {}, { output: y.name });
    return this.record(y, (g) => this.accumulate(x, this.g.op('Reshape', [g, this.g.op('Shape', [x.name])])));
  }

  transpose(x: Val, perm: number[]): Val {
    const y = this.out('transpose', x.rank, x);
    this.g.op('Transpose', [x.name], { perm }, { output: y.name });
    const inverse = perm.map((_, i) => perm.indexOf(i));
    return this.record(y, (g) => this.accumulate(x, this.g.op('Transpose', [g], { perm: inverse })));
  }

  /** Split the last axis into pieces of the given sizes. */
  split(x: Val, sizes: number[]): Val[] {
    const outs = sizes.map(() => this.out('split', x.rank, x));
    this.g.node('Split', [x.name, this.g.int64s(sizes)], { axis: -1 }, { outputs: outs.map((o) => o.name) });
    if (!x.grad) return outs;
    this.tape.push({
      outs,
      rule: (gs) => {
        const parts = gs.map((g, i) => g ?? this.zerosLikeSlice(x.name, sizes, i));
        this.accumulate(x, this.g.op('Concat', parts, { axis: -1 }));
      },
    });
    return outs;
  }

  private zerosLikeSlice(x: string, sizes: number[], i: number): string {
    const start = sizes.slice(0, i).reduce((a, b) => a + b, 0);
    const piece = this.g.op('Slice', [x, this.g.int64s([start]), this.g.int64s([start + sizes[i]!]), this.g.int64s([-1])]);
    return this.g.op('Mul', [piece, this.g.floats([0])]);
  }

  softmax(x: Val): Val {
    const y = this.out('softmax', x.rank, x);
    this.g.op('Softmax', [x.name], { axis: -1 }, { output: y.name });
    return this.record(y, (g) => {
      const gy = this.g.op('Mul', [g, y.name]);
      const s = this.g.op('ReduceSum', [gy, this.g.int64s([-1])], { keepdims: 1 });
      this.accumulate(x, this.g.op('Sub', [gy, this.g.op('Mul', [y.name, s])]));
    });
  }

  /** GPT-2's tanh GELU. */
  gelu(x: Val): Val {
    const y = this.out('gelu', x.rank, x);
    this.g.op('Gelu', [x.name], { approximate: 'tanh' }, { output: y.name });
    return this.record(y, (g) => {
      const c = Math.sqrt(2 / Math.PI);
      const x2 = this.g.op('Mul', [x.name, x.name]);
      const u2 = this.g.op('Mul', [this.g.op('Add', [x.name, this.g.op('Mul', [this.g.op('Mul', [x2, x.name]), this.g.floats([0.044715])])]), this.g.floats([2 * c])]); // 2u
      const s = this.g.op('Sigmoid', [u2]);
      const du2 = this.g.op('Mul', [this.g.op('Add', [this.g.floats([1]), this.g.op('Mul', [x2, this.g.floats([3 * 0.044715])])]), this.g.floats([2 * c])]);
      const ds = this.g.op('Mul', [this.g.op('Mul', [s, this.g.op('Sub', [this.g.floats([1]), s])]), du2]);
      const dydx = this.g.op('Add', [s, this.g.op('Mul', [x.name, ds])]);
      this.accumulate(x, this.g.op('Mul', [g, dydx]));
    });
  }

  silu(x: Val): Val {
    const y = this.out('silu', x.rank, x);
    const s = this.g.op('Sigmoid', [x.name]);
    this.g.op('Mul', [x.name, s], {}, { output: y.name });
    return this.record(y, (g) => {
      const dydx = this.g.op('Mul', [s, this.g.op('Add', [this.g.floats([1]), this.g.op('Mul', [x.name, this.g.op('Sub', [this.g.floats([1]), s])])])]);
      this.accumulate(x, this.g.op('Mul', [g, dydx]));
    });
  }

  /** LayerNorm over the last axis with gain and bias [D]. */
  layerNorm(x: Val, gamma: Val, beta: Val, eps: number): Val {
    const y = this.out('ln', x.rank, x, gamma, beta);
    const [, mean, rstd] = this.g.node('LayerNormalization', [x.name, gamma.name, beta.name], { axis: -1, epsilon: eps }, { outputs: [y.name, this.g.fresh('ln_mean'), this.g.fresh('ln_rstd')] }) as [string, string, string];
    return this.record(y, (g) => {
      const xhat = this.g.op('Mul', [this.g.op('Sub', [x.name, mean]), rstd]);
      if (gamma.grad) this.accumulate(gamma, this.unbroadcast(this.g.op('Mul', [g, xhat]), x.rank, 1));
      if (beta.grad) this.accumulate(beta, this.unbroadcast(g, x.rank, 1));
      if (x.grad) {
        const dxh = this.g.op('Mul', [g, gamma.name]);
        const m1 = this.g.op('ReduceMean', [dxh, this.g.int64s([-1])], { keepdims: 1 });
        const m2 = this.g.op('ReduceMean', [this.g.op('Mul', [dxh, xhat]), this.g.int64s([-1])], { keepdims: 1 });
        const inner = this.g.op('Sub', [this.g.op('Sub', [dxh, m1]), this.g.op('Mul', [xhat, m2])]);
        this.accumulate(x, this.g.op('Mul', [inner, rstd]));
      }
    });
  }

  /** RMSNorm over the last axis with gain [D]. */
  rmsNorm(x: Val, gamma: Val, eps: number): Val {
    const y = this.out('rms', x.rank, x, gamma);
    const ms = this.g.op('ReduceMean', [this.g.op('Mul', [x.name, x.name]), this.g.int64s([-1])], { keepdims: 1 });
    const rstd = this.g.op('Reciprocal', [this.g.op('Sqrt', [this.g.op('Add', [ms, this.g.floats([eps])])])]);
    const xhat = this.g.op('Mul', [x.name, rstd]);
    this.g.op('Mul', [xhat, gamma.name], {}, { output: y.name });
    return this.record(y, (g) => {
      if (gamma.grad) this.accumulate(gamma, this.unbroadcast(this.g.op('Mul', [g, xhat]), x.rank, 1));
      if (x.grad) {
        const dxh = this.g.op('Mul', [g, gamma.name]);
        const m = this.g.op('ReduceMean', [this.g.op('Mul', [dxh, xhat]), this.g.int64s([-1])], { keepdims: 1 });
        this.accumulate(x, this.g.op('Mul', [this.g.op('Sub', [dxh, this.g.op('Mul', [xhat, m])]), rstd]));
      }
    });
  }

  /** RoPE in rotate_half form on [.., Dh] with constant cos/sin broadcastable to x. */
  rope(x: Val, cos: string, sin: string, dh: number): Val {
    const y = this.out('rope', x.rank, x);
    const half = [dh / 2, dh / 2];
    const rot = (t: string, transposed: boolean): string => {
      const [a, b] = this.g.node('Split', [t, this.g.int64s(half)], { axis: -1 }, { numOutputs: 2 }) as [string, string];
      return transposed ? this.g.op('Concat', [b, this.g.op('Neg', [a])], { axis: -1 }) : this.g.op('Concat', [this.g.op('Neg', [b]), a], { axis: -1 });
    };
    this.g.op('Add', [this.g.op('Mul', [x.name, cos]), this.g.op('Mul', [rot(x.name, false), sin])], {}, { output: y.name });
    return this.record(y, (g) => {
      this.accumulate(x, this.g.op('Add', [this.g.op('Mul', [g, cos]), rot(this.g.op('Mul', [g, sin]), true)]));
    });
  }

  /**
   * The last `n` positions along `axis` (n: an int64 [1] value, e.g. the length of the
   * labels): x[..., S - n:, ...]. The trainers score only the completion positions, so the
   * LM head and the vocabulary-sized softmax run over those alone.
   */
  lastPositions(x: Val, n: string, axis: number): Val {
    const y = this.out('last', x.rank, x);
    this.g.op('Slice', [x.name, this.g.op('Neg', [n]), this.g.int64s([2 ** 53 - 1]), this.g.int64s([axis])], {}, { output: y.name });
    return this.record(y, (g) => {
      const S = this.g.op('Gather', [this.g.op('Shape', [x.name]), this.g.int64s([axis])], { axis: 0 }); // [1]
      const front = this.g.op('Sub', [S, n]);
      const zeros = (k: number): string[] => Array.from({ length: k }, () => this.g.int64s([0]));
      const pads = this.g.op('Concat', [...zeros(axis), front, ...zeros(x.rank - axis - 1), ...zeros(x.rank)], { axis: 0 });
      this.accumulate(x, this.g.op('Pad', [g, pads], { mode: 'constant' }));
    });
  }

  /** log softmax(z / tau)[label] over the last axis: z [.., V], labels int64 [..] -> [..]. */
  tokenLogprobs(z: Val, labels: string, vocab: number, tau: number): Val {
    return this.tokenStats(z, labels, vocab, tau, false).logprobs;
  }

  /**
   * The label's log-prob and (with `entropy`) the entropy of softmax(z / tau) over the last
   * axis: z [.., V], labels int64 [..] -> [..] each. One softmax serves both and their
   * gradients.
   */
  tokenStats(z: Val, labels: string, vocab: number, tau: number, entropy: boolean): { logprobs: Val; entropy: Val | null } {
    const lp = this.out('logprob', z.rank - 1, z);
    const scaled = tau === 1 ? z.name : this.g.op('Mul', [z.name, this.g.floats([1 / tau])]);
    const lsm = this.g.op('LogSoftmax', [scaled], { axis: -1 });
    const idx = this.g.op('Unsqueeze', [labels, this.g.int64s([-1])]);
    this.g.op('Squeeze', [this.g.op('GatherElements', [lsm, idx], { axis: -1 }), this.g.int64s([-1])], {}, { output: lp.name });
    let ent: Val | null = null;
    let p = '';
    const lastAxis = this.g.int64s([-1]);
    if (entropy) {
      ent = this.out('entropy', z.rank - 1, z);
      p = this.g.op('Exp', [lsm]);
      this.g.op('Neg', [this.g.op('ReduceSum', [this.g.op('Mul', [p, lsm]), lastAxis], { keepdims: 0 })], {}, { output: ent.name });
    }
    if (z.grad) {
      const outs = ent ? [lp, ent] : [lp];
      this.tape.push({
        outs,
        rule: ([gLp, gH]) => {
          const probs = p || this.g.op('Exp', [lsm]);
          const terms: string[] = [];
          if (gLp) {
            const onehot = this.g.op('OneHot', [labels, this.g.int64s([vocab], []), this.g.floats([0, 1], [2])], { axis: -1 });
            terms.push(this.g.op('Mul', [this.g.op('Sub', [onehot, probs]), this.g.op('Unsqueeze', [gLp, lastAxis])]));
          }
          if (gH && ent) {
            // dH/du = -p (log p + H), u = z / tau
            const inner = this.g.op('Add', [lsm, this.g.op('Unsqueeze', [ent.name, lastAxis])]);
            terms.push(this.g.op('Mul', [this.g.op('Mul', [probs, inner]), this.g.op('Unsqueeze', [this.g.op('Neg', [gH]), lastAxis])]));
          }
          const gz = terms.length === 1 ? terms[0]! : this.g.op('Add', terms);
          this.accumulate(z, tau === 1 ? gz : this.g.op('Mul', [gz, this.g.floats([1 / tau])]));
        },
      });
    }
    return { logprobs: lp, entropy: ent };
  }
}

function swapLast(rank: number): number[] {
  const p = Array.from({ length: rank }, (_, i) => i);
  [p[rank - 1], p[rank - 2]] = [p[rank - 2]!, p[rank - 1]!];
  return p;
}

