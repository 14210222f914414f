/**
 * Equivalence of two parsed answers (gold first: the relation rules are not symmetric,
 * following Math-Verify's `verify(gold, pred)`).
 *
 * Numbers:
 * - both exact (integers, fractions, terminating decimals, + - * / and integer powers):
 *   equal as rationals, with BigInt arithmetic (`1000.0` = `1000`, `10/4` = `5/2`);
 * - neither side written with a decimal point but irrational or complex (`\sqrt8` vs
 *   `2\sqrt2`, `3+2i`): equal in complex floating point to 1e-9 relative;
 * - a bare decimal against an exact value (`0.333333` vs `1/3`, `3.14159` vs `\pi`): the
 *   decimal must be the value rounded or truncated at its last digit (it differs by less
 *   than one unit there: `1000.01` never matches `1000`) AND agree to `relTol` relative
 *   (default 1e-6, about six significant digits: `1/3` vs `0.33` fails);
 * - a gold bare decimal with two or more significant digits also takes an exact prediction
 *   that rounds to it at the gold's last digit (`0.67` vs `\frac23`; not `0.66`);
 * - two bare decimals: equal as written numbers (`2.50` = `2.5`, `16386.17` != `16386.169`);
 * - decimals inside larger expressions: agree to `relTol` relative.
 * Expressions with variables: equal at random points (seeded `Rng`; variables drawn in
 * ±[0.3, 2.7]; a point where one side is real and the other not is skipped, so `x^{2/3}`
 * matches `\sqrt[3]{x}^2` while `\sqrt{x^2}` does not match `x`), with mathjs
 * `simplify(a - b) == 0` as the fallback when too few points evaluate.
 * Equations and inequalities: equal when `lhs - rhs` of one is a constant multiple of the
 * other's (positive multiple for inequalities, after turning `>` around), so
 * `2x+4y-3=0` matches `y=-x/2+3/4` and `5 \ge x` matches `x \le 5`.
 * Inequalities against sets: simple ones by their written end points, others through the
 * exact one-variable solver in `solve-set.ts` (`|x - 1| > 2` vs `(-\infty,-1) \cup (3,\infty)`).
 * Ratios part by part, by proportion, or (two parts) as a quotient; named quantities
 * (`PQ = 7`, `g(t) = 3`) answer with their value, like assignments.
 */
import { Rng } from '../../src/core/rng.ts';
import * as Q from './rational.ts';
import {
  bareDecimal, containsInfinity, countNodes, evalComplex, evalExact, hasDecimal, simplifiesToZero,
  toText, variables, type Complex, type Node, type NumericValue,
} from './expr.ts';
import type { RelOp, Value } from './parse.ts';
import { normalizeSet, sameSet, solveSet, type Atom, type Predicate, type RealSet } from './solve-set.ts';

/** Relative tolerance between two exact forms evaluated in floating point. */
export const TIGHT_TOL = 1e-9;
const ABS_FLOOR = 1e-12;
/** Seed of the point sampler; fixed, so a verdict never changes between runs. */
const SAMPLE_SEED = 0x6d617468;
const SAMPLE_ATTEMPTS = 16;
const SAMPLE_WANTED = 6;
const SAMPLE_MIN_VALID = 3;
const SIMPLIFY_MAX_NODES = 60;
const MAX_MATCH_ITEMS = 64;
/** Significant digits a gold decimal needs before it counts as a rounded value. */
const MIN_ROUNDED_DIGITS = 2;
/** A gold decimal whose reduced denominator is at most this (halves, fifths, twentieths) is exact. */
const MAX_EXACT_LOOKING_DENOMINATOR = 20n;

export class VerifyTimeout extends Error {
  override name = 'VerifyTimeout';
}

/** A cooperative time limit, checked between the steps of one verification. */
export class Deadline {
  private readonly end: number;

  constructor(readonly ms: number) {
    this.end = performance.now() + ms;
  }

  check(): void {
    if (performance.now() > this.end) throw new VerifyTimeout(`math check exceeded ${this.ms} ms`);
  }
}

export interface CompareContext {
  relTol: number;
  deadline: Deadline;
  /**
   * Also compare a gold set with a predicted inequality (`[1, 4]` vs `1 \le t \le 4`), as
   * Math-Verify's `allow_set_relation_comp`. A gold inequality always takes a predicted set.
   */
  allowSetRelation?: boolean;
}

// ---- helpers ----------------------------------------------------------------------------

const last = (v: { terms: Value[] }) => v.terms[v.terms.length - 1]!;
const isCollection = (v: Value): v is Extract<Value, { items: Value[] }> =>
  v.kind === 'tuple' || v.kind === 'list' || v.kind === 'set';

function symbolName(v: Value): string | null {
  return v.kind === 'expr' && v.node.t === 'sym' ? v.node.name : null;
}

/** `x = ...`, `(p, q) = ...`: an equation chain whose left end is only names. */
function isAssignment(v: Value): v is Extract<Value, { kind: 'relation' }> {
  if (v.kind !== 'relation' || v.ops.some((o) => o !== '=')) return false;
  const lhs = v.terms[0]!;
  if (symbolName(lhs) !== null) return true;
  return lhs.kind === 'tuple' && lhs.items.every((x) => symbolName(x) !== null);
}

