/**
 * MLP actor and critic for the control algorithms (Stable-Baselines3's `MlpPolicy`,
 * CleanRL's `Agent`): tanh hidden layers, a policy head giving categorical logits or a
 * Gaussian mean (plus a state-independent log-std parameter), and a value head.
 *
 *   separate networks (default):  pi(s) = head_pi(mlp_pi(s)),  V(s) = head_v(mlp_v(s))
 *   shared network:               h = mlp(s),  pi(s) = head_pi(h),  V(s) = head_v(h)
 *
 * Initialisation (SB3 `ortho_init`, CleanRL `layer_init`): orthogonal weights with gain
 * sqrt(2) for hidden layers, 0.01 for the policy head (near-uniform initial policy) and 1
 * for the value head; zero biases; log-std = `logStdInit`. The orthogonal matrices come
 * from our `Rng`: normal draws orthonormalised by modified Gram–Schmidt (run twice for
 * accuracy), which equals the Q of a QR factorisation with a positive-diagonal R. Without
 * `orthoInit`, PyTorch's `nn.Linear` default is used: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
 * for weights and biases.
 *
 * Parameters live in one flat float32 variable per network (actor, critic; one in all
 * for a shared network), sliced into layers inside each forward pass. One variable keeps
 * the optimizer to a dozen kernels per step and gives NPG/TRPO their flat parameter
 * vector for free. Weight matrices are stored [in, out] (x @ W), i.e. transposed with
 * respect to PyTorch's `Linear.weight`.
 *
 * Files: `policy.safetensors` (one tensor per layer, F32) and `policy.json` (env id,
 * algorithm, spaces, architecture, observation-normalisation statistics).
 */
import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { Rng } from '../core/rng.ts';
import { readSafetensors, writeSafetensors, type SafetensorsTensor, toFloat32 } from '../core/safetensors.ts';
import { writeJsonAtomic } from '../core/atomic.ts';
import {
  CategoricalDistribution,
  DiagGaussianDistribution,
  sampleCategorical,
  sampleDiagGaussian,
  type ActionDistribution,
} from './distributions.ts';
import type { ActionSpace, EnvId } from './envs/types.ts';
import { ObsNormalizer, type ObsNormalizerState } from './normalize.ts';

/** The action space as the policy sees it. */
export type PolicyActionSpace =
  | { type: 'discrete'; n: number }
  | { type: 'box'; dim: number; low: number[]; high: number[] };

export interface PolicyArchitecture {
  /** Widths of the hidden layers of each MLP. SB3 / CleanRL default [64, 64]; typical 1-3 layers of 32-256. */
  hiddenSizes: number[];
  /** One trunk shared by actor and critic (two heads) instead of two networks. Default false (SB3 >= 1.8). */
  sharedNetwork: boolean;
  /** Orthogonal init with gains sqrt(2) / 0.01 / 1; false uses PyTorch's Linear default. Default true. */
  orthoInit: boolean;
  /** Initial log-std of the Gaussian policy (box actions only). Default 0 (std 1); typical -3..1. */
  logStdInit: number;
}

export const DEFAULT_ARCHITECTURE: PolicyArchitecture = {
  hiddenSizes: [64, 64],
  sharedNetwork: false,
  orthoInit: true,
  logStdInit: 0,
};

/** The policy's view of an environment's action space. */
export function policyActionSpace(space: ActionSpace): PolicyActionSpace {
  if (space.type === 'discrete') return { type: 'discrete', n: space.n };
  if (space.shape.length !== 1) throw new Error(`policyActionSpace: only 1-D box action spaces are supported, got shape [${space.shape}]`);
  return { type: 'box', dim: space.shape[0]!, low: Array.from(space.low), high: Array.from(space.high) };
}

/** Width of the actor head: number of logits, or the action dimension. */
function actionWidth(space: PolicyActionSpace): number {
  return space.type === 'discrete' ? space.n : space.dim;
}

/**
 * A [rows, cols] row-major matrix with orthonormal columns (rows >= cols) or rows
 * (rows < cols), scaled by `gain`.
 */
