import type { AuditEntry, AuditResult } from "../commands/types.ts";
import type { Db } from "./db.ts";

export interface AuditStart {
  clan: string;
  room: string;
  sender: string;
  command: string;
  line: string;
  eventId: string | undefined;
  startedAt: number;
}

interface AuditRow {
  id: number;
  sender: string;
  line: string;
  command: string;
  started_at: number;
  finished_at: number | null;
  result: AuditResult;
}

/** Records a command as it starts; the returned id is shown to people as `#id`. */
export async function startCommand(db: Db, s: AuditStart, result: AuditResult = "running"): Promise<number> {
  const { lastID } = await db.run(
    "INSERT INTO audit (clan, room, sender, command, line, event_id, started_at, result) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    [s.clan, s.room, s.sender, s.command, s.line, s.eventId ?? null, s.startedAt, result],
  );
  return lastID;
}

export async function finishCommand(
  db: Db,
  id: number,
  result: Exclude<AuditResult, "running">,
  finishedAt: number,
  detail?: string,
): Promise<void> {
  await db.run("UPDATE audit SET result = ?, finished_at = ?, detail = ? WHERE id = ?", [result, finishedAt, detail ?? null, id]);
}

/** A command the bot was running when it last stopped (its `line` as typed, with the prefix). */
export interface UnfinishedCommand extends AuditStart {
  id: number;
}

/**
 * Commands still marked running belong to a process that died: they are marked interrupted (not left
 * running forever) and returned, so that the front end can answer or tell about them.
 */
export async function interruptRunningCommands(db: Db, now: number): Promise<UnfinishedCommand[]> {
  return db.transaction(async (q) => {
    const rows = await q.all<{ id: number; clan: string; room: string; sender: string; command: string; line: string; event_id: string | null; started_at: number }>(
      "SELECT id, clan, room, sender, command, line, event_id, started_at FROM audit WHERE result = 'running' ORDER BY id",
    );
    await q.run("UPDATE audit SET result = 'interrupted', finished_at = ?, detail = 'the bot stopped while it ran' WHERE result = 'running'", [now]);
    return rows.map((r) => ({
      id: r.id,
      clan: r.clan,
      room: r.room,
      sender: r.sender,
      command: r.command,
      line: r.line,
      eventId: r.event_id ?? undefined,
      startedAt: r.started_at,
    }));
  });
}

export async function recentCommands(db: Db, clan: string, limit: number): Promise<AuditEntry[]> {
  const rows = await db.all<AuditRow>(
    "SELECT id, sender, line, command, started_at, finished_at, result FROM audit WHERE clan = ? ORDER BY id DESC LIMIT ?",
    [clan, limit],
  );
  return rows.map((r) => ({
    id: r.id,
    sender: r.sender,
    line: r.line,
    command: r.command,
    startedAt: r.started_at,
    finishedAt: r.finished_at ?? undefined,
    result: r.result,
  }));
}
