/**
 * Finding the final answer in a completion (or in a reference solution).
 *
 * Candidates, in priority order (the verifier takes the first one that parses):
 * 1. inside the last `<answer>...</answer>`, when there is one, and only there;
 * 2. the last `\boxed{...}` / `\fbox{...}` (nested braces), joined with the boxes before it
 *    when "and", "or", commas or spacing separate them, or a short phrase with one of those
 *    and no correction word (`\boxed{-2} and \boxed{1}` -> `-2, 1`; `\boxed{2}. Wait, so
 *    \boxed{5}` -> `5`);
 * 3. after the last "final answer" (then the last "answer is" / "answer:"), up to the end
 *    of that sentence: its rightmost math span or number;
 * 4. the whole text, when it is itself an answer (`$\frac{1}{2}$`, `x = 3`, `1,000`);
 * 5. the rightmost math span (`$...$`, `$$...$$`, `\(...\)`, `\[...\]`) or plain number /
 *    arithmetic expression (`2/3`, `1,000.99`, `28%`, `4 4/9`) anywhere, right to left.
 * In 3-5, math spans joined only by "and", "or" or commas (`$x = 2$ or $x = 5$`) are one
 * candidate, when all of them read and name the same unknown (or none).
 * Numbers inside a math span are never read on their own: a formula that fails to parse
 * does not hand out the digits inside it.
 */
import { matchBrace } from './normalize.ts';
import { parseAnswer } from './parse.ts';

/** Longer completions are cut to their last MAX_INPUT_CHARS characters (the answer is at the end). */
export const MAX_INPUT_CHARS = 100_000;
const MAX_FALLBACK_CANDIDATES = 24;
const MAX_ANCHORS = 8;
const SEGMENT_CHARS = 400;

export interface AnswerCandidate {
  /** The answer text (LaTeX or plain). */
  text: string;
  /** True when it came from plain text (then `1,22` reads as a decimal comma). */
  plain: boolean;
  source: 'answer-tag' | 'boxed' | 'final-answer' | 'answer' | 'whole' | 'last';
}

interface Span {
  start: number;
  end: number;
  text: string;
  plain: boolean;
}

/**
 * Math spans: `\[..\]`, `\(..\)`, `$$..$$` and single-line `$..$` (an unmatched `$` is a
 * currency sign). Linear time: an opener with no closer disables that kind of span.
 */
function mathSpans(text: string): Span[] {
  const spans: Span[] = [];
  const noCloser = new Set<string>();
  const n = text.length;
  let i = 0;
  const block = (open: string, close: string): boolean => {
    if (noCloser.has(close)) return false;
    const j = text.indexOf(close, i + open.length);
    if (j < 0) {
      noCloser.add(close);
      return false;
    }
    spans.push({ start: i, end: j + close.length, text: text.slice(i + open.length, j), plain: false });
    i = j + close.length;
    return true;
  };
  while (i < n) {
    const c = text[i];
    if (c === '\\') {
      const next = text[i + 1];
      if ((next === '[' && block('\\[', '\\]')) || (next === '(' && block('\\(', '\\)'))) continue;
      i += 2;
      continue;
    }
    if (c === '$') {
      if (text[i + 1] === '$') {
        if (!block('$$', '$$')) i += 2;
        continue;
      }
      let j = i + 1;
      while (j < n && text[j] !== '\n' && text[j] !== '$') j += text[j] === '\\' ? 2 : 1;
      // `$5 for apples and $3`: prose between two dollar signs is money, not mathematics.
      if (j < n && text[j] === '$' && j > i + 1 && !isProse(text.slice(i + 1, j))) {
        spans.push({ start: i, end: j + 1, text: text.slice(i + 1, j), plain: false });
        i = j + 1;
      } else i++;
      continue;
    }
    i++;
  }
  return spans;
}

