/**
 * Scalar/matrix expressions: a small parser for the LaTeX-and-plain-text math that answers
 * are written in, and two evaluators over the resulting tree.
 *
 * The parser is our own (not mathjs `parse`) so that it accepts exactly the notation
 * answers use and nothing else: implicit multiplication (`2x`, `2\pi`, `xy` = x*y),
 * `\frac12`, `\sqrt2`, `\sqrt[3]{x}`, `\sin^2 x`, `\log_2 8`, `|x|`, `n!`, base subscripts
 * (`204_5`), matrices (`\begin{pmatrix}...\end{pmatrix}`). Anything else is a parse error,
 * never code: there is no assignment, no function definition, no string, no unit.
 *
 * Evaluators:
 * - `evalExact`: BigInt rationals for trees made only of numbers, + - * /, integer powers,
 *   floor/ceil/abs and small factorials; null otherwise.
 * - `evalComplex`: complex floating point through mathjs' numeric functions (sqrt(-1) = i,
 *   log(-1) = i*pi), with a value bound for every variable; matrices evaluate to matrices.
 *
 * Limits: recursion depth (`MAX_DEPTH`) and tree size (`MAX_NODES`) are checked while
 * parsing, so deeply nested or huge inputs fail fast instead of overflowing the stack.
 */
import { createRequire } from 'node:module';
import * as Q from './rational.ts';

export const MAX_DEPTH = 64;
export const MAX_NODES = 4000;

export type FnName =
  | 'sqrt' | 'nroot' | 'sin' | 'cos' | 'tan' | 'sec' | 'csc' | 'cot'
  | 'asin' | 'acos' | 'atan' | 'asec' | 'acsc' | 'acot'
  | 'sinh' | 'cosh' | 'tanh' | 'coth' | 'sech' | 'csch'
  | 'log' | 'exp' | 'abs' | 'floor' | 'ceil' | 'binom' | 'det' | 'gcd' | 'lcm';

export type Node =
  | { t: 'num'; text: string }
  | { t: 'sym'; name: string }
  | { t: 'const'; name: 'pi' | 'e' | 'i' | 'inf' }
  | { t: 'neg'; a: Node }
  | { t: 'add' | 'sub' | 'mul' | 'div' | 'pow'; a: Node; b: Node }
  | { t: 'call'; fn: FnName; args: Node[] }
  | { t: 'fact'; a: Node }
  | { t: 'mat'; rows: Node[][] };

export class MathParseError extends Error {
  override name = 'MathParseError';
}

/** Functions reachable as plain words (`sqrt(2)`, `sin x`) and as LaTeX commands (`\sin`). */
const FUNCTION_WORDS: Record<string, FnName> = {
  sin: 'sin', cos: 'cos', tan: 'tan', sec: 'sec', csc: 'csc', cot: 'cot',
  arcsin: 'asin', arccos: 'acos', arctan: 'atan', asin: 'asin', acos: 'acos', atan: 'atan',
  arcsec: 'asec', arccsc: 'acsc', arccot: 'acot',
  sinh: 'sinh', cosh: 'cosh', tanh: 'tanh', coth: 'coth', sech: 'sech', csch: 'csch',
  ln: 'log', log: 'log', exp: 'exp', sqrt: 'sqrt', abs: 'abs', det: 'det', gcd: 'gcd', lcm: 'lcm',
};
const INVERSE: Partial<Record<FnName, FnName>> = {
  sin: 'asin', cos: 'acos', tan: 'atan', sec: 'asec', csc: 'acsc', cot: 'acot',
};
/** Plain words read as one name rather than as a product of letters, longest first. */
const PLAIN_WORDS = [...Object.keys(FUNCTION_WORDS), 'infinity', 'infty', 'inf', 'pi'].sort(
  (a, b) => b.length - a.length,
);
const GREEK = new Set([
  'alpha', 'beta', 'gamma', 'delta', 'epsilon', 'varepsilon', 'zeta', 'eta', 'theta', 'vartheta',
  'iota', 'kappa', 'lambda', 'mu', 'nu', 'xi', 'rho', 'varrho', 'sigma', 'varsigma', 'tau',
  'upsilon', 'phi', 'varphi', 'chi', 'psi', 'omega', 'Gamma', 'Delta', 'Theta', 'Lambda', 'Xi',
  'Pi', 'Sigma', 'Upsilon', 'Phi', 'Psi', 'Omega', 'ell',
]);
const MATRIX_ENVS = new Set(['matrix', 'pmatrix', 'bmatrix', 'Bmatrix', 'vmatrix', 'smallmatrix', 'array']);

const isDigit = (c: string | undefined) => c !== undefined && c >= '0' && c <= '9';
const isLetter = (c: string | undefined) => c !== undefined && /^[A-Za-z]$/.test(c);

/** Parses one scalar (or matrix) expression; throws MathParseError on anything else. */
export function parseExpression(text: string): Node {
  const p = new Parser(text, { nodes: 0 }, 0);
  const node = p.parseAll();
  return node;
}

