/**
 * The GSM8K format (Cobbe et al., 2021, "Training Verifiers to Solve Math Word Problems"):
 * rows `{ question, answer }` whose `answer` is a worked solution ending in a line
 * `#### <number>`, e.g. "... so she earns 12 * 4 = <<12*4=48>>48 dollars.\n#### 48".
 *
 * `fromGsm8k` turns a row into a prompt row: `prompt` = the question, `answer` = the final
 * number (thousands separators dropped, `1,234` -> `1234`), the column the math, numeric
 * and exact_match rewards read, and `solution` = the worked solution as given. Other
 * columns are kept. A row without a question, or whose answer has no `#### <number>`
 * line, is an error naming the row and the field.
 */

/** The final answer of a GSM8K solution: the number after its last `####`, or null when there is none. */
export function gsm8kFinalAnswer(solution: string): string | null {
  const at = solution.lastIndexOf('####');
  if (at < 0) return null;
  const tail = solution.slice(at + 4).trim().replace(/\.$/, '');
  const m = /^[-+−]?\s*\$?\s*(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?$/.exec(tail);
  if (!m) return null;
  const sign = /^[-−]/.test(tail) ? '-' : '';
  return sign + m[1]!.replace(/,/g, '') + (m[2] ?? '');
}

const kind = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v);

/** A GSM8K row as a prompt row's columns (see the file header); `where` names the row in errors. */
export function fromGsm8k(values: Record<string, unknown>, where: string): Record<string, unknown> {
  const { question, answer, ...rest } = values;
  if (typeof question !== 'string' || question.trim() === '') {
    throw new Error(`${where}: GSM8K rows need a "question" string, got ${question === undefined ? 'no such column' : kind(question)} (columns: ${Object.keys(values).join(', ')}; rename with --map question=<column>)`);
  }
  if (typeof answer !== 'string') {
    throw new Error(`${where}: GSM8K rows need an "answer" string ending in "#### <number>", got ${answer === undefined ? 'no such column' : kind(answer)}`);
  }
  const final = gsm8kFinalAnswer(answer);
  if (final === null) {
    const tail = answer.slice(-40);
    throw new Error(`${where}: "answer" does not end in "#### <number>" (it ends ${JSON.stringify(tail)})`);
  }
  for (const c of ['prompt', 'solution']) {
    if (c in rest) throw new Error(`${where}: a GSM8K row already has a "${c}" column, which the format writes; rename it with --map`);
  }
  return { prompt: question, answer: final, solution: answer, ...rest };
}