/** Two or more ordinary words (3+ letters) outside LaTeX commands. */
function isProse(s: string): boolean {
  if (s.includes('\\')) return false;
  return (s.match(/[A-Za-z]{3,}/g) ?? []).filter((w) => !ANSWER_WORD.test(w)).length >= 2;
}

const PERCENT_AFTER = /^\s*(?:\\?%|percent\b|percentage\b|pct\b)/i;

/** A run of digits and arithmetic on one line: `2/3`, `(1/2) * (4/3)`, `5 × 6 × 4`. */
const RUN_RE = /(?<![A-Za-z_\d.(\-])[(\-]*\d[\d. \t+\-*/×÷^()]*/g;
const NUMBER_RE =
  /(?<![A-Za-z_\d.,])(-?)([1-9]\d{0,2}(?:,\d{3})+(?:\.\d+)?|[1-9]\d{0,2}(?: \d{3})+(?![\d,])(?:\.\d+)?|\d+(?:[.,]\d+)?|\.\d+)/g;

/** Plain numbers and arithmetic expressions outside math spans, with their end offsets. */
function plainCandidates(masked: string): Span[] {
  const out: Span[] = [];
  for (const m of masked.matchAll(NUMBER_RE)) {
    let end = m.index + m[0].length;
    let text = m[0];
    const pct = PERCENT_AFTER.exec(masked.slice(end, end + 12));
    if (pct) {
      text += '%';
      end += pct[0].length;
    }
    out.push({ start: m.index, end, text, plain: true });
  }
  for (const m of masked.matchAll(RUN_RE)) {
    let text = m[0];
    let cut = text.length;
    while (cut > 0 && TRAILING_JUNK.has(text[cut - 1]!)) cut--;
    text = text.slice(0, cut);
    // Drop unbalanced brackets at either end.
    let open = balance(text);
    while (open > 0 && text.startsWith('(')) {
      text = text.slice(1).trimStart();
      open--;
    }
    while (open < 0 && text.endsWith(')')) {
      text = text.slice(0, -1).trimEnd();
      open++;
    }
    if (!/\d\s*[+\-*/×÷^]\s*[-(]*\s*\d/.test(text) || balance(text) !== 0) continue;
    const start = m.index + m[0].indexOf(text);
    out.push({ start, end: start + m[0].trimEnd().length, text, plain: true });
  }
  return out;
}

const TRAILING_JUNK = new Set([' ', '\t', '+', '-', '*', '/', '×', '÷', '^', '(', '.']);

function balance(s: string): number {
  let b = 0;
  for (const c of s) b += c === '(' ? 1 : c === ')' ? -1 : 0;
  return b;
}

/** Content of the `\boxed{` / `\fbox{` starting at `at`, and where it ends. */
function boxedAt(text: string, at: number): { content: string; end: number } {
  const head = /^\\(?:boxed|fbox)\s*/.exec(text.slice(at, at + 12))!;
  const open = at + head[0].length;
  if (text[open] === '{') {
    const close = matchBrace(text, open);
    if (close >= 0) return { content: text.slice(open + 1, close), end: close + 1 };
    return { content: text.slice(open + 1).replace(/[\s$.]*$/, ''), end: text.length };
  }
  const token = /^[^\s$]+/.exec(text.slice(open)) ?? [''];
  return { content: token[0], end: open + token[0].length };
}

function lastBoxedStart(text: string, before: number): number {
  return Math.max(text.lastIndexOf('\\boxed', before), text.lastIndexOf('\\fbox', before));
}

const CONNECTOR_TOKENS = /\\text\s*\{\s*(?:and|or)\s*\}|\\q?quad|\\[,;:! ]|\band\b|\bor\b|[\s$.,;&]|\\\\|\\[()[\]]/gi;
/** A separator between two boxed answers that belong to one answer (`\boxed{2} and \boxed{5}`). */
const BOX_SEPARATOR = /\band\b|\bor\b|[,;]/i;
/**
 * Words that mark the later box as a correction or a conclusion, not a second element
 * (`\boxed{2}. Wait, that is wrong, so the answer is \boxed{5}`).
 */
const BOX_STOP =
  /\b(?:wait|but|however|actually|answer|so|therefore|thus|hence|correct\w*|mistake|wrong|instead|not|no|check\w*|final\w*|sorry|hmm+|oops|again|recheck\w*|recalculat\w*|re-?evaluat\w*|verif\w*|mean\w*|i\.e|or rather)\b/i;
const MAX_BOX_GAP = 70;
/** `x = ` or `(x, y) = ` written just before a box (`$x = \boxed{2}$ or $x = \boxed{5}$`). */
const BOX_PREFIX = /(?:^|[\s$(,;{])((?:[A-Za-z](?:_\{?[A-Za-z0-9]+\}?)?|\([A-Za-z](?:\s*,\s*[A-Za-z])+\))\s*=\s*)$/;

/** True when the text between two boxes joins them into one answer. */
function joinsBoxes(between: string): boolean {
  if (between.length > MAX_BOX_GAP) return false;
  const rest = between.replace(CONNECTOR_TOKENS, '');
  if (rest === '') return true;
  // Markup and symbols only (`\boxed{35} ++ \boxed{4}`), as Math-Verify joins close boxes.
  if (between.length < 10 && !/[A-Za-z]/.test(between)) return true;
  return BOX_SEPARATOR.test(between) && !BOX_STOP.test(between);
}

/**
 * The last box, plus the boxes right before it that a connector joins to it ("and", "or",
 * a comma; short phrases like "for part (a) and" too, but no correction such as "wait, so").
 * When several boxes are joined, a `name =` written before a box goes with it, so
 * `$x = \boxed{2}$ or $x = \boxed{5}$` reads `x = 2, x = 5`; repeated boxes count once.
 */
function lastBoxedGroup(text: string): { content: string; start: number; end: number } | null {
  let start = lastBoxedStart(text, text.length);
  if (start < 0) return null;
  const lastBox = boxedAt(text, start);
  const prefixOf = (at: number) => BOX_PREFIX.exec(text.slice(Math.max(0, at - 40), at))?.[1] ?? '';
  let prefix = prefixOf(start);
  const parts = [{ content: lastBox.content, prefix }];
  for (let k = 0; k < 9; k++) {
    const prev = lastBoxedStart(text, start - 1);
    if (prev < 0) break;
    const box = boxedAt(text, prev);
    if (box.end > start - prefix.length) break;
    const between = text.slice(box.end, start - prefix.length);
    if (!joinsBoxes(between)) break;
    prefix = prefixOf(prev);
    const first = parts[0]!;
    if (box.content.trim() !== first.content.trim() || prefix !== first.prefix) parts.unshift({ content: box.content, prefix });
    start = prev;
  }
  const content = parts.length === 1 ? lastBox.content : parts.map((p) => p.prefix + p.content).join(', ');
  return { content, start, end: lastBox.end };
}

function lastAnswerTag(text: string): string | null {
  const lower = text.toLowerCase();
  const close = lower.lastIndexOf('</answer>');
  if (close < 0) return null;
  const open = lower.lastIndexOf('<answer>', close);
  return open < 0 ? null : text.slice(open + '<answer>'.length, close);
}

/** Words that may appear in a bare answer: math names, connectors, units, percent. */
const ANSWER_WORD =
  /^(?:sin|cos|tan|sec|csc|cot|ln|log|exp|sqrt|pi|inf|infty|and|or|percent|percentage|pct|mm|cm|km|m|meters?|metres?|feet|foot|ft|inch(?:es)?|miles?|yards?|kg|grams?|pounds?|lbs?|seconds?|minutes?|hours?|days?|weeks?|months?|years?|units?|sq|square|cubic|dollars?|cents?|degrees?)$/i;

/**
 * A short text that is itself an answer rather than prose: mathematics with at most unit
 * words (`x = 3`, `\frac{1}{2}`, `125 miles`), or a few words and no digits (`Evelyn`).
 */
function isBareAnswer(t: string): boolean {
  if (t === '' || t.length > 300 || /\$|\\\[|\\\(|\n|\.\s+[A-Z]/.test(t)) return false;
  const stripped = t.replace(/\\(?:begin|end)\s*\{[^}]*\}|\\[A-Za-z]+/g, ' ');
  // Point and segment names (`AB = 12`, `\frac{BD}{DC}`) and names on the left of a
  // relation (`ab = 6`) are mathematics, not words.
  const words = [...stripped.matchAll(/[A-Za-z]{2,}/g)]
    .filter((m) => !ANSWER_WORD.test(m[0]) && !/^[A-Z]{2,4}$/.test(m[0]))
    .filter((m) => !/^\s*(?:[=<>:≤≥]|_)/.test(stripped.slice(m.index + m[0].length)) || m[0].length > 3)
    .map((m) => m[0]);
  return words.length === 0 || (words.length <= 3 && !/\d/.test(t));
}

/** End of the sentence that starts at `from` (skipping over math spans). */
function sentenceEnd(text: string, from: number, spans: Span[]): number {
  const limit = Math.min(text.length, from + SEGMENT_CHARS);
  let spanIdx = spans.findIndex((s) => s.end > from);
  for (let i = from; i < limit; i++) {
    while (spanIdx >= 0 && spanIdx < spans.length && spans[spanIdx]!.end <= i) spanIdx++;
    const span = spanIdx >= 0 ? spans[spanIdx] : undefined;
    if (span && span.start <= i) {
      i = span.end - 1;
      continue;
    }
    const c = text[i];
    if (c === '\n' && text[i + 1] === '\n') return i;
    if (c === '.' && !/\d/.test(text[i + 1] ?? '') && /\s|$/.test(text[i + 1] ?? '')) return i;
    if (text.startsWith('I hope', i)) return i;
  }
  return limit;
}

/** What may stand between math spans that form one answer: `$2$ and $5$`, `$1$, $2$, or $3$`. */
const SPAN_GAP = /^\s*(?:[,;]\s*)?(?:(?:and|or)\b\s*)?$/i;
/** Longer runs of joined spans are a listing (`$1$, $2$, ..., $30$`), not one answer. */
const MAX_GROUP_SPANS = 10;
const LEAD = /^\s*([A-Za-z](?:_\{?\w+\}?)?)\s*(?:=|<|>|≤|≥|\\(?:le|ge|leq|geq|lt|gt|neq|ne)(?![A-Za-z]))/;

/**
 * Runs of two or more math spans joined only by "and", "or" or commas, as one answer
 * (`$x = 2$ or $x = 5$` -> `x = 2, x = 5`). The spans must all name the same unknown or
 * none (`$x = 2$ and $y = 3$` stays two answers: the last one is taken).
 */
function spanGroups(text: string, spans: Span[]): Span[] {
  const groups: Span[] = [];
  let run: Span[] = [];
  const flush = () => {
    const leads = new Set(run.map((s) => LEAD.exec(s.text)?.[1] ?? ''));
    const readable = (t: string) => {
      const v = parseAnswer(t);
      return v !== null && v.kind !== 'raw';
    };
    if (run.length > 1 && run.length <= MAX_GROUP_SPANS && leads.size === 1 && run.every((s) => readable(s.text))) {
      groups.push({ start: run[0]!.start, end: run[run.length - 1]!.end, text: run.map((s) => s.text.trim().replace(/[.,;]$/, '')).join(', '), plain: false });
    }
    run = [];
  };
  for (const s of spans) {
    const prev = run[run.length - 1];
    if (prev) {
      const gap = text.slice(prev.end, s.start);
      if (gap.length > 12 || gap.trim() === '' || !SPAN_GAP.test(gap)) flush();
    }
    // Past the limit the run can no longer be a group: stop collecting it.
    if (run.length <= MAX_GROUP_SPANS) run.push(s);
  }
  flush();
  return groups;
}

/**
 * Answer candidates for `text`, best first. `verifyMath` parses them in this order and
 * keeps the first that parses.
 */
export function* answerCandidates(text: string, insideTag = false): Generator<AnswerCandidate> {
  if (text.length > MAX_INPUT_CHARS) text = text.slice(-MAX_INPUT_CHARS);

  if (!insideTag) {
    const tag = lastAnswerTag(text);
    if (tag !== null) {
      for (const c of answerCandidates(tag, true)) yield { ...c, source: 'answer-tag' };
      return;
    }
  }

  const boxed = lastBoxedGroup(text);
  if (boxed) yield { text: boxed.content, plain: false, source: 'boxed' };

  const spans = mathSpans(text);
  const maskedChars = text.split('');
  for (const s of spans) for (let i = s.start; i < s.end; i++) maskedChars[i] = ' ';
  if (boxed) for (let i = boxed.start; i < boxed.end; i++) maskedChars[i] = ' ';
  const plain = plainCandidates(maskedChars.join(''));
  const groups = spanGroups(text, spans);
  const all = [...spans, ...groups, ...plain]
    .map((s) => {
      const pct = PERCENT_AFTER.exec(text.slice(s.end, s.end + 12));
      return !s.plain && pct ? { ...s, text: s.text + '%' } : s;
    })
    .sort((a, b) => b.end - a.end || b.end - b.start - (a.end - a.start));

  for (const [source, re] of [
    ['final-answer', /final\s+answer/gi],
    ['answer', /\banswer(?:\*\*)?\s*(?:is\b|:|=)/gi],
  ] as const) {
    const anchors = [...text.matchAll(re)].slice(-MAX_ANCHORS).reverse();
    for (const a of anchors) {
      const from = a.index + a[0].length;
      const to = sentenceEnd(text, from, spans);
      // The whole rest of the sentence when it is an answer by itself (`x = 3`, `B`, `Evelyn`).
      const sentence = text.slice(from, to).replace(/^[\s*:]+|[\s*.]+$/g, '');
      if (isBareAnswer(sentence)) yield { text: sentence, plain: !/[\\^{}]/.test(sentence), source };
      for (const s of all) {
        if (s.start >= from && s.end <= to + 1) yield { text: s.text, plain: s.plain, source };
      }
    }
  }

  const trimmed = text.trim();
  const only = spans.length === 1 && trimmed === text.slice(spans[0]!.start, spans[0]!.end).trim();
  // When the whole text is the answer, every later candidate lies inside it: stop here.
  if (only) return yield { text: spans[0]!.text, plain: false, source: 'whole' };
  const wholeGroup = groups.find((g) => text.slice(0, g.start).trim() === '' && text.slice(g.end).trim().replace(/^[.,;]$/, '') === '');
  if (wholeGroup) return yield { text: wholeGroup.text, plain: false, source: 'whole' };
  if (isBareAnswer(trimmed)) return yield { text: trimmed, plain: !/[\\^{}]/.test(trimmed), source: 'whole' };

  for (const s of all.slice(0, MAX_FALLBACK_CANDIDATES)) yield { text: s.text, plain: s.plain, source: 'last' };
}

/**
 * The final answer of `text` as a string (the first candidate that parses, else the first
 * candidate), or null when the text holds no answer at all.
 */
export function extractAnswer(text: string): string | null {
  let first: string | null = null;
  for (const c of answerCandidates(text)) {
    const v = parseAnswer(c.text, c.plain);
    if (v && v.kind !== 'raw') return c.text.trim();
    first ??= c.text.trim();
  }
  return first;
}
