/**
 * Solution sets of one-variable inequalities, so that `|x - 1| > 2` can be compared with
 * `(-\infty, -1) \cup (3, \infty)` and `x^2 - 5x + 6 \ge 0` with `(-\infty, 2] \cup [3, \infty)`.
 *
 * A predicate is an OR of ANDs of atoms `f(x) op 0` (`op` one of < ≤ > ≥ = ≠). It is decided
 * when every f is, after fixing the sign of each |g|, a polynomial of degree ≤ 2 in x, and
 * every |g| holds such a polynomial (no nested |.|, no division by x, no other function of x).
 *
 * Method (exact cell decomposition for this class): the real roots of every |.| argument split
 * the line into pieces on which each |g| equals ±g; on each piece every atom is a polynomial of
 * degree ≤ 2 whose real roots come from the quadratic formula, exactly over the rationals when
 * the coefficients are rational and the discriminant is a square, else in floating point. The
 * predicate's truth is constant between consecutive candidate points (|.| roots and atom
 * roots), so one evaluation at each candidate and one inside each gap decides the whole set.
 * Simplification: irrational roots are doubles, so sets are compared with a 1e-9 relative
 * tolerance on their end points.
 */
import { evalComplex, evalExact, variables, type Node } from './expr.ts';
import * as Q from './rational.ts';

export type IneqOp = '=' | '≠' | '<' | '≤' | '>' | '≥';

/** `f op 0`. */
export interface Atom {
  f: Node;
  op: IneqOp;
}

/** OR over the outer array of AND over the inner arrays. */
export type Predicate = Atom[][];

/** One piece of a set of reals; a point is `[a, a]` with both ends closed. */
export interface Piece {
  lo: number;
  hi: number;
  loClosed: boolean;
  hiClosed: boolean;
}

/** Disjoint pieces in increasing order. */
export type RealSet = Piece[];

const MAX_DEGREE = 2;
const MAX_ABS = 6;
const ZERO_TOL = 1e-9;
const SAME_POINT = 1e-12;
const SET_TOL = 1e-9;

// ---- polynomials with exact (when possible) and float coefficients -------------------------

interface Coef {
  /** The coefficient as a rational, or null when it is irrational (or not exact). */
  q: Q.Rational | null;
  f: number;
}

type Poly = Coef[];

const constant = (q: Q.Rational | null, f: number): Poly => [{ q, f }];
const ZERO: Coef = { q: { n: 0n, d: 1n }, f: 0 };

function cAdd(a: Coef, b: Coef): Coef {
  return { q: a.q && b.q ? Q.add(a.q, b.q) : null, f: a.f + b.f };
}

function cMul(a: Coef, b: Coef): Coef {
  return { q: a.q && b.q ? Q.mul(a.q, b.q) : null, f: a.f * b.f };
}

const cNeg = (a: Coef): Coef => ({ q: a.q && Q.neg(a.q), f: -a.f });

function trim(p: Poly): Poly {
  const out = [...p];
  while (out.length > 1 && isZeroCoef(out[out.length - 1]!)) out.pop();
  return out;
}

const isZeroCoef = (c: Coef) => (c.q ? c.q.n === 0n : c.f === 0);

function pAdd(a: Poly, b: Poly): Poly {
  const n = Math.max(a.length, b.length);
  return trim(Array.from({ length: n }, (_, i) => cAdd(a[i] ?? ZERO, b[i] ?? ZERO)));
}

function pMul(a: Poly, b: Poly): Poly | null {
  if (a.length + b.length - 2 > MAX_DEGREE) {
    // Degree above the limit unless one side is the zero polynomial.
    if ((a.length === 1 && isZeroCoef(a[0]!)) || (b.length === 1 && isZeroCoef(b[0]!))) return [ZERO];
    return null;
  }
  const out: Coef[] = Array.from({ length: a.length + b.length - 1 }, () => ZERO);
  for (let i = 0; i < a.length; i++) for (let j = 0; j < b.length; j++) out[i + j] = cAdd(out[i + j]!, cMul(a[i]!, b[j]!));
  return trim(out);
}

const pNeg = (a: Poly): Poly => a.map(cNeg);

/**
 * The polynomial of `node` in `x`, with each |.| node replaced by its argument times the
 * sign given in `absSign`; null outside the decidable class.
 */
