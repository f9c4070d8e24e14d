import { setImmediate as nextTurn } from "node:timers/promises";
import { formatBackupNotice, localTime, targetText } from "../commands/backup-format.ts";
import type { BackupRequest, BackupStart, BackupState, NewSchedule, Schedule, ScheduleCheck, Schedules } from "../commands/backup-types.ts";
import { machinesOf } from "../commands/deploy-targets.ts";
import { bold, code, concat, formatDuration } from "../commands/format.ts";
import type { ClanView, Clock, Log } from "../commands/types.ts";
import { hostTimeZone, parseCron, type CronParse, type CronTimes } from "../ops/cron.ts";
import { finishCommand, startCommand } from "../storage/audit.ts";
import { addSchedule, removeSchedule, setNextDue, storedSchedules, type StoredSchedule } from "../storage/backup-schedules.ts";
import { markBackupAnnounced, previousOutcome } from "../storage/backups.ts";
import type { Db } from "../storage/db.ts";
import type { Announcer } from "./announcer.ts";
import { ScheduleTimer } from "./schedule-timer.ts";

/** What the scheduler needs of a clan: its room (for the audit rows of its runs), machines and backups. */
export interface ScheduledClan {
  readonly room: string;
  readonly view: ClanView;
  readonly backups: {
    start(request: BackupRequest, onChange: (s: BackupState) => void): Promise<BackupStart>;
    skip(request: BackupRequest, busy: BackupState): Promise<BackupState>;
    cancel(id: number, by: string): Promise<boolean>;
  };
}

export interface BackupSchedulerOptions {
  db: Db;
  clock: Clock;
  log: Log;
  announcer: Pick<Announcer, "deliver">;
  clans: ReadonlyMap<string, ScheduledClan>;
  prefix: string;
  /** Schedules whose runs would come closer together than this are refused. */
  minIntervalMs: number;
  /** Parses a cron expression in a time zone (node-cron by default). */
  parse?: (cron: string, timeZone: string) => CronParse;
  /** What fires a schedule; by default a backup of each of its machines (benchmarks replace it). */
  fire?: (schedule: StoredSchedule, dueAt: number, late: boolean) => Promise<void>;
  /** Schedules due at once are moved on in batches this big, the event loop free in between. */
  batch?: number;
  /** The time zone of schedules made without one; default: the host's. */
  defaultTimeZone?: string;
}

interface Entry {
  schedule: StoredSchedule;
  times: CronTimes;
}

/** Runs of a schedule close together: the smallest gap between its next ten runs. */
function tightestGap(next: readonly number[]): number {
  let gap = Number.POSITIVE_INFINITY;
  for (let i = 1; i < next.length; i++) gap = Math.min(gap, (next[i] as number) - (next[i - 1] as number));
  return gap;
}

/**
 * Every clan's backup schedules, kept in SQLite and run by one timer (ScheduleTimer) with node-cron
 * computing the next runs. A schedule's next slot is stored, so a restart sees what fell due while the
 * bot was down: each such schedule runs once at start-up, marked late, however many slots it missed.
 * A run fires a backup of each of the schedule's machines (as the inventory has them then); each
 * has an audit row (`schedule #3` as the sender), a record, and a notification in the clan's room.
 */
export class BackupScheduler {
  private readonly o: BackupSchedulerOptions;
  private readonly parse: (cron: string, timeZone: string) => CronParse;
  private readonly timer: ScheduleTimer<number>;
  private readonly entries = new Map<number, Entry>();
  /** Scheduled backups not yet ended, by id, for a clean stop. */
  private readonly running = new Map<number, ScheduledClan>();
  private readonly firing = new Set<Promise<void>>();
  private readonly stopping = new AbortController();
  readonly defaultTimeZone: string;

  constructor(o: BackupSchedulerOptions) {
    this.o = o;
    this.parse = o.parse ?? parseCron;
    this.defaultTimeZone = o.defaultTimeZone ?? hostTimeZone();
    this.timer = new ScheduleTimer<number>({ clock: o.clock, onDue: (due) => this.run(due, false) });
  }

  /**
   * Loads every schedule of the configured clans and arms the timer. Schedules whose slot passed
   * while the bot was down are fired once now, as late. Returns how many were late.
   */
  async start(): Promise<number> {
    const late: { key: number; at: number }[] = [];
    const now = this.o.clock.now();
    let n = 0;
    for (const s of await storedSchedules(this.o.db)) {
      // Parsing is slow next to the rest (node-cron): let other work in every few hundred.
      if (++n % (this.o.batch ?? 500) === 0) await nextTurn();
      if (!this.o.clans.has(s.clan)) continue;
      const parsed = this.parse(s.cron, s.timeZone);
      if (!parsed.ok) {
        this.o.log.error({ schedule: s.id, clan: s.clan, reason: parsed.reason }, "a stored schedule no longer parses; it does not run");
        continue;
      }
      this.entries.set(s.id, { schedule: s, times: parsed.times });
      if (s.nextDue <= now) late.push({ key: s.id, at: s.nextDue });
      else this.timer.set(s.id, s.nextDue);
    }
    if (late.length) this.o.log.warn({ schedules: late.map((l) => l.key) }, "schedules fell due while the bot was down; running each once now");
    this.run(late, true);
    return late.length;
  }

