/**
 * The structure of an answer: what kind of mathematical object it is.
 *
 * After `normalizeAnswer`, the top level of an answer is read as (first rule that applies):
 * - `A \cup B`                          -> union of intervals/sets
 * - `a; b; c` (top-level semicolons)    -> list of the parts
 * - `a, b, c` (top-level commas)        -> list (an unbracketed sequence; compared as a set,
 *                                           like Math-Verify); `x = 1, 2` -> x = list;
 *                                           `x = 2, x = 5` -> x = list; `x = 1, y = 2` ->
 *                                           (x, y) = (1, 2)
 * - `\{a, b\}`                          -> set (`\emptyset` is the empty set)
 * - `(a, b)`                            -> tuple of two, which also matches the open interval
 * - `[a, b]`, `[a, b)`, `(a, b]`        -> interval
 * - `(a, b, c)` / `[a, b, c]`           -> tuple
 * - `a = b = c`, `a ≤ x < b`            -> relation chain (`named` when the left end names
 *                                           a quantity: `PQ = 7`, `g(t) = 3`)
 * - `a:b`, `a:b:c`                      -> ratio
 * - `a \pm b`                           -> set {a + b, a - b}
 * - otherwise one expression (a number, a formula, a matrix)
 * Words become a text value; text that fits none of these is kept as `raw` and can only
 * equal the identical text.
 */
import { MathParseError, parseExpression, splitTopLevel, splitTopLevelBy, type Node } from './expr.ts';
import { normalizeAnswer } from './normalize.ts';

export type RelOp = '=' | '≠' | '<' | '≤' | '>' | '≥';

export type Value =
  | { kind: 'expr'; node: Node; percent: boolean }
  | { kind: 'text'; text: string }
  | { kind: 'tuple' | 'list' | 'set'; items: Value[] }
  | { kind: 'interval'; lo: Value; hi: Value; loOpen: boolean; hiOpen: boolean }
  | { kind: 'union'; parts: Value[] }
  | {
      kind: 'relation';
      ops: RelOp[];
      terms: Value[];
      /**
       * The left end names a quantity rather than stating an equation (`PQ = 7`,
       * `g(t) = 3`, `A:B = 2:5`, `|AC| = 5`): its value is the answer, as for `x = 3`.
       */
      named?: boolean;
    }
  | { kind: 'ratio'; items: Value[] }
  | { kind: 'raw'; text: string };

/** Longest answer (after extraction) that is parsed at all; longer ones are rejected. */
export const MAX_ANSWER_CHARS = 2000;
const MAX_STRUCTURE_DEPTH = 16;
const REL_CHARS = new Set(['=', '≠', '<', '≤', '>', '≥']);

/**
 * Parses one answer string (as returned by `extractAnswer`) into its structure.
 * @param plain the answer came from plain text (enables decimal commas, `1,22` = 1.22)
 * @returns null for an empty or over-long answer
 */
export function parseAnswer(answer: string, plain = false): Value | null {
  if (answer.length > MAX_ANSWER_CHARS) return null;
  const n = normalizeAnswer(answer, plain);
  if (n.isText) return n.text === '' ? null : { kind: 'text', text: n.text };
  if (n.text === '') return null;
  const v = safeStructure(n.text, 0);
  return n.percent ? markPercent(v) : v;
}

function markPercent(v: Value): Value {
  if (v.kind === 'expr') return { ...v, percent: true };
  if (v.kind === 'list' || v.kind === 'set' || v.kind === 'tuple') return { ...v, items: v.items.map(markPercent) };
  if (v.kind === 'relation') return { ...v, terms: v.terms.map(markPercent) };
  if (v.kind === 'ratio') return { ...v, items: v.items.map(markPercent) };
  return v;
}

function raw(text: string): Value {
  return { kind: 'raw', text: text.replace(/\s+/g, '') };
}

/** Index of the bracket closing the one at 0, counting ( [ { and \{ \} alike; -1 if none. */
function closingIndex(s: string): number {
  let depth = 0;
  for (let i = 0; i < s.length; i++) {
    let c = s[i]!;
    if (c === '\\') {
      const next = s[i + 1];
      if (next === '{' || next === '}') {
        c = next;
        i++;
      } else {
        i++;
        continue;
      }
    }
    if (c === '(' || c === '[' || c === '{') depth++;
    else if (c === ')' || c === ']' || c === '}') {
      depth--;
      if (depth === 0) return i;
    }
  }
  return -1;
}

/**
 * Splits at top-level relation characters, returning terms and the operators between them.
 * Unlike list commas, a relation inside a \begin...\end environment splits too.
 */
function splitRelations(s: string): { terms: string[]; ops: RelOp[] } {
  const { parts, seps } = splitTopLevelBy(s, (i) => (REL_CHARS.has(s[i]!) ? 1 : 0), false);
  return { terms: parts, ops: seps as RelOp[] };
}