class Parser {
  private pos = 0;
  private absDepth = 0;
  /** Recursion depth inside this parser (unary chains, exponent towers, |...|). */
  private level = 0;

  constructor(
    private readonly src: string,
    private readonly budget: { nodes: number },
    private readonly depth: number,
  ) {
    if (depth > MAX_DEPTH) throw new MathParseError(`expression nested deeper than ${MAX_DEPTH} levels`);
  }

  parseAll(): Node {
    const node = this.parseSum();
    this.ws();
    if (this.pos < this.src.length) {
      throw new MathParseError(`unexpected '${this.src.slice(this.pos, this.pos + 12)}' at offset ${this.pos}`);
    }
    return node;
  }

  // ---- helpers -------------------------------------------------------------------------

  private make<N extends Node>(n: N): N {
    if (++this.budget.nodes > MAX_NODES) throw new MathParseError(`expression larger than ${MAX_NODES} nodes`);
    return n;
  }

  private ws(): void {
    while (this.pos < this.src.length && /\s/.test(this.src[this.pos]!)) this.pos++;
  }

  private peek(): string | undefined {
    this.ws();
    return this.src[this.pos];
  }

  /** The LaTeX command name at the cursor (without the backslash), or null. */
  private peekCommand(): string | null {
    this.ws();
    if (this.src[this.pos] !== '\\') return null;
    const m = /^\\([A-Za-z]+|.)/.exec(this.src.slice(this.pos, this.pos + 40));
    return m ? m[1]! : null;
  }

  private eatCommand(name: string): void {
    this.ws();
    this.pos += name.length + 1;
  }

  private expect(ch: string): void {
    if (this.peek() !== ch) {
      throw new MathParseError(`expected '${ch}' at offset ${this.pos}, found '${this.src[this.pos] ?? 'end'}'`);
    }
    this.pos++;
  }

  /** Index of the bracket closing the one at `open` (any of ( [ { count as brackets). */
  private matching(open: number): number {
    let depth = 0;
    for (let i = open; i < this.src.length; i++) {
      const c = this.src[i]!;
      if (c === '\\') {
        i++;
        continue;
      }
      if (c === '(' || c === '[' || c === '{') depth++;
      else if (c === ')' || c === ']' || c === '}') {
        depth--;
        if (depth === 0) return i;
      }
    }
    throw new MathParseError(`unbalanced bracket at offset ${open}`);
  }

  private sub(text: string): Node {
    const p = new Parser(text, this.budget, this.depth + 1);
    return p.parseAll();
  }

  /** A LaTeX macro argument: `{...}`, or a single digit, letter or command. */
  private readArg(): Node {
    const c = this.peek();
    if (c === '{') {
      const end = this.matching(this.pos);
      const inner = this.src.slice(this.pos + 1, end);
      this.pos = end + 1;
      return this.sub(inner);
    }
    if (isDigit(c) || isLetter(c)) {
      this.pos++;
      return isDigit(c) ? this.make({ t: 'num', text: c! }) : this.letter(c!);
    }
    if (c === '\\') return this.parsePrimary();
    throw new MathParseError(`missing macro argument at offset ${this.pos}`);
  }

  private letter(c: string): Node {
    if (c === 'e') return this.make({ t: 'const', name: 'e' });
    if (c === 'i') return this.make({ t: 'const', name: 'i' });
    return this.make({ t: 'sym', name: c });
  }

  // ---- grammar -------------------------------------------------------------------------

  private parseSum(): Node {
    let left = this.parseProduct();
    for (;;) {
      const c = this.peek();
      if (c === '+' || c === '-') {
        this.pos++;
        const right = this.parseProduct();
        left = this.make({ t: c === '+' ? 'add' : 'sub', a: left, b: right });
      } else return left;
    }
  }

  private parseProduct(): Node {
    let left = this.parseUnary();
    for (;;) {
      const c = this.peek();
      const cmd = this.peekCommand();
      if (c === '*' || c === '/' || cmd === 'cdot' || cmd === 'times' || cmd === 'ast' || cmd === 'div') {
        if (cmd) this.eatCommand(cmd);
        else this.pos++;
        const right = this.parseUnary();
        left = this.make({ t: c === '/' || cmd === 'div' ? 'div' : 'mul', a: left, b: right });
      } else if (this.startsImplicitFactor()) {
        if (endsWithNumber(left) && isDigit(this.peek())) {
          throw new MathParseError(`two numbers in a row at offset ${this.pos}`);
        }
        const right = this.parsePower();
        left = this.make({ t: 'mul', a: left, b: right });
      } else return left;
    }
  }

