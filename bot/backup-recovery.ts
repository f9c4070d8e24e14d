import { formatBackupNotice } from "../commands/backup-format.ts";
import type { Clock, Log } from "../commands/types.ts";
import { stopLeftoverGroup } from "../ops/process-identity.ts";
import { interruptBackupRuns, markBackupAnnounced, unannouncedBackupRuns } from "../storage/backups.ts";
import type { Db } from "../storage/db.ts";
import type { Announcer } from "./announcer.ts";

/**
 * At start: backup runs still marked running belong to a bot that died. They are marked
 * interrupted and the clan processes they left behind are stopped; nothing is run again (a
 * schedule runs at its next slot). Then the rooms are told, once, of every run they have not
 * heard the end of: those, and scheduled runs whose notification could not be posted before the
 * bot stopped. Call it before the scheduler starts, so that only runs of earlier starts are told.
 */
export async function recoverBackups(
  o: { db: Db; clock: Clock; log: Log; announcer: Pick<Announcer, "deliver">; prefix: string },
  killGraceMs: number,
): Promise<void> {
  const { db, clock, log } = o;
  for (const r of await interruptBackupRuns(db, clock.now())) {
    const stopped = r.process ? stopLeftoverGroup(r.process.pid, r.process.pidStart, killGraceMs) : false;
    log.warn({ backup: r.id, clan: r.clan, machine: r.machine, stopped }, "a backup was interrupted when the bot last stopped");
  }
  for (const { clan, eventId, run } of await unannouncedBackupRuns(db)) {
    const message = formatBackupNotice(run, { now: clock.now(), prefix: o.prefix });
    void o.announcer
      .deliver(clan, message, eventId)
      .then((posted) => (posted ? markBackupAnnounced(db, run.id) : undefined))
      .catch((err: unknown) => log.error({ err, backup: run.id }, "could not record that a backup's end was told"));
  }
}
