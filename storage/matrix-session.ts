import type { Db } from "./db.ts";

export interface MatrixSession {
  userId: string;
  deviceId: string;
  accessToken: string;
}

/** How a stored access token is encrypted at rest (ops/secret-box.ts): never kept in clear. */
export interface TokenSeal {
  sealText(text: string): Promise<string>;
  unsealText(text: string): Promise<{ text: string; clear: boolean }>;
}

export async function loadSession(db: Db, homeserver: string, userId: string, seal: TokenSeal): Promise<MatrixSession | undefined> {
  const row = await db.get<{ user_id: string; device_id: string; access_token: string }>(
    "SELECT user_id, device_id, access_token FROM matrix_session WHERE homeserver = ? AND user_id = ?",
    [homeserver, userId],
  );
  if (!row) return undefined;
  const token = row.access_token === "" ? { text: "", clear: false } : await seal.unsealText(row.access_token);
  const session = { userId: row.user_id, deviceId: row.device_id, accessToken: token.text };
  // A token stored in clear by an older clanbot is encrypted now.
  if (token.clear) await saveSession(db, homeserver, session, seal);
  return session;
}

export async function saveSession(db: Db, homeserver: string, s: MatrixSession, seal: TokenSeal): Promise<void> {
  const token = s.accessToken === "" ? "" : await seal.sealText(s.accessToken);
  await db.run(
    `INSERT INTO matrix_session (homeserver, user_id, device_id, access_token) VALUES (?, ?, ?, ?)
     ON CONFLICT (homeserver, user_id) DO UPDATE SET device_id = excluded.device_id, access_token = excluded.access_token`,
    [homeserver, s.userId, s.deviceId, token],
  );
}

/** Encrypts every stored token anew (`clanbot rekey`), in one transaction; returns how many. */
export async function resealSessions(db: Db, from: TokenSeal, to: TokenSeal): Promise<number> {
  const rows = await db.all<{ homeserver: string; user_id: string; access_token: string }>(
    "SELECT homeserver, user_id, access_token FROM matrix_session WHERE access_token != ''",
  );
  const sealed = await Promise.all(rows.map(async (r) => to.sealText((await from.unsealText(r.access_token)).text)));
  await db.transaction(async (q) => {
    for (const [i, r] of rows.entries()) {
      await q.run("UPDATE matrix_session SET access_token = ? WHERE homeserver = ? AND user_id = ?", [sealed[i] as string, r.homeserver, r.user_id]);
    }
  });
  return rows.length;
}

/** Well under SQLite's limit of 32,766 parameters a statement. */
const ROOMS_PER_STATEMENT = 500;

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

/** When the saved sync was saved (the bot's clock): what the bot had seen by then. */
export async function syncSavedAt(db: Db, userId: string): Promise<number | undefined> {
  return (await db.get<{ saved_at: number }>("SELECT saved_at FROM sync_state WHERE user_id = ?", [userId]))?.saved_at;
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
  const written = s.rooms.filter((r): r is { roomId: string; data: string } => r.data !== undefined);
  const gone = s.rooms.filter((r) => r.data === undefined).map((r) => r.roomId);
  await db.transaction(async (q) => {
    // Many rooms to a statement: the SDK waits for the save before its next sync, and a first start
    // in 1,000 rooms saves them all; one statement a room took seconds through the shared queue.
    for (let i = 0; i < written.length; i += ROOMS_PER_STATEMENT) {
      const chunk = written.slice(i, i + ROOMS_PER_STATEMENT);
      await q.run(
        `INSERT INTO sync_rooms (user_id, room_id, data) VALUES ${chunk.map(() => "(?, ?, ?)").join(", ")}
         ON CONFLICT (user_id, room_id) DO UPDATE SET data = excluded.data`,
        chunk.flatMap((r) => [userId, r.roomId, r.data]),
      );
    }
    for (let i = 0; i < gone.length; i += ROOMS_PER_STATEMENT) {
      const chunk = gone.slice(i, i + ROOMS_PER_STATEMENT);
      await q.run(`DELETE FROM sync_rooms WHERE user_id = ? AND room_id IN (${chunk.map(() => "?").join(", ")})`, [userId, ...chunk]);
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