  /** One clan's view of the schedules, for its commands. */
  forClan(clan: string): Schedules {
    return {
      defaultTimeZone: this.defaultTimeZone,
      check: (cron, timeZone) => this.check(cron, timeZone),
      add: (s) => this.add(clan, s),
      list: async () => (await storedSchedules(this.o.db, clan)).map((s) => this.shown(s)),
      remove: async (id) => {
        const s = await removeSchedule(this.o.db, clan, id);
        if (!s) return undefined;
        const shown = this.shown(s);
        this.timer.delete(id);
        this.entries.get(id)?.times.dispose();
        this.entries.delete(id);
        return shown;
      },
    };
  }

  /** Hands everything due now to its runs; the timer calls it (tests may, with their own clock). */
  fireDue(): number {
    return this.timer.fireDue();
  }

  /** Stops the timer; gives running scheduled backups `graceMs`, then cancels them. */
  async close(graceMs: number): Promise<void> {
    this.timer.close();
    this.stopping.abort(new Error("the bot is shutting down"));
    const wait = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref());
    await Promise.race([Promise.allSettled([...this.firing]), wait(graceMs)]);
    await Promise.all([...this.running].map(([id, clan]) => clan.backups.cancel(id, "the bot shutting down")));
    await Promise.allSettled([...this.firing]);
    for (const e of this.entries.values()) e.times.dispose();
    this.entries.clear();
  }

  private check(cron: string, timeZone: string | undefined): ScheduleCheck {
    const parsed = this.parse(cron, timeZone ?? this.defaultTimeZone);
    if (!parsed.ok) return parsed;
    const { times } = parsed;
    try {
      let next: number[];
      try {
        next = times.next(10);
      } catch (err) {
        return { ok: false, reason: `'${times.cron}' never comes: ${err instanceof Error ? err.message : String(err)}` };
      }
      const gap = tightestGap(next);
      if (gap < this.o.minIntervalMs) {
        return {
          ok: false,
          tooOften: true,
          reason:
            `'${times.cron}' runs every ${formatDuration(gap)} at times (${next.slice(0, 3).map((t) => localTime(t, times.timeZone)).join(", ")}, …); ` +
            `backups are scheduled at most every ${formatDuration(this.o.minIntervalMs)} (backup.minInterval)`,
        };
      }
      return { ok: true, cron: times.cron, timeZone: times.timeZone, next };
    } finally {
      times.dispose();
    }
  }

  private async add(clan: string, s: NewSchedule): Promise<Schedule> {
    const parsed = this.parse(s.cron, s.timeZone);
    if (!parsed.ok) throw new Error(`an unchecked schedule: ${parsed.reason}`);
    const [nextDue] = parsed.times.next();
    let stored: StoredSchedule;
    try {
      stored = await addSchedule(this.o.db, clan, { ...s, cron: parsed.times.cron, timeZone: parsed.times.timeZone }, this.o.clock.now(), nextDue as number);
    } catch (err) {
      parsed.times.dispose();
      throw err;
    }
    this.entries.set(stored.id, { schedule: stored, times: parsed.times });
    this.timer.set(stored.id, stored.nextDue);
    return this.shown(stored);
  }

  private shown(s: StoredSchedule): Schedule {
    const { clan: _clan, nextDue, ...rest } = s;
    return { ...rest, nextRun: this.timer.dueAt(s.id) ?? nextDue };
  }

  /** Fires each due schedule, then moves them on to their next slots (in batches) and stores those. */
  private run(due: readonly { key: number; at: number }[], late: boolean): void {
    if (!due.length) return;
    const fired: Entry[] = [];
    for (const { key, at } of due) {
      const entry = this.entries.get(key);
      if (!entry) continue;
      fired.push(entry);
      this.track(this.fire(entry.schedule, at, late));
    }
    this.track(this.moveOn(fired));
  }

  private async moveOn(fired: readonly Entry[]): Promise<void> {
    const batch = this.o.batch ?? 500;
    const moves: { id: number; nextDue: number }[] = [];
    for (let i = 0; i < fired.length; i += batch) {
      if (i > 0) await nextTurn();
      for (const e of fired.slice(i, i + batch)) {
        // Removed meanwhile, or stopping: nothing more to arm.
        if (this.entries.get(e.schedule.id) !== e || this.stopping.signal.aborted) continue;
        const [next] = e.times.next();
        if (next === undefined) continue;
        this.timer.set(e.schedule.id, next);
        moves.push({ id: e.schedule.id, nextDue: next });
      }
    }
    await setNextDue(this.o.db, moves);
  }

  private track(p: Promise<void>): void {
    const guarded = p.catch((err: unknown) => this.o.log.error({ err }, "a scheduled run failed inside the bot"));
    this.firing.add(guarded);
    void guarded.finally(() => this.firing.delete(guarded));
  }

  private fire(s: StoredSchedule, dueAt: number, late: boolean): Promise<void> {
    return this.o.fire ? this.o.fire(s, dueAt, late) : this.backUp(s, dueAt, late);
  }

  /** A backup of each machine the schedule picks now. */
  private async backUp(s: StoredSchedule, dueAt: number, late: boolean): Promise<void> {
    const clan = this.o.clans.get(s.clan);
    if (!clan) return;
    let machines: string[];
    try {
      machines = machinesOf(await clan.view.machines(this.stopping.signal), s.target);
    } catch (err) {
      if (this.stopping.signal.aborted) return;
      return this.problem(s, `reading the clan's machines failed: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (!machines.length) {
      return this.problem(s, `'${s.target}' picks no machine of the clan's inventory now. ${this.o.prefix}unschedule ${s.id} removes the schedule`);
    }
    await Promise.all(machines.map((m) => this.backUpOne(clan, s, m, dueAt, late)));
  }

  private async backUpOne(clan: ScheduledClan, s: StoredSchedule, machine: string, dueAt: number, late: boolean): Promise<void> {
    const { db, clock, prefix } = this.o;
    // No new backups while the bot stops.
    if (this.stopping.signal.aborted) return;
    const sender = `schedule #${s.id}`;
    const provider = s.provider !== undefined ? ` --provider ${s.provider}` : "";
    const id = await startCommand(db, {
      clan: s.clan,
      room: clan.room,
      sender,
      command: "backup",
      line: `${prefix}backup ${machine}${provider}`,
      eventId: undefined,
      startedAt: clock.now(),
    });
    const request: BackupRequest = {
      id,
      machine,
      sender,
      trigger: "schedule",
      scheduleId: s.id,
      dueAt,
      late,
      ...(s.provider !== undefined ? { provider: s.provider } : {}),
    };
    const started = await clan.backups.start(request, () => undefined);
    if ("busy" in started) {
      const skipped = await clan.backups.skip(request, started.busy);
      await finishCommand(db, id, "refused", clock.now(), skipped.note);
      return this.notify(s, skipped, started.busy);
    }
    this.running.set(id, clan);
    // Started while close() was cancelling the others.
    if (this.stopping.signal.aborted) void clan.backups.cancel(id, "the bot shutting down");
    try {
      const final = await started.started.done;
      await finishCommand(db, id, final.phase === "ok" ? "ok" : "failed", clock.now(), final.note ?? final.phase);
      await this.notify(s, final);
    } finally {
      this.running.delete(id);
    }
  }

  /**
   * Tells the room how a run went: always, or (`--notify failures`) only when it did not go well, or
   * went well after a run that had not. Marked as told once posted; a notification that could not be
   * posted (the bot stopping) is posted at the next start.
   */
  private async notify(s: StoredSchedule, run: BackupState, busy?: BackupState): Promise<void> {
    const { db, clock } = this.o;
    const before = run.phase === "ok" ? await previousOutcome(db, s.clan, run.machine, run.id) : undefined;
    const recoveredFrom = before && before.phase !== "ok" ? before : undefined;
    if (s.notify === "failures" && run.phase === "ok" && !recoveredFrom) return markBackupAnnounced(db, run.id);
    const message = formatBackupNotice(run, {
      now: clock.now(),
      prefix: this.o.prefix,
      ...(recoveredFrom ? { recoveredFrom } : {}),
      ...(busy ? { busy } : {}),
    });
    if (await this.o.announcer.deliver(s.clan, message)) await markBackupAnnounced(db, run.id);
  }

  /** A schedule that could not run at all (no machines to back up): always told, as a failure. */
  private async problem(s: StoredSchedule, why: string): Promise<void> {
    this.o.log.warn({ schedule: s.id, clan: s.clan, why }, "a schedule could not run");
    await this.o.announcer.deliver(s.clan, concat("🔴 ", bold(`Schedule #${s.id}`), ` (backups of ${targetText(s.target)} at `, code(s.cron), `) could not run: ${why}.`));
  }
}
