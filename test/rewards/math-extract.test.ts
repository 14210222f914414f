/**
 * The pieces of the math verifier on their own: answer extraction, answer structure,
 * option validation, and behaviour on hostile input (bounded, never throwing).
 */
import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.ts';
import { extractAnswer, parseAnswer, verifyMath, type MathAnswer } from '../../rewards/math/index.ts';

describe('extractAnswer', () => {
  it.each([
    ['The answer is \\boxed{42}.', '42'],
    ['first \\boxed{1} then \\boxed{\\frac{a}{b}}', '\\frac{a}{b}'],
    ['nested \\boxed{\\frac{\\sqrt{2}}{\\{1\\}}} end', '\\frac{\\sqrt{2}}{\\{1\\}}'],
    ['\\fbox{7}', '7'],
    ['\\boxed{-2} and \\boxed{1}', '-2, 1'],
    ['\\boxed{-2} then we check that \\boxed{1} works', '1'],
    ['$x = \\boxed{2}$ or $x = \\boxed{5}$', 'x = 2, x = 5'],
    ['\\boxed{(1, 1)} for part (a) and \\boxed{(2, 3)} for part (b)', '(1, 1), (2, 3)'],
    ['\\boxed{4} no no no no \\boxed{7}', '7'],
    ['\\boxed{4}, wait, so it is \\boxed{7}', '7'],
    ['\\boxed{7} and again \\boxed{7}', '7'],
    ['\\boxed{35 cm} ++ \\boxed{4}', '35 cm, 4'],
    ['The roots are $2$ and $5$.', '2, 5'],
    ['so $x = 2$ or $x = 5$.', 'x = 2, x = 5'],
    ['so $x = 2$ and $y = 5$.', 'y = 5'],
    ['$1$, $2$, or $3$', '1, 2, 3'],
    ['<answer> 12 </answer>', '12'],
    ['<think>it is 3</think>\n<answer>\\boxed{4}</answer>', '4'],
    ['Final answer: $x = 5$', 'x = 5'],
    ['The final answer is 12,000,023. I hope it is correct.', '12,000,023'],
    ['We get 3 apples, 4 pears, so 7 fruits in total.', '7'],
    ['So the probability is 2/3.', '2/3'],
    ['It costs $5 and $3 more, $8 in all.', '8'],
    ['\\(\\frac{1}{2}\\)', '\\frac{1}{2}'],
    ['$$\\sqrt{2}$$', '\\sqrt{2}'],
    ['x = 3', 'x = 3'],
    ['The answer is B.', 'B'],
    ['AB = 12', 'AB = 12'],
    ['\\frac{BD}{DC} = \\frac{3}{4}', '\\frac{BD}{DC} = \\frac{3}{4}'],
    ['ab = 6', 'ab = 6'],
    ['no numbers here at all', null],
    ['', null],
  ])('%j -> %j', (text, expected) => {
    expect(extractAnswer(text)).toBe(expected);
  });

  it('does not read digits out of a formula that failed to parse', () => {
    expect(extractAnswer('$\\sum_{k=0}^n\\bigl(k\\bigr)$')).toBe('\\sum_{k=0}^n\\bigl(k\\bigr)');
    expect(extractAnswer('$\\sum_{k=0}^n\\bigl(k\\bigr)$ and $42$')).toBe('42');
  });

  it('reads only the end of a very long completion', () => {
    expect(extractAnswer(`\\boxed{1} ${'filler '.repeat(30_000)} the answer is 2`)).toBe('2');
  });
});

describe('parseAnswer', () => {
  const kind = (s: string) => parseAnswer(s)?.kind;
  it.each([
    ['42', 'expr'],
    ['\\text{Evelyn}', 'text'],
    ['(1, 2)', 'tuple'],
    ['[1, 2)', 'interval'],
    ['(1, 2]', 'interval'],
    ['[1, 2]', 'interval'],
    ['(1, 2, 3)', 'tuple'],
    ['\\{1, 2\\}', 'set'],
    ['1, 2', 'list'],
    ['(0, 1) \\cup (2, 3]', 'union'],
    ['x = 3', 'relation'],
    ['1 < x \\le 2', 'relation'],
    ['1 \\pm \\sqrt{2}', 'set'],
    ['2:5', 'ratio'],
    ['A:B = 2:5', 'relation'],
    ['x = 1, y = 2', 'relation'],
    ['1; 2; 4', 'list'],
    ['\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}', 'expr'],
    ['\\sum_{k=0}^n k', 'raw'],
  ])('%j is a %s', (s, k) => {
    expect(kind(s)).toBe(k);
  });

  it('reads intervals with their open and closed ends', () => {
    const v = parseAnswer('(-\\infty, 3]') as Extract<MathAnswer, { kind: 'interval' }>;
    expect([v.loOpen, v.hiOpen]).toEqual([true, false]);
  });

  it('marks a left-hand side that names a quantity', () => {
    for (const named of ['PQ = 7', 'g(t) = 3', '|AC| = 5', 'A:B = 2:5', '\\frac{BD}{DC} = 2', 'f(2) = -1']) {
      expect(parseAnswer(named)).toMatchObject({ kind: 'relation', named: true });
    }
    for (const equation of ['2x + z = 1', 'x^2 + y = 4', 'x = 3', '\\sin x = 1', 'x + y + z = 6', 'xy = 6']) {
      expect(parseAnswer(equation)).not.toHaveProperty('named');
    }
  });

  it('records a percent sign', () => {
    expect(parseAnswer('28\\%')).toMatchObject({ kind: 'expr', percent: true });
    expect(parseAnswer('28')).toMatchObject({ kind: 'expr', percent: false });
  });

  it('turns base subscripts into numbers and rejects invalid digits', () => {
    expect(parseAnswer('204_5')).toMatchObject({ kind: 'expr', node: { t: 'num', text: '54' } });
    expect(parseAnswer('209_5')?.kind).toBe('raw');
  });

  it('rejects an over-long answer', () => {
    expect(parseAnswer('1+'.repeat(1500) + '1')).toBeNull();
  });
});

