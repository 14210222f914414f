/**
 * Text-level clean-up of one extracted answer, before its structure is parsed.
 *
 * Removes what never changes the value (delimiters, `\boxed`, `\left`/`\right`, spacing
 * commands, `\text{units}`, currency, degree marks), rewrites notation variants to one
 * spelling (`\dfrac` -> `\frac`, `\leq` -> `≤`, `×` -> `*`), resolves number formatting
 * (`1,000` and `14{,}916` -> 1000 and 14916, `2{,}5` -> 2.5, and in plain text `1,22` ->
 * 1.22), and records facts the comparison needs: whether the answer carried a percent
 * sign, and whether it is a word answer (`\text{Evelyn}`) rather than mathematics.
 */
export interface NormalizedAnswer {
  /** The cleaned answer text. */
  text: string;
  /** The answer carried a percent sign (`%`, `\%`, "percent", "pct"), now removed. */
  percent: boolean;
  /** The answer is words, not mathematics (`\text{Evelyn}`, `yes`). */
  isText: boolean;
}

/** Words that belong to the mathematics, never to a unit or a sentence. */
const MATH_WORDS = new Set([
  'sin', 'cos', 'tan', 'sec', 'csc', 'cot', 'arcsin', 'arccos', 'arctan', 'sinh', 'cosh', 'tanh',
  'ln', 'log', 'exp', 'sqrt', 'pi', 'inf', 'infty', 'infinity', 'abs', 'det', 'gcd', 'lcm',
]);

/**
 * Unit and filler words removed after a number (`125 miles`, `15 cm^2`, `5 dollars`).
 * Single letters (m, g, s) are left alone: they are far more often variables.
 */
const UNIT_WORDS = [
  'mm', 'cm', 'km', 'meters?', 'metres?', 'feet', 'foot', 'ft', 'inch(?:es)?', 'miles?', 'yards?', 'yd',
  'kg', 'grams?', 'kilograms?', 'pounds?', 'lbs?', 'ounces?', 'oz', 'liters?', 'litres?', 'ml', 'mL',
  'seconds?', 'minutes?', 'hours?', 'hrs?', 'days?', 'weeks?', 'months?', 'years?', 'yrs?',
  'units?', 'sq', 'square', 'cubic', 'mph', 'dollars?', 'cents?', 'USD', 'euros?', 'degrees?',
];
const UNIT_RE = new RegExp(
  `(?<=[\\d}).\\s])\\s*(?:(?:${UNIT_WORDS.join('|')})(?![A-Za-z])\\s*(?:\\^\\s*\\{?\\s*[23]\\s*\\}?|[²³])?\\s*)+$`,
);

/** Unit words (as UNIT_RE) ending a list item: `40 cm, 60 cm`. */
const UNIT_ITEM_RE = new RegExp(
  `(?<=\\d)\\s*(?:${UNIT_WORDS.join('|')})(?![A-Za-z])\\s*(?:\\^\\s*\\{?\\s*[23]\\s*\\}?|[²³])?(?=\\s*[,;])`,
  'g',
);
/**
 * A one- or two-letter unit set off by a space after a plain number (`\boxed{12 m}`,
 * `4.5 s`, `9.8 m/s^2`, `3 kW`), at the end of the answer or of a list item. Only after a
 * number of its own (not an exponent: `\pi r^2 h` keeps its h).
 */
