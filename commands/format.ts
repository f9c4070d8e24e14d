/**
 * Pure formatting: every message exists twice, as Matrix HTML and as readable plain text.
 * Commands build messages from these pieces; front ends decide how to show them.
 */
export interface Message {
  readonly text: string;
  readonly html: string;
}

export type Piece = Message | string;

const HTML_ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c] ?? c);
}

function piece(p: Piece): Message {
  return typeof p === "string" ? { text: p, html: escapeHtml(p) } : p;
}

/** Joins pieces on one line. */
export function concat(...parts: Piece[]): Message {
  const ms = parts.map(piece);
  return { text: ms.map((m) => m.text).join(""), html: ms.map((m) => m.html).join("") };
}

export function bold(p: Piece): Message {
  const m = piece(p);
  return { text: `*${m.text}*`, html: `<strong>${m.html}</strong>` };
}

export function italic(p: Piece): Message {
  const m = piece(p);
  return { text: `_${m.text}_`, html: `<em>${m.html}</em>` };
}

export function code(s: string): Message {
  return { text: `\`${s}\``, html: `<code>${escapeHtml(s)}</code>` };
}

export function codeBlock(s: string): Message {
  return { text: "```\n" + s + "\n```", html: `<pre><code>${escapeHtml(s)}</code></pre>` };
}

/** Separate paragraphs or lines: a blank line in text, <p> in HTML. */
export function paragraphs(...parts: Piece[]): Message {
  const ms = parts.map(piece);
  return { text: ms.map((m) => m.text).join("\n\n"), html: ms.map((m) => `<p>${m.html}</p>`).join("") };
}

export function lines(...parts: Piece[]): Message {
  const ms = parts.map(piece);
  return { text: ms.map((m) => m.text).join("\n"), html: ms.map((m) => m.html).join("<br>") };
}

export function bulletList(items: Piece[]): Message {
  const ms = items.map(piece);
  return { text: ms.map((m) => `• ${m.text}`).join("\n"), html: `<ul>${ms.map((m) => `<li>${m.html}</li>`).join("")}</ul>` };
}

/**
 * A table: HTML <table> for clients that render it, aligned columns in plain text
 * (the console and clients that only show `body`).
 */
export function table(headers: string[], rows: Piece[][]): Message {
  const cells = rows.map((r) => r.map(piece));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i]?.text.length ?? 0)));
  const textRow = (values: string[]): string =>
    values.map((v, i) => (i === values.length - 1 ? v : v.padEnd(widths[i] ?? 0))).join("  ").trimEnd();
  const text = [textRow(headers), ...cells.map((r) => textRow(r.map((c) => c.text)))].join("\n");
  const head = `<tr>${headers.map((h) => `<th>${escapeHtml(h)}</th>`).join("")}</tr>`;
  const body = cells.map((r) => `<tr>${r.map((c) => `<td>${c.html}</td>`).join("")}</tr>`).join("");
  return { text, html: `<table><thead>${head}</thead><tbody>${body}</tbody></table>` };
}

/** "3 min ago", "2 h ago": for times people read at a glance. */
export function ago(then: number, now: number): string {
  return `${formatDuration(Math.max(0, now - then))} ago`;
}

/** A duration the way people say it: "850 ms", "12 s", "4 min 3 s", "2 h 5 min", "3 d 4 h". */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 ? `${m} min ${s % 60} s` : `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
  const d = Math.floor(h / 24);
  return h % 24 ? `${d} d ${h % 24} h` : `${d} d`;
}