/**
 * The value `pred` assigns, arranged to `gold`'s unknowns, or null when they assign
 * different unknowns: `(y, x) = (2, 1)` answers `(x, y) = (1, 2)`.
 */
function alignedValue(gold: Extract<Value, { kind: 'relation' }>, pred: Extract<Value, { kind: 'relation' }>): Value | null {
  const a = gold.terms[0]!;
  const b = pred.terms[0]!;
  const value = last(pred);
  const na = symbolName(a);
  if (na !== null) return na === symbolName(b) ? value : null;
  if (a.kind !== 'tuple' || b.kind !== 'tuple' || a.items.length !== b.items.length) return null;
  const gNames = a.items.map(symbolName);
  const pNames = b.items.map(symbolName);
  if (gNames.every((n, i) => n === pNames[i])) return value;
  if (value.kind !== 'tuple' || value.items.length !== pNames.length || new Set(pNames).size !== pNames.length) return null;
  const order = gNames.map((n) => pNames.indexOf(n));
  if (order.some((j) => j < 0)) return null;
  return { kind: 'tuple', items: order.map((j) => value.items[j]!) };
}

function magnitude(z: Complex): number {
  return Math.hypot(z.re, z.im);
}

function close(a: Complex, b: Complex, tol: number): boolean {
  const diff = Math.hypot(a.re - b.re, a.im - b.im);
  return diff <= tol * Math.max(magnitude(a), magnitude(b)) * (1 + 1e-9) || diff <= ABS_FLOOR;
}

const finite = (z: Complex) => Number.isFinite(z.re) && Number.isFinite(z.im);
const isReal = (z: Complex) => Math.abs(z.im) <= TIGHT_TOL * Math.max(1, Math.abs(z.re));

function components(v: NumericValue): Complex[] {
  return v.kind === 'scalar' ? [v.z] : v.z;
}

function sameShape(a: NumericValue, b: NumericValue): boolean {
  if (a.kind !== b.kind) return false;
  if (a.kind === 'scalar' || b.kind === 'scalar') return true;
  return a.shape.length === b.shape.length && a.shape.every((d, i) => d === b.shape[i]);
}

// ---- entry point ---------------------------------------------------------------------------

/** True when `pred` is an acceptable answer for `gold`. */
export function equivalent(gold: Value, pred: Value, ctx: CompareContext): boolean {
  ctx.deadline.check();

  if (gold.kind === 'relation' && pred.kind === 'relation') {
    if (isAssignment(gold) && isAssignment(pred)) {
      const value = alignedValue(gold, pred);
      return value !== null && equivalent(last(gold), value, ctx);
    }
    return relationsEquivalent(gold, pred, ctx) || sameSolutionSet(gold, pred, ctx);
  }
  if (pred.kind === 'relation') {
    // `k = 1/3` answers `1/3`; the value after the last `=` is the prediction.
    if (pred.ops.every((o) => o === '=')) return equivalent(gold, last(pred), ctx);
    // A gold set against a predicted inequality: only when asked (Math-Verify's default).
    if (isSetLike(gold)) return ctx.allowSetRelation === true && inequalityMatchesSet(pred, gold, false, ctx);
    return isInequalityList(gold) && sameSolutionSet(gold, pred, ctx);
  }
  if (gold.kind === 'relation') {
    // `x = 3`, `PQ = 7`, `g(t) = 3`: a bare prediction answers with the value.
    if (gold.named || isAssignment(gold)) return equivalent(last(gold), pred, ctx);
    if (isSetLike(pred)) return inequalityMatchesSet(gold, pred, true, ctx);
    return isInequalityList(pred) && sameSolutionSet(gold, pred, ctx);
  }
  // `x < -1 or x > 3` (a list of inequalities) against a union of intervals.
  if (isInequalityList(gold) && isSetLike(pred)) return inequalityMatchesSet(gold, pred, true, ctx);
  if (isInequalityList(pred) && isSetLike(gold)) return ctx.allowSetRelation === true && inequalityMatchesSet(pred, gold, false, ctx);

  if (gold.kind === 'raw' || pred.kind === 'raw') {
    return gold.kind === 'raw' && pred.kind === 'raw' && gold.text === pred.text;
  }
  if (gold.kind === 'text' || pred.kind === 'text') return textEquivalent(gold, pred);
  if (gold.kind === 'ratio' || pred.kind === 'ratio') return ratioEquivalent(gold, pred, ctx);

  // A single value equals a one-element set, list or tuple.
  if (gold.kind === 'expr' && isCollection(pred) && pred.items.length === 1) return equivalent(gold, pred.items[0]!, ctx);
  if (pred.kind === 'expr' && isCollection(gold) && gold.items.length === 1) return equivalent(gold.items[0]!, pred, ctx);

  switch (gold.kind) {
    case 'expr':
      return pred.kind === 'expr' && exprEquivalent(gold, pred, ctx);
    case 'set':
      // A set answer may be written in any order, even in parentheses: `\{1, 2\}` = `(2, 1)`.
      return isCollection(pred) && unorderedEqual(gold.items, pred.items, ctx);
    case 'list':
      if (pred.kind === 'set' || pred.kind === 'list') return unorderedEqual(gold.items, pred.items, ctx);
      return pred.kind === 'tuple' && orderedEqual(gold.items, pred.items, ctx);
    case 'tuple':
      if (pred.kind === 'tuple' || pred.kind === 'list') return orderedEqual(gold.items, pred.items, ctx);
      return pred.kind === 'interval' && openIntervalMatchesPair(pred, gold.items, ctx);
    case 'interval':
      if (pred.kind === 'interval') {
        return gold.loOpen === pred.loOpen && gold.hiOpen === pred.hiOpen &&
          equivalent(gold.lo, pred.lo, ctx) && equivalent(gold.hi, pred.hi, ctx);
      }
      return (pred.kind === 'tuple' || pred.kind === 'list') && openIntervalMatchesPair(gold, pred.items, ctx);
    case 'union':
      return pred.kind === 'union' && unorderedEqual(gold.parts, pred.parts, ctx);
  }
}