  private startsImplicitFactor(): boolean {
    const c = this.peek();
    if (c === undefined) return false;
    if (isDigit(c) || isLetter(c) || c === '(' || c === '[' || c === '{' || c === '.') return true;
    if (c === '|') return this.absDepth === 0;
    if (c === '\\') {
      const cmd = this.peekCommand();
      return cmd !== null && !NON_FACTOR_COMMANDS.has(cmd);
    }
    return false;
  }

  private enter(): void {
    if (++this.level > MAX_DEPTH * 4) throw new MathParseError(`expression nested deeper than ${MAX_DEPTH * 4} levels`);
  }

  private parseUnary(): Node {
    this.enter();
    try {
      const c = this.peek();
      if (c === '-' || c === '+') {
        this.pos++;
        const a = this.parseUnary();
        return c === '-' ? this.make({ t: 'neg', a }) : a;
      }
      return this.parsePower();
    } finally {
      this.level--;
    }
  }

  private parsePower(): Node {
    const base = this.parsePostfix();
    if (this.peek() === '^') {
      this.pos++;
      return this.make({ t: 'pow', a: base, b: this.parseExponent() });
    }
    return base;
  }

  /** Right-associative exponent: a group, a signed number, a letter or a command. */
  private parseExponent(): Node {
    this.enter();
    try {
      return this.parseExponentInner();
    } finally {
      this.level--;
    }
  }

  private parseExponentInner(): Node {
    const c = this.peek();
    let atom: Node;
    if (c === '-' || c === '+') {
      this.pos++;
      const inner = this.parseExponent();
      return c === '-' ? this.make({ t: 'neg', a: inner }) : inner;
    }
    if (c === '{' || c === '(') {
      const end = this.matching(this.pos);
      atom = this.sub(this.src.slice(this.pos + 1, end));
      this.pos = end + 1;
    } else if (isDigit(c) || c === '.') {
      atom = this.readNumber();
    } else if (isLetter(c)) {
      this.pos++;
      atom = this.letter(c!);
    } else if (c === '\\') {
      atom = this.parsePrimary();
    } else {
      throw new MathParseError(`missing exponent at offset ${this.pos}`);
    }
    if (this.peek() === '^') {
      this.pos++;
      return this.make({ t: 'pow', a: atom, b: this.parseExponent() });
    }
    return atom;
  }

  private parsePostfix(): Node {
    let node = this.parsePrimary();
    for (;;) {
      const c = this.peek();
      if (c === '!') {
        this.pos++;
        node = this.make({ t: 'fact', a: node });
      } else if (c === '_') {
        this.pos++;
        node = this.subscript(node);
      } else return node;
    }
  }

  /** `204_5` (a number in base 5) or `x_1` / `a_{n}` (an indexed name). */
  private subscript(node: Node): Node {
    const c = this.peek();
    let text: string;
    if (c === '{') {
      const end = this.matching(this.pos);
      text = this.src.slice(this.pos + 1, end).trim();
      this.pos = end + 1;
    } else if (isDigit(c)) {
      const m = /^\d+/.exec(this.src.slice(this.pos))!;
      text = node.t === 'num' ? m[0] : c!;
      this.pos += text.length;
    } else if (isLetter(c)) {
      text = c!;
      this.pos++;
    } else throw new MathParseError(`missing subscript at offset ${this.pos}`);
    if (node.t === 'num') {
      const base = Number(text);
      if (!/^\d+$/.test(text) || base < 2 || base > 36) throw new MathParseError(`bad number base '${text}'`);
      if (!/^[0-9A-Za-z]+$/.test(node.text)) throw new MathParseError(`'${node.text}' is not a base-${base} integer`);
      let value = 0n;
      for (const ch of node.text.toLowerCase()) {
        const digit = parseInt(ch, 36);
        if (digit >= base) throw new MathParseError(`digit '${ch}' is not valid in base ${base}`);
        value = value * BigInt(base) + BigInt(digit);
      }
      return this.make({ t: 'num', text: value.toString() });
    }
    const name = nodeName(node);
    const suffix = text.replace(/[^0-9A-Za-z]/g, '');
    if (name === null || suffix === '') throw new MathParseError(`unsupported subscript '${text}'`);
    return this.make({ t: 'sym', name: `${name}_${suffix}` });
  }

  private readNumber(): Node {
    const m = /^(\d+(?:\.\d*)?|\.\d+)/.exec(this.src.slice(this.pos));
    if (!m) throw new MathParseError(`bad number at offset ${this.pos}`);
    this.pos += m[0].length;
    let text = m[0];
    if (text.endsWith('.')) text = text.slice(0, -1);
    return this.make({ t: 'num', text });
  }

  private parsePrimary(): Node {
    const c = this.peek();
    if (c === undefined) throw new MathParseError('unexpected end of expression');
    if (isDigit(c) || c === '.') return this.readNumber();
    if (c === '(' || c === '[' || c === '{') {
      const end = this.matching(this.pos);
      const inner = this.src.slice(this.pos + 1, end);
      this.pos = end + 1;
      return this.sub(inner);
    }
    if (c === '|') {
      this.pos++;
      this.enter();
      this.absDepth++;
      const inner = this.parseSum();
      this.absDepth--;
      this.level--;
      this.expect('|');
      return this.make({ t: 'call', fn: 'abs', args: [inner] });
    }
    if (isLetter(c)) return this.parseWord();
    if (c === '\\') return this.parseCommand();
    throw new MathParseError(`unexpected '${c}' at offset ${this.pos}`);
  }