const SPACED_UNIT_RE =
  /(?<=(?:^|[^\w^_{.\\])\d+(?:\.\d+)?)\s+(?:m|s|g|h|L|N|J|W|V|K|Pa|Hz|kW|kN|kJ|kPa|ms)(?:\s*\/\s*(?:s|h|min)(?:\s*\^\s*\{?\s*2\s*\}?|²)?)?(?:\s*\^\s*\{?\s*[23]\s*\}?|[²³])?(?=\s*(?:[,;]|$))/g;

const TEXT_COMMANDS = [
  'text', 'textbf', 'textit', 'textrm', 'textnormal', 'textsf', 'texttt', 'mbox', 'hbox',
  'mathrm', 'mathbf', 'mathit', 'mathsf', 'mathtt', 'boldsymbol', 'operatorname', 'emph',
];

/** Strips one pair of wrapping delimiters ($..$, \(..\), \[..\], \boxed{..}); null if none. */
function unwrapOnce(s: string): string | null {
  const pairs: [string, string][] = [['$$', '$$'], ['\\[', '\\]'], ['\\(', '\\)'], ['$', '$']];
  for (const [open, close] of pairs) {
    if (s.length >= open.length + close.length && s.startsWith(open) && s.endsWith(close)) {
      const inner = s.slice(open.length, s.length - close.length);
      if (open === '$' && inner.includes('$') && !inner.includes('\\$')) continue;
      return inner.trim();
    }
  }
  const m = /^\\(?:boxed|fbox)\s*\{/.exec(s);
  if (m) {
    const close = matchBrace(s, m[0].length - 1);
    if (close === s.length - 1) return s.slice(m[0].length, close).trim();
  }
  return null;
}

/** Index of the `}` closing the `{` at `open`, or -1. Escaped braces are skipped. */
export function matchBrace(s: string, open: number): number {
  let depth = 0;
  for (let i = open; i < s.length; i++) {
    const c = s[i];
    if (c === '\\') {
      i++;
      continue;
    }
    if (c === '{') depth++;
    else if (c === '}' && --depth === 0) return i;
  }
  return -1;
}

/** Replaces every `\cmd{arg}` for the given commands through `fn(arg, cmd, rest)`. */
function replaceCommandArgs(s: string, cmds: string[], fn: (arg: string, cmd: string, after: string) => string): string {
  const re = new RegExp(`\\\\(${cmds.join('|')})\\s*\\{`, 'g');
  let out = '';
  let last = 0;
  for (let guard = 0; guard < 1000; guard++) {
    re.lastIndex = last;
    const m = re.exec(s);
    if (!m) break;
    const open = m.index + m[0].length - 1;
    const close = matchBrace(s, open);
    if (close < 0) break;
    out += s.slice(last, m.index) + fn(s.slice(open + 1, close), m[1]!, s.slice(close + 1));
    last = close + 1;
  }
  return out + s.slice(last);
}

/**
 * @param raw one extracted answer (may still carry `$...$` or `\boxed{}` around it)
 * @param plain true when the answer came from plain text rather than LaTeX; only then is a
 *   lone comma between digits read as a decimal comma (`1,22` = 1.22). In LaTeX `1,2` is a list.
 */
export function normalizeAnswer(raw: string, plain = false): NormalizedAnswer {
  let s = raw.trim();
  let percent = false;
  // A mixed number in plain text: `4 4/9` is 4 + 4/9 (proper fractions only, as Math-Verify).
  const mixed = plain ? /^([-+]?)(\d+) (\d+)\/(\d+)(\s*%?)$/.exec(s) : null;
  if (mixed && Number(mixed[3]) < Number(mixed[4])) {
    s = `${mixed[1]}(${mixed[2]} + ${mixed[3]}/${mixed[4]})${mixed[5]}`;
  }
  s = s.replace(/\r\n?|\n|\t/g, ' ');

  // Delimiters and \boxed wrappers, repeatedly ($\boxed{...}$).
  for (let k = 0; k < 8; k++) {
    const inner = unwrapOnce(s);
    if (inner === null) break;
    s = inner;
  }
  // A doubled backslash before a command (`\\frac`) is an escaping artefact outside matrices.
  if (!s.includes('\\begin')) s = s.replace(/(?<!\\)\\\\(?=[A-Za-z{}])/g, '\\');

  s = s
    .replace(/\\(?:left|right|bigl|bigr|Bigl|Bigr|biggl|biggr|Biggl|Biggr|big|Big|bigg|Bigg)(?![A-Za-z])\s*\.?/g, '')
    .replace(/\\(?:displaystyle|textstyle|scriptstyle|limits|nolimits)(?![A-Za-z])/g, '')
    .replace(/\\[dtc]frac(?![A-Za-z])/g, '\\frac')
    .replace(/\\[dt]binom(?![A-Za-z])/g, '\\binom')
    .replace(/\\(?:lvert|rvert|vert|mid)(?![A-Za-z])/g, '|');

  // Digit-group separators written in LaTeX: 12,\!345 and 14{,}916 (thousands), 2{,}5 (decimal).
  s = s.replace(/(\d),\\!\s*(?=\d{3}(?!\d))/g, '$1');
  s = s.replace(/(\d)\s*\{\s*,\s*\}\s*(\d+)/g, (_m, a: string, b: string) => (b.length === 3 ? a + b : `${a}.${b}`));
  s = s.replace(/\{\s*\.\s*\}/g, '.');

  // Text-like commands: units and words go, "and"/"or" become a separator, math stays.
  const whole = /^\\([A-Za-z]+)\s*\{/.exec(s);
  if (whole && TEXT_COMMANDS.includes(whole[1]!) && matchBrace(s, whole[0].length - 1) === s.length - 1) {
    const inner = s.slice(whole[0].length, -1).trim();
    // `\text{e}` and `\mathrm{e}` alone are Euler's number, not a word (`\text{E}` stays a letter).
    if (inner === 'e') return { text: 'e', percent: false, isText: false };
    if (/^[A-Za-z][A-Za-z\s.'-]*$/.test(inner.replace(/^\((.*)\)$/, '$1')) && !MATH_WORDS.has(inner)) {
      return { text: cleanWords(inner), percent: false, isText: true };
    }
  }
  s = replaceCommandArgs(s, TEXT_COMMANDS, (arg, cmd, after) => {
    const t = arg.trim();
    if (/^(?:,?\s*(?:and|or)|,)$/i.test(t)) return ', ';
    if (cmd === 'operatorname') return MATH_WORDS.has(t) ? `\\${t} ` : t;
    if (/^[A-Za-z]$/.test(t) && !/^\s/.test(arg)) return t;
    if (/^\s*(?:%|percent|percentage|pct)\s*$/i.test(t)) return '\\%';
    if (/^[A-Za-z\s.'$-]*$/.test(t)) return /^\s*(?:\^|[²³])/.test(after) ? ' \\unitpower ' : ' ';
    return arg;
  });
  s = s.replace(/\\unitpower\s*(?:\^\s*\{?\s*[23]\s*\}?|[²³])/g, '').replace(/\\unitpower/g, '').replace(/,\s*,/g, ',');

  // Unicode operators and symbols.
  s = s
    .replace(/[×·⋅∗]/g, '*')
    .replace(/÷/g, '/')
    .replace(/[−–]/g, '-')
    .replace(/π/g, '\\pi ')
    .replace(/∞/g, '\\infty ')
    .replace(/√/g, '\\sqrt')
    .replace(/∪/g, '\\cup ')
    .replace(/±/g, '\\pm ')
    .replace(/∓/g, '\\mp ')
    .replace(/∈/g, '\\in ')
    .replace(/∅/g, '\\emptyset ')
    .replace(/²/g, '^2')
    .replace(/³/g, '^3');

  // Degrees (an angle of 90° equals 90, as in Math-Verify).
  s = s.replace(/\^\s*\{?\s*\\circ\s*\}?/g, '').replace(/\\circ(?![A-Za-z])|°|\\degree(?![A-Za-z])/g, '');

  // Percent.
  const before = s;
  s = s.replace(/\\%|%|\s*\b(?:percentage|percent|pct)\b/gi, '');
  if (s !== before) percent = true;

  // Currency.
  s = s.replace(/\\\$|\$|[€£¥₹₽₩]/g, '').replace(/\bUSD\b/g, '');

  // `12 and 13`, `-2, and 1`: a list; so is `x = 2 or x = 5`.
  s = s.replace(/(?<=[\d})\]])\s*,?\s*\b(?:and|or)\b\s*(?=[-+\d\\({[])/g, ', ');
  s = s.replace(/(?<=[\w})\]])\s*,?\s+(?:and|or)\s+(?=[A-Za-z](?:_\{?\w+\}?)?\s*(?:[=<>≤≥]|\\[lg]e|\\[lg]eq|\\neq?)(?![A-Za-z]))/g, ', ');

  // Spacing commands and leftover markup.
  s = s
    .replace(/(?<!\\)\\[,;:! ]|\\q?quad(?![A-Za-z])|~/g, ' ')
    .replace(/\\(?:mathbb)\s*\{\s*R\s*\}/g, '(-\\infty, \\infty)')
    .replace(/\\(?:vec|overrightarrow|hat|bar|overline|mathbf|boldsymbol|widehat|overarc|wideparen)\s*(?=\{)/g, '')
    .replace(/(?<![A-Za-z\\])(?:m\s*)?\\(?:angle|measuredangle)(?![A-Za-z])\s*/g, '');

  // Relations to single characters.
  s = s
    .replace(/\\(?:leq|leqslant|le)(?![A-Za-z])|<=|=<|≦/g, '≤')
    .replace(/\\(?:geq|geqslant|ge)(?![A-Za-z])|>=|≧/g, '≥')
    .replace(/\\(?:neq|ne)(?![A-Za-z])|!=|=\/=|<>/g, '≠')
    .replace(/\\lt(?![A-Za-z])/g, '<')
    .replace(/\\gt(?![A-Za-z])/g, '>')
    .replace(/==/g, '=')
    .replace(/\\(?:approx|simeq|thickapprox)(?![A-Za-z])|≈/g, '≈');
  // `x = 1/3 ≈ 0.33`: the exact value before the approximation is the answer.
  if (s.includes('≈')) {
    const cut = s.indexOf('≈');
    s = s.slice(0, cut).includes('=') ? s.slice(0, cut) : s.replace(/≈/g, '=');
  }

  // `x \in S` is the set S.
  const inMatch = /^[A-Za-z\s,()_{}\\]*?\\in(?![A-Za-z])/.exec(s);
  if (inMatch) s = s.slice(inMatch[0].length);

  s = s.replace(/\s+/g, ' ').trim();
  // Sentence punctuation at the end (not an ellipsis).
  for (let k = 0; k < 4 && /[.,;:]$/.test(s) && !/\.\.$/.test(s); k++) s = s.slice(0, -1).trim();

  // Unit words trailing a number.
  s = s.replace(UNIT_RE, '').trim();
  s = s.replace(UNIT_ITEM_RE, '').replace(SPACED_UNIT_RE, '').trim();

  // Word answers (`Evelyn`, `(C)`): letters only, with at least one real word.
  const bare = s.replace(/^\((.*)\)$/, '$1').trim();
  if (/^[A-Za-z][A-Za-z\s'-]*$/.test(bare) && bare.split(/\s+/).some((w) => w.length > 1 && !MATH_WORDS.has(w))) {
    return { text: cleanWords(bare), percent, isText: true };
  }

  s = formatNumbers(s, plain);
  return { text: s, percent, isText: false };
}

function cleanWords(s: string): string {
  return s.replace(/^\((.*)\)$/, '$1').replace(/\s+/g, ' ').trim();
}

/**
 * Digit-group commas and spaces: a whole answer like `12,000,023` or `1 000` is one number
 * (groups of exactly three digits after a 1-3 digit head). In plain text a single comma
 * otherwise acts as a decimal comma (`1,22`, `0,111`); in LaTeX it separates list items.
 */
function formatNumbers(s: string, plain: boolean): string {
  const thousands = /^([-+]?)([1-9]\d{0,2}(?:,\d{3})+|[1-9]\d{0,2}(?: \d{3})+)(\.\d+)?$/.exec(s);
  if (thousands) return thousands[1]! + thousands[2]!.replace(/[, ]/g, '') + (thousands[3] ?? '');
  if (plain && /^[-+]?\d+,\d+$/.test(s)) return s.replace(',', '.');
  return s;
}
