/**
 * The one-variable inequality solver behind set comparisons (`rewards/math/solve-set.ts`):
 * exact pieces and end points, the decidable class, and set normalisation.
 */
import { describe, expect, it } from 'vitest';
import { parseExpression } from '../../rewards/math/expr.ts';
import { normalizeSet, sameSet, solveSet, type IneqOp, type RealSet } from '../../rewards/math/solve-set.ts';

const atom = (lhs: string, op: IneqOp, rhs = '0') => ({ f: { t: 'sub' as const, a: parseExpression(lhs), b: parseExpression(rhs) }, op });
const solve = (lhs: string, op: IneqOp, rhs = '0') => solveSet([[atom(lhs, op, rhs)]], 'x');
const piece = (lo: number, hi: number, loClosed: boolean, hiClosed: boolean) => ({ lo, hi, loClosed, hiClosed });

describe('solveSet', () => {
  it('solves linear, quadratic and |.| inequalities into pieces', () => {
    expect(solve('2x - 3', '>')).toEqual([piece(1.5, Infinity, false, false)]);
    expect(solve('x^2 - 5x + 6', '≥')).toEqual([piece(-Infinity, 2, false, true), piece(3, Infinity, true, false)]);
    expect(solve('|x - 1|', '>', '2')).toEqual([piece(-Infinity, -1, false, false), piece(3, Infinity, false, false)]);
    expect(solve('|x| + |x - 2|', '≤', '4')).toEqual([piece(-1, 3, true, true)]);
    expect(solve('(x - 1)^2', '≤')).toEqual([piece(1, 1, true, true)]);
    expect(solve('x^2 + 1', '<')).toEqual([]);
    expect(solve('x', '≠', '2')).toEqual([piece(-Infinity, 2, false, false), piece(2, Infinity, false, false)]);
  });

  it('finds irrational end points to double precision', () => {
    const s = solve('x^2', '<', '2')!;
    expect(s).toHaveLength(1);
    expect(s[0]!.lo).toBeCloseTo(-Math.SQRT2, 14);
    expect(s[0]!.hi).toBeCloseTo(Math.SQRT2, 14);
  });

  it('decides ORs and ANDs of atoms', () => {
    expect(solveSet([[atom('x', '<', '-1')], [atom('x', '>', '3')]], 'x')).toEqual([piece(-Infinity, -1, false, false), piece(3, Infinity, false, false)]);
    expect(solveSet([[atom('|x|', '≥', '1'), atom('|x|', '≤', '2')]], 'x')).toEqual([piece(-2, -1, true, true), piece(1, 2, true, true)]);
  });

  it('returns null outside its class', () => {
    expect(solve('x^3 - x', '>')).toBeNull();
    expect(solve('\\frac{1}{x}', '>', '1')).toBeNull();
    expect(solve('||x| - 1|', '<', '1')).toBeNull();
    expect(solve('\\sin x', '>')).toBeNull();
    expect(solve('x + y', '>')).toBeNull();
  });
});

describe('normalizeSet and sameSet', () => {
  it('merges touching pieces and compares end points to 1e-9', () => {
    const a: RealSet = [piece(2, 3, false, true), piece(1, 2, true, true)];
    expect(normalizeSet(a)).toEqual([piece(1, 3, true, true)]);
    expect(sameSet([piece(0, 1 + 1e-12, true, false)], [piece(0, 1, true, false)])).toBe(true);
    expect(sameSet([piece(0, 1.001, true, false)], [piece(0, 1, true, false)])).toBe(false);
    expect(sameSet([piece(0, 1, true, false)], [piece(0, 1, true, true)])).toBe(false);
    expect(sameSet([piece(1, 2, false, false), piece(2, 3, false, false)], [piece(1, 3, false, false)])).toBe(false);
  });
});
