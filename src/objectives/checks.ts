/**
 * Shape and argument checks shared by the tensor objectives. Each throws an error naming
 * the function, the argument and what was expected, before any tensor is allocated.
 */
import type * as tf from '@tensorflow/tfjs';

export function shapeString(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Throws unless `b` has exactly the shape of `a`. */
export function requireSameShape(fn: string, aName: string, a: tf.Tensor, bName: string, b: tf.Tensor): void {
  if (!sameShape(a.shape, b.shape)) {
    throw new Error(
      `${fn}: ${bName} has shape ${shapeString(b.shape)} but ${aName} has shape ${shapeString(a.shape)}; they must match`,
    );
  }
}

/** Throws unless `t` has rank `rank`. */
export function requireRank(fn: string, name: string, t: tf.Tensor, rank: number, what: string): void {
  if (t.rank !== rank) throw new Error(`${fn}: ${name} must be ${what}, got shape ${shapeString(t.shape)}`);
}

/** Throws unless x is a finite number >= min. */
export function requireNumber(fn: string, name: string, x: number, min: number): void {
  if (typeof x !== 'number' || !Number.isFinite(x) || x < min) {
    throw new Error(`${fn}: ${name} must be a finite number >= ${min}, got ${x}`);
  }
}
