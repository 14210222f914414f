/**
 * A value head: a linear map D -> 1 on a causal LM's final-norm hidden states,
 *
 *   V(s_t) = h_t . w + b,   w ~ N(0, (1 / (D + 1))^2), b = 0,
 *
 * the initialisation OpenRLHF uses for a fresh critic head, so that values start near 0
 * instead of at the scale of a random projection (a fresh head far off the rewards' scale is
 * the critic collapse of verl #498).
 *
 * Saved beside the trunk as `value_head.safetensors` with TRL's names
 * (`v_head.summary.weight` [1, D], `v_head.summary.bias` [1]), the layout of
 * `AutoModelForCausalLMWithValueHead`.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { Rng } from '../core/rng.ts';
import { parseSafetensors, serializeSafetensors } from '../core/safetensors.ts';
import { safetensorsFromTensor, tensorFromSafetensors } from '../engine/tfjs/tensor.ts';
import { causalLMFiles, loadCausalLM } from './checkpoint.ts';
import type { CausalLM } from './model.ts';

export const VALUE_HEAD_FILE = 'value_head.safetensors';
const WEIGHT = 'v_head.summary.weight';
const BIAS = 'v_head.summary.bias';

let headCounter = 0;

export class ValueHead {
  /** [D, 1] weight and [1] bias, in that order. */
  readonly variables: tf.Variable[];
  /** Names of `variables` in the saved file (TRL's), same order. */
  readonly variableNames = [WEIGHT, BIAS];

  private constructor(
    readonly hiddenSize: number,
    weight: tf.Tensor,
    bias: tf.Tensor,
  ) {
    const id = headCounter++;
    this.variables = [tf.variable(weight, true, `value_head_${id}/weight`), tf.variable(bias, true, `value_head_${id}/bias`)];
  }

  /** A fresh head for hidden size `hiddenSize`, weights drawn from `rng` with std `std` (default 1 / (D + 1); see the file header). */
  static create(hiddenSize: number, rng: Rng, std: number = 1 / (hiddenSize + 1)): ValueHead {
    if (!Number.isInteger(hiddenSize) || hiddenSize < 1) throw new Error(`ValueHead.create: hiddenSize must be a positive integer, got ${hiddenSize}`);
    if (!(std >= 0) || !Number.isFinite(std)) throw new Error(`ValueHead.create: std must be a finite number >= 0, got ${std}`);
    const w = new Float32Array(hiddenSize);
    rng.fillNormal(w, 0, std);
    const weight = tf.tensor2d(w, [hiddenSize, 1]);
    const bias = tf.zeros([1]);
    try {
      return new ValueHead(hiddenSize, weight, bias);
    } finally {
      tf.dispose([weight, bias]);
    }
  }

  /** hidden [n, T, D] -> values [n, T]. */
  apply(hidden: tf.Tensor3D): tf.Tensor2D {
    const [n, T, D] = hidden.shape;
    if (D !== this.hiddenSize) throw new Error(`ValueHead.apply: hidden states have width ${D}, the head was built for ${this.hiddenSize}`);
    return tf.tidy(() => tf.reshape(tf.add(tf.matMul(tf.reshape(hidden, [n * T, D]), this.variables[0]!), this.variables[1]!), [n, T]) as tf.Tensor2D);
  }

  /** The head as safetensors bytes (TRL's names and layout). */
  toBytes(): Uint8Array {
    return tf.tidy(() => {
      const tensors = new Map([
        [WEIGHT, safetensorsFromTensor(tf.transpose(this.variables[0]!))], // [1, D]
        [BIAS, safetensorsFromTensor(this.variables[1]!)],
      ]);
      return serializeSafetensors(tensors, { format: 'pt' });
    });
  }

  /** Reads a head written by `toBytes`; errors name the file and what is wrong. */
  static async load(path: string, hiddenSize: number): Promise<ValueHead> {
    let bytes: Uint8Array;
    try {
      bytes = await readFile(path);
    } catch (e) {
      throw new Error(`cannot read the value head ${path}: ${(e as Error).message}`);
    }
    const file = parseSafetensors(bytes, path);
    const w = file.tensors.get(WEIGHT);
    const b = file.tensors.get(BIAS);
    if (!w || !b) throw new Error(`${path}: needs tensors "${WEIGHT}" [1, ${hiddenSize}] and "${BIAS}" [1]`);
    if (w.shape.length !== 2 || w.shape[0] !== 1 || w.shape[1] !== hiddenSize) {
      throw new Error(`${path}: "${WEIGHT}" has shape [${w.shape.join(', ')}], expected [1, ${hiddenSize}] (the trunk's hidden size)`);
    }
    if (b.shape.length !== 1 || b.shape[0] !== 1) throw new Error(`${path}: "${BIAS}" has shape [${b.shape.join(', ')}], expected [1]`);
    const weight = tf.tidy(() => tf.transpose(tensorFromSafetensors(w, `${path}: ${WEIGHT}`).toFloat())); // [D, 1]
    const bias = tf.tidy(() => tensorFromSafetensors(b, `${path}: ${BIAS}`).toFloat());
    try {
      return new ValueHead(hiddenSize, weight, bias);
    } finally {
      tf.dispose([weight, bias]);
    }
  }

  dispose(): void {
    for (const v of this.variables) v.dispose();
  }
}

/**
 * A critic: a causal-LM trunk (a trainable copy of the starting policy, or a saved one) with
 * a value head. Its folder is the trunk's Hugging Face folder plus `value_head.safetensors`.
 */
export class Critic {
  private constructor(
    readonly trunk: CausalLM,
    readonly head: ValueHead,
  ) {}

  /** A critic whose trunk copies `policy` (trainable) and whose head is fresh (`ValueHead.create`). */
  static fromPolicy(policy: CausalLM, rng: Rng, headStd?: number): Critic {
    const trunk = policy.clone({ trainable: true });
    return new Critic(trunk, ValueHead.create(trunk.dims.hiddenSize, rng, headStd));
  }

  /** Loads a critic folder written from `files()`; errors name the folder and the file. */
  static async load(dir: string): Promise<Critic> {
    const { model } = await loadCausalLM(dir);
    try {
      return new Critic(model, await ValueHead.load(join(dir, VALUE_HEAD_FILE), model.dims.hiddenSize));
    } catch (e) {
      model.dispose();
      throw e;
    }
  }

  /** The trunk's and the head's variables, in that order. */
  get variables(): tf.Variable[] {
    return [...this.trunk.variables, ...this.head.variables];
  }

  /** The names they are saved under (Hugging Face names, then TRL's head names). */
  get variableNames(): string[] {
    return [...this.trunk.variableNames, ...this.head.variableNames];
  }

  numParameters(): number {
    return this.variables.reduce((n, v) => n + v.size, 0);
  }

  /** The critic's folder in memory (relative path -> content). */
  async files(): Promise<Record<string, string | Uint8Array>> {
    return { ...(await causalLMFiles(this.trunk)), [VALUE_HEAD_FILE]: this.head.toBytes() };
  }

  dispose(): void {
    this.head.dispose();
    this.trunk.dispose();
  }
}