  /** A run of plain letters: a known word (`sin`, `pi`, `sqrt`) or a single-letter name. */
  private parseWord(): Node {
    const rest = this.src.slice(this.pos, this.pos + 12);
    for (const w of PLAIN_WORDS) {
      if (rest.startsWith(w)) {
        this.pos += w.length;
        if (w === 'pi') return this.make({ t: 'const', name: 'pi' });
        if (w === 'inf' || w === 'infty' || w === 'infinity') return this.make({ t: 'const', name: 'inf' });
        return this.parseFunction(FUNCTION_WORDS[w]!);
      }
    }
    const ch = this.src[this.pos]!;
    this.pos++;
    return this.letter(ch);
  }

  private parseCommand(): Node {
    const cmd = this.peekCommand();
    if (cmd === null) throw new MathParseError(`stray backslash at offset ${this.pos}`);
    this.eatCommand(cmd);
    if (cmd === 'frac') {
      const a = this.readArg();
      const b = this.readArg();
      return this.make({ t: 'div', a, b });
    }
    if (cmd === 'sqrt') {
      let index: Node | null = null;
      if (this.peek() === '[') {
        const end = this.matching(this.pos);
        index = this.sub(this.src.slice(this.pos + 1, end));
        this.pos = end + 1;
      }
      const arg = this.readArg();
      return index
        ? this.make({ t: 'call', fn: 'nroot', args: [arg, index] })
        : this.make({ t: 'call', fn: 'sqrt', args: [arg] });
    }
    if (cmd === 'binom') {
      const n = this.readArg();
      const k = this.readArg();
      return this.make({ t: 'call', fn: 'binom', args: [n, k] });
    }
    if (cmd === 'pi') return this.make({ t: 'const', name: 'pi' });
    if (cmd === 'infty') return this.make({ t: 'const', name: 'inf' });
    if (cmd === 'imath') return this.make({ t: 'const', name: 'i' });
    if (GREEK.has(cmd)) return this.make({ t: 'sym', name: cmd });
    if (cmd === 'lfloor' || cmd === 'lceil') {
      const close = cmd === 'lfloor' ? '\\rfloor' : '\\rceil';
      const end = findTopLevel(this.src, close, this.pos);
      if (end < 0) throw new MathParseError(`missing ${close}`);
      const inner = this.sub(this.src.slice(this.pos, end));
      this.pos = end + close.length;
      return this.make({ t: 'call', fn: cmd === 'lfloor' ? 'floor' : 'ceil', args: [inner] });
    }
    if (cmd === 'begin') return this.parseMatrix();
    const fn = FUNCTION_WORDS[cmd];
    if (fn) return this.parseFunction(fn);
    throw new MathParseError(`unsupported command '\\${cmd}'`);
  }

  /**
   * A function application: optional power (`\sin^2 x`, `\sin^{-1} x` = arcsin), optional
   * log base (`\log_2 8`), then `(args)`, `{arg}`, or an unbracketed product (`\sin 2x`).
   */
  private parseFunction(fn: FnName): Node {
    let power: Node | null = null;
    let base: Node | null = null;
    if (this.peek() === '^') {
      this.pos++;
      power = this.parseExponent();
    }
    if (fn === 'log' && this.peek() === '_') {
      this.pos++;
      base = this.readArg();
    }
    let args: Node[];
    const c = this.peek();
    if (c === '(') {
      const end = this.matching(this.pos);
      args = splitTopLevel(this.src.slice(this.pos + 1, end), ',').map((s) => this.sub(s));
      this.pos = end + 1;
    } else if (c === '{') {
      args = [this.readArg()];
    } else {
      let arg = this.parsePower();
      while (this.startsImplicitFactor() && !this.startsFunction()) {
        arg = this.make({ t: 'mul', a: arg, b: this.parsePower() });
      }
      args = [arg];
    }
    if (base) args.push(base);
    const arity: Partial<Record<FnName, number[]>> = { log: [1, 2], gcd: [2], lcm: [2] };
    if (!(arity[fn] ?? [1]).includes(args.length)) {
      throw new MathParseError(`${fn} takes ${(arity[fn] ?? [1]).join(' or ')} argument(s), got ${args.length}`);
    }
    if (power && isMinusOne(power) && INVERSE[fn]) {
      return this.make({ t: 'call', fn: INVERSE[fn]!, args });
    }
    const call = this.make({ t: 'call', fn, args });
    return power ? this.make({ t: 'pow', a: call, b: power }) : call;
  }

