import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.ts';
import { maskedWhiten, tokenGae, type TokenGaeInput } from '../../src/objectives/token-gae.ts';
import { expectClose, normals } from './helpers.ts';

/** A right-padded [N, T] mask with the given row lengths. */
function prefixMask(lengths: readonly number[], steps: number): Float32Array {
  const mask = new Float32Array(lengths.length * steps);
  lengths.forEach((len, i) => mask.fill(1, i * steps, i * steps + len));
  return mask;
}

/**
 * Textbook GAE, forward and in float64: A_t = sum_{u=t}^{len-1} (gamma lambda)^(u-t) delta_u with
 * delta_u = r_u + gamma V_{u+1} - V_u and V_len = 0. A double loop, not the backward recursion.
 */
function gaeReference(
  rewards: ArrayLike<number>, values: ArrayLike<number>, lengths: readonly number[], steps: number,
  gamma: number, lambdaOfRow: (row: number) => number,
): number[] {
  const adv = new Array<number>(lengths.length * steps).fill(0);
  lengths.forEach((len, i) => {
    const base = i * steps;
    const lambda = lambdaOfRow(i);
    for (let t = 0; t < len; t++) {
      let sum = 0;
      for (let u = t; u < len; u++) {
        const vNext = u + 1 < len ? values[base + u + 1]! : 0;
        const delta = rewards[base + u]! + gamma * vNext - values[base + u]!;
        sum += Math.pow(gamma * lambda, u - t) * delta;
      }
      adv[base + t] = sum;
    }
  });
  return adv;
}

function realTokens(x: ArrayLike<number>, lengths: readonly number[], steps: number): number[] {
  const out = Array.from(x, Number);
  lengths.forEach((len, i) => out.fill(0, i * steps + len, (i + 1) * steps));
  return out;
}

function batch(seed: number, lengths: readonly number[], steps: number): Pick<TokenGaeInput, 'rewards' | 'values' | 'mask' | 'numRows'> {
  const rng = new Rng(seed);
  const n = lengths.length * steps;
  return { rewards: normals(rng, n), values: normals(rng, n), mask: prefixMask(lengths, steps), numRows: lengths.length };
}