function toPoly(node: Node, x: string, absSign: ReadonlyMap<Node, number>): Poly | null {
  const vars = variables(node);
  if (vars.size === 0) {
    const v = evalComplex(node);
    if (!v || v.kind !== 'scalar' || !Number.isFinite(v.z.re) || Math.abs(v.z.im) > 1e-12 * Math.max(1, Math.abs(v.z.re))) return null;
    return constant(evalExact(node), v.z.re);
  }
  if (vars.size > 1 || !vars.has(x)) return null;
  switch (node.t) {
    case 'sym':
      return [ZERO, { q: { n: 1n, d: 1n }, f: 1 }];
    case 'neg': {
      const a = toPoly(node.a, x, absSign);
      return a && pNeg(a);
    }
    case 'add':
    case 'sub': {
      const a = toPoly(node.a, x, absSign);
      const b = a && toPoly(node.b, x, absSign);
      if (!a || !b) return null;
      return pAdd(a, node.t === 'add' ? b : pNeg(b));
    }
    case 'mul': {
      const a = toPoly(node.a, x, absSign);
      const b = a && toPoly(node.b, x, absSign);
      return a && b ? pMul(a, b) : null;
    }
    case 'div': {
      if (variables(node.b).size > 0) return null;
      const a = toPoly(node.a, x, absSign);
      const b = toPoly(node.b, x, absSign);
      if (!a || !b || b.length !== 1 || isZeroCoef(b[0]!)) return null;
      const d = b[0]!;
      const inv: Coef = { q: d.q ? Q.rational(d.q.d, d.q.n) : null, f: 1 / d.f };
      return a.map((c) => cMul(c, inv));
    }
    case 'pow': {
      if (variables(node.b).size > 0) return null;
      const e = evalExact(node.b);
      if (!e || !Q.isInteger(e) || e.n < 0n || e.n > BigInt(MAX_DEGREE)) return null;
      const base = toPoly(node.a, x, absSign);
      if (!base) return null;
      let r: Poly | null = constant({ n: 1n, d: 1n }, 1);
      for (let k = 0n; k < e.n && r; k++) r = pMul(r, base);
      return r;
    }
    case 'call': {
      if (node.fn !== 'abs') return null;
      const sign = absSign.get(node);
      const a = sign === undefined ? null : toPoly(node.args[0]!, x, absSign);
      return a && (sign! < 0 ? pNeg(a) : a);
    }
    default:
      return null;
  }
}

// ---- roots and signs ------------------------------------------------------------------------

/** A real number, exact when `q` is set. */
interface Real {
  v: number;
  q: Q.Rational | null;
}

function isqrt(n: bigint): bigint {
  if (n < 2n) return n;
  let x = BigInt(Math.floor(Math.sqrt(Number(n))));
  while (x * x > n) x--;
  while ((x + 1n) * (x + 1n) <= n) x++;
  return x;
}

/** Square root of a non-negative rational when it is rational, else null. */
function ratSqrt(a: Q.Rational): Q.Rational | null {
  const n = isqrt(a.n);
  const d = isqrt(a.d);
  return n * n === a.n && d * d === a.d ? Q.rational(n, d) : null;
}

const real = (q: Q.Rational | null, v: number): Real => ({ q, v: q ? Q.toNumber(q) : v });

/** Real roots of a polynomial of degree ≤ 2 (none for a constant, even the zero polynomial). */
function roots(p: Poly): Real[] {
  if (p.length === 2) {
    const [c0, c1] = p as [Coef, Coef];
    return [real(c0.q && c1.q ? Q.div(Q.neg(c0.q), c1.q) : null, -c0.f / c1.f)];
  }
  if (p.length !== 3) return [];
  const [c0, c1, c2] = p as [Coef, Coef, Coef];
  if (c0.q && c1.q && c2.q) {
    const disc = Q.sub(Q.mul(c1.q, c1.q)!, Q.mul(Q.mul({ n: 4n, d: 1n }, c2.q)!, c0.q)!);
    if (disc) {
      if (disc.n < 0n) return [];
      const twoA = Q.mul({ n: 2n, d: 1n }, c2.q)!;
      const root = ratSqrt(disc);
      if (root) {
        const r1 = Q.div(Q.sub(Q.neg(c1.q), root)!, twoA);
        const r2 = Q.div(Q.add(Q.neg(c1.q), root)!, twoA);
        return r1 && r2 ? (Q.equals(r1, r2) ? [real(r1, 0)] : [real(r1, 0), real(r2, 0)]) : [];
      }
      const s = Math.sqrt(Q.toNumber(disc));
      const b = Q.toNumber(c1.q);
      const a2 = Q.toNumber(twoA);
      return floatPair(b, s, a2, Q.toNumber(c0.q));
    }
  }
  const disc = c1.f * c1.f - 4 * c2.f * c0.f;
  const scale = c1.f * c1.f + Math.abs(4 * c2.f * c0.f);
  if (disc < -1e-12 * scale) return [];
  if (Math.abs(disc) <= 1e-12 * scale) return [real(null, -c1.f / (2 * c2.f))];
  return floatPair(c1.f, Math.sqrt(disc), 2 * c2.f, c0.f);
}