  private startsFunction(): boolean {
    const cmd = this.peekCommand();
    if (cmd !== null) return FUNCTION_WORDS[cmd] !== undefined || cmd === 'sqrt';
    const rest = this.src.slice(this.pos, this.pos + 8);
    return Object.keys(FUNCTION_WORDS).some((w) => rest.startsWith(w));
  }

  /** `\begin{pmatrix} a & b \\ c & d \end{pmatrix}` (also bmatrix, matrix, array, vmatrix = det). */
  private parseMatrix(): Node {
    const m = /^\s*\{([A-Za-z]+\*?)\}/.exec(this.src.slice(this.pos));
    if (!m || !MATRIX_ENVS.has(m[1]!)) throw new MathParseError(`unsupported environment '${m?.[1] ?? '?'}'`);
    const env = m[1]!;
    this.pos += m[0].length;
    if (env === 'array') {
      const spec = /^\s*\{[^{}]*\}/.exec(this.src.slice(this.pos));
      if (spec) this.pos += spec[0].length;
    }
    const endTag = `\\end{${env}}`;
    const end = findTopLevel(this.src, endTag, this.pos);
    if (end < 0) throw new MathParseError(`missing ${endTag}`);
    const body = this.src.slice(this.pos, end);
    this.pos = end + endTag.length;
    const rowTexts = splitTopLevel(body, '\\\\').filter((r, i, all) => r.trim() !== '' || i < all.length - 1);
    const rows = rowTexts.map((r) => splitTopLevel(r, '&').map((cell) => this.sub(cell)));
    const width = rows[0]?.length ?? 0;
    if (width === 0 || rows.some((r) => r.length !== width)) throw new MathParseError('ragged or empty matrix');
    const mat = this.make({ t: 'mat', rows });
    return env === 'vmatrix' ? this.make({ t: 'call', fn: 'det', args: [mat] }) : mat;
  }
}

/** Commands that cannot start a factor (operators, closers). */
const NON_FACTOR_COMMANDS = new Set(['cdot', 'times', 'ast', 'div', 'end', 'rfloor', 'rceil', '\\']);

function isMinusOne(n: Node): boolean {
  return n.t === 'neg' && n.a.t === 'num' && n.a.text === '1';
}

/** True when the text of `n` ends with a number literal (`2`, `11/10`, `2^3`): `2 3` is no product. */
function endsWithNumber(n: Node): boolean {
  if (n.t === 'num') return true;
  if (n.t === 'neg') return endsWithNumber(n.a);
  if (n.t === 'mul' || n.t === 'div' || n.t === 'pow') return endsWithNumber(n.b);
  return false;
}

function nodeName(n: Node): string | null {
  if (n.t === 'sym') return n.name;
  if (n.t === 'const' && (n.name === 'e' || n.name === 'i')) return n.name;
  return null;
}

/**
 * Splits `text` on `sep` where it is outside every bracket ( [ { and every
 * \begin...\end environment. Escaped braces `\{` `\}` count as brackets too.
 */
export function splitTopLevel(text: string, sep: string): string[] {
  return splitTopLevelBy(text, (i) => (text.startsWith(sep, i) ? sep.length : 0), true).parts;
}

/**
 * Splits `text` at separators outside every bracket: ( [ { and the escaped `\{ \( \[`
 * with their closers count alike, and with `environments` so does every \begin...\end
 * environment. `sepLength(i)` gives the length of a separator starting at index i, or 0;
 * it is asked only at the top level. Returns the pieces and the separators between them
 * (`seps.length === parts.length - 1`).
 */
export function splitTopLevelBy(
  text: string,
  sepLength: (i: number) => number,
  environments: boolean,
): { parts: string[]; seps: string[] } {
  const parts: string[] = [];
  const seps: string[] = [];
  let depth = 0;
  let env = 0;
  let start = 0;
  const splitAt = (i: number, len: number): number => {
    parts.push(text.slice(start, i));
    seps.push(text.slice(i, i + len));
    start = i + len;
    return i + len - 1;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\\') {
      if (environments) {
        if (text.startsWith('\\begin', i)) env++;
        else if (text.startsWith('\\end', i)) env--;
      }
      const len = depth === 0 && env === 0 ? sepLength(i) : 0;
      if (len > 0) {
        i = splitAt(i, len);
        continue;
      }
      const next = text[i + 1];
      if (next === '{' || next === '(' || next === '[') depth++;
      else if (next === '}' || next === ')' || next === ']') depth--;
      i++;
      continue;
    }
    if (c === '(' || c === '[' || c === '{') depth++;
    else if (c === ')' || c === ']' || c === '}') depth--;
    else if (depth === 0 && env === 0) {
      const len = sepLength(i);
      if (len > 0) i = splitAt(i, len);
    }
  }
  parts.push(text.slice(start));
  return { parts, seps };
}

