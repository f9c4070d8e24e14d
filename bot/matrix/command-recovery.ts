import { UserError } from "../../commands/errors.ts";
import { findCommand } from "../../commands/help.ts";
import { selectSubcommand, tokenize } from "../../commands/parse-input.ts";
import { code, concat, type Message } from "../../commands/format.ts";
import type { CommandSpec, Log } from "../../commands/types.ts";
import { interruptCommands, type UnfinishedCommand } from "../../storage/audit.ts";
import type { Db } from "../../storage/db.ts";
import { laneState } from "../../storage/outbox.ts";
import { answerLane } from "./reply-channel.ts";

export interface RecoveryDeps {
  db: Db;
  table: readonly CommandSpec[];
  prefix: string;
  now(): number;
  log: Log;
  /** Runs a read-only command again, answering its original message; resolves when it is answered. */
  rerun(c: UnfinishedCommand, line: string): Promise<void>;
  /** Tells the command's room once (by `once` key) that it was cut short, with ❌ on it. */
  tell(c: UnfinishedCommand & { eventId: string }, message: Message, once: string): Promise<void>;
}

/**
 * At start, for each command the bot was running when it stopped (kill -9, a crash, a power cut): a
 * read-only one that was not answered is simply answered now; one whose outcome was shown needs
 * nothing; one that may have changed something is never run again, and its room is told once (run
 * after the deploys' and backups' own recovery has posted, so that their words come first and alone).
 * A command's rows stay marked running until this is done (a crash meanwhile finds them again); rows
 * of one message (a command answered again, cut short again) are settled together.
 */
export async function recoverCommands(unfinished: readonly UnfinishedCommand[], d: RecoveryDeps): Promise<void> {
  const byMessage = new Map<string, UnfinishedCommand[]>();
  for (const c of unfinished) {
    const key = c.eventId ?? `#${c.id}`;
    byMessage.set(key, [...(byMessage.get(key) ?? []), c]);
  }
  for (const rows of byMessage.values()) {
    const c = rows[0] as UnfinishedCommand;
    const settle = (detail?: string): Promise<void> => interruptCommands(d.db, rows.map((r) => r.id), d.now(), detail);
    if (c.eventId === undefined) {
      await settle();
      continue;
    }
    const { posted, ended } = await laneState(d.db, answerLane(c.eventId));
    const line = c.line.startsWith(d.prefix) ? c.line.slice(d.prefix.length) : c.line;
    const spec = specOf(d.table, line, d.prefix);
    if (spec?.readOnly && !posted) {
      // Settled once it is answered (by then its new run has a row of its own): not awaited, a slow one must not hold the start.
      void d
        .rerun(c, line)
        .then(() => settle("the bot stopped while it ran; answered again after the restart"))
        .catch((err: unknown) => d.log.error({ err, command: c.id }, "could not answer again a command cut short"));
      continue;
    }
    // Answered, or a deploy or backup told by its own recovery (whose ❌ ended the lane already).
    if (spec?.readOnly || ended) {
      await settle();
      continue;
    }
    await d.tell({ ...c, eventId: c.eventId }, interruptedCommand(c, d.prefix), `interrupted:command:${c.id}`);
    await settle();
  }
}

/** The spec a command line ran: a family's subcommand (`vm run`), not the family. */
function specOf(table: readonly CommandSpec[], line: string, prefix: string): CommandSpec | undefined {
  try {
    const words = tokenize(line);
    const spec = findCommand(table, (words[0] ?? "").toLowerCase());
    return spec && selectSubcommand(spec, words.slice(1), prefix).spec;
  } catch (err) {
    if (err instanceof UserError) return undefined;
    throw err;
  }
}

function interruptedCommand(c: UnfinishedCommand, prefix: string): Message {
  return concat(
    `⚠️ This command (#${c.id}) was cut short when I stopped, and I did not run it again: check what it did (`,
    code(`${prefix}status`),
    ", ",
    code(`${prefix}history`),
    ") and send it again if it is still needed.",
  );
}
