/**
 * Exact rational numbers over BigInt, used to compare answers made only of numbers and
 * + - * / ^ (with integer exponents) without floating-point error: `1000.0` equals
 * `1000`, `0.1 + 0.2` equals `0.3`, and integers beyond 2^53 keep every digit.
 *
 * Every operation bounds the size of its result (`MAX_BITS`); past it the operation
 * returns null and the caller falls back to floating point. That bound is what keeps an
 * exponent tower like `9^9^9^9^9` from allocating a number with billions of digits.
 */
export interface Rational {
  /** Numerator; carries the sign. */
  n: bigint;
  /** Denominator; always positive, and coprime with the numerator. */
  d: bigint;
}

/** Largest numerator or denominator, in bits, that exact arithmetic will build. */
export const MAX_BITS = 32768;

function bitLength(x: bigint): number {
  if (x < 0n) x = -x;
  if (x === 0n) return 0;
  const hex = x.toString(16);
  return (hex.length - 1) * 4 + Math.floor(Math.log2(parseInt(hex[0]!, 16))) + 1;
}

function gcd(a: bigint, b: bigint): bigint {
  if (a < 0n) a = -a;
  if (b < 0n) b = -b;
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

/** n/d reduced to lowest terms; null when d is 0 or the result is too large. */
export function rational(n: bigint, d = 1n): Rational | null {
  if (d === 0n) return null;
  if (d < 0n) {
    n = -n;
    d = -d;
  }
  // Past twice the limit even a large common factor cannot bring it back: skip the gcd.
  if (bitLength(n) > 2 * MAX_BITS || bitLength(d) > 2 * MAX_BITS) return null;
  const g = gcd(n, d);
  const r = g > 1n ? { n: n / g, d: d / g } : { n, d };
  if (bitLength(r.n) > MAX_BITS || bitLength(r.d) > MAX_BITS) return null;
  return r;
}

/** Parses a plain decimal literal (`12`, `-0.50`, `.5`); null for anything else. */
export function parseDecimal(text: string): Rational | null {
  const m = /^(-?)(\d*)(?:\.(\d*))?$/.exec(text);
  if (!m || (m[2] === '' && (m[3] ?? '') === '')) return null;
  const frac = m[3] ?? '';
  const digits = BigInt((m[2] || '0') + frac);
  return rational(m[1] === '-' ? -digits : digits, 10n ** BigInt(frac.length));
}

export const add = (a: Rational, b: Rational) => rational(a.n * b.d + b.n * a.d, a.d * b.d);
export const sub = (a: Rational, b: Rational) => rational(a.n * b.d - b.n * a.d, a.d * b.d);
export const mul = (a: Rational, b: Rational) => rational(a.n * b.n, a.d * b.d);
export const div = (a: Rational, b: Rational) => rational(a.n * b.d, a.d * b.n);
export const neg = (a: Rational): Rational => ({ n: -a.n, d: a.d });
export const abs = (a: Rational): Rational => ({ n: a.n < 0n ? -a.n : a.n, d: a.d });
export const isInteger = (a: Rational) => a.d === 1n;
export const equals = (a: Rational, b: Rational) => a.n === b.n && a.d === b.d;

/** a < b: -1, a == b: 0, a > b: 1. */
export function compare(a: Rational, b: Rational): number {
  const l = a.n * b.d;
  const r = b.n * a.d;
  return l < r ? -1 : l > r ? 1 : 0;
}

/** a^e for an integer exponent e; null when the result would exceed MAX_BITS. */
export function pow(a: Rational, e: Rational): Rational | null {
  if (!isInteger(e)) return null;
  let k = e.n;
  if (a.n === 0n) return k < 0n ? null : k === 0n ? { n: 1n, d: 1n } : { n: 0n, d: 1n };
  if (a.d === 1n && (a.n === 1n || a.n === -1n)) {
    return { n: a.n === -1n && k % 2n !== 0n ? -1n : 1n, d: 1n };
  }
  const negative = k < 0n;
  if (negative) k = -k;
  const bits = Math.max(bitLength(a.n), bitLength(a.d));
  if (k > BigInt(MAX_BITS) || bits * Number(k) > MAX_BITS + bits) return null;
  const r = rational(a.n ** k, a.d ** k);
  return r && negative ? rational(r.d, r.n) : r;
}

/** Floor of a rational, as a rational. */
export function floor(a: Rational): Rational {
  let q = a.n / a.d;
  if (a.n < 0n && q * a.d !== a.n) q -= 1n;
  return { n: q, d: 1n };
}

/** Nearest double (keeps its relative accuracy for values beyond 2^1024 in either part). */
export function toNumber(a: Rational): number {
  const nb = bitLength(a.n);
  const db = bitLength(a.d);
  if (nb < 1000 && db < 1000) return Number(a.n) / Number(a.d);
  // Scale both parts down to ~64 significant bits, then correct with a power of two.
  const ns = Math.max(0, nb - 64);
  const ds = Math.max(0, db - 64);
  return (Number(a.n >> BigInt(ns)) / Number(a.d >> BigInt(ds))) * 2 ** (ns - ds);
}