describe('tokenGae', () => {
  it('matches the forward-sum definition on random rows, including empty and full rows', () => {
    const rng = new Rng(7);
    const steps = 12;
    const lengths = [0, steps, 1, 5, steps, 0, 3, 11];
    for (let i = 0; i < 8; i++) lengths.push(rng.int(steps + 1));
    const input = batch(11, lengths, steps);
    const combos: [number, number, number][] = [
      // [gamma, lambdaCritic, lambdaActor]
      [1, 1, 1], [1, 1, 0.95], [0.99, 0.9, 0.5], [0.9, 0, 1], [0, 0.7, 0.3], [1, 0.5, 0], [0.8, 1, 0.6],
    ];
    for (const [gamma, lambdaCritic, lambdaActor] of combos) {
      const out = tokenGae({ ...input, gamma, lambdaCritic, lambdaActor });
      const refAdv = gaeReference(input.rewards, input.values, lengths, steps, gamma, () => lambdaActor);
      const refCritic = gaeReference(input.rewards, input.values, lengths, steps, gamma, () => lambdaCritic);
      const refRet = realTokens(refCritic.map((a, k) => a + input.values[k]!), lengths, steps);
      expectClose(out.advantages, refAdv, 1e-5, 1e-5);
      expectClose(out.returns, refRet, 1e-5, 1e-5);
      expect(Array.from(out.actorLambdas)).toEqual(lengths.map(() => Math.fround(lambdaActor)));
    }
  });

  it('gives reward-to-go minus V at gamma = lambda = 1, one-step TD at lambda = 0, and hand GAE in between', () => {
    // row 0: 3 real tokens of T = 4; row 1: 2 real tokens
    const rewards = [0.1, 0.2, 1.0, 9, -1, 2, 9, 9];
    const values = [0.5, 0.4, 0.3, 9, 0.25, 1, 9, 9];
    const mask = [1, 1, 1, 0, 1, 1, 0, 0];
    const base = { rewards, values, mask, numRows: 2 };
    const mc = tokenGae({ ...base, gamma: 1, lambdaCritic: 1, lambdaActor: 1 });
    // returns: sum of rewards from t to the end of the row; advantages: that minus V_t
    expectClose(mc.returns, [1.3, 1.2, 1.0, 0, 1, 2, 0, 0]);
    expectClose(mc.advantages, [0.8, 0.8, 0.7, 0, 0.75, 1, 0, 0]);

    const td = tokenGae({ ...base, gamma: 0.9, lambdaCritic: 0, lambdaActor: 0 });
    // A_t = r_t + 0.9 V_{t+1} - V_t, V after the last real token = 0
    const tdExpected = [0.1 + 0.36 - 0.5, 0.2 + 0.27 - 0.4, 1.0 - 0.3, 0, -1 + 0.9 - 0.25, 2 - 1, 0, 0];
    expectClose(td.advantages, tdExpected);
    expectClose(td.returns, tdExpected.map((a, k) => (mask[k] ? a + values[k]! : 0)));

    // gamma 1, lambda 0.5, row 0: deltas [0, 0.1, 0.7]; A_2 = 0.7, A_1 = 0.1 + 0.35, A_0 = 0 + 0.5 * 0.45
    const mid = tokenGae({ ...base, gamma: 1, lambdaCritic: 1, lambdaActor: 0.5 });
    expectClose(mid.advantages.subarray(0, 4), [0.225, 0.45, 0.7, 0]);
  });

  it('decouples the lambdas: returns ignore lambdaActor, advantages ignore lambdaCritic', () => {
    const lengths = [6, 0, 9, 3];
    const input = { ...batch(3, lengths, 9), gamma: 1 };
    const a = tokenGae({ ...input, lambdaCritic: 1, lambdaActor: 0.3 });
    const b = tokenGae({ ...input, lambdaCritic: 1, lambdaActor: 0.9 });
    expect(Array.from(a.returns)).toEqual(Array.from(b.returns));
    expect(Array.from(a.advantages)).not.toEqual(Array.from(b.advantages));

    const c = tokenGae({ ...input, lambdaCritic: 0.5, lambdaActor: 0.9 });
    expect(Array.from(c.advantages)).toEqual(Array.from(b.advantages));
    expect(Array.from(c.returns)).not.toEqual(Array.from(b.returns));
  });

  it("uses VAPO's length-adaptive actor lambda per row", () => {
    const steps = 200;
    const lengths = [200, 10, 40, 0];
    const input = { ...batch(5, lengths, steps), gamma: 1, lambdaCritic: 1, lambdaActor: 0.95 };
    const out = tokenGae({ ...input, lengthAdaptiveAlpha: 0.05 });
    // 1 - 1/(0.05 * 200) = 0.9; 1 - 1/(0.05 * 10) = -1 -> 0; 1 - 1/(0.05 * 40) = 0.5; empty row -> 0
    expectClose(out.actorLambdas, [0.9, 0, 0.5, 0], 1e-7, 0);

    // each row equals a run of that row alone with the lambda fixed to the row's value
    lengths.forEach((len, i) => {
      const row = (a: ArrayLike<number>): number[] => Array.from(a).slice(i * steps, (i + 1) * steps);
      const alone = tokenGae({
        rewards: row(input.rewards), values: row(input.values), mask: row(input.mask), numRows: 1,
        gamma: 1, lambdaCritic: 1, lambdaActor: out.actorLambdas[i]!,
      });
      expectClose(row(out.advantages), alone.advantages, 1e-6, 1e-6);
    });
    // the fixed lambdaActor would have given a different answer, and the critic is untouched
    const fixed = tokenGae(input);
    expect(Array.from(fixed.actorLambdas)).toEqual([0.95, 0.95, 0.95, 0.95].map(Math.fround));
    expect(Array.from(out.advantages.subarray(0, steps))).not.toEqual(Array.from(fixed.advantages.subarray(0, steps)));
    expect(Array.from(out.returns)).toEqual(Array.from(fixed.returns));
    // null is "off", like leaving it out
    expect(Array.from(tokenGae({ ...input, lengthAdaptiveAlpha: null }).advantages)).toEqual(Array.from(fixed.advantages));
  });

  it('writes 0 on padding and ignores padding rewards and values', () => {
    const steps = 10;
    const lengths = [4, 10, 0, 7];
    const input = batch(9, lengths, steps);
    const config = { gamma: 0.97, lambdaCritic: 1, lambdaActor: 0.8 };
    const clean = tokenGae({
      ...input, ...config, rewards: realTokens(input.rewards, lengths, steps), values: realTokens(input.values, lengths, steps),
    });
    const rng = new Rng(99);
    const junk = (a: ArrayLike<number>): number[] => Array.from(a, (v, k) => (input.mask[k] ? v : rng.normal(0, 1000)));
    const noisy = tokenGae({ ...input, ...config, rewards: junk(input.rewards), values: junk(input.values) });
    expect(Array.from(noisy.advantages)).toEqual(Array.from(clean.advantages));
    expect(Array.from(noisy.returns)).toEqual(Array.from(clean.returns));
    for (let k = 0; k < input.mask.length; k++) {
      if (input.mask[k] === 0) {
        expect(noisy.advantages[k]).toBe(0);
        expect(noisy.returns[k]).toBe(0);
      } else {
        expect(noisy.advantages[k]).not.toBe(0);
      }
    }
  });

  it('rejects bad input with a message naming the field and index', () => {
    const good: TokenGaeInput = {
      rewards: [1, 2, 3, 4], values: [0, 0, 0, 0], mask: [1, 1, 1, 0], numRows: 2, gamma: 1, lambdaCritic: 1, lambdaActor: 0.95,
    };
    expect(() => tokenGae(good)).not.toThrow();
    const bad = (patch: Partial<TokenGaeInput>): (() => unknown) => () => tokenGae({ ...good, ...patch });
    expect(bad({ numRows: 0 })).toThrow(/^tokenGae: numRows must be an integer >= 1, got 0$/);
    expect(bad({ numRows: 1.5 })).toThrow(/numRows must be an integer >= 1, got 1.5/);
    expect(bad({ numRows: 3 })).toThrow(/^tokenGae: rewards has length 4, which is not a multiple of numRows = 3$/);
    expect(bad({ values: [0, 0, 0] })).toThrow(/^tokenGae: values has length 3 but rewards has length 4$/);
    expect(bad({ mask: [1, 1, 1, 0, 0] })).toThrow(/^tokenGae: mask has length 5 but rewards has length 4$/);
    expect(bad({ gamma: 1.5 })).toThrow(/^tokenGae: gamma must be in \[0, 1\], got 1.5$/);
    expect(bad({ lambdaCritic: -0.1 })).toThrow(/^tokenGae: lambdaCritic must be in \[0, 1\], got -0.1$/);
    expect(bad({ lambdaActor: NaN })).toThrow(/^tokenGae: lambdaActor must be in \[0, 1\], got NaN$/);
    expect(bad({ lengthAdaptiveAlpha: 0 })).toThrow(/^tokenGae: lengthAdaptiveAlpha must be a finite number > 0 \(or null to turn it off\), got 0$/);
    expect(bad({ lengthAdaptiveAlpha: -1 })).toThrow(/lengthAdaptiveAlpha must be a finite number > 0.*got -1$/);
    expect(bad({ lengthAdaptiveAlpha: Infinity })).toThrow(/lengthAdaptiveAlpha must be a finite number > 0.*got Infinity$/);
    expect(bad({ rewards: [1, 2, Infinity, 4] })).toThrow(/^tokenGae: rewards\[2\] is Infinity; expected a finite number$/);
    expect(bad({ values: [0, 0, 0, NaN] })).toThrow(/^tokenGae: values\[3\] is NaN; expected a finite number$/);
    expect(bad({ mask: [1, 0.5, 1, 0] })).toThrow(/^tokenGae: mask\[1\] is 0.5; expected 0 or 1$/);
    expect(bad({ mask: [1, 1, 0, 1] })).toThrow(
      /^tokenGae: mask row 1 has a 1 at column 1 after a 0 at column 0 \(mask\[3\]\); each row must be its real tokens followed by right padding only$/,
    );
    expect(bad({ mask: [0, 1, 1, 1] })).toThrow(/mask row 0 has a 1 at column 1 after a 0 at column 0/);
  });
});