/** First index of `needle` at bracket depth 0 at or after `from`, or -1. */
function findTopLevel(text: string, needle: string, from: number): number {
  let depth = 0;
  let env = 0;
  for (let i = from; i < text.length; i++) {
    if (depth === 0 && env === 0 && text.startsWith(needle, i)) return i;
    const c = text[i]!;
    if (c === '\\') {
      if (text.startsWith('\\begin', i)) env++;
      else if (text.startsWith('\\end', i)) env--;
      i++;
      continue;
    }
    if (c === '(' || c === '[' || c === '{') depth++;
    else if (c === ')' || c === ']' || c === '}') depth--;
  }
  return -1;
}

// ---- inspection ---------------------------------------------------------------------------

/** Names of the free variables (everything that is not pi, e, i or infinity). */
export function variables(node: Node, out = new Set<string>()): Set<string> {
  switch (node.t) {
    case 'sym':
      out.add(node.name);
      break;
    case 'neg':
    case 'fact':
      variables(node.a, out);
      break;
    case 'add': case 'sub': case 'mul': case 'div': case 'pow':
      variables(node.a, out);
      variables(node.b, out);
      break;
    case 'call':
      for (const a of node.args) variables(a, out);
      break;
    case 'mat':
      for (const r of node.rows) for (const c of r) variables(c, out);
      break;
    default:
      break;
  }
  return out;
}

/** True when some number literal in the tree has a fractional part written out (`0.5`). */
export function hasDecimal(node: Node): boolean {
  switch (node.t) {
    case 'num':
      return node.text.includes('.');
    case 'neg':
    case 'fact':
      return hasDecimal(node.a);
    case 'add': case 'sub': case 'mul': case 'div': case 'pow':
      return hasDecimal(node.a) || hasDecimal(node.b);
    case 'call':
      return node.args.some(hasDecimal);
    case 'mat':
      return node.rows.some((r) => r.some(hasDecimal));
    default:
      return false;
  }
}

/** The literal of a bare decimal (`0.25`, `-1.5`), or null when the tree is anything else. */
export function bareDecimal(node: Node): string | null {
  if (node.t === 'num' && node.text.includes('.')) return node.text;
  if (node.t === 'neg' && node.a.t === 'num' && node.a.text.includes('.')) return '-' + node.a.text;
  return null;
}

export function containsInfinity(node: Node): boolean {
  switch (node.t) {
    case 'const':
      return node.name === 'inf';
    case 'neg':
    case 'fact':
      return containsInfinity(node.a);
    case 'add': case 'sub': case 'mul': case 'div': case 'pow':
      return containsInfinity(node.a) || containsInfinity(node.b);
    case 'call':
      return node.args.some(containsInfinity);
    case 'mat':
      return node.rows.some((r) => r.some(containsInfinity));
    default:
      return false;
  }
}

export function countNodes(node: Node): number {
  switch (node.t) {
    case 'neg':
    case 'fact':
      return 1 + countNodes(node.a);
    case 'add': case 'sub': case 'mul': case 'div': case 'pow':
      return 1 + countNodes(node.a) + countNodes(node.b);
    case 'call':
      return 1 + node.args.reduce((s, a) => s + countNodes(a), 0);
    case 'mat':
      return 1 + node.rows.reduce((s, r) => s + r.reduce((t, c) => t + countNodes(c), 0), 0);
    default:
      return 1;
  }
}

/**
 * Canonical text with explicit operators and parentheses, in mathjs syntax. Variables get a
 * `v_` prefix so that no answer letter can name a mathjs constant (`E`, `phi`, `tau`).
 */
export function toText(node: Node): string {
  switch (node.t) {
    case 'num':
      return node.text;
    case 'sym':
      return 'v_' + node.name;
    case 'const':
      return node.name === 'inf' ? 'Infinity' : node.name;
    case 'neg':
      return `(-${toText(node.a)})`;
    case 'fact':
      return `(${toText(node.a)})!`;
    case 'add':
      return `(${toText(node.a)} + ${toText(node.b)})`;
    case 'sub':
      return `(${toText(node.a)} - ${toText(node.b)})`;
    case 'mul':
      return `(${toText(node.a)} * ${toText(node.b)})`;
    case 'div':
      return `(${toText(node.a)} / ${toText(node.b)})`;
    case 'pow':
      return `(${toText(node.a)} ^ ${toText(node.b)})`;
    case 'call':
      return `${MATHJS_NAMES[node.fn] ?? node.fn}(${node.args.map(toText).join(', ')})`;
    case 'mat':
      return `[${node.rows.map((r) => `[${r.map(toText).join(', ')}]`).join(', ')}]`;
  }
}

const MATHJS_NAMES: Partial<Record<FnName, string>> = { nroot: 'nthRoot', binom: 'combinations' };

// ---- exact evaluation ---------------------------------------------------------------------

const EXACT_FACTORIAL_LIMIT = 3000n;

/**
 * Exact value over the rationals, or null when the tree is not a rational number.
 * `tick` runs before every operation (the caller's time limit).
 */
