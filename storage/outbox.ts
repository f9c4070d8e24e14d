import type { Db } from "./db.ts";

export interface OutboxRow {
  id: number;
  roomId: string;
  lane: string;
  eventType: string;
  content: Record<string, unknown>;
  target: number | undefined;
}

export interface NewOutboxRow {
  roomId: string;
  lane: string;
  eventType: string;
  content: Record<string, unknown>;
  target?: number;
  /** A key that makes this post unique: a second row with it is not added. */
  once?: string;
}

type Raw = { id: number; room_id: string; lane: string; event_type: string; content: string; target: number | null };

const toRow = (r: Raw): OutboxRow => ({
  id: r.id,
  roomId: r.room_id,
  lane: r.lane,
  eventType: r.event_type,
  content: JSON.parse(r.content) as Record<string, unknown>,
  target: r.target ?? undefined,
});

/** Stores a post to send; undefined when a row with the same `once` key exists already. */
export async function addToOutbox(db: Db, row: NewOutboxRow, now: number): Promise<number | undefined> {
  const { changes, lastID } = await db.run(
    "INSERT OR IGNORE INTO outbox (room_id, lane, event_type, content, target, once, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
    [row.roomId, row.lane, row.eventType, JSON.stringify(row.content), row.target ?? null, row.once ?? null, now],
  );
  return changes === 1 ? lastID : undefined;
}

/** Posts not sent yet, oldest first: what a stopped bot still owes its rooms. */
export async function pendingPosts(db: Db): Promise<OutboxRow[]> {
  const rows = await db.all<Raw>("SELECT id, room_id, lane, event_type, content, target FROM outbox WHERE state = 'pending' ORDER BY id");
  return rows.map(toRow);
}

/** The event a sent post became (undefined while it is not sent, or when it failed for good). */
export async function sentEventOf(db: Db, id: number): Promise<string | undefined> {
  const row = await db.get<{ event_id: string | null }>("SELECT event_id FROM outbox WHERE id = ?", [id]);
  return row?.event_id ?? undefined;
}

/** The post became `eventId`; its content is no longer kept. */
export async function markSent(db: Db, id: number, eventId: string): Promise<void> {
  await db.run("UPDATE outbox SET state = 'sent', event_id = ?, content = '{}' WHERE id = ?", [eventId, id]);
}

/** The homeserver refused the post for good. */
export async function markFailed(db: Db, id: number): Promise<void> {
  await db.run("UPDATE outbox SET state = 'failed', content = '{}' WHERE id = ?", [id]);
}

/** Forgets what was sent (or refused) before `before`; pending posts stay. */
export async function forgetSentPosts(db: Db, before: number): Promise<number> {
  const { changes } = await db.run("DELETE FROM outbox WHERE state != 'pending' AND created_at < ?", [before]);
  return changes;
}

/**
 * What a lane holds: whether anything was stored in it, and whether it holds a reaction on the
 * command itself (its ✅, ❌ or ⛔: the outcome was shown).
 */
export async function laneState(db: Db, lane: string): Promise<{ posted: boolean; ended: boolean }> {
  const row = await db.get<{ posted: number; ended: number }>(
    "SELECT COUNT(*) AS posted, COUNT(CASE WHEN event_type = 'm.reaction' AND target IS NULL THEN 1 END) AS ended FROM outbox WHERE lane = ?",
    [lane],
  );
  return { posted: (row?.posted ?? 0) > 0, ended: (row?.ended ?? 0) > 0 };
}