const exprOf = (node: Node): Value => ({ kind: 'expr', node, percent: false });

/**
 * Ratios: `2:5` = `2:5`, = `4:10` (the same proportion, when no part is zero or unknown) and,
 * with two parts, = `\frac{2}{5}` (as Math-Verify reads `a:b`). `12:00` only equals `12:00`.
 */
function ratioEquivalent(gold: Value, pred: Value, ctx: CompareContext): boolean {
  if (gold.kind === 'ratio' && pred.kind === 'ratio') {
    if (gold.items.length !== pred.items.length) return false;
    if (orderedEqual(gold.items, pred.items, ctx)) return true;
    const nodes = (v: Value[]) => v.map((x) => (x.kind === 'expr' ? x.node : null));
    const a = nodes(gold.items);
    const b = nodes(pred.items);
    if (a.some((n) => n === null) || b.some((n) => n === null)) return false;
    const an = a as Node[];
    const bn = b as Node[];
    const nonZero = (n: Node) => {
      if (variables(n).size > 0) return false;
      const z = evalComplex(n);
      return z !== null && z.kind === 'scalar' && finite(z.z) && magnitude(z.z) > ABS_FLOOR;
    };
    if (![...an, ...bn].every(nonZero)) return false;
    // a_i / a_0 = b_i / b_0 for every part.
    return an.every((x, i) => i === 0 || exprEqual({ t: 'mul', a: x, b: bn[0]! }, { t: 'mul', a: bn[i]!, b: an[0]! }, ctx));
  }
  const ratio = gold.kind === 'ratio' ? gold : (pred as Extract<Value, { kind: 'ratio' }>);
  const other = gold.kind === 'ratio' ? pred : gold;
  if (ratio.items.length !== 2 || other.kind !== 'expr') return false;
  const [num, den] = ratio.items as [Value, Value];
  if (num.kind !== 'expr' || den.kind !== 'expr') return false;
  const quotient = exprOf({ t: 'div', a: num.node, b: den.node });
  return gold.kind === 'ratio' ? equivalent(quotient, other, ctx) : equivalent(other, quotient, ctx);
}

/** `(1, 2)` is both a pair and an open interval (Math-Verify reads it as the interval). */
function openIntervalMatchesPair(iv: Extract<Value, { kind: 'interval' }>, items: Value[], ctx: CompareContext): boolean {
  return iv.loOpen && iv.hiOpen && items.length === 2 && equivalent(iv.lo, items[0]!, ctx) && equivalent(iv.hi, items[1]!, ctx);
}

function orderedEqual(a: Value[], b: Value[], ctx: CompareContext): boolean {
  return a.length === b.length && a.every((x, i) => equivalent(x, b[i]!, ctx));
}

/** Every element matched to a distinct element of the other side (bipartite matching). */
function unorderedEqual(a: Value[], b: Value[], ctx: CompareContext): boolean {
  if (a.length !== b.length) return false;
  if (a.length > MAX_MATCH_ITEMS) return false;
  const eq: (boolean | undefined)[][] = a.map(() => []);
  const test = (i: number, j: number) => (eq[i]![j] ??= equivalent(a[i]!, b[j]!, ctx));
  const owner: number[] = new Array(b.length).fill(-1);
  const tryAssign = (i: number, seen: boolean[]): boolean => {
    for (let j = 0; j < b.length; j++) {
      if (seen[j] || !test(i, j)) continue;
      seen[j] = true;
      if (owner[j] === -1 || tryAssign(owner[j]!, seen)) {
        owner[j] = i;
        return true;
      }
    }
    return false;
  };
  for (let i = 0; i < a.length; i++) {
    if (!tryAssign(i, new Array(b.length).fill(false))) return false;
  }
  return true;
}

function normWords(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, ' ').trim();
}

