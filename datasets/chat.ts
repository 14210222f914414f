/**
 * Conversational (chat-formatted) prompts, as TRL defines them: a list of `{ role, content }`
 * messages that the tokenizer's chat template renders, with the generation prompt, into the
 * text the model continues. Checked here once, at load time, with errors naming the row and
 * the field (`train.jsonl:3: "prompt[1].content" must be a string, got null`).
 */

/** One chat message. */
export interface ChatMessage {
  role: string;
  content: string;
}

const kind = (v: unknown): string => (v === null ? 'null' : v === undefined ? 'undefined' : Array.isArray(v) ? 'an array' : typeof v === 'object' ? 'an object' : `a ${typeof v}`);

/** True when `value` looks like a conversational prompt: an array whose items are objects (TRL's `is_conversational`). */
export function isConversational(value: unknown): boolean {
  return Array.isArray(value) && value.length > 0 && value.every((m) => typeof m === 'object' && m !== null && !Array.isArray(m));
}

/**
 * The messages of a conversational prompt, checked: a non-empty array of objects with a
 * non-empty string `role` and a string `content` (other keys are dropped), not ending with
 * an assistant message (the model writes that one). `where` is the row (`file:line`) and
 * `field` the column, both named in errors.
 */
export function parseMessages(value: unknown, where: string, field: string): ChatMessage[] {
  if (!Array.isArray(value)) throw new Error(`${where}: "${field}" must be a string or a list of { role, content } messages, got ${kind(value)}`);
  if (value.length === 0) throw new Error(`${where}: "${field}" is an empty list of messages`);
  const messages = value.map((m: unknown, i): ChatMessage => {
    const at = `"${field}[${i}]"`;
    if (typeof m !== 'object' || m === null || Array.isArray(m)) throw new Error(`${where}: ${at} must be a { role, content } message, got ${kind(m)}`);
    const { role, content } = m as Record<string, unknown>;
    if (typeof role !== 'string' || role.trim() === '') throw new Error(`${where}: ${at.slice(0, -1)}.role" must be a non-empty string, got ${typeof role === 'string' ? 'an empty string' : kind(role)}`);
    if (typeof content !== 'string') throw new Error(`${where}: ${at.slice(0, -1)}.content" must be a string, got ${kind(content)}`);
    return { role, content };
  });
  if (messages[messages.length - 1]!.role === 'assistant') {
    throw new Error(`${where}: "${field}" ends with an assistant message; a prompt ends with the turn the model answers (user, system or tool)`);
  }
  return messages;
}

/** `messages` with a system message first; a prompt that already starts with one keeps its own. */
export function withSystemMessage(messages: ChatMessage[], system: string): ChatMessage[] {
  return messages[0]?.role === 'system' ? messages : [{ role: 'system', content: system }, ...messages];
}