describe('maskedWhiten', () => {
  it('has mean 0 and std 1 over the masked entries and 0 elsewhere, whatever the padding holds', () => {
    const rng = new Rng(21);
    const x = normals(rng, 60, 3, 5);
    const mask = new Float32Array(60).map(() => (rng.uniform() < 0.6 ? 1 : 0));
    const out = maskedWhiten(x, mask);
    let count = 0;
    let sum = 0;
    for (let i = 0; i < 60; i++) if (mask[i]) { count++; sum += out[i]!; }
    const mean = sum / count;
    let sq = 0;
    for (let i = 0; i < 60; i++) if (mask[i]) sq += (out[i]! - mean) ** 2;
    expect(count).toBeGreaterThan(20);
    expect(Math.abs(mean)).toBeLessThan(1e-6);
    expect(Math.sqrt(sq / count)).toBeCloseTo(1, 5);
    const padded = Array.from(x, (v, i) => (mask[i] ? v : 1e6));
    expect(Array.from(maskedWhiten(padded, mask))).toEqual(Array.from(out));
    for (let i = 0; i < 60; i++) if (!mask[i]) expect(out[i]).toBe(0);
  });

  it('matches hand values, uses the population std, and leaves a constant input at x - mean', () => {
    // mean 2, population std 1 over the first two entries
    expectClose(maskedWhiten([1, 3, 100], [1, 1, 0]), [-1, 1, 0], 1e-7, 0);
    expectClose(maskedWhiten([1, 3, 100], [1, 1, 0], 1), [-0.5, 0.5, 0], 1e-7, 0);
    expect(Array.from(maskedWhiten([4, 4, 4, -7], [1, 1, 1, 0], 0))).toEqual([0, 0, 0, 0]);
  });

  it('whitens token-GAE advantages over the real tokens only', () => {
    const lengths = [5, 0, 8, 2];
    const input = batch(4, lengths, 8);
    const { advantages } = tokenGae({ ...input, gamma: 1, lambdaCritic: 1, lambdaActor: 0.95 });
    const out = maskedWhiten(advantages, input.mask);
    let sum = 0;
    let sq = 0;
    for (let k = 0; k < out.length; k++) { sum += out[k]!; sq += out[k]! ** 2; }
    expect(Math.abs(sum / 15)).toBeLessThan(1e-6);
    expect(Math.sqrt(sq / 15)).toBeCloseTo(1, 5);
    expect(Array.from(out.subarray(8, 16))).toEqual(new Array(8).fill(0));
  });

  it('rejects bad input', () => {
    expect(() => maskedWhiten([1, 2], [0, 0])).toThrow(/^maskedWhiten: mask selects no entries, so there is nothing to normalise$/);
    expect(() => maskedWhiten([], [])).toThrow(/mask selects no entries/);
    expect(() => maskedWhiten([1, 2], [1])).toThrow(/^maskedWhiten: mask has length 1 but x has length 2$/);
    expect(() => maskedWhiten([1, 2], [1, 2])).toThrow(/^maskedWhiten: mask\[1\] is 2; expected 0 or 1$/);
    expect(() => maskedWhiten([1, NaN], [1, 0])).toThrow(/^maskedWhiten: x\[1\] is NaN; expected a finite number$/);
    expect(() => maskedWhiten([1, 2], [1, 1], -1)).toThrow(/^maskedWhiten: eps must be a finite number >= 0, got -1$/);
  });
});
