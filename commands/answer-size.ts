import { concat, type Message } from "./format.ts";
import type { Attachment } from "./types.ts";

/** The most a homeserver accepts for one event (Matrix spec: 65,536 bytes of JSON, envelope included). */
export const MAX_EVENT_BYTES = 65_536;

/**
 * The most an answer's text and HTML together may take, JSON-encoded. An edit carries both twice
 * (`body` and `m.new_content`) besides the envelope, relations and a reply fallback, so this is
 * well under half the event limit.
 */
export const MAX_ANSWER_BYTES = 24_000;

/** What a message costs in an event: its text and HTML as JSON strings. */
export function answerBytes(m: Message): number {
  return Buffer.byteLength(JSON.stringify(m.text)) + Buffer.byteLength(JSON.stringify(m.html));
}

/** Text a person typed, shown back only cut short: `max` characters, then "… (N more characters)". */
export function clipQuote(s: string, max = 80): string {
  const chars = [...s];
  if (chars.length <= max) return s;
  return `${chars.slice(0, max).join("")}… (${chars.length - max} more characters)`;
}

/**
 * An answer that fits in one event: as it is when small enough; otherwise a short note, with the
 * whole answer as a text file to attach (a table of 10,000 rows is still all there).
 */
export function fitAnswer(m: Message, name = "answer.txt"): { message: Message; file?: Attachment } {
  if (answerBytes(m) <= MAX_ANSWER_BYTES) return { message: m };
  const data = new TextEncoder().encode(m.text);
  const start = cutText(m.text, 1_000);
  return {
    message: concat(start, `\n\n… the whole answer (${Math.ceil(data.byteLength / 1024)} KB) is too long for a message: it follows as the file ${name}.`),
    file: { name, mimetype: "text/plain", data },
  };
}

/** An edit of a status message cannot bring a file along: past the limit, its text is cut. */
export function cutAnswer(m: Message): Message {
  if (answerBytes(m) <= MAX_ANSWER_BYTES) return m;
  return concat(cutText(m.text, 8_000), "\n\n… (cut: too long for one message)");
}

/** The first characters of `s`, at most `maxChars`, and fewer if need be to stay well inside the budget. */
function cutText(s: string, maxChars: number): string {
  let chars = [...s].slice(0, maxChars);
  // Characters JSON escapes (controls) or HTML escapes cost up to six bytes each, twice.
  while (chars.length > 1 && 2 * Buffer.byteLength(JSON.stringify(chars.join(""))) * 1.5 > MAX_ANSWER_BYTES / 2) chars = chars.slice(0, chars.length >> 1);
  return chars.join("");
}