export function orthogonalMatrix(rows: number, cols: number, gain: number, rng: Rng): Float32Array {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 1 || cols < 1) {
    throw new Error(`orthogonalMatrix: rows and cols must be positive integers, got ${rows} x ${cols}`);
  }
  const m = Math.max(rows, cols);
  const k = Math.min(rows, cols);
  // Columns of a tall [m, k] normal matrix, stored column by column.
  const q: Float64Array[] = [];
  for (let j = 0; j < k; j++) q.push(rng.fillNormal(new Float64Array(m)) as Float64Array);
  for (let j = 0; j < k; j++) {
    const v = q[j]!;
    for (let pass = 0; pass < 2; pass++) {
      for (let i = 0; i < j; i++) {
        const u = q[i]!;
        let dot = 0;
        for (let r = 0; r < m; r++) dot += u[r]! * v[r]!;
        for (let r = 0; r < m; r++) v[r] = v[r]! - dot * u[r]!;
      }
    }
    let norm = 0;
    for (let r = 0; r < m; r++) norm += v[r]! * v[r]!;
    norm = Math.sqrt(norm);
    if (!(norm > 1e-10)) throw new Error('orthogonalMatrix: degenerate normal draw (column norm ~ 0)');
    for (let r = 0; r < m; r++) v[r] = v[r]! / norm;
  }
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      // rows >= cols: W[r, c] = q_c[r]; otherwise W = Q^T: W[r, c] = q_r[c].
      out[r * cols + c] = gain * (rows >= cols ? q[c]![r]! : q[r]![c]!);
    }
  }
  return out;
}

interface ParamEntry {
  name: string;
  shape: number[];
  offset: number;
  size: number;
}

/** Named slices of one flat parameter vector. */
class ParamLayout {
  readonly entries: ParamEntry[] = [];
  size = 0;

  add(name: string, shape: number[]): void {
    const size = shape.reduce((a, b) => a * b, 1);
    this.entries.push({ name, shape, offset: this.size, size });
    this.size += size;
  }

  get(name: string): ParamEntry {
    const e = this.entries.find((x) => x.name === name);
    if (!e) throw new Error(`policy: no parameter named ${name}`);
    return e;
  }

  /** The tensors of a flat vector [size] by name (tf.split + reshape; call inside tf.tidy). */
  split(flat: tf.Tensor): Record<string, tf.Tensor> {
    const parts = tf.split(flat, this.entries.map((e) => e.size));
    const out: Record<string, tf.Tensor> = {};
    this.entries.forEach((e, i) => {
      out[e.name] = e.shape.length === 1 ? parts[i]! : tf.reshape(parts[i]!, e.shape);
    });
    return out;
  }
}

let instanceCounter = 0;

/** Which network's parameters: the actor (with log-std) or the critic. The same vector when shared. */
export type ParamGroup = 'actor' | 'critic';

export interface ActResult {
  /** Discrete: Int32Array [rows]. Box: Float32Array [rows * dim], unclipped. */
  actions: Int32Array | Float32Array;
  /** log pi(a | s) of each (unclipped) action [rows]. */
  logProbs: Float32Array;
  /** V(s) [rows]. */
  values: Float32Array;
}

export class ActorCritic {
  readonly obsDim: number;
  readonly actionSpace: PolicyActionSpace;
  readonly architecture: PolicyArchitecture;
  /** The trainable flat variables ([actor, critic], or one when shared). */
  readonly variables: tf.Variable[];
  readonly actorVariable: tf.Variable;
  readonly criticVariable: tf.Variable;
  private readonly actorLayout: ParamLayout;
  private readonly criticLayout: ParamLayout;
  private readonly trunkPrefix: { actor: string; critic: string };

