import type { Db } from "./db.ts";

export interface MatrixSession {
  userId: string;
  deviceId: string;
  accessToken: string;
}

export async function loadSession(db: Db, homeserver: string, userId: string): Promise<MatrixSession | undefined> {
  const row = await db.get<{ user_id: string; device_id: string; access_token: string }>(
    "SELECT user_id, device_id, access_token FROM matrix_session WHERE homeserver = ? AND user_id = ?",
    [homeserver, userId],
  );
  return row && { userId: row.user_id, deviceId: row.device_id, accessToken: row.access_token };
}

export async function saveSession(db: Db, homeserver: string, s: MatrixSession): Promise<void> {
  await db.run(
    `INSERT INTO matrix_session (homeserver, user_id, device_id, access_token) VALUES (?, ?, ?, ?)
     ON CONFLICT (homeserver, user_id) DO UPDATE SET device_id = excluded.device_id, access_token = excluded.access_token`,
    [homeserver, s.userId, s.deviceId, s.accessToken],
  );
}

export interface SavedSyncState {
  nextBatch: string;
  /** What is saved for the whole account (JSON). */
  data: string;
  /** What is saved for each room (JSON). */
  rooms: Array<{ roomId: string; data: string }>;
}

export async function loadSyncState(db: Db, userId: string): Promise<SavedSyncState | undefined> {
  const row = await db.get<{ next_batch: string; data: string }>("SELECT next_batch, data FROM sync_state WHERE user_id = ?", [userId]);
  if (!row) return undefined;
  const rooms = await db.all<{ room_id: string; data: string }>("SELECT room_id, data FROM sync_rooms WHERE user_id = ?", [userId]);
  return { nextBatch: row.next_batch, data: row.data, rooms: rooms.map((r) => ({ roomId: r.room_id, data: r.data })) };
}

/** The position to resume from, without reading the rooms. */
export async function loadSyncToken(db: Db, userId: string): Promise<string | undefined> {
  return (await db.get<{ next_batch: string }>("SELECT next_batch FROM sync_state WHERE user_id = ?", [userId]))?.next_batch;
}

/**
 * Saves the position, the account's part and the rooms that changed (`data` undefined: the room is
 * gone), in one transaction: a restart never resumes from a position the rooms do not match.
 */
export async function saveSyncState(
  db: Db,
  userId: string,
  s: { nextBatch: string; data: string; rooms: Array<{ roomId: string; data: string | undefined }> },
  now: number,
): Promise<void> {
  await db.transaction(async (q) => {
    for (const room of s.rooms) {
      if (room.data === undefined) {
        await q.run("DELETE FROM sync_rooms WHERE user_id = ? AND room_id = ?", [userId, room.roomId]);
      } else {
        await q.run(
          `INSERT INTO sync_rooms (user_id, room_id, data) VALUES (?, ?, ?)
           ON CONFLICT (user_id, room_id) DO UPDATE SET data = excluded.data`,
          [userId, room.roomId, room.data],
        );
      }
    }
    await q.run(
      `INSERT INTO sync_state (user_id, next_batch, data, saved_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (user_id) DO UPDATE SET next_batch = excluded.next_batch, data = excluded.data, saved_at = excluded.saved_at`,
      [userId, s.nextBatch, s.data, now],
    );
  });
}

/** A new login (new device) must not resume another device's sync. */
export async function clearSyncState(db: Db, userId: string): Promise<void> {
  await db.transaction(async (q) => {
    await q.run("DELETE FROM sync_rooms WHERE user_id = ?", [userId]);
    await q.run("DELETE FROM sync_state WHERE user_id = ?", [userId]);
  });
}
