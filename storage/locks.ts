import type { MachineLock } from "../commands/deploy-types.ts";
import type { Db } from "./db.ts";

interface LockRow {
  machine: string;
  holder: string;
  reason: string | null;
  since: number;
  until: number;
}

const toLock = (r: LockRow): MachineLock => ({ machine: r.machine, holder: r.holder, reason: r.reason ?? undefined, since: r.since, until: r.until });

/**
 * Takes a machine's lock for `lock.holder`, or renews it when they already hold it.
 * Atomic: of two people locking at once, one gets it and the other sees who has it.
 */
export async function takeLock(
  db: Db,
  clan: string,
  lock: MachineLock,
  now: number,
): Promise<{ taken: true } | { taken: false; held: MachineLock }> {
  return db.transaction(async (q) => {
    const row = await q.get<LockRow>("SELECT machine, holder, reason, since, until FROM machine_locks WHERE clan = ? AND machine = ? AND until > ?", [
      clan,
      lock.machine,
      now,
    ]);
    if (row && row.holder !== lock.holder) return { taken: false, held: toLock(row) };
    await q.run(
      `INSERT INTO machine_locks (clan, machine, holder, reason, since, until) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (clan, machine) DO UPDATE SET holder = excluded.holder, reason = excluded.reason, since = excluded.since, until = excluded.until`,
      [clan, lock.machine, lock.holder, lock.reason ?? null, row ? row.since : lock.since, lock.until],
    );
    return { taken: true };
  });
}

/** Removes a machine's lock; returns it if one was in force. */
export async function releaseLock(db: Db, clan: string, machine: string, now: number): Promise<MachineLock | undefined> {
  return db.transaction(async (q) => {
    const row = await q.get<LockRow>("SELECT machine, holder, reason, since, until FROM machine_locks WHERE clan = ? AND machine = ?", [clan, machine]);
    await q.run("DELETE FROM machine_locks WHERE clan = ? AND machine = ?", [clan, machine]);
    return row && row.until > now ? toLock(row) : undefined;
  });
}

/** Locks in force, by machine name; expired ones are cleared on the way. */
export async function activeLocks(db: Db, clan: string, now: number): Promise<MachineLock[]> {
  await db.run("DELETE FROM machine_locks WHERE clan = ? AND until <= ?", [clan, now]);
  const rows = await db.all<LockRow>("SELECT machine, holder, reason, since, until FROM machine_locks WHERE clan = ? ORDER BY machine", [clan]);
  return rows.map(toLock);
}

export async function lockOf(db: Db, clan: string, machine: string, now: number): Promise<MachineLock | undefined> {
  const row = await db.get<LockRow>("SELECT machine, holder, reason, since, until FROM machine_locks WHERE clan = ? AND machine = ? AND until > ?", [
    clan,
    machine,
    now,
  ]);
  return row ? toLock(row) : undefined;
}