  constructor(obsDim: number, actionSpace: PolicyActionSpace, architecture: Partial<PolicyArchitecture>, rng: Rng) {
    const arch: PolicyArchitecture = { ...DEFAULT_ARCHITECTURE, ...architecture };
    if (!Number.isInteger(obsDim) || obsDim < 1) throw new Error(`ActorCritic: obsDim must be a positive integer, got ${obsDim}`);
    if (!Array.isArray(arch.hiddenSizes) || arch.hiddenSizes.some((h) => !Number.isInteger(h) || h < 1)) {
      throw new Error(`ActorCritic: hiddenSizes must be a list of positive integers, got ${JSON.stringify(arch.hiddenSizes)}`);
    }
    if (!Number.isFinite(arch.logStdInit)) throw new Error(`ActorCritic: logStdInit must be finite, got ${arch.logStdInit}`);
    const width = actionWidth(actionSpace);
    if (!Number.isInteger(width) || width < 1) throw new Error(`ActorCritic: the action space must have at least one action/dimension`);
    this.obsDim = obsDim;
    this.actionSpace = actionSpace;
    this.architecture = { ...arch, hiddenSizes: [...arch.hiddenSizes] };

    const sizes = [obsDim, ...arch.hiddenSizes];
    const last = sizes[sizes.length - 1]!;
    const addTrunk = (layout: ParamLayout, prefix: string): void => {
      for (let l = 0; l + 1 < sizes.length; l++) {
        layout.add(`${prefix}.${l}.weight`, [sizes[l]!, sizes[l + 1]!]);
        layout.add(`${prefix}.${l}.bias`, [sizes[l + 1]!]);
      }
    };
    const addPiHead = (layout: ParamLayout): void => {
      layout.add('pi.head.weight', [last, width]);
      layout.add('pi.head.bias', [width]);
      if (actionSpace.type === 'box') layout.add('log_std', [width]);
    };
    const addVfHead = (layout: ParamLayout): void => {
      layout.add('vf.head.weight', [last, 1]);
      layout.add('vf.head.bias', [1]);
    };

    const id = instanceCounter++;
    if (arch.sharedNetwork) {
      const layout = new ParamLayout();
      addTrunk(layout, 'shared');
      addPiHead(layout);
      addVfHead(layout);
      this.actorLayout = layout;
      this.criticLayout = layout;
      this.trunkPrefix = { actor: 'shared', critic: 'shared' };
      const v = tf.variable(tf.tensor1d(this.initialValues(layout, rng)), true, `control_policy_${id}/shared`);
      this.actorVariable = v;
      this.criticVariable = v;
      this.variables = [v];
    } else {
      this.actorLayout = new ParamLayout();
      addTrunk(this.actorLayout, 'pi');
      addPiHead(this.actorLayout);
      this.criticLayout = new ParamLayout();
      addTrunk(this.criticLayout, 'vf');
      addVfHead(this.criticLayout);
      this.trunkPrefix = { actor: 'pi', critic: 'vf' };
      this.actorVariable = tf.variable(tf.tensor1d(this.initialValues(this.actorLayout, rng)), true, `control_policy_${id}/actor`);
      this.criticVariable = tf.variable(tf.tensor1d(this.initialValues(this.criticLayout, rng)), true, `control_policy_${id}/critic`);
      this.variables = [this.actorVariable, this.criticVariable];
    }
  }

  get shared(): boolean {
    return this.actorVariable === this.criticVariable;
  }

  /** Number of hidden layers of each MLP. */
  private get depth(): number {
    return this.architecture.hiddenSizes.length;
  }

  private initialValues(layout: ParamLayout, rng: Rng): Float32Array {
    const flat = new Float32Array(layout.size);
    for (const e of layout.entries) {
      const view = flat.subarray(e.offset, e.offset + e.size);
      if (e.name === 'log_std') {
        view.fill(this.architecture.logStdInit);
      } else if (e.name.endsWith('.weight')) {
        const [fanIn, fanOut] = e.shape as [number, number];
        if (this.architecture.orthoInit) {
          const gain = e.name === 'pi.head.weight' ? 0.01 : e.name === 'vf.head.weight' ? 1 : Math.SQRT2;
          view.set(orthogonalMatrix(fanIn, fanOut, gain, rng));
        } else {
          rng.fillUniform(view, -1 / Math.sqrt(fanIn), 1 / Math.sqrt(fanIn));
        }
      } else if (!this.architecture.orthoInit) {
        const weight = layout.get(e.name.replace(/\.bias$/, '.weight'));
        rng.fillUniform(view, -1 / Math.sqrt(weight.shape[0]!), 1 / Math.sqrt(weight.shape[0]!));
      }
    }
    return flat;
  }

