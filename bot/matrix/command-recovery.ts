import { UserError } from "../../commands/errors.ts";
import { findCommand } from "../../commands/help.ts";
import { selectSubcommand, tokenize } from "../../commands/parse-input.ts";
import { code, concat, type Message } from "../../commands/format.ts";
import type { CommandSpec } from "../../commands/types.ts";
import type { UnfinishedCommand } from "../../storage/audit.ts";
import type { Db } from "../../storage/db.ts";
import { laneState } from "../../storage/outbox.ts";
import { answerLane } from "./reply-channel.ts";

export interface RecoveryDeps {
  db: Db;
  table: readonly CommandSpec[];
  prefix: string;
  /** Runs a read-only command again, answering its original message. */
  rerun(c: UnfinishedCommand, line: string): Promise<void>;
  /** Tells the command's room once (by `once` key) that it was cut short, with ❌ on it. */
  tell(c: UnfinishedCommand & { eventId: string }, message: Message, once: string): Promise<void>;
}

/**
 * At start, for each command the bot was running when it stopped (kill -9, a crash, a power cut): a
 * read-only one that was not answered is simply answered now; one whose outcome was shown needs
 * nothing; one that may have changed something is never run again, and its room is told once (run
 * after the deploys' and backups' own recovery has posted, so that their words come first and alone).
 */
export async function recoverCommands(unfinished: readonly UnfinishedCommand[], d: RecoveryDeps): Promise<void> {
  for (const c of unfinished) {
    if (c.eventId === undefined) continue;
    const { posted, ended } = await laneState(d.db, answerLane(c.eventId));
    const line = c.line.startsWith(d.prefix) ? c.line.slice(d.prefix.length) : c.line;
    const spec = specOf(d.table, line, d.prefix);
    if (spec?.readOnly) {
      if (!posted) await d.rerun(c, line);
      continue;
    }
    // A deploy or backup cut short was told by its own recovery, whose ❌ ended the lane already.
    if (ended) continue;
    await d.tell({ ...c, eventId: c.eventId }, interruptedCommand(c, d.prefix), `interrupted:command:${c.id}`);
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
