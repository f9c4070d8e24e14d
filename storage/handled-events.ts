import type { Db } from "./db.ts";

/**
 * Claims an event for handling. True only the first time for an event id, so a command
 * replayed by sync after a restart (or delivered twice) never runs twice.
 */
export async function claimEvent(db: Db, eventId: string, clan: string, now: number): Promise<boolean> {
  const { changes } = await db.run("INSERT OR IGNORE INTO handled_events (event_id, clan, handled_at) VALUES (?, ?, ?)", [
    eventId,
    clan,
    now,
  ]);
  return changes === 1;
}

/** Forgets claims older than `before`; events that old are ignored on sight anyway. */
export async function forgetEventsBefore(db: Db, before: number): Promise<number> {
  const { changes } = await db.run("DELETE FROM handled_events WHERE handled_at < ?", [before]);
  return changes;
}
