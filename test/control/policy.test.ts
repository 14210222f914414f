import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../../src/engine/tfjs/backend.ts';
import { Rng } from '../../src/core/rng.ts';
import { toFloat32 } from '../../src/core/safetensors.ts';
import { ObsNormalizer } from '../../src/control/normalize.ts';
import { ActorCritic, loadPolicy, orthogonalMatrix, savePolicy, type PolicyActionSpace } from '../../src/control/policy.ts';

const dirs: string[] = [];
beforeAll(async () => {
  await initEngine({ backend: 'wasm', quiet: true });
});
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** max |G - gain^2 I| over the Gram matrix of the columns (rows >= cols) or rows of W. */
function gramError(w: ArrayLike<number>, rows: number, cols: number, gain: number): number {
  const byCols = rows >= cols;
  const k = byCols ? cols : rows;
  const m = byCols ? rows : cols;
  const at = (i: number, r: number): number => (byCols ? w[r * cols + i]! : w[i * cols + r]!);
  let err = 0;
  for (let i = 0; i < k; i++) {
    for (let j = 0; j < k; j++) {
      let s = 0;
      for (let r = 0; r < m; r++) s += at(i, r) * at(j, r);
      err = Math.max(err, Math.abs(s - (i === j ? gain * gain : 0)));
    }
  }
  return err;
}

const discrete: PolicyActionSpace = { type: 'discrete', n: 3 };
const box: PolicyActionSpace = { type: 'box', dim: 2, low: [-1, -1], high: [1, 1] };

describe('orthogonal initialisation', () => {
  it('gives orthonormal columns (tall), rows (wide) and a square orthogonal matrix, scaled by the gain', () => {
    const rng = new Rng(0);
    expect(gramError(orthogonalMatrix(64, 16, Math.SQRT2, rng), 64, 16, Math.SQRT2)).toBeLessThan(1e-5);
    expect(gramError(orthogonalMatrix(4, 64, 1, rng), 4, 64, 1)).toBeLessThan(1e-5);
    expect(gramError(orthogonalMatrix(32, 32, 0.01, rng), 32, 32, 0.01)).toBeLessThan(1e-8);
    // Not trivially the identity: entries are spread.
    const w = orthogonalMatrix(8, 8, 1, new Rng(1));
    expect(Array.from(w).filter((x) => Math.abs(x) > 0.05).length).toBeGreaterThan(40);
  });

  it('initialises every layer with the SB3 gains, zero biases and the log-std', () => {
    const p = new ActorCritic(4, box, { hiddenSizes: [16, 8], logStdInit: -0.5 }, new Rng(2));
    const t = p.namedTensors();
    const w = (name: string) => toFloat32(t.get(name)!);
    expect(gramError(w('pi.0.weight'), 4, 16, Math.SQRT2)).toBeLessThan(1e-5);
    expect(gramError(w('vf.1.weight'), 16, 8, Math.SQRT2)).toBeLessThan(1e-5);
    expect(gramError(w('pi.head.weight'), 8, 2, 0.01)).toBeLessThan(1e-8);
    expect(gramError(w('vf.head.weight'), 8, 1, 1)).toBeLessThan(1e-5);
    expect(Array.from(w('pi.0.bias')).every((x) => x === 0)).toBe(true);
    expect(Array.from(w('log_std'))).toEqual([-0.5, -0.5]);
    expect([...t.keys()].sort()).toEqual(
      ['log_std', 'pi.0.bias', 'pi.0.weight', 'pi.1.bias', 'pi.1.weight', 'pi.head.bias', 'pi.head.weight', 'vf.0.bias', 'vf.0.weight', 'vf.1.bias', 'vf.1.weight', 'vf.head.bias', 'vf.head.weight'].sort(),
    );
    p.dispose();
  });
});

