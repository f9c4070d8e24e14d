import type { HostKey } from "../ops/host-keys.ts";
import type { Db } from "./db.ts";

interface HostKeyRow {
  key_type: string;
  key_base64: string;
  fingerprint: string;
}

const toKey = (r: HostKeyRow): HostKey => ({ type: r.key_type, base64: r.key_base64, fingerprint: r.fingerprint });

export async function pinnedHostKey(db: Db, clan: string, machine: string): Promise<HostKey | undefined> {
  const row = await db.get<HostKeyRow>("SELECT key_type, key_base64, fingerprint FROM host_keys WHERE clan = ? AND machine = ?", [clan, machine]);
  return row ? toKey(row) : undefined;
}

/** Pins `key` unless one is pinned already (two first contacts at once keep the first); returns the pinned key. */
export async function pinHostKeyIfNone(db: Db, clan: string, machine: string, key: HostKey, host: string, at: number): Promise<HostKey> {
  return db.transaction(async (q) => {
    await q.run(
      `INSERT INTO host_keys (clan, machine, host, key_type, key_base64, fingerprint, pinned_at, pinned_by)
       VALUES (?, ?, ?, ?, ?, ?, ?, 'first contact') ON CONFLICT (clan, machine) DO NOTHING`,
      [clan, machine, host, key.type, key.base64, key.fingerprint, at],
    );
    const row = await q.get<HostKeyRow>("SELECT key_type, key_base64, fingerprint FROM host_keys WHERE clan = ? AND machine = ?", [clan, machine]);
    return toKey(row as HostKeyRow);
  });
}

/** `!trust`: replaces the pinned key; returns the one it replaced. */
export async function replaceHostKey(db: Db, clan: string, machine: string, key: HostKey, host: string, at: number, by: string): Promise<HostKey | undefined> {
  return db.transaction(async (q) => {
    const old = await q.get<HostKeyRow>("SELECT key_type, key_base64, fingerprint FROM host_keys WHERE clan = ? AND machine = ?", [clan, machine]);
    await q.run(
      `INSERT INTO host_keys (clan, machine, host, key_type, key_base64, fingerprint, pinned_at, pinned_by)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (clan, machine) DO UPDATE SET host = excluded.host, key_type = excluded.key_type,
         key_base64 = excluded.key_base64, fingerprint = excluded.fingerprint, pinned_at = excluded.pinned_at, pinned_by = excluded.pinned_by`,
      [clan, machine, host, key.type, key.base64, key.fingerprint, at, by],
    );
    return old ? toKey(old) : undefined;
  });
}

export async function forgetHostKey(db: Db, clan: string, machine: string): Promise<void> {
  await db.run("DELETE FROM host_keys WHERE clan = ? AND machine = ?", [clan, machine]);
}

/** Every key pinned in a clan, under the name ssh looks its host up by: for clan's own ssh (ops/clan-known-hosts.ts). */
export async function pinnedHostLines(db: Db, clan: string): Promise<{ machine: string; host: string; type: string; base64: string }[]> {
  const rows = await db.all<{ machine: string; host: string; key_type: string; key_base64: string }>(
    "SELECT machine, host, key_type, key_base64 FROM host_keys WHERE clan = ? ORDER BY machine",
    [clan],
  );
  return rows.map((r) => ({ machine: r.machine, host: r.host, type: r.key_type, base64: r.key_base64 }));
}
