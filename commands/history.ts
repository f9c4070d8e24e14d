import { clipQuote } from "./answer-size.ts";
import { ago, code, concat, formatDuration, paragraphs, table, type Message } from "./format.ts";
import type { AuditEntry, AuditResult, CommandSpec } from "./types.ts";

const RESULT_MARK: Record<AuditResult, string> = {
  running: "⏳ running",
  ok: "✅ ok",
  failed: "❌ failed",
  error: "❌ error",
  invalid: "❓ bad input",
  refused: "⛔ refused",
  limited: "⛔ too many",
  expired: "⛔ too old",
  interrupted: "⚠️ interrupted",
};

export function formatHistory(entries: readonly AuditEntry[], now: number): Message {
  if (!entries.length) return concat("No commands have been run in this clan yet.");
  const rows = entries.map((e) => [
    `#${e.id}`,
    e.sender,
    code(clipQuote(e.line, 80)),
    ago(e.startedAt, now),
    RESULT_MARK[e.result],
    e.finishedAt === undefined ? "" : formatDuration(e.finishedAt - e.startedAt),
  ]);
  return paragraphs(
    concat(`The last ${entries.length} command${entries.length === 1 ? "" : "s"} in this clan, newest first:`),
    table(["Id", "Who", "Command", "When", "Result", "Took"], rows),
  );
}

export const historyCommand: CommandSpec = {
  name: "history",
  readOnly: true,
  summary: "Shows the last commands run in this clan: who, what, when, result, duration.",
  level: "viewer",
  args: [],
  flags: [{ name: "limit", type: "integer", placeholder: "n", summary: "how many to show (default 10, at most 50)" }],
  async run(ctx, input) {
    const limit = (input.flags["limit"] as number | undefined) ?? 10;
    const wanted = Math.min(Math.max(limit, 1), 50);
    // The history command itself is running: leave it out (it says nothing yet), and read one more so it takes no place.
    const entries = await ctx.store.recentCommands(wanted + 1);
    return formatHistory(entries.filter((e) => e.id !== ctx.runId).slice(0, wanted), ctx.clock.now());
  },
};