function parseStructure(s: string, depth: number): Value {
  s = s.trim();
  if (depth > MAX_STRUCTURE_DEPTH) return raw(s);
  if (s === '') throw new MathParseError('empty item');
  if (/^(?:\\emptyset|\\varnothing|\\\{\s*\\\})$/.test(s)) return { kind: 'set', items: [] };

  const unionParts = splitTopLevel(s, '\\cup');
  if (unionParts.length > 1) {
    // In a union, `(a, b)` is the open interval.
    const parts = unionParts.map((p) => {
      const v = safeStructure(p, depth + 1);
      return v.kind === 'tuple' && v.items.length === 2
        ? { kind: 'interval' as const, lo: v.items[0]!, hi: v.items[1]!, loOpen: true, hiOpen: true }
        : v;
    });
    return parts.every((p) => p.kind === 'interval' || p.kind === 'set') ? { kind: 'union', parts } : raw(s);
  }

  // `1; 2; 4`, `p = 5, q = 2; p = 7, q = 2`: semicolons separate the elements of a list.
  const groups = splitTopLevel(s, ';');
  if (groups.length > 1) {
    if (groups.some((x) => x.trim() === '')) return raw(s);
    const values = groups.map((g) => safeStructure(g, depth + 1));
    return { kind: 'list', items: values.flatMap((v) => (v.kind === 'list' && !values.every((w) => w.kind === 'list') ? v.items : [v])) };
  }

  const items = splitTopLevel(s, ',');
  if (items.length > 1) {
    if (items.some((x) => x.trim() === '')) return raw(s);
    // `x = 1, 2`: an assignment whose right side is the list.
    const first = splitRelations(items[0]!);
    const restHasRelation = items.slice(1).some((x) => splitRelations(x).ops.length > 0);
    if (first.ops.length === 1 && first.ops[0] === '=' && !restHasRelation && /^\s*[A-Za-z](?:_\{?\w+\}?)?\s*$/.test(first.terms[0]!)) {
      const lhs = safeStructure(first.terms[0]!, depth + 1);
      const rhsItems = [first.terms[1]!, ...items.slice(1)].flatMap((x) => expandPlusMinus(x, depth + 1));
      return { kind: 'relation', ops: ['='], terms: [lhs, { kind: 'list', items: rhsItems }] };
    }
    return assignmentList(items.flatMap((x) => expandPlusMinus(x, depth + 1)));
  }

  if (s.startsWith('\\{') && s.endsWith('\\}') && closingIndex(s) === s.length - 1) {
    const inner = s.slice(2, -2).trim();
    if (inner === '') return { kind: 'set', items: [] };
    return { kind: 'set', items: splitTopLevel(inner, ',').flatMap((x) => expandPlusMinus(x, depth + 1)) };
  }

  const open = s[0];
  if ((open === '(' || open === '[' || open === '{') && closingIndex(s) === s.length - 1) {
    const close = s[s.length - 1];
    const inner = s.slice(1, -1);
    let parts = splitTopLevel(inner, ',');
    // `(0; -2; 6)`: semicolons between coordinates.
    if (parts.length === 1) parts = splitTopLevel(inner, ';');
    if (parts.length === 1 || open === '{') return parseStructure(inner, depth + 1);
    if (parts.some((x) => x.trim() === '')) return raw(s);
    const items = parts.map((x) => safeStructure(x, depth + 1));
    if (parts.length === 2 && !(open === '(' && close === ')')) {
      return { kind: 'interval', lo: items[0]!, hi: items[1]!, loOpen: open === '(', hiOpen: close === ')' };
    }
    return { kind: 'tuple', items };
  }

  const rel = splitRelations(s);
  if (rel.ops.length > 0) {
    if (rel.terms.some((t) => t.trim() === '')) return raw(s);
    const terms = rel.terms.map((t) => safeStructure(t, depth + 1));
    // A chain with an unreadable link (`1 = \zzz = x = 0`): keep its last value, as
    // Math-Verify does when it falls back to the last equation.
    if (terms.some((t) => t.kind === 'raw')) {
      const last = terms[terms.length - 1]!;
      return rel.ops.every((o) => o === '=') && last.kind !== 'raw' ? last : raw(s);
    }
    const named = rel.ops.every((o) => o === '=') && isNamedQuantity(rel.terms[0]!, terms[0]!);
    return named ? { kind: 'relation', ops: rel.ops, terms, named } : { kind: 'relation', ops: rel.ops, terms };
  }

  // `2:5`, `A:B`, `1 : 2 : 3`: a ratio.
  const ratioParts = splitTopLevel(s, ':');
  if (ratioParts.length > 1) {
    if (ratioParts.some((x) => x.trim() === '')) return raw(s);
    const parts = ratioParts.map((x) => safeStructure(x, depth + 1));
    return parts.every((x) => x.kind === 'expr') ? { kind: 'ratio', items: parts } : raw(s);
  }

  if (/\\(?:pm|mp)(?![A-Za-z])/.test(s)) {
    const pm = expandPlusMinus(s, depth);
    if (pm.length > 1) return { kind: 'set', items: pm };
  }
  return { kind: 'expr', node: parseExpression(s), percent: false };
}