export function evalExact(node: Node, tick: () => void = () => {}): Q.Rational | null {
  return evalExactInner(node, tick);
}

function evalExactInner(node: Node, tick: () => void): Q.Rational | null {
  const evalExact = (n: Node) => evalExactInner(n, tick);
  tick();
  switch (node.t) {
    case 'num':
      return Q.parseDecimal(node.text);
    case 'neg': {
      const a = evalExact(node.a);
      return a && Q.neg(a);
    }
    case 'add': case 'sub': case 'mul': case 'div': case 'pow': {
      const a = evalExact(node.a);
      if (!a) return null;
      const b = evalExact(node.b);
      if (!b) return null;
      return node.t === 'add' ? Q.add(a, b)
        : node.t === 'sub' ? Q.sub(a, b)
        : node.t === 'mul' ? Q.mul(a, b)
        : node.t === 'div' ? Q.div(a, b)
        : Q.pow(a, b);
    }
    case 'fact': {
      const a = evalExact(node.a);
      if (!a || !Q.isInteger(a) || a.n < 0n || a.n > EXACT_FACTORIAL_LIMIT) return null;
      let r = 1n;
      for (let k = 2n; k <= a.n; k++) r *= k;
      return Q.rational(r);
    }
    case 'call': {
      if (node.fn !== 'abs' && node.fn !== 'floor' && node.fn !== 'ceil') return null;
      const a = evalExact(node.args[0]!);
      if (!a) return null;
      if (node.fn === 'abs') return Q.abs(a);
      if (node.fn === 'floor') return Q.floor(a);
      return Q.neg(Q.floor(Q.neg(a)));
    }
    default:
      return null;
  }
}

// ---- complex evaluation -------------------------------------------------------------------

/**
 * The slice of mathjs used here, typed loosely: mathjs' own overloads (numbers, BigNumbers,
 * Complex, matrices, units) do not narrow through a generic evaluator, and every value that
 * comes back is checked at run time by `toComplex` / `isMatrix`.
 */
type Fn = (...args: MathValue[]) => MathValue;
interface MathOps {
  [name: string]: unknown;
  add: Fn; subtract: Fn; multiply: Fn; divide: Fn; pow: Fn; unaryMinus: Fn; sqrt: Fn; log: Fn;
  gamma: Fn; lgamma: Fn; det: Fn; gcd: Fn; lcm: Fn; coth: Fn; sech: Fn; csch: Fn;
  complex: (re: number, im: number) => MathValue;
  matrix: (rows: MathValue[][]) => MathValue;
  isComplex: (v: unknown) => v is { re: number; im: number };
  isMatrix: (v: unknown) => v is { size(): number[]; toArray(): unknown[] };
  simplify: (expr: string) => { type: string; value?: unknown };
}
type MathValue = unknown;
/**
 * mathjs' single-file bundle (an export of the package): it loads in ~0.2 s where the
 * ESM build's ~1000 modules take ~2.5 s, which matters for every worker thread started.
 */
const math = createRequire(import.meta.url)('mathjs/lib/browser/math.js') as MathOps;

/** A complex number as two doubles. */
export interface Complex {
  re: number;
  im: number;
}
/** A complex scalar, or a matrix of them (row-major, with its shape). */
export type NumericValue = { kind: 'scalar'; z: Complex } | { kind: 'matrix'; shape: number[]; z: Complex[] };

function factorial(x: MathValue): MathValue {
  if (typeof x === 'number') {
    if (Number.isInteger(x) && x >= 0) {
      if (x > 170) return Infinity;
      let r = 1;
      for (let k = 2; k <= x; k++) r *= k;
      return r;
    }
    if (x > 171) return Infinity;
    return math.gamma(x + 1);
  }
  throw new MathParseError('factorial of a non-real value');
}

function binom(n: MathValue, kv: MathValue): MathValue {
  if (typeof n !== 'number' || typeof kv !== 'number') throw new MathParseError('binomial of a non-real value');
  let k: number = kv;
  if (Number.isInteger(n) && Number.isInteger(k)) {
    if (k < 0 || (n >= 0 && k > n)) return 0;
    if (n >= 0) k = Math.min(k, n - k);
    if (k > 1000) {
      const lg = (x: number) => math.lgamma(x) as number;
      return Math.round(Math.exp(lg(n + 1) - lg(k + 1) - lg(n - k + 1)));
    }
    let r = 1;
    for (let j = 1; j <= k; j++) {
      r = (r * (n - k + j)) / j;
      if (!Number.isFinite(r)) return Infinity;
    }
    return Math.round(r);
  }
  return (factorial(n) as number) / ((factorial(k) as number) * (factorial(n - k) as number));
}