/** Float64 forward of the actor head from named tensors, written independently of the policy. */
function actorOut64(params: Map<string, Float64Array>, x: number[], hidden: number[], width: number): number[] {
  let h = x;
  const sizes = [x.length, ...hidden];
  for (let l = 0; l < hidden.length; l++) {
    const W = params.get(`pi.${l}.weight`)!;
    const b = params.get(`pi.${l}.bias`)!;
    h = Array.from({ length: sizes[l + 1]! }, (_, j) => Math.tanh(h.reduce((s, xi, i) => s + xi * W[i * sizes[l + 1]! + j]!, b[j]!)));
  }
  const W = params.get('pi.head.weight')!;
  const b = params.get('pi.head.bias')!;
  return Array.from({ length: width }, (_, j) => h.reduce((s, hi, i) => s + hi * W[i * width + j]!, b[j]!));
}

describe('ActorCritic', () => {
  it('flat parameters round-trip and reject a wrong length', () => {
    const p = new ActorCritic(3, discrete, { hiddenSizes: [5] }, new Rng(3));
    const flat = p.getFlat('actor');
    expect(flat.length).toBe(p.numParams('actor'));
    expect(p.numParams('actor')).toBe(3 * 5 + 5 + 5 * 3 + 3);
    const changed = flat.map((v, i) => v + i * 1e-3);
    p.setFlat('actor', changed);
    expect(Array.from(p.getFlat('actor'))).toEqual(Array.from(changed));
    expect(() => p.setFlat('critic', new Float32Array(3))).toThrow(/expected 26 values, got 3/);
    p.dispose();
  });

  it('actorJvp is the exact directional derivative of the actor head (against float64 central differences)', () => {
    const hidden = [6, 5];
    const p = new ActorCritic(3, discrete, { hiddenSizes: hidden, orthoInit: false }, new Rng(4));
    const rng = new Rng(5);
    const n = p.numParams('actor');
    const tangent = rng.fillNormal(new Float32Array(n)) as Float32Array;
    const obs = [[0.3, -1.2, 0.5], [1.0, 0.2, -0.7]];
    const { out, dOut } = tf.tidy(() => {
      const r = p.actorJvp(tf.tensor2d(obs), tf.tensor1d(tangent));
      return { out: r.out, dOut: r.dOut };
    });
    const outV = out.dataSync();
    const dV = dOut.dataSync();
    // Independent reference: unpack the flat vector in float64 and difference the forward.
    const names = [...p.namedTensors().entries()].filter(([k]) => k.startsWith('pi.'));
    const base = p.getFlat('actor');
    const at = (eps: number): Map<string, Float64Array> => {
      const m = new Map<string, Float64Array>();
      let o = 0;
      for (const [k, t] of names) {
        const size = t.shape.reduce((a, b) => a * b, 1);
        m.set(k, Float64Array.from({ length: size }, (_, i) => base[o + i]! + eps * tangent[o + i]!));
        o += size;
      }
      return m;
    };
    const eps = 1e-6;
    obs.forEach((x, b) => {
      const f0 = actorOut64(at(0), x, hidden, 3);
      const fp = actorOut64(at(eps), x, hidden, 3);
      const fm = actorOut64(at(-eps), x, hidden, 3);
      for (let j = 0; j < 3; j++) {
        expect(outV[b * 3 + j]).toBeCloseTo(f0[j]!, 5);
        expect(dV[b * 3 + j]).toBeCloseTo((fp[j]! - fm[j]!) / (2 * eps), 4);
      }
    });
    tf.dispose([out, dOut]);
    p.dispose();
  });

  it('act reads one batched forward: deterministic actions are the arg-max and log-probs match the distribution', () => {
    const p = new ActorCritic(2, discrete, { hiddenSizes: [8], orthoInit: false }, new Rng(6));
    const obs = new Float32Array([0.1, 0.2, -1, 2, 3, -0.5]);
    const r = p.act(obs, 3, new Rng(0), true);
    const { logits, values } = tf.tidy(() => {
      const f = p.forward(tf.tensor2d(obs, [3, 2]));
      return { logits: f.dist.kind === 'categorical' ? f.dist.logits : f.dist.mean, values: f.values! };
    });
    const z = logits.arraySync() as number[][];
    z.forEach((row, b) => {
      expect(r.actions[b]).toBe(row.indexOf(Math.max(...row)));
      const lse = Math.log(row.reduce((s, v) => s + Math.exp(v), 0));
      expect(r.logProbs[b]).toBeCloseTo(row[r.actions[b]!]! - lse, 5);
    });
    Array.from(values.dataSync()).forEach((v, b) => expect(r.values[b]).toBeCloseTo(v, 6));
    expect(Array.from(p.predictValues(obs, 3))).toEqual(Array.from(r.values));
    tf.dispose([logits, values]);
    expect(() => p.act(new Float32Array(5), 3, new Rng(0))).toThrow(/expected 3 x 2 observation values, got 5/);
    p.dispose();
  });

  it('a shared network runs both heads on one trunk and refuses the actor JVP', () => {
    const p = new ActorCritic(2, box, { hiddenSizes: [4], sharedNetwork: true }, new Rng(7));
    expect(p.variables).toHaveLength(1);
    expect(p.numParams('actor')).toBe(p.numParams('critic'));
    const r = p.act(new Float32Array([1, 2]), 1, new Rng(1));
    expect(r.actions).toHaveLength(2);
    expect(() => tf.tidy(() => p.actorJvp(tf.zeros([1, 2]) as tf.Tensor2D, tf.zeros([p.numParams('actor')]) as tf.Tensor1D).out)).toThrow(/separate actor and critic/);
    p.dispose();
  });
});

