/**
 * The critic's scalar value head: output shape, OpenRLHF's 1 / (D + 1) initialisation,
 * exact save/load round trip in TRL's layout, load errors that name the file, and no leaked
 * tensors.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.ts';
import { fromFloat32, parseSafetensors, serializeSafetensors, toFloat32 } from '../../src/core/safetensors.ts';
import { ValueHead } from '../../src/lm/value-head.ts';
import { useCpu } from './lm-helpers.ts';

let dir: string;
beforeAll(async () => {
  await useCpu();
  dir = mkdtempSync(join(tmpdir(), 'rlvr-value-head-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function sampleStd(x: ArrayLike<number>): { mean: number; std: number } {
  let m = 0;
  for (let i = 0; i < x.length; i++) m += x[i]!;
  m /= x.length;
  let s = 0;
  for (let i = 0; i < x.length; i++) s += (x[i]! - m) ** 2;
  return { mean: m, std: Math.sqrt(s / (x.length - 1)) };
}

describe('ValueHead', () => {
  it('maps hidden [n, T, D] to values [n, T] equal to h . w + b', () => {
    const head = ValueHead.create(8, new Rng(1));
    const hidden = tf.randomNormal([3, 5, 8], 0, 1, 'float32', 7) as tf.Tensor3D;
    tf.tidy(() => head.variables[1]!.assign(tf.tensor1d([0.25])));
    const v = head.apply(hidden);
    expect(v.shape).toEqual([3, 5]);
    const h = hidden.arraySync();
    const w = head.variables[0]!.dataSync();
    const got = v.arraySync();
    for (let i = 0; i < 3; i++) {
      for (let t = 0; t < 5; t++) {
        const want = h[i]![t]!.reduce((a, x, d) => a + x * w[d]!, 0) + 0.25;
        expect(Math.abs(got[i]![t]! - want)).toBeLessThan(1e-5);
      }
    }
    expect(() => head.apply(tf.zeros([1, 2, 4]) as tf.Tensor3D)).toThrow(/width 4, the head was built for 8/);
    tf.dispose([hidden, v]);
    head.dispose();
  });

  it('initialises w ~ N(0, (1 / (D + 1))^2) and b = 0; a given std is used instead', () => {
    const D = 4095; // 1 / (D + 1) = 1 / 4096; the sample std of 4095 draws is within ~1.1% (1 sd)
    const head = ValueHead.create(D, new Rng(3));
    expect(head.variables[0]!.shape).toEqual([D, 1]);
    expect(head.variables[1]!.shape).toEqual([1]);
    const { mean, std } = sampleStd(head.variables[0]!.dataSync());
    expect(Math.abs(std * 4096 - 1)).toBeLessThan(0.05);
    expect(Math.abs(mean)).toBeLessThan(4 / 4096 / Math.sqrt(D) + 1e-12);
    expect([...head.variables[1]!.dataSync()]).toEqual([0]);
    head.dispose();

    // Small D tells 1 / (D + 1) from 1 / D: pool 1000 heads of D = 3 (std 1/4, not 1/3).
    const rng = new Rng(11);
    const pooled: number[] = [];
    for (let k = 0; k < 1000; k++) {
      const small = ValueHead.create(3, rng);
      pooled.push(...small.variables[0]!.dataSync());
      small.dispose();
    }
    expect(Math.abs(sampleStd(pooled).std / 0.25 - 1)).toBeLessThan(0.05);

    const wide = ValueHead.create(D, new Rng(3), 0.5);
    expect(Math.abs(sampleStd(wide.variables[0]!.dataSync()).std / 0.5 - 1)).toBeLessThan(0.05);
    wide.dispose();
    const zero = ValueHead.create(16, new Rng(3), 0);
    expect([...zero.variables[0]!.dataSync()].every((x) => x === 0)).toBe(true);
    zero.dispose();
    expect(() => ValueHead.create(0, new Rng(1))).toThrow(/hiddenSize must be a positive integer/);
    expect(() => ValueHead.create(4, new Rng(1), -1)).toThrow(/std must be a finite number >= 0/);
  });

  it('round-trips through value_head.safetensors exactly, in TRL\'s names and layout', async () => {
    const D = 24;
    const head = ValueHead.create(D, new Rng(5), 0.3);
    tf.tidy(() => head.variables[1]!.assign(tf.tensor1d([-1.375])));
    const bytes = head.toBytes();
    const file = parseSafetensors(bytes, 'head');
    expect([...file.tensors.keys()].sort()).toEqual(['v_head.summary.bias', 'v_head.summary.weight']);
    expect(file.tensors.get('v_head.summary.weight')!.shape).toEqual([1, D]);
    expect(file.tensors.get('v_head.summary.bias')!.shape).toEqual([1]);
    expect([...toFloat32(file.tensors.get('v_head.summary.weight')!)]).toEqual([...head.variables[0]!.dataSync()]);

    const path = join(dir, 'round-trip.safetensors');
    writeFileSync(path, bytes);
    const loaded = await ValueHead.load(path, D);
    expect(loaded.hiddenSize).toBe(D);
    expect(loaded.variables[0]!.shape).toEqual([D, 1]);
    expect([...loaded.variables[0]!.dataSync()]).toEqual([...head.variables[0]!.dataSync()]);
    expect([...loaded.variables[1]!.dataSync()]).toEqual([-1.375]);
    // Distinct variables: training one leaves the other alone.
    expect(loaded.variables[0]!.name).not.toBe(head.variables[0]!.name);
    head.dispose();
    loaded.dispose();
  });

  it('load errors name the file: missing file, missing tensor, wrong shape', async () => {
    const D = 8;
    const missingFile = join(dir, 'nope.safetensors');
    await expect(ValueHead.load(missingFile, D)).rejects.toThrow(`cannot read the value head ${missingFile}`);

    const noBias = join(dir, 'no-bias.safetensors');
    writeFileSync(noBias, serializeSafetensors({ 'v_head.summary.weight': fromFloat32(new Float32Array(D), [1, D], 'F32') }));
    await expect(ValueHead.load(noBias, D)).rejects.toThrow(`${noBias}: needs tensors "v_head.summary.weight" [1, ${D}] and "v_head.summary.bias" [1]`);

    const wide = join(dir, 'wide.safetensors');
    const head16 = ValueHead.create(16, new Rng(1));
    writeFileSync(wide, head16.toBytes());
    head16.dispose();
    await expect(ValueHead.load(wide, D)).rejects.toThrow(`${wide}: "v_head.summary.weight" has shape [1, 16], expected [1, ${D}]`);

    const badBias = join(dir, 'bad-bias.safetensors');
    writeFileSync(
      badBias,
      serializeSafetensors({ 'v_head.summary.weight': fromFloat32(new Float32Array(D), [1, D], 'F32'), 'v_head.summary.bias': fromFloat32(new Float32Array(2), [2], 'F32') }),
    );
    await expect(ValueHead.load(badBias, D)).rejects.toThrow(`${badBias}: "v_head.summary.bias" has shape [2], expected [1]`);
  });

  it('leaks no tensors: create, apply, toBytes, load and dispose return the count to where it started', async () => {
    const start = tf.memory().numTensors;
    const head = ValueHead.create(12, new Rng(2));
    expect(tf.memory().numTensors).toBe(start + 2);
    const hidden = tf.ones([2, 3, 12]) as tf.Tensor3D;
    const v = head.apply(hidden);
    tf.dispose([hidden, v]);
    const path = join(dir, 'leak.safetensors');
    writeFileSync(path, head.toBytes());
    const loaded = await ValueHead.load(path, 12);
    await expect(ValueHead.load(path, 13)).rejects.toThrow(/expected \[1, 13\]/);
    head.dispose();
    loaded.dispose();
    expect(tf.memory().numTensors).toBe(start);
  });
});