function textEquivalent(a: Value, b: Value): boolean {
  const ta = a.kind === 'text' ? a.text : symbolName(a);
  const tb = b.kind === 'text' ? b.text : symbolName(b);
  if (ta === null || tb === null) return false;
  // Single letters keep their case (x is not X); words do not.
  if (ta.length === 1 || tb.length === 1) return ta === tb;
  return normWords(ta) === normWords(tb);
}

// ---- expressions ------------------------------------------------------------------------

function exprEquivalent(
  g: Extract<Value, { kind: 'expr' }>,
  p: Extract<Value, { kind: 'expr' }>,
  ctx: CompareContext,
): boolean {
  if (exprEqual(g.node, p.node, ctx)) return true;
  // `28\%` matches 28 (Math-Verify) and also 0.28 (its value).
  const per100 = (n: Node): Node => ({ t: 'div', a: n, b: { t: 'num', text: '100' } });
  if (g.percent && !p.percent && exprEqual(per100(g.node), p.node, ctx)) return true;
  if (p.percent && !g.percent && exprEqual(g.node, per100(p.node), ctx)) return true;
  // `66.67\%` answered by `\frac23`: the gold's digits, in percent.
  if (g.percent && !p.percent && bareDecimal(g.node) !== null) {
    if (exprEqual(g.node, { t: 'mul', a: p.node, b: { t: 'num', text: '100' } }, ctx)) return true;
  }
  // A predicted `12m`, `4.5s`, `9.8\mathrm{m}`, `35 cm` against a bare number: the unit goes.
  // (Units set off by a space are removed from both sides earlier, in normalize.ts; a gold
  // `2m` stays an expression in m.)
  if (variables(g.node).size === 0 && variables(p.node).size > 0) {
    const value = withoutUnit(p.node);
    if (value) return exprEqual(g.node, value, ctx);
  }
  return false;
}

/**
 * Units that a number may carry inside an answer (`\boxed{12 m}`, `9.8 m/s^2`, `35 cm`);
 * single letters only count in this position, after a number, as the whole rest.
 */
const UNITS = new Set([
  'm', 's', 'g', 'h', 'L', 'l', 'N', 'J', 'W', 'V', 'K', 'Pa', 'Hz',
  'km', 'cm', 'mm', 'nm', 'kg', 'mg', 'ml', 'mL', 'kW', 'kJ', 'kN', 'ms', 'min', 'hr', 'kPa', 'mph', 'ft', 'yd',
]);

/** A product of names read as one unit (`c m` -> `cm`), or null. */
function unitText(n: Node): string | null {
  if (n.t === 'sym') return n.name;
  if (n.t === 'mul') {
    const a = unitText(n.a);
    const b = a && unitText(n.b);
    return a && b ? a + b : null;
  }
  return null;
}

function isUnit(n: Node): boolean {
  if (n.t === 'pow') {
    const e = n.b.t === 'num' ? n.b.text : null;
    return (e === '2' || e === '3') && isUnit(n.a);
  }
  if (n.t === 'div') return isUnit(n.a) && isUnit(n.b);
  const t = unitText(n);
  return t !== null && UNITS.has(t);
}

/**
 * The number in `number · unit` (`12 m`, `\frac32 cm`, `9.8 m/s^2`), or null when the
 * expression is anything else.
 */
function withoutUnit(n: Node): Node | null {
  // `9.8 m / s^2` parses as ((9.8 · m) / s^2): peel the divisors first.
  if (n.t === 'div' && isUnit(n.b)) {
    const inner = withoutUnit(n.a);
    return inner;
  }
  if (n.t !== 'mul') return null;
  if (variables(n.a).size === 0 && isUnit(n.b)) return n.a;
  // `12 k m`: ((12 · k) · m) — the unit spans several factors.
  const factors: Node[] = [];
  let cur: Node = n;
  while (cur.t === 'mul' && variables(cur.b).size > 0) {
    factors.unshift(cur.b);
    cur = cur.a;
  }
  if (variables(cur).size > 0 || factors.length === 0) return null;
  const unit = factors.reduce((acc, f) => ({ t: 'mul', a: acc, b: f }) as Node);
  return isUnit(unit) ? cur : null;
}

export function exprEqual(a: Node, b: Node, ctx: CompareContext): boolean {
  if (a.t === 'mat' && b.t === 'mat') {
    if (a.rows.length !== b.rows.length || a.rows[0]!.length !== b.rows[0]!.length) return false;
    return a.rows.every((r, i) => r.every((c, j) => exprEqual(c, b.rows[i]![j]!, ctx)));
  }
  const vars = variables(a, variables(b));
  // Numbers are always evaluated (so an overflowing tower like 9^9^9^9^9 never passes,
  // even against itself); formulas that read the same are equal.
  if (vars.size === 0) return numericEqual(a, b, ctx);
  if (toText(a) === toText(b)) return true;
  return symbolicEqual(a, b, [...vars].sort(), ctx);
}

