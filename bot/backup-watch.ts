import { formatBackedUpAgain, formatOverdue } from "../commands/backup-format.ts";
import { machinesOf } from "../commands/deploy-targets.ts";
import type { ClanView, Clock, Log } from "../commands/types.ts";
import { storedSchedules } from "../storage/backup-schedules.ts";
import { alertsOf, clearAlert, machineSummaries, raiseAlert } from "../storage/backups.ts";
import type { Db } from "../storage/db.ts";
import type { Announcer } from "./announcer.ts";

export interface BackupWatchOptions {
  db: Db;
  clock: Clock;
  log: Log;
  announcer: Pick<Announcer, "deliver">;
  clans: ReadonlyMap<string, { readonly view: ClanView }>;
  prefix: string;
  /** A machine without a successful backup for longer than this is overdue. */
  maxAgeMs: number;
  /** How often every clan is looked at. */
  intervalMs: number;
}

/**
 * Notices when backups stop working: a machine a schedule backs up that has had no successful
 * backup for `maxAgeMs` (counted from its last success, or from when it was first scheduled) gets
 * one 🔴 alert in its clan's room, kept in SQLite so that neither the next look nor a restart says it
 * again, and one 🟢 when a backup succeeds. Looks are one clan at a time, in order.
 */
export class BackupWatch {
  private readonly o: BackupWatchOptions;
  private timer: NodeJS.Timeout | undefined;
  private readonly chains = new Map<string, Promise<void>>();
  private readonly stopping = new AbortController();

  constructor(o: BackupWatchOptions) {
    this.o = o;
  }

  /** Looks at every clan now, then every `intervalMs`. */
  start(): void {
    void this.checkAll();
    this.timer = setInterval(() => void this.checkAll(), this.o.intervalMs);
    this.timer.unref();
  }

  /** Looks at every clan; resolves when done. */
  async checkAll(): Promise<void> {
    await Promise.all([...this.o.clans.keys()].map((clan) => this.check(clan)));
  }

  /** Looks at one clan (after each of its looks before has ended). */
  check(clan: string): Promise<void> {
    const next = (this.chains.get(clan) ?? Promise.resolve()).then(() => this.look(clan));
    const guarded = next.catch((err: unknown) => {
      if (!this.stopping.signal.aborted) this.o.log.error({ err, clan }, "could not look at the clan's backups");
    });
    this.chains.set(clan, guarded);
    return guarded;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    this.stopping.abort(new Error("the bot is shutting down"));
    await Promise.allSettled([...this.chains.values()]);
  }

  private async look(clan: string): Promise<void> {
    const { db, clock, maxAgeMs } = this.o;
    const schedules = await storedSchedules(db, clan);
    const alerts = await alertsOf(db, clan);
    if (!schedules.length && !alerts.size) return;
    const view = this.o.clans.get(clan)?.view;
    if (!view) return;
    const inventory = await view.machines(this.stopping.signal);
    // Watched: the machines the schedules pick now, each since its first schedule was made.
    const watched = new Map<string, number>();
    for (const s of schedules) {
      for (const m of machinesOf(inventory, s.target)) watched.set(m, Math.min(watched.get(m) ?? s.createdAt, s.createdAt));
    }
    const now = clock.now();
    for (const m of await machineSummaries(db, clan, [...watched.keys()])) {
      const since = watched.get(m.machine) as number;
      const overdue = now - (m.lastOk?.finishedAt ?? since) > maxAgeMs;
      if (overdue && m.overdueSince === undefined) {
        if (!(await raiseAlert(db, clan, m.machine, now))) continue;
        const told = await this.o.announcer.deliver(clan, formatOverdue(m, since, maxAgeMs, now, this.o.prefix));
        // Not told (the bot is stopping, the room is unknown yet): the next look tries again.
        if (!told) await clearAlert(db, clan, m.machine);
      } else if (!overdue && m.overdueSince !== undefined) {
        if (await clearAlert(db, clan, m.machine)) await this.o.announcer.deliver(clan, formatBackedUpAgain(m, now));
      }
    }
    // A machine no schedule backs up any more is not overdue: its alert goes without a word.
    for (const machine of alerts.keys()) if (!watched.has(machine)) await clearAlert(db, clan, machine);
  }
}
