import type { NewSchedule, Notify } from "../commands/backup-types.ts";
import type { Db } from "./db.ts";

export interface StoredSchedule extends NewSchedule {
  readonly id: number;
  readonly clan: string;
  readonly createdAt: number;
  /** The next slot as it was last computed; in the past after the bot was down over it. */
  readonly nextDue: number;
}

interface ScheduleRow {
  id: number;
  clan: string;
  target: string;
  cron: string;
  time_zone: string;
  notify: Notify;
  provider: string | null;
  created_by: string;
  created_at: number;
  next_due: number;
}

const COLUMNS = "id, clan, target, cron, time_zone, notify, provider, created_by, created_at, next_due";

const toSchedule = (r: ScheduleRow): StoredSchedule => ({
  id: r.id,
  clan: r.clan,
  target: r.target,
  cron: r.cron,
  timeZone: r.time_zone,
  notify: r.notify,
  ...(r.provider !== null ? { provider: r.provider } : {}),
  createdBy: r.created_by,
  createdAt: r.created_at,
  nextDue: r.next_due,
});

export async function addSchedule(db: Db, clan: string, s: NewSchedule, createdAt: number, nextDue: number): Promise<StoredSchedule> {
  const { lastID } = await db.run(
    `INSERT INTO backup_schedules (clan, target, cron, time_zone, notify, provider, created_by, created_at, next_due)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    [clan, s.target, s.cron, s.timeZone, s.notify, s.provider ?? null, s.createdBy, createdAt, nextDue],
  );
  return { ...s, id: lastID, clan, createdAt, nextDue };
}

/** A clan's schedules (every clan's without one), oldest first. */
export async function storedSchedules(db: Db, clan?: string): Promise<StoredSchedule[]> {
  const rows = await db.all<ScheduleRow>(`SELECT ${COLUMNS} FROM backup_schedules WHERE ? IS NULL OR clan = ? ORDER BY id`, [clan ?? null, clan ?? null]);
  return rows.map(toSchedule);
}

/** Removes one of a clan's schedules; returns it, or undefined when the clan has none with that id. */
export async function removeSchedule(db: Db, clan: string, id: number): Promise<StoredSchedule | undefined> {
  return db.transaction(async (q) => {
    const row = await q.get<ScheduleRow>(`SELECT ${COLUMNS} FROM backup_schedules WHERE clan = ? AND id = ?`, [clan, id]);
    if (row) await q.run("DELETE FROM backup_schedules WHERE id = ?", [id]);
    return row ? toSchedule(row) : undefined;
  });
}

/** Moves schedules on to their next slots, all in one transaction (a burst of firings is one write). */
export async function setNextDue(db: Db, moves: readonly { id: number; nextDue: number }[]): Promise<void> {
  if (!moves.length) return;
  await db.transaction(async (q) => {
    for (const m of moves) await q.run("UPDATE backup_schedules SET next_due = ? WHERE id = ?", [m.nextDue, m.id]);
  });
}