function numericEqual(a: Node, b: Node, ctx: CompareContext): boolean {
  const tick = () => ctx.deadline.check();
  const ea = evalExact(a, tick);
  const eb = evalExact(b, tick);
  if (ea && eb && Q.equals(ea, eb)) return true;
  const approxA = hasDecimal(a);
  const approxB = hasDecimal(b);
  if (ea && eb && !approxA && !approxB) return false;

  const va = evalComplex(a);
  const vb = evalComplex(b);
  if (!va || !vb || !sameShape(va, vb)) return false;
  const za = components(va);
  const zb = components(vb);
  if (!za.every(finite) || !zb.every(finite)) {
    // Only an answer that names infinity may evaluate to it (9^9^9^9 is not infinity).
    if (!containsInfinity(a) || !containsInfinity(b)) return false;
    return za.every((z, i) => isReal(z) && isReal(zb[i]!) && z.re === zb[i]!.re);
  }
  if (va.kind === 'matrix') return za.every((z, i) => close(z, zb[i]!, approxA || approxB ? ctx.relTol : TIGHT_TOL));

  const z1 = za[0]!;
  const z2 = zb[0]!;
  if (!approxA && !approxB) return close(z1, z2, TIGHT_TOL);
  const da = bareDecimal(a);
  const db = bareDecimal(b);
  if (da !== null && db !== null) return false; // two written decimals were compared exactly
  // A gold decimal also accepts the exact value rounded at the gold's last digit (`0.67` is
  // answered by `\frac23`); a predicted decimal must carry about six digits.
  if (da !== null && !approxB) return decimalMatches(da, eb, z2, ctx.relTol) || roundsTo(da, eb, z2);
  if (db !== null && !approxA) return decimalMatches(db, ea, z1, ctx.relTol);
  return close(z1, z2, ctx.relTol);
}

/**
 * A written decimal `d` approximates the exact value (`exact`, or `z` when irrational) when
 * it is the value rounded or truncated at d's last digit, and within `relTol` relative.
 */
function decimalMatches(d: string, exact: Q.Rational | null, z: Complex, relTol: number): boolean {
  if (!isReal(z)) return false;
  const places = (d.split('.')[1] ?? '').length;
  let diff: number;
  if (exact) {
    const dq = Q.parseDecimal(d);
    const delta = dq && Q.sub(dq, exact);
    const ulp = Q.rational(1n, 10n ** BigInt(places));
    if (!delta || !ulp || Q.compare(Q.abs(delta), ulp) >= 0) return false;
    diff = Math.abs(Q.toNumber(delta));
  } else {
    diff = Math.abs(Number(d) - z.re);
    if (!(diff < 10 ** -places)) return false;
  }
  return diff <= relTol * Math.abs(z.re) * (1 + 1e-9);
}

/**
 * The exact value (`exact`, or `z` when irrational) rounded to the places written in `d` is
 * `d`: `\frac23` rounds to `0.67` and `0.667`, never to `0.66`. The decimal needs two
 * significant digits or more and must not be a multiple of 0.05: `0.5`, `0.3` or `1.25` may
 * well be exact, so `\frac{8}{15}`, `\frac13` and `\frac{5}{4} + 0.001` do not answer them.
 */
function roundsTo(d: string, exact: Q.Rational | null, z: Complex): boolean {
  if (!isReal(z)) return false;
  const dq = Q.parseDecimal(d);
  if (!dq || dq.n === 0n) return false;
  if (d.replace(/^-/, '').replace('.', '').replace(/^0+/, '').length < MIN_ROUNDED_DIGITS) return false;
  // A multiple of 0.05 (`1.5`, `0.25`, `2.35`) reads as an exact value, not a rounded one.
  if (dq.d <= MAX_EXACT_LOOKING_DENOMINATOR) return false;
  const places = (d.split('.')[1] ?? '').length;
  const half = Q.rational(1n, 2n * 10n ** BigInt(places));
  if (!half) return false;
  if (exact) {
    const delta = Q.sub(dq, exact);
    return delta !== null && Q.compare(Q.abs(delta), half) <= 0;
  }
  return Math.abs(Q.toNumber(dq) - z.re) <= Q.toNumber(half) * (1 + 1e-9);
}

type Verdict = 'equal' | 'different' | 'unknown';

function samplePoint(rng: Rng, vars: string[], attempt: number): Map<string, number> {
  const env = new Map<string, number>();
  for (const v of vars) {
    const magnitude = rng.uniformRange(0.3, 2.7);
    // The first points are positive (every root and log is real there); later ones mix signs.
    env.set(v, attempt < 3 || rng.uniform() < 0.5 ? magnitude : -magnitude);
  }
  return env;
}

function sampleCompare(a: Node, b: Node, vars: string[], tol: number, ctx: CompareContext): Verdict {
  const rng = new Rng(SAMPLE_SEED);
  let valid = 0;
  for (let attempt = 0; attempt < SAMPLE_ATTEMPTS && valid < SAMPLE_WANTED; attempt++) {
    ctx.deadline.check();
    const env = samplePoint(rng, vars, attempt);
    const va = evalComplex(a, env);
    const vb = evalComplex(b, env);
    if (!va || !vb) continue;
    if (!sameShape(va, vb)) return 'different';
    const za = components(va);
    const zb = components(vb);
    if (!za.every(finite) || !zb.every(finite)) continue;
    if (za.some((z, i) => isReal(z) !== isReal(zb[i]!))) continue;
    if (za.some((z, i) => !close(z, zb[i]!, tol))) return 'different';
    valid++;
  }
  return valid >= SAMPLE_MIN_VALID ? 'equal' : 'unknown';
}