describe('verifyMath options and inputs', () => {
  it('validates options, naming the field and the allowed range', () => {
    expect(() => verifyMath('1', '1', { relTol: 0 })).toThrow(/verifyMath: options\.relTol must be a number in \(0, 0\.1\], got 0/);
    expect(() => verifyMath('1', '1', { relTol: Number.NaN })).toThrow(/options\.relTol/);
    expect(() => verifyMath('1', '1', { timeoutMs: -5 })).toThrow(/options\.timeoutMs must be a number of milliseconds in \[1, 600000\], got -5/);
    expect(() => verifyMath('1', null as unknown as string)).toThrow(/verifyMath: prediction must be a string, got null/);
  });

  it('uses relTol for decimal approximations only', () => {
    expect(verifyMath('\\frac{1}{3}', '0.3333')).toBe(false);
    expect(verifyMath('\\frac{1}{3}', '0.3333', { relTol: 1e-4 })).toBe(true);
    expect(verifyMath('$(\\frac{3}{5},\\frac{8}{3}]$', '$(0.6,2.6667]$', { relTol: 1e-4 })).toBe(true);
    expect(verifyMath('$(\\frac{3}{5},\\frac{8}{3}]$', '$(0.6,2.6667]$')).toBe(false);
    // A wider tolerance never lets a decimal that is not a rounding of the value through.
    expect(verifyMath('1000', '1000.4', { relTol: 0.1 })).toBe(false);
    expect(verifyMath('\\frac{1}{3}', '\\frac{1}{3} + 10^{-5}', { relTol: 0.1 })).toBe(false);
  });

  it('gives false, fast and without throwing, for exponent towers and deep nesting', () => {
    expect(verifyMath('1', '9^9^9^9^9')).toBe(false);
    expect(verifyMath('9^9^9^9^9', '9^9^9^9^9')).toBe(false);
    expect(verifyMath('9^9^9^9^9', '9^9^9^9^9 + 1')).toBe(false);
    expect(verifyMath('1', '((((((((((1))))))))))')).toBe(true);
    expect(verifyMath('1', '('.repeat(10_000) + '1' + ')'.repeat(10_000))).toBe(false);
    expect(verifyMath('1', `\\boxed{${'-'.repeat(50_000)}1}`)).toBe(false);
    expect(verifyMath('1', `\\boxed{${'\\sqrt{'.repeat(200)}1${'}'.repeat(200)}}`)).toBe(false);
    expect(verifyMath('1', '((10!)!)!')).toBe(false);
    expect(verifyMath('2^{40000}', '2^{40000}')).toBe(false);
    expect(verifyMath('\\frac{1}{2004!}', '\\frac{1}{2006!}')).toBe(false);
    expect(verifyMath('\\frac{2006!}{2004!}', '2006 \\cdot 2005')).toBe(true);
    expect(verifyMath('\\sqrt{2} \\cdot 10^{-400}', '\\sqrt{3} \\cdot 10^{-400}')).toBe(false);
    expect(verifyMath('2^{100}', '1267650600228229401496703205376')).toBe(true);
    expect(verifyMath('2^{100}', '1267650600228229401496703205377')).toBe(false);
  });

  it('never throws on random strings of mathematical characters, and is deterministic', () => {
    const rng = new Rng(2024);
    const alphabet = ['\\frac', '\\sqrt', '{', '}', '(', ')', '[', ']', '^', '_', '-', '+', '*', '/', '=', '<',
      ',', '.', '$', '\\boxed{', '\\pm', '\\cup', '\\{', '\\}', 'x', 'y', 'i', 'e', '\\pi', '1', '2', '9', '0', ' ',
      '\\text{', '%', '!', '|', '&', '\\\\', '\\begin{pmatrix}', '\\end{pmatrix}', '\\infty', '\\le'];
    for (let k = 0; k < 300; k++) {
      const len = rng.intRange(1, 30);
      let s = '';
      for (let j = 0; j < len; j++) s += alphabet[rng.int(alphabet.length)];
      const first = verifyMath(s, s);
      expect(typeof first).toBe('boolean');
      expect(verifyMath(s, s)).toBe(first);
      expect(typeof verifyMath('1', s)).toBe('boolean');
    }
  });

  it('is reflexive on well-formed answers', () => {
    for (const a of ['\\frac{1}{3}', '(1, 2)', '[0, 1)', '\\{1, 2\\}', 'x^2 + 1', 'y = 2x + 1', '3 + 2i', '\\sqrt{2}',
      '\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}', '\\text{Evelyn}', 'x \\le 5', '(0, 1) \\cup (2, \\infty)', '50\\%',
      '2:5', 'A:B = 2:5', 'PQ = 7, RS = 9', 'x = 2, x = 5', 'x = 1, y = 2', '|x - 1| > 2', 'x < -1, x > 3', '1; 2; 4',
      '0.67', '\\text{e}', '12 m', 'g(t) = 3']) {
      expect(verifyMath(a, a)).toBe(true);
    }
  });
});
