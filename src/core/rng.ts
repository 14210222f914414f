/**
 * Seeded pseudo-random number generator: the only source of randomness in rlvr.
 *
 * Algorithm: xoshiro128** (Blackman & Vigna, "Scrambled linear pseudorandom number
 * generators", 2018) over four 32-bit words, seeded through splitmix32 so that nearby
 * seeds give unrelated streams. Every operation is 32-bit integer arithmetic
 * (`Math.imul`, `>>> 0`), so the same seed gives the same stream on every machine and
 * every JavaScript engine.
 *
 * Derived draws:
 * - `uniform()`: 32 random bits / 2^32, in [0, 1).
 * - `normal()`: Box–Muller on two uniforms (the second value is discarded, which keeps the
 *   state to the four words and makes `getState`/`setState` exact).
 * - `categorical(weights)`: inverse-CDF over unnormalised non-negative weights.
 * - `shuffle` / `permutation`: Fisher–Yates with unbiased integer draws (rejection sampling).
 */
export type RngState = [number, number, number, number];

function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

export class Rng {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;

  /** @param seed any finite number; it is reduced to 32 bits (integers up to 2^53 mix both halves). */
  constructor(seed: number) {
    if (!Number.isFinite(seed)) throw new Error(`Rng: seed must be a finite number, got ${seed}`);
    const hi = Math.floor(seed / 4294967296) >>> 0;
    const sm = splitmix32((seed >>> 0) ^ Math.imul(hi, 0x27d4eb2d));
    this.s0 = sm();
    this.s1 = sm();
    this.s2 = sm();
    this.s3 = sm();
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1; // all-zero state is a fixed point
  }

  /** Next 32 random bits as an unsigned integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 = (this.s2 ^ this.s0) >>> 0;
    this.s3 = (this.s3 ^ this.s1) >>> 0;
    this.s1 = (this.s1 ^ this.s2) >>> 0;
    this.s0 = (this.s0 ^ this.s3) >>> 0;
    this.s2 = (this.s2 ^ t) >>> 0;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in [0, 1). */
  uniform(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Uniform in [low, high). */
  uniformRange(low: number, high: number): number {
    return low + (high - low) * this.uniform();
  }

  /** Uniform integer in [0, n), unbiased. */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0 || n > 4294967296) {
      throw new Error(`Rng.int: n must be an integer in [1, 2^32], got ${n}`);
    }
    const limit = 4294967296 - (4294967296 % n); // reject the tail that would bias small values
    for (;;) {
      const x = this.nextUint32();
      if (x < limit) return x % n;
    }
  }

  /** Uniform integer in [low, high] (both inclusive). */
  intRange(low: number, high: number): number {
    return low + this.int(high - low + 1);
  }

  /** Standard normal N(mean, std^2) via Box–Muller. */
  normal(mean = 0, std = 1): number {
    let u1 = this.uniform();
    while (u1 === 0) u1 = this.uniform();
    const u2 = this.uniform();
    return mean + std * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  /** Fill `out` with N(mean, std^2) draws. */
  fillNormal(out: Float32Array | Float64Array, mean = 0, std = 1): typeof out {
    for (let i = 0; i < out.length; i++) out[i] = this.normal(mean, std);
    return out;
  }

  /** Fill `out` with U[low, high) draws. */
  fillUniform(out: Float32Array | Float64Array, low = 0, high = 1): typeof out {
    for (let i = 0; i < out.length; i++) out[i] = low + (high - low) * this.uniform();
    return out;
  }

  /**
   * Index drawn with probability proportional to `weights[i]` (non-negative, not
   * necessarily normalised). `offset`/`length` select a slice of a larger array.
   */
  categorical(weights: ArrayLike<number>, offset = 0, length = weights.length - offset): number {
    let total = 0;
    for (let i = 0; i < length; i++) {
      const w = weights[offset + i]!;
      if (!(w >= 0)) throw new Error(`Rng.categorical: weight ${i} is ${w}; weights must be non-negative numbers`);
      total += w;
    }
    if (!(total > 0) || !Number.isFinite(total)) {
      throw new Error(`Rng.categorical: weights must have a positive finite sum, got ${total}`);
    }
    const u = this.uniform() * total;
    let acc = 0;
    let last = -1;
    for (let i = 0; i < length; i++) {
      const w = weights[offset + i]!;
      if (w > 0) last = i;
      acc += w;
      if (u < acc) return i;
    }
    return last; // only reached through floating-point round-off at the top end
  }

  /** Shuffle `arr` in place (Fisher–Yates) and return it. */
  shuffle<T extends { length: number; [i: number]: unknown }>(arr: T): T {
    for (let i = arr.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = arr[i];
      arr[i] = arr[j];
      arr[j] = tmp;
    }
    return arr;
  }

  /** A random permutation of 0..n-1. */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    return this.shuffle(p);
  }

  /** A new generator whose stream is independent of this one (seeded from this stream). */
  fork(): Rng {
    const child = new Rng(0);
    child.setState([this.nextUint32(), this.nextUint32(), this.nextUint32(), (this.nextUint32() | 1) >>> 0]); // `| 1` yields a signed int32: back to unsigned
    return child;
  }

  /** The full internal state; `setState(getState())` resumes the stream exactly. */
  getState(): RngState {
    return [this.s0, this.s1, this.s2, this.s3];
  }

  setState(state: readonly number[]): void {
    if (state.length !== 4 || state.some((w) => !Number.isInteger(w) || w < 0 || w > 0xffffffff)) {
      throw new Error(`Rng.setState: expected four unsigned 32-bit integers, got ${JSON.stringify(state)}`);
    }
    if (state.every((w) => w === 0)) throw new Error('Rng.setState: the all-zero state is invalid');
    [this.s0, this.s1, this.s2, this.s3] = state as RngState;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