function symbolicEqual(a: Node, b: Node, vars: string[], ctx: CompareContext): boolean {
  const tol = hasDecimal(a) || hasDecimal(b) ? ctx.relTol : TIGHT_TOL;
  const verdict = sampleCompare(a, b, vars, tol, ctx);
  if (verdict !== 'unknown') return verdict === 'equal';
  ctx.deadline.check();
  return countNodes(a) + countNodes(b) <= SIMPLIFY_MAX_NODES && simplifiesToZero(a, b);
}

// ---- relations ----------------------------------------------------------------------------

type RelClass = 'eq' | 'ne' | 'strict' | 'weak';
const relClass = (op: RelOp): RelClass =>
  op === '=' ? 'eq' : op === '≠' ? 'ne' : op === '<' || op === '>' ? 'strict' : 'weak';
const FLIP: Record<RelOp, RelOp> = { '=': '=', '≠': '≠', '<': '>', '>': '<', '≤': '≥', '≥': '≤' };

/** lhs - rhs, oriented so that the relation says "f > 0" (or ≥, =, ≠). */
function relationFunction(lhs: Node, rhs: Node, op: RelOp): Node {
  return op === '<' || op === '≤' ? { t: 'sub', a: rhs, b: lhs } : { t: 'sub', a: lhs, b: rhs };
}

function relationsEquivalent(
  g: Extract<Value, { kind: 'relation' }>,
  p: Extract<Value, { kind: 'relation' }>,
  ctx: CompareContext,
): boolean {
  const allExpr = (v: typeof g) => v.terms.every((t) => t.kind === 'expr');
  if (g.terms.length === 2 && p.terms.length === 2 && allExpr(g) && allExpr(p)) {
    const gop = g.ops[0]!;
    const pop = p.ops[0]!;
    if (relClass(gop) !== relClass(pop)) return false;
    const [gl, gr] = g.terms.map((t) => (t as Extract<Value, { kind: 'expr' }>).node) as [Node, Node];
    const [pl, pr] = p.terms.map((t) => (t as Extract<Value, { kind: 'expr' }>).node) as [Node, Node];
    const fg = relationFunction(gl, gr, gop);
    const fp = relationFunction(pl, pr, pop);
    const vars = [...variables(fg, variables(fp))].sort();
    if (vars.length === 0) {
      // Two relations between numbers: compare them side by side.
      if (gop === pop) return exprEqual(gl, pl, ctx) && exprEqual(gr, pr, ctx);
      return FLIP[gop] === pop && exprEqual(gl, pr, ctx) && exprEqual(gr, pl, ctx);
    }
    const inequality = relClass(gop) === 'strict' || relClass(gop) === 'weak';
    return proportional(fg, fp, vars, inequality, ctx);
  }
  const ig = relationToInterval(g);
  const ip = relationToInterval(p);
  if (ig && ip) return ig.variable === ip.variable && equivalent(ig.interval, ip.interval, ctx);
  if (g.ops.length !== p.ops.length || g.ops.some((o, i) => o !== p.ops[i])) return false;
  return g.terms.every((t, i) => equivalent(t, p.terms[i]!, ctx));
}

/** f1 = c * f2 for one constant c != 0 (c > 0 when `positive`), checked at random points. */
function proportional(f1: Node, f2: Node, vars: string[], positive: boolean, ctx: CompareContext): boolean {
  const tol = hasDecimal(f1) || hasDecimal(f2) ? ctx.relTol : 1e-7;
  const rng = new Rng(SAMPLE_SEED);
  const ratios: number[] = [];
  for (let attempt = 0; attempt < SAMPLE_ATTEMPTS && ratios.length < SAMPLE_WANTED; attempt++) {
    ctx.deadline.check();
    const env = samplePoint(rng, vars, attempt);
    const v1 = evalComplex(f1, env);
    const v2 = evalComplex(f2, env);
    if (!v1 || !v2 || v1.kind !== 'scalar' || v2.kind !== 'scalar') continue;
    const [z1, z2] = [v1.z, v2.z];
    if (!finite(z1) || !finite(z2) || !isReal(z1) || !isReal(z2)) continue;
    const zero1 = Math.abs(z1.re) <= ABS_FLOOR * Math.max(1, Math.abs(z2.re));
    const zero2 = Math.abs(z2.re) <= ABS_FLOOR * Math.max(1, Math.abs(z1.re));
    if (zero1 && zero2) continue;
    if (zero1 !== zero2) return false;
    ratios.push(z1.re / z2.re);
  }
  if (ratios.length < SAMPLE_MIN_VALID) return false;
  const r0 = ratios[0]!;
  if (positive && !(r0 > 0)) return false;
  return ratios.every((r) => close({ re: r, im: 0 }, { re: r0, im: 0 }, tol));
}

const INF: Node = { t: 'const', name: 'inf' };
const NEG_INF: Node = { t: 'neg', a: INF };