function nroot(x: MathValue, n: MathValue): MathValue {
  // Odd roots of negative reals are real (the cube root of -8 is -2), as in school math.
  if (typeof x === 'number' && typeof n === 'number' && x < 0 && Number.isInteger(n) && Math.abs(n) % 2 === 1) {
    return -Math.pow(-x, 1 / n);
  }
  return math.pow(x, math.divide(1, n) as MathValue);
}

function callFn(fn: FnName, args: MathValue[]): MathValue {
  const [a, b] = args as [MathValue, MathValue | undefined];
  switch (fn) {
    case 'sqrt': return math.sqrt(a);
    case 'nroot': return nroot(a, b!);
    case 'log': return b === undefined ? math.log(a) : math.divide(math.log(a), math.log(b));
    case 'binom': return binom(a, b!);
    case 'det': return math.det(a);
    case 'gcd': return math.gcd(a, b!);
    case 'lcm': return math.lcm(a, b!);
    case 'coth': return math.coth(a);
    case 'sech': return math.sech(a);
    case 'csch': return math.csch(a);
    default: {
      const f = math[fn];
      if (typeof f !== 'function') throw new MathParseError(`unknown function ${fn}`);
      return (f as Fn)(a);
    }
  }
}

/** A value that left the range of doubles: comparing it would be meaningless. */
class OutOfRange extends Error {}

const isZero = (z: Complex) => z.re === 0 && z.im === 0;

/**
 * Checks one operation's result in strict mode (the tree names no infinity): an overflow
 * (1/2004! has 2004! = Infinity inside) or an underflow to zero (10^{-400}) makes the whole
 * evaluation fail instead of comparing garbage (0 = 0).
 */
function checked(value: MathValue, operands: MathValue[], underflowMatters: boolean): MathValue {
  const z = toComplex(value);
  if (z === null) return value;
  if (!Number.isFinite(z.re) || !Number.isFinite(z.im)) throw new OutOfRange('overflow');
  if (underflowMatters && isZero(z) && operands.every((o) => {
    const c = toComplex(o);
    return c !== null && !isZero(c);
  })) {
    throw new OutOfRange('underflow');
  }
  return value;
}

function evalMath(node: Node, env: ReadonlyMap<string, number>, strict: boolean): MathValue {
  const ev = (n: Node) => evalMath(n, env, strict);
  const op = (f: Fn, a: Node, b: Node, underflow: boolean) => {
    const x = ev(a);
    const y = ev(b);
    const r = f(x, y);
    return strict ? checked(r, [x, y], underflow) : r;
  };
  switch (node.t) {
    case 'num':
      return Number(node.text);
    case 'sym': {
      const v = env.get(node.name);
      if (v === undefined) throw new MathParseError(`no value for variable ${node.name}`);
      return v;
    }
    case 'const':
      return node.name === 'pi' ? Math.PI : node.name === 'e' ? Math.E : node.name === 'i' ? math.complex(0, 1) : Infinity;
    case 'neg':
      return math.unaryMinus(ev(node.a));
    case 'fact': {
      const r = factorial(ev(node.a));
      return strict ? checked(r, [], false) : r;
    }
    case 'add':
      return op(math.add, node.a, node.b, false);
    case 'sub':
      return op(math.subtract, node.a, node.b, false);
    case 'mul':
      return op(math.multiply, node.a, node.b, true);
    case 'div':
      return op(math.divide, node.a, node.b, true);
    case 'pow':
      return op(math.pow, node.a, node.b, true);
    case 'call': {
      const args = node.args.map(ev);
      const r = callFn(node.fn, args);
      return strict ? checked(r, [], false) : r;
    }
    case 'mat':
      return math.matrix(node.rows.map((r) => r.map(ev)));
  }
}

function toComplex(v: unknown): Complex | null {
  if (typeof v === 'number') return { re: v, im: 0 };
  if (math.isComplex(v)) return { re: v.re, im: v.im };
  return null;
}

/**
 * Complex value of the tree with `env` giving every variable; null when the value is not a
 * number or a matrix of numbers (e.g. a failed operation).
 */
export function evalComplex(node: Node, env: ReadonlyMap<string, number> = new Map()): NumericValue | null {
  let v: unknown;
  try {
    v = evalMath(node, env, !containsInfinity(node));
  } catch {
    return null;
  }
  const z = toComplex(v);
  if (z) return { kind: 'scalar', z };
  if (math.isMatrix(v)) {
    const shape = v.size();
    const flat: Complex[] = [];
    for (const x of (v.toArray() as unknown[]).flat(Infinity)) {
      const c = toComplex(x);
      if (!c) return null;
      flat.push(c);
    }
    return { kind: 'matrix', shape, z: flat };
  }
  return null;
}

/** True when mathjs' simplify rewrites a - b to the constant 0. Throws nothing. */
export function simplifiesToZero(a: Node, b: Node): boolean {
  try {
    const res = math.simplify(`(${toText(a)}) - (${toText(b)})`);
    return res.type === 'ConstantNode' && Number(res.value) === 0;
  } catch {
    return false;
  }
}
