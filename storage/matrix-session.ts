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

export async function loadSyncState(db: Db, userId: string): Promise<{ nextBatch: string; data: string } | undefined> {
  const row = await db.get<{ next_batch: string; data: string }>("SELECT next_batch, data FROM sync_state WHERE user_id = ?", [userId]);
  return row && { nextBatch: row.next_batch, data: row.data };
}

export async function saveSyncState(db: Db, userId: string, nextBatch: string, data: string, now: number): Promise<void> {
  await db.run(
    `INSERT INTO sync_state (user_id, next_batch, data, saved_at) VALUES (?, ?, ?, ?)
     ON CONFLICT (user_id) DO UPDATE SET next_batch = excluded.next_batch, data = excluded.data, saved_at = excluded.saved_at`,
    [userId, nextBatch, data, now],
  );
}

/** A new login (new device) must not resume another device's sync. */
export async function clearSyncState(db: Db, userId: string): Promise<void> {
  await db.run("DELETE FROM sync_state WHERE user_id = ?", [userId]);
}