/**
 * `x > 5` -> (5, ∞), `-2 ≤ x ≤ 7` -> [-2, 7], `3 > x` -> (-∞, 3); null when the relation
 * is not one variable bounded by constants.
 */
function relationToInterval(rel: Extract<Value, { kind: 'relation' }>): { variable: string; interval: Value } | null {
  const nodes = rel.terms.map((t) => (t.kind === 'expr' ? t.node : null));
  if (nodes.some((n) => n === null)) return null;
  const ns = nodes as Node[];
  const isVar = isQuantity;
  const isConst = (n: Node) => variables(n).size === 0;
  const expr = (node: Node): Value => ({ kind: 'expr', node, percent: false });
  const make = (variable: string, lo: Node, hi: Node, loOpen: boolean, hiOpen: boolean) => ({
    variable,
    interval: { kind: 'interval' as const, lo: expr(lo), hi: expr(hi), loOpen, hiOpen },
  });
  if (ns.length === 2) {
    let [l, r] = ns as [Node, Node];
    let op = rel.ops[0]!;
    if (!isVar(l) && isVar(r)) {
      [l, r] = [r, l];
      op = FLIP[op];
    }
    if (!isVar(l) || !isConst(r) || op === '=' || op === '≠') return null;
    const name = toText(l);
    if (op === '<' || op === '≤') return make(name, NEG_INF, r, true, op === '<');
    return make(name, r, INF, op === '>', true);
  }
  if (ns.length === 3) {
    const [lo, x, hi] = ns as [Node, Node, Node];
    const [o1, o2] = rel.ops as [RelOp, RelOp];
    if (!isVar(x) || !isConst(lo) || !isConst(hi)) return null;
    const name = toText(x);
    const up = (o: RelOp) => o === '<' || o === '≤';
    const down = (o: RelOp) => o === '>' || o === '≥';
    if (up(o1) && up(o2)) return make(name, lo, hi, o1 === '<', o2 === '<');
    if (down(o1) && down(o2)) return make(name, hi, lo, o2 === '>', o1 === '>');
  }
  return null;
}

/** A variable, or a named quantity standing for one (`f(x)` read as f·x, `PQ`); not `|x|`. */
function isQuantity(n: Node): boolean {
  if (n.t === 'sym') return true;
  return n.t === 'mul' && isQuantity(n.a) && isQuantity(n.b);
}

// ---- solution sets ----------------------------------------------------------------------------

type Relation = Extract<Value, { kind: 'relation' }>;

const isInequality = (v: Value): v is Relation => v.kind === 'relation' && v.ops.some((o) => o !== '=');

/** `x < -1, x > 3` (read from "x < -1 or x > 3"): a list or set of inequalities. */
function isInequalityList(v: Value): v is Extract<Value, { items: Value[] }> {
  return (v.kind === 'list' || v.kind === 'set') && v.items.length > 1 && v.items.every(isInequality);
}

/** A set of reals written as a set: an interval, a union, `(a, b)` / `a, b` (open), `\{a, b\}`. */
function isSetLike(v: Value): boolean {
  if (v.kind === 'interval' || v.kind === 'union') return true;
  if (v.kind === 'set') return v.items.every((x) => x.kind === 'expr');
  return (v.kind === 'tuple' || v.kind === 'list') && v.items.length === 2 && v.items.every((x) => x.kind === 'expr');
}

const pairAsInterval = (v: Value): Value =>
  (v.kind === 'tuple' || v.kind === 'list') && v.items.length === 2
    ? { kind: 'interval', lo: v.items[0]!, hi: v.items[1]!, loOpen: true, hiOpen: true }
    : v;

/**
 * The solution set of simple inequalities as an interval or union with the exact end points
 * written (`x > 5` -> (5, ∞), `x \ne 2` -> (-∞, 2) ∪ (2, ∞), `x < -1 or x > 3` -> a union of
 * disjoint intervals); null when the inequality is not one quantity against constants.
 */
function simpleSolutionSet(v: Value): { variable: string; set: Value } | null {
  if (v.kind === 'relation') {
    if (v.ops.length === 1 && v.ops[0] === '≠' && v.terms.every((t) => t.kind === 'expr')) {
      const [l, r] = v.terms.map((t) => (t as Extract<Value, { kind: 'expr' }>).node) as [Node, Node];
      const [q, c] = isQuantity(l) && variables(r).size === 0 ? [l, r] : isQuantity(r) && variables(l).size === 0 ? [r, l] : [null, null];
      if (!q || !c) return null;
      const expr = (node: Node): Value => ({ kind: 'expr', node, percent: false });
      return {
        variable: toText(q),
        set: {
          kind: 'union',
          parts: [
            { kind: 'interval', lo: expr(NEG_INF), hi: expr(c), loOpen: true, hiOpen: true },
            { kind: 'interval', lo: expr(c), hi: expr(INF), loOpen: true, hiOpen: true },
          ],
        },
      };
    }
    const r = relationToInterval(v);
    return r && { variable: r.variable, set: r.interval };
  }
  if (!isInequalityList(v)) return null;
  const parts = v.items.map((x) => simpleSolutionSet(x));
  if (parts.some((p) => p === null || p.set.kind !== 'interval') || new Set(parts.map((p) => p!.variable)).size !== 1) return null;
  const sets = parts.map((p) => toRealSet(p!.set));
  if (sets.some((x) => x === null)) return null;
  // Disjoint pieces join into a union ("or"); overlapping ones are left to the solver ("and").
  const all = sets.flatMap((x) => x!);
  if (normalizeSet(all).length !== all.length) return null;
  return { variable: parts[0]!.variable, set: { kind: 'union', parts: parts.map((p) => p!.set) } };
}