/** `f(2)`, `g(t)`, `P(A)`, `f^{-1}(3)`: a function of some arguments, written by its name. */
const FUNCTION_NAME = /^\s*[A-Za-z](?:_\{?\w+\}?)?(?:\^\{?-1\}?)?\s*\((?:[^()]|\([^()]*\))*\)\s*$/;

/**
 * A left-hand side that names a quantity: a function of arguments (`g(t)`, `P(A)`, `f(2)`),
 * point names and their products, quotients and |.| (`PQ`, `\frac{BD}{DC}`, `|AC|`), or a
 * ratio of names (`A:B`, `V_1 : V_2`). Equations stay equations: `2x + z = 1`, `x^2 + y = 4`,
 * and also `x + y + z = 6` or `xy = 6`, whose right side alone is no answer.
 */
function isNamedQuantity(text: string, v: Value): boolean {
  if (FUNCTION_NAME.test(text)) return true;
  if (v.kind === 'ratio') return v.items.every((x) => x.kind === 'expr' && (x.node.t === 'sym' || pointNames(x.node)));
  return v.kind === 'expr' && v.node.t !== 'sym' && pointNames(v.node);
}

/** Capital point names (`A`, `S_{ABC}`) multiplied, divided or inside |.|: `PQ`, `BD/DC`. */
function pointNames(n: Node): boolean {
  switch (n.t) {
    case 'sym':
      return /^[A-Z]/.test(n.name);
    case 'mul': case 'div':
      return pointNames(n.a) && pointNames(n.b);
    case 'call':
      return n.fn === 'abs' && pointNames(n.args[0]!);
    default:
      return false;
  }
}

/** The single name on the left of `name = value` (the last value of a chain), or null. */
function assignedName(v: Value): { name: string; value: Value } | null {
  if (v.kind !== 'relation' || v.ops.some((o) => o !== '=')) return null;
  const lhs = v.terms[0]!;
  if (lhs.kind !== 'expr' || lhs.node.t !== 'sym') return null;
  return { name: lhs.node.name, value: v.terms[v.terms.length - 1]! };
}

/**
 * A list of assignments reads as one: `x = 2, x = 5` is `x = {2, 5}` (the values of one
 * unknown) and `x = 1, y = 2` is `(x, y) = (1, 2)` (one solution of a system). Any other
 * list stays a list.
 */
function assignmentList(items: Value[]): Value {
  const named = items.map(assignedName);
  if (items.length < 2 || named.some((n) => n === null)) return { kind: 'list', items };
  const ns = named as { name: string; value: Value }[];
  const names = new Set(ns.map((n) => n.name));
  const sym = (name: string): Value => ({ kind: 'expr', node: { t: 'sym', name }, percent: false });
  if (names.size === 1) {
    const values = ns.flatMap((n) => (n.value.kind === 'list' || n.value.kind === 'set' ? n.value.items : [n.value]));
    return { kind: 'relation', ops: ['='], terms: [sym(ns[0]!.name), { kind: 'list', items: values }] };
  }
  if (names.size === ns.length) {
    return {
      kind: 'relation',
      ops: ['='],
      terms: [{ kind: 'tuple', items: ns.map((n) => sym(n.name)) }, { kind: 'tuple', items: ns.map((n) => n.value) }],
    };
  }
  return { kind: 'list', items };
}

/** Like parseStructure, but an unreadable item becomes `raw` instead of throwing. */
function safeStructure(s: string, depth: number): Value {
  try {
    return parseStructure(s, depth);
  } catch (e) {
    if (e instanceof MathParseError) return raw(s);
    throw e;
  }
}

/** `a \pm b` -> [a + b, a - b] (each ± doubles the variants, up to three of them). */
function expandPlusMinus(s: string, depth: number): Value[] {
  const count = (s.match(/\\(?:pm|mp)(?![A-Za-z])/g) ?? []).length;
  if (count === 0) return [safeStructure(s, depth)];
  if (count > 3) return [raw(s)];
  let variants = [s];
  for (let k = 0; k < count; k++) {
    variants = variants.flatMap((v) => {
      const m = /\\(pm|mp)(?![A-Za-z])/.exec(v)!;
      const head = v.slice(0, m.index);
      const tail = v.slice(m.index + m[0].length);
      const [first, second] = m[1] === 'pm' ? ['+', '-'] : ['-', '+'];
      return [`${head} ${first} ${tail}`, `${head} ${second} ${tail}`];
    });
  }
  return variants.map((v) => safeStructure(v, depth));
}