describe('savePolicy / loadPolicy', () => {
  it('round-trips weights, architecture and observation statistics', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rlvr-policy-'));
    dirs.push(dir);
    const p = new ActorCritic(3, box, { hiddenSizes: [7, 5], logStdInit: -1 }, new Rng(8));
    p.setFlat('actor', p.getFlat('actor').map((v, i) => v + 0.01 * Math.sin(i)));
    const norm = new ObsNormalizer(3);
    norm.update([1, 2, 3, 4, 5, 6, -1, 0, 9], 3);
    await savePolicy(dir, p, { envId: 'Pendulum-v1', algorithm: 'ppo', obsNormalizer: norm });
    const loaded = await loadPolicy(dir, new Rng(99));
    expect(loaded.meta.envId).toBe('Pendulum-v1');
    expect(loaded.meta.algorithm).toBe('ppo');
    expect(loaded.policy.architecture.hiddenSizes).toEqual([7, 5]);
    expect(Array.from(loaded.policy.getFlat('actor'))).toEqual(Array.from(p.getFlat('actor')));
    expect(Array.from(loaded.policy.getFlat('critic'))).toEqual(Array.from(p.getFlat('critic')));
    expect(Array.from(loaded.obsNormalizer!.rms.mean)).toEqual(Array.from(norm.rms.mean));
    expect(loaded.obsNormalizer!.training).toBe(false);
    const obs = new Float32Array([0.5, -0.5, 1]);
    const a = p.act(obs, 1, new Rng(3));
    const b = loaded.policy.act(obs, 1, new Rng(3));
    expect(Array.from(b.actions)).toEqual(Array.from(a.actions));
    expect(Array.from(b.values)).toEqual(Array.from(a.values));
    loaded.policy.dispose();
    p.dispose();
  });

  it('names the problem when the files do not fit', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rlvr-policy-'));
    dirs.push(dir);
    await expect(loadPolicy(dir, new Rng(0))).rejects.toThrow(/cannot read .*policy\.json/);
    const p = new ActorCritic(3, discrete, { hiddenSizes: [4] }, new Rng(9));
    await savePolicy(dir, p, { envId: 'CartPole-v1', algorithm: 'a2c' });
    p.dispose();
    const meta = JSON.parse(JSON.stringify({ ...(await loadPolicy(dir, new Rng(0)).then((l) => (l.policy.dispose(), l.meta))), architecture: { hiddenSizes: [5], sharedNetwork: false, orthoInit: true, logStdInit: 0 } }));
    writeFileSync(join(dir, 'policy.json'), JSON.stringify(meta));
    await expect(loadPolicy(dir, new Rng(0))).rejects.toThrow(/parameter "pi.0.weight" has shape \[3,4\] but the policy expects \[3,5\]/);
  });
});