/** A relation or a list of them as a predicate in its one variable; null otherwise. */
function predicateOf(v: Value): { predicate: Predicate; variable: string } | null {
  const conjunction = (r: Value): Atom[] | null => {
    if (r.kind !== 'relation' || r.terms.some((t) => t.kind !== 'expr')) return null;
    const nodes = r.terms.map((t) => (t as Extract<Value, { kind: 'expr' }>).node);
    return r.ops.map((op, i) => ({ f: { t: 'sub', a: nodes[i]!, b: nodes[i + 1]! }, op }));
  };
  const conjunctions = v.kind === 'relation' ? [conjunction(v)] : isInequalityList(v) ? v.items.map(conjunction) : [null];
  if (conjunctions.some((c) => c === null)) return null;
  const cs = conjunctions as Atom[][];
  const vars = new Set<string>();
  for (const c of cs) for (const a of c) variables(a.f, vars);
  if (vars.size !== 1) return null;
  const variable = [...vars][0]!;
  if (cs.length === 1) return { predicate: cs, variable };
  // A list reads as "or" when its pieces are disjoint (`x < -1, x > 3`), else as "and".
  const sets = cs.map((c) => solveSet([c], variable));
  if (sets.some((x) => x === null)) return null;
  const all = sets.flatMap((x) => x!);
  return { predicate: normalizeSet(all).length === all.length ? cs : [cs.flat()], variable };
}

/** A set written with constant end points as pieces of reals; null when not constant. */
function toRealSet(v: Value): RealSet | null {
  const num = (x: Value): number | null => {
    if (x.kind !== 'expr' || variables(x.node).size > 0) return null;
    const z = evalComplex(x.node);
    if (!z || z.kind !== 'scalar' || !isReal(z.z) || Number.isNaN(z.z.re)) return null;
    return !Number.isFinite(z.z.re) && !containsInfinity(x.node) ? null : z.z.re;
  };
  const w = pairAsInterval(v);
  if (w.kind === 'interval') {
    const lo = num(w.lo);
    const hi = num(w.hi);
    return lo === null || hi === null ? null : [{ lo, hi, loClosed: !w.loOpen, hiClosed: !w.hiOpen }];
  }
  if (w.kind === 'set') {
    const points = w.items.map(num);
    return points.some((p) => p === null || !Number.isFinite(p)) ? null : points.map((p) => ({ lo: p!, hi: p!, loClosed: true, hiClosed: true }));
  }
  if (w.kind === 'union') {
    const parts = w.parts.map(toRealSet);
    return parts.some((p) => p === null) ? null : parts.flatMap((p) => p!);
  }
  return null;
}

/**
 * An inequality (or a list of them) against a set: `-3 < y < 8` vs `(-3, 8)`,
 * `|x - 1| > 2` vs `(-∞, -1) ∪ (3, ∞)`. Simple inequalities compare their written end points
 * (so the decimal rules apply); others are solved (`solve-set.ts`) when decidable.
 * `relIsGold` keeps the gold-first order of the comparison.
 */
function inequalityMatchesSet(rel: Value, set: Value, relIsGold: boolean, ctx: CompareContext): boolean {
  const simple = simpleSolutionSet(rel);
  if (simple) {
    const written = pairAsInterval(set);
    return relIsGold ? equivalent(simple.set, written, ctx) : equivalent(written, simple.set, ctx);
  }
  const p = predicateOf(rel);
  if (!p) return false;
  ctx.deadline.check();
  const solved = solveSet(p.predicate, p.variable);
  const target = toRealSet(set);
  return solved !== null && target !== null && sameSet(solved, target);
}

/**
 * Two inequalities (or lists of them) in the same variable with the same solution set:
 * `x^2 > 4` and `x < -2 or x > 2`. Equations are never compared this way (see README).
 */
function sameSolutionSet(a: Value, b: Value, ctx: CompareContext): boolean {
  const hasInequality = (v: Value) => (v.kind === 'relation' ? isInequality(v) : isInequalityList(v));
  if (!hasInequality(a) || !hasInequality(b)) return false;
  const pa = predicateOf(a);
  const pb = predicateOf(b);
  if (!pa || !pb || pa.variable !== pb.variable) return false;
  ctx.deadline.check();
  const sa = solveSet(pa.predicate, pa.variable);
  const sb = sa && solveSet(pb.predicate, pb.variable);
  return sa !== null && sb !== null && sameSet(sa, sb);
}
