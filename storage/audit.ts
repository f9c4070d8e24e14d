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
 * Commands still marked running: they belong to a process that died (at start, before this run took
 * any). They stay marked running until the front end has answered or told about them (and a crash
 * meanwhile finds them again), then `interruptCommands` marks them.
 */
export async function runningCommands(db: Db): Promise<UnfinishedCommand[]> {
  const rows = await db.all<{ id: number; clan: string; room: string; sender: string; command: string; line: string; event_id: string | null; started_at: number }>(
    "SELECT id, clan, room, sender, command, line, event_id, started_at FROM audit WHERE result = 'running' ORDER BY id",
  );
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
}

/** Marks commands that a dead process left running as interrupted, with what became of them. */
export async function interruptCommands(db: Db, ids: readonly number[], now: number, detail = "the bot stopped while it ran"): Promise<void> {
  if (!ids.length) return;
  await db.run(`UPDATE audit SET result = 'interrupted', finished_at = ?, detail = ? WHERE result = 'running' AND id IN (${ids.map(() => "?").join(", ")})`, [
    now,
    detail,
    ...ids,
  ]);
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