  private trunk(x: tf.Tensor2D, p: Record<string, tf.Tensor>, prefix: string): tf.Tensor2D {
    let h = x;
    for (let l = 0; l < this.depth; l++) {
      h = tf.tanh(tf.add(tf.matMul(h, p[`${prefix}.${l}.weight`] as tf.Tensor2D), p[`${prefix}.${l}.bias`]!)) as tf.Tensor2D; // [B, H_l]
    }
    return h;
  }

  private checkObs(obs: tf.Tensor, what: string): void {
    if (obs.rank !== 2 || obs.shape[1] !== this.obsDim) {
      throw new Error(`ActorCritic.${what}: observations must have shape [B, ${this.obsDim}], got [${obs.shape.join(', ')}]`);
    }
  }

  /**
   * The action distribution and (unless `critic` is false) the values of a batch of
   * observations [B, obsDim]. Call inside `tf.tidy` (or dispose the results).
   */
  forward(obs: tf.Tensor2D, options: { critic?: boolean } = {}): { dist: ActionDistribution; values: tf.Tensor1D | null } {
    this.checkObs(obs, 'forward');
    const wantCritic = options.critic ?? true;
    let values: tf.Tensor1D | null = null;
    let pa: Record<string, tf.Tensor>;
    let hActor: tf.Tensor2D;
    if (this.shared) {
      pa = this.actorLayout.split(this.actorVariable);
      hActor = this.trunk(obs, pa, 'shared');
      if (wantCritic) values = this.valueHead(hActor, pa);
    } else {
      pa = this.actorLayout.split(this.actorVariable);
      hActor = this.trunk(obs, pa, 'pi');
      if (wantCritic) {
        const pc = this.criticLayout.split(this.criticVariable);
        values = this.valueHead(this.trunk(obs, pc, 'vf'), pc);
      }
    }
    const out = tf.add(tf.matMul(hActor, pa['pi.head.weight'] as tf.Tensor2D), pa['pi.head.bias']!) as tf.Tensor2D; // [B, A]
    const dist = this.actionSpace.type === 'discrete' ? new CategoricalDistribution(out) : new DiagGaussianDistribution(out, pa.log_std as tf.Tensor1D);
    return { dist, values };
  }

  private valueHead(h: tf.Tensor2D, p: Record<string, tf.Tensor>): tf.Tensor1D {
    return tf.reshape(tf.add(tf.matMul(h, p['vf.head.weight'] as tf.Tensor2D), p['vf.head.bias']!), [-1]) as tf.Tensor1D; // [B]
  }

  /** V(s) for observations [B, obsDim] -> [B]. Call inside `tf.tidy`. */
  valuesOf(obs: tf.Tensor2D): tf.Tensor1D {
    this.checkObs(obs, 'valuesOf');
    const p = this.criticLayout.split(this.criticVariable);
    return this.valueHead(this.trunk(obs, p, this.trunkPrefix.critic), p);
  }