/** (-b ± s) / 2a without cancellation: one root from the formula, the other from c / (a r). */
function floatPair(b: number, s: number, twoA: number, c: number): Real[] {
  const q = -(b + Math.sign(b || 1) * s) / 2;
  const r1 = q / (twoA / 2);
  const r2 = q !== 0 ? c / q : -r1;
  return [real(null, Math.min(r1, r2)), real(null, Math.max(r1, r2))];
}

/** Sign of p at x: -1, 0 or 1 (exact when possible, else zero within a relative tolerance). */
function signAt(p: Poly, x: Real): number {
  if (x.q && p.every((c) => c.q)) {
    let acc: Q.Rational | null = { n: 0n, d: 1n };
    for (let k = p.length - 1; k >= 0 && acc; k--) {
      const t: Q.Rational | null = Q.mul(acc, x.q);
      acc = t && Q.add(t, p[k]!.q!);
    }
    if (acc) return acc.n === 0n ? 0 : acc.n < 0n ? -1 : 1;
  }
  let v = 0;
  let scale = 0;
  for (let k = p.length - 1; k >= 0; k--) {
    v = v * x.v + p[k]!.f;
    scale = scale * Math.abs(x.v) + Math.abs(p[k]!.f);
  }
  if (Math.abs(v) <= ZERO_TOL * Math.max(scale, 1e-300)) return 0;
  return v < 0 ? -1 : 1;
}

function holds(op: IneqOp, sign: number): boolean {
  switch (op) {
    case '<': return sign < 0;
    case '≤': return sign <= 0;
    case '>': return sign > 0;
    case '≥': return sign >= 0;
    case '=': return sign === 0;
    case '≠': return sign !== 0;
  }
}

function absNodes(node: Node, out: Node[]): boolean {
  switch (node.t) {
    case 'call':
      if (node.fn === 'abs') {
        const inner: Node[] = [];
        if (!absNodes(node.args[0]!, inner) || inner.length > 0) return false;
        out.push(node);
        return true;
      }
      return node.args.every((a) => absNodes(a, out));
    case 'neg':
    case 'fact':
      return absNodes(node.a, out);
    case 'add': case 'sub': case 'mul': case 'div': case 'pow':
      return absNodes(node.a, out) && absNodes(node.b, out);
    case 'mat':
      return false;
    default:
      return true;
  }
}

/** Sorted, with points closer than SAME_POINT (relative) merged, exact ones preferred. */
function uniquePoints(points: Real[]): Real[] {
  const sorted = [...points].sort((a, b) => a.v - b.v);
  const out: Real[] = [];
  for (const p of sorted) {
    const prev = out[out.length - 1];
    if (prev && Math.abs(prev.v - p.v) <= SAME_POINT * Math.max(1, Math.abs(p.v))) {
      if (!prev.q && p.q) out[out.length - 1] = p;
      continue;
    }
    out.push(p);
  }
  return out;
}

/**
 * The set of x where `predicate` holds, or null when it is outside the decidable class
 * (see the file header) or mentions another variable.
 */
