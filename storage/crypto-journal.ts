import { openDatabase, type Db } from "./db.ts";

/**
 * The end-to-end encryption store of the bot's device, on disk: a snapshot of the crypto
 * databases plus the batches of writes made since, in a SQLite file of its own. The values were
 * encrypted by the crypto library with the store key before they got here; this file only keeps
 * bytes. Opened exclusively: one process at a time may use a device's crypto store.
 */
export interface CryptoJournal {
  /** Whose device the store belongs to; undefined for a new, empty store. */
  owner(): Promise<{ userId: string; deviceId: string } | undefined>;
  setOwner(userId: string, deviceId: string): Promise<void>;
  /** The last snapshot and every batch written after it, in order. */
  load(): Promise<{ snapshot: Buffer | undefined; batches: Buffer[] }>;
  append(batch: Buffer): Promise<void>;
  /** Replaces the snapshot and drops the batches it includes, in one transaction. */
  compact(snapshot: Buffer): Promise<void>;
  close(): Promise<void>;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS owner (id INTEGER PRIMARY KEY CHECK (id = 1), user_id TEXT NOT NULL, device_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS snapshot (id INTEGER PRIMARY KEY CHECK (id = 1), data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS batches (seq INTEGER PRIMARY KEY AUTOINCREMENT, data BLOB NOT NULL);
`;

/** Throws DatabaseBusyError when another process has the file open. */
export async function openCryptoJournal(path: string): Promise<CryptoJournal> {
  const db: Db = await openDatabase(path, { exclusive: true });
  await db.exec(SCHEMA);
  return {
    owner: async () => {
      const row = await db.get<{ user_id: string; device_id: string }>("SELECT user_id, device_id FROM owner WHERE id = 1");
      return row && { userId: row.user_id, deviceId: row.device_id };
    },
    setOwner: async (userId, deviceId) => {
      await db.run(
        "INSERT INTO owner (id, user_id, device_id) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET user_id = excluded.user_id, device_id = excluded.device_id",
        [userId, deviceId],
      );
    },
    load: async () => {
      const snap = await db.get<{ data: Buffer }>("SELECT data FROM snapshot WHERE id = 1");
      const rows = await db.all<{ data: Buffer }>("SELECT data FROM batches ORDER BY seq");
      return { snapshot: snap?.data, batches: rows.map((r) => r.data) };
    },
    append: async (batch) => {
      await db.run("INSERT INTO batches (data) VALUES (?)", [batch]);
    },
    compact: async (snapshot) => {
      await db.transaction(async (q) => {
        await q.run("INSERT INTO snapshot (id, data) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET data = excluded.data", [snapshot]);
        await q.run("DELETE FROM batches");
      });
    },
    close: () => db.close(),
  };
}