  /**
   * The actor head's output (logits or Gaussian mean) [B, A] and its directional derivative
   * along `tangent` (a vector shaped like the actor's flat parameters): the exact
   * Jacobian-vector product J v, propagated forward through the tanh layers
   *   dz_l = dh_{l-1} W_l + h_{l-1} dW_l + db_l,   dh_l = (1 - h_l^2) * dz_l.
   * `dLogStd` is the tangent's log-std block (box spaces). Separate networks only.
   * Call inside `tf.tidy`.
   */
  actorJvp(obs: tf.Tensor2D, tangent: tf.Tensor1D): { out: tf.Tensor2D; dOut: tf.Tensor2D; dLogStd: tf.Tensor1D | null } {
    this.checkObs(obs, 'actorJvp');
    if (this.shared) throw new Error('ActorCritic.actorJvp: needs separate actor and critic networks (sharedNetwork: false)');
    if (tangent.rank !== 1 || tangent.shape[0] !== this.actorLayout.size) {
      throw new Error(`ActorCritic.actorJvp: tangent must have shape [${this.actorLayout.size}], got [${tangent.shape.join(', ')}]`);
    }
    const p = this.actorLayout.split(this.actorVariable);
    const d = this.actorLayout.split(tangent);
    let h: tf.Tensor2D = obs;
    let dh: tf.Tensor2D | null = null; // the input does not depend on the parameters
    for (let l = 0; l < this.depth; l++) {
      const w = p[`pi.${l}.weight`] as tf.Tensor2D;
      let dz = tf.add(tf.matMul(h, d[`pi.${l}.weight`] as tf.Tensor2D), d[`pi.${l}.bias`]!) as tf.Tensor2D; // [B, H]
      if (dh) dz = tf.add(dz, tf.matMul(dh, w));
      h = tf.tanh(tf.add(tf.matMul(h, w), p[`pi.${l}.bias`]!)) as tf.Tensor2D; // [B, H]
      dh = tf.mul(tf.sub(1, tf.square(h)), dz) as tf.Tensor2D; // [B, H]
    }
    const wo = p['pi.head.weight'] as tf.Tensor2D;
    const out = tf.add(tf.matMul(h, wo), p['pi.head.bias']!) as tf.Tensor2D; // [B, A]
    let dOut = tf.add(tf.matMul(h, d['pi.head.weight'] as tf.Tensor2D), d['pi.head.bias']!) as tf.Tensor2D;
    if (dh) dOut = tf.add(dOut, tf.matMul(dh, wo));
    const dLogStd = this.actionSpace.type === 'box' ? (d.log_std as tf.Tensor1D) : null;
    return { out, dOut, dLogStd };
  }

  /**
   * One batched forward for `rows` observations (row-major [rows, obsDim], already
   * normalised), read back once; actions are drawn with `rng` (or the mode when
   * `deterministic`).
   */
  act(obs: Float32Array, rows: number, rng: Rng, deterministic = false): ActResult {
    if (obs.length !== rows * this.obsDim) {
      throw new Error(`ActorCritic.act: expected ${rows} x ${this.obsDim} observation values, got ${obs.length}`);
    }
    const width = actionWidth(this.actionSpace);
    const box = this.actionSpace.type === 'box';
    const cols = width + 1 + (box ? width : 0);
    const packed = tf.tidy(() => {
      const { dist, values } = this.forward(tf.tensor2d(obs, [rows, this.obsDim]));
      const parts: tf.Tensor[] = [dist.kind === 'categorical' ? dist.logits : dist.mean, tf.reshape(values!, [rows, 1])];
      if (dist.kind === 'gaussian') parts.push(tf.mul(tf.ones([rows, 1]), tf.reshape(dist.logStd, [1, width])));
      return tf.concat(parts, 1); // [rows, cols]
    });
    const data = packed.dataSync() as Float32Array;
    packed.dispose();
    const head = new Float32Array(rows * width);
    const values = new Float32Array(rows);
    for (let r = 0; r < rows; r++) {
      head.set(data.subarray(r * cols, r * cols + width), r * width);
      values[r] = data[r * cols + width]!;
    }
    const logProbs = new Float32Array(rows);
    if (this.actionSpace.type === 'discrete') {
      const actions = new Int32Array(rows);
      sampleCategorical(head, rows, width, rng, actions, logProbs, deterministic);
      return { actions, logProbs, values };
    }
    const logStd = data.subarray(width + 1, width + 1 + width);
    const actions = new Float32Array(rows * width);
    sampleDiagGaussian(head, rows, width, logStd, rng, actions, logProbs, deterministic);
    return { actions, logProbs, values };
  }