export function solveSet(predicate: Predicate, x: string): RealSet | null {
  const atoms = predicate.flat();
  if (atoms.length === 0) return null;
  const abs: Node[] = [];
  for (const a of atoms) if (!absNodes(a.f, abs)) return null;
  if (abs.length > MAX_ABS) return null;

  // Pieces on which every |g| has a constant sign.
  const breaks: Real[] = [];
  for (const node of abs) {
    if (node.t !== 'call') return null;
    const g = toPoly(node.args[0]!, x, new Map());
    if (!g) return null;
    breaks.push(...roots(g));
  }
  const cuts = uniquePoints(breaks);
  const inside = (k: number): Real => {
    const lo = cuts[k - 1];
    const hi = cuts[k];
    if (!lo && !hi) return real(null, 0.5);
    if (!lo) return real(null, hi!.v - 1 - Math.abs(hi!.v));
    if (!hi) return real(null, lo.v + 1 + Math.abs(lo.v));
    return real(null, (lo.v + hi.v) / 2);
  };
  const pieces: { lo: number; hi: number; polys: Poly[] }[] = [];
  for (let k = 0; k <= cuts.length; k++) {
    const m = inside(k);
    const signs = new Map<Node, number>();
    for (const node of abs) {
      const g = toPoly((node as Extract<Node, { t: 'call' }>).args[0]!, x, new Map())!;
      signs.set(node, signAt(g, m) < 0 ? -1 : 1);
    }
    const polys: Poly[] = [];
    for (const a of atoms) {
      const p = toPoly(a.f, x, signs);
      if (!p) return null;
      polys.push(p);
    }
    pieces.push({ lo: cuts[k - 1]?.v ?? -Infinity, hi: cuts[k]?.v ?? Infinity, polys });
  }

  // Candidate points: every cut and every atom root inside its piece.
  const candidates: Real[] = [...cuts];
  for (const piece of pieces) {
    for (const p of piece.polys) {
      for (const r of roots(p)) {
        const tol = SAME_POINT * Math.max(1, Math.abs(r.v));
        if (r.v >= piece.lo - tol && r.v <= piece.hi + tol) candidates.push(r);
      }
    }
  }
  const points = uniquePoints(candidates);

  const index = new Map(atoms.map((a, i) => [a, i] as const));
  const pieceOf = (v: number) => {
    const k = pieces.findIndex((p) => v <= p.hi + SAME_POINT * Math.max(1, Math.abs(v)));
    return pieces[k < 0 ? pieces.length - 1 : k]!;
  };
  const truth = (at: Real): boolean => {
    const piece = pieceOf(at.v);
    return predicate.some((conj) => conj.length > 0 && conj.every((a) => holds(a.op, signAt(piece.polys[index.get(a)!]!, at))));
  };

  // Alternate gaps and points from left to right: gap 0, point 0, gap 1, ..., gap n.
  const gapSample = (k: number): Real => {
    const lo = points[k - 1];
    const hi = points[k];
    if (!lo && !hi) return real(null, 0.5);
    if (!lo) return real(null, hi!.v - 1 - Math.abs(hi!.v));
    if (!hi) return real(null, lo.v + 1 + Math.abs(lo.v));
    return real(null, (lo.v + hi.v) / 2);
  };
  // Gap 0, point 0, gap 1, point 1, ..., gap n, from left to right.
  const segments: { point: Real | null; truth: boolean }[] = [];
  for (let k = 0; k <= points.length; k++) {
    segments.push({ point: null, truth: truth(gapSample(k)) });
    if (k < points.length) segments.push({ point: points[k]!, truth: truth(points[k]!) });
  }
  const out: RealSet = [];
  let open: { lo: number; loClosed: boolean } | null = null;
  segments.forEach((seg, i) => {
    if (seg.truth && !open) {
      // A true gap starts just after the point before it (or at -∞).
      const before = i > 0 ? segments[i - 1]!.point : null;
      open = seg.point ? { lo: seg.point.v, loClosed: true } : { lo: before ? before.v : -Infinity, loClosed: false };
    } else if (!seg.truth && open) {
      // A false point ends the piece just before it; a false gap ends it at the point before.
      const hi = seg.point ? seg.point.v : segments[i - 1]!.point!.v;
      out.push({ lo: open.lo, loClosed: open.loClosed, hi, hiClosed: !seg.point });
      open = null;
    }
  });
  if (open) out.push({ lo: (open as { lo: number }).lo, loClosed: (open as { loClosed: boolean }).loClosed, hi: Infinity, hiClosed: false });
  return out;
}

// ---- comparing sets -----------------------------------------------------------------------

const samePoint = (a: number, b: number) =>
  a === b || (Number.isFinite(a) && Number.isFinite(b) && Math.abs(a - b) <= SET_TOL * Math.max(1, Math.abs(a), Math.abs(b)));

/** Sorts pieces and merges overlapping or touching ones (`[1, 2] ∪ (2, 3)` = `[1, 3)`). */
export function normalizeSet(pieces: RealSet): RealSet {
  const sorted = pieces
    .filter((p) => p.lo < p.hi || (samePoint(p.lo, p.hi) && p.loClosed && p.hiClosed))
    .sort((a, b) => a.lo - b.lo || Number(b.loClosed) - Number(a.loClosed));
  const out: Piece[] = [];
  for (const p of sorted) {
    const prev = out[out.length - 1];
    if (prev && (p.lo < prev.hi || (samePoint(p.lo, prev.hi) && (p.loClosed || prev.hiClosed)))) {
      if (p.hi > prev.hi || (samePoint(p.hi, prev.hi) && p.hiClosed)) {
        prev.hi = p.hi;
        prev.hiClosed = samePoint(p.hi, prev.hi) && prev.hiClosed ? true : p.hiClosed;
      }
      continue;
    }
    out.push({ ...p });
  }
  for (const p of out) {
    if (!Number.isFinite(p.lo)) p.loClosed = false;
    if (!Number.isFinite(p.hi)) p.hiClosed = false;
  }
  return out;
}

/** The same set, end points equal to 1e-9 relative. */
export function sameSet(a: RealSet, b: RealSet): boolean {
  const x = normalizeSet(a);
  const y = normalizeSet(b);
  return x.length === y.length && x.every((p, i) => {
    const q = y[i]!;
    return samePoint(p.lo, q.lo) && samePoint(p.hi, q.hi) && p.loClosed === q.loClosed && p.hiClosed === q.hiClosed;
  });
}