  /** V(s) for `rows` observations (row-major, already normalised), read back once. */
  predictValues(obs: Float32Array, rows: number): Float32Array {
    if (obs.length !== rows * this.obsDim) {
      throw new Error(`ActorCritic.predictValues: expected ${rows} x ${this.obsDim} observation values, got ${obs.length}`);
    }
    const v = tf.tidy(() => this.valuesOf(tf.tensor2d(obs, [rows, this.obsDim])));
    const out = new Float32Array(v.dataSync());
    v.dispose();
    return out;
  }

  /** Number of parameters of a group (the whole shared vector when shared). */
  numParams(group: ParamGroup): number {
    return (group === 'actor' ? this.actorLayout : this.criticLayout).size;
  }

  /** A copy of a group's flat parameters. */
  getFlat(group: ParamGroup): Float32Array {
    const v = group === 'actor' ? this.actorVariable : this.criticVariable;
    return new Float32Array(v.dataSync());
  }

  /** Overwrite a group's flat parameters. */
  setFlat(group: ParamGroup, values: ArrayLike<number>): void {
    const v = group === 'actor' ? this.actorVariable : this.criticVariable;
    const n = this.numParams(group);
    if (values.length !== n) throw new Error(`ActorCritic.setFlat(${group}): expected ${n} values, got ${values.length}`);
    for (let i = 0; i < n; i++) {
      if (!Number.isFinite(values[i]!)) throw new Error(`ActorCritic.setFlat(${group}): value ${i} is ${values[i]}`);
    }
    const t = tf.tensor1d(values instanceof Float32Array ? values : Float32Array.from(values));
    v.assign(t);
    t.dispose();
  }

  /** The log-std of a Gaussian policy (a copy), or null for discrete actions. */
  logStd(): Float32Array | null {
    if (this.actionSpace.type !== 'box') return null;
    const e = this.actorLayout.get('log_std');
    return this.getFlat('actor').slice(e.offset, e.offset + e.size);
  }

  /** Every parameter as a named F32 safetensors tensor. */
  namedTensors(): Map<string, SafetensorsTensor> {
    const out = new Map<string, SafetensorsTensor>();
    const groups: ParamGroup[] = this.shared ? ['actor'] : ['actor', 'critic'];
    for (const g of groups) {
      const flat = this.getFlat(g);
      const layout = g === 'actor' ? this.actorLayout : this.criticLayout;
      for (const e of layout.entries) out.set(e.name, { dtype: 'F32', shape: [...e.shape], data: flat.slice(e.offset, e.offset + e.size) });
    }
    return out;
  }

  /** Load parameters from named tensors (as `namedTensors` writes them); every name and shape must match. */
  loadNamedTensors(tensors: Map<string, SafetensorsTensor>, source = 'tensors'): void {
    const groups: ParamGroup[] = this.shared ? ['actor'] : ['actor', 'critic'];
    const expected = new Set<string>();
    for (const g of groups) {
      const layout = g === 'actor' ? this.actorLayout : this.criticLayout;
      const flat = new Float32Array(layout.size);
      for (const e of layout.entries) {
        expected.add(e.name);
        const t = tensors.get(e.name);
        if (!t) throw new Error(`${source}: missing parameter "${e.name}" (shape [${e.shape}])`);
        if (t.shape.join(',') !== e.shape.join(',')) {
          throw new Error(`${source}: parameter "${e.name}" has shape [${t.shape}] but the policy expects [${e.shape}]`);
        }
        flat.set(toFloat32(t), e.offset);
      }
      this.setFlat(g, flat);
    }
    for (const name of tensors.keys()) {
      if (!expected.has(name)) throw new Error(`${source}: unexpected parameter "${name}" for this architecture`);
    }
  }

  dispose(): void {
    for (const v of this.variables) v.dispose();
  }
}

/** The actor's distribution alone (no critic pass). Call inside `tf.tidy`. */
export function actorDistribution(policy: ActorCritic, obs: tf.Tensor2D): ActionDistribution {
  return policy.forward(obs, { critic: false }).dist;
}

/** Clips box actions [rows * dim] into the space's bounds (into `out`). */
export function clipActions(actions: Float32Array, space: Extract<PolicyActionSpace, { type: 'box' }>, out = new Float32Array(actions.length)): Float32Array {
  const d = space.dim;
  for (let i = 0; i < actions.length; i++) {
    const lo = space.low[i % d]!;
    const hi = space.high[i % d]!;
    const a = actions[i]!;
    out[i] = a < lo ? lo : a > hi ? hi : a;
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Saving and loading

export const POLICY_FILES = { weights: 'policy.safetensors', meta: 'policy.json' } as const;

export interface PolicyMeta {
  format: 'rlvr-control-policy';
  version: 1;
  envId: EnvId;
  algorithm: string;
  obsDim: number;
  actionSpace: PolicyActionSpace;
  architecture: PolicyArchitecture;
  /** Observation-normalisation statistics, or null when observations are used raw. */
  obsNormalization: ObsNormalizerState | null;
}

export interface SavePolicyInfo {
  envId: EnvId;
  algorithm: string;
  obsNormalizer?: ObsNormalizer | null;
}

/** Writes policy.safetensors and policy.json into `dir` (created if needed), each atomically. */
export async function savePolicy(dir: string, policy: ActorCritic, info: SavePolicyInfo): Promise<void> {
  await mkdir(dir, { recursive: true });
  const meta: PolicyMeta = {
    format: 'rlvr-control-policy',
    version: 1,
    envId: info.envId,
    algorithm: info.algorithm,
    obsDim: policy.obsDim,
    actionSpace: policy.actionSpace,
    architecture: policy.architecture,
    obsNormalization: info.obsNormalizer ? info.obsNormalizer.toJSON() : null,
  };
  await writeSafetensors(join(dir, POLICY_FILES.weights), policy.namedTensors(), { format: 'rlvr-control-policy' });
  writeJsonAtomic(join(dir, POLICY_FILES.meta), meta);
}

export interface LoadedPolicy {
  policy: ActorCritic;
  meta: PolicyMeta;
  obsNormalizer: ObsNormalizer | null;
}

/**
 * Loads a policy saved by `savePolicy`. `rng` only seeds the throw-away initial weights
 * (they are all overwritten). Errors name the file and the problem.
 */
export async function loadPolicy(dir: string, rng: Rng): Promise<LoadedPolicy> {
  const metaPath = join(dir, POLICY_FILES.meta);
  let meta: PolicyMeta;
  try {
    meta = JSON.parse(readFileSync(metaPath, 'utf8')) as PolicyMeta;
  } catch (e) {
    throw new Error(`loadPolicy: cannot read ${metaPath}: ${(e as Error).message}`);
  }
  if (meta === null || typeof meta !== 'object' || meta.format !== 'rlvr-control-policy') {
    throw new Error(`loadPolicy: ${metaPath} is not an rlvr control policy (format must be "rlvr-control-policy")`);
  }
  if (meta.version !== 1) throw new Error(`loadPolicy: ${metaPath} has version ${String(meta.version)}; this rlvr reads version 1`);
  const space = meta.actionSpace;
  const spaceOk =
    space !== null &&
    typeof space === 'object' &&
    ((space.type === 'discrete' && Number.isInteger(space.n) && space.n > 0) ||
      (space.type === 'box' && Number.isInteger(space.dim) && Array.isArray(space.low) && Array.isArray(space.high) && space.low.length === space.dim && space.high.length === space.dim));
  if (!spaceOk) throw new Error(`loadPolicy: ${metaPath}: "actionSpace" is malformed: ${JSON.stringify(space)}`);
  const obsNormalizer = meta.obsNormalization ? ObsNormalizer.fromJSON(meta.obsNormalization, `${metaPath}: obsNormalization`) : null;
  const policy = new ActorCritic(meta.obsDim, space, meta.architecture, rng);
  try {
    const file = await readSafetensors(join(dir, POLICY_FILES.weights));
    policy.loadNamedTensors(file.tensors, join(dir, POLICY_FILES.weights));
  } catch (e) {
    policy.dispose();
    throw e;
  }
  if (obsNormalizer) obsNormalizer.training = false;
  return { policy, meta, obsNormalizer };
}
