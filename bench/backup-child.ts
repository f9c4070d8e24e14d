// One process with many backup schedules, run by bench/backup.ts (its resident memory is sampled from
// outside). Variant "clanbot": the bot's own scheduler (bot/backup-scheduler.ts: schedules in SQLite,
// node-cron for the next runs, one timer), loaded from a database as at a start. Variant "node-cron":
// one started node-cron task per schedule, the way node-cron is meant to be used, for comparison.
// Either way each firing only records how late it came: what a backup would do is not measured here.
//   node bench/backup-child.ts <clanbot|node-cron> <schedules> <window ms> <shared|distinct> [stall ms]
// With a stall, the event loop is kept busy that long once, from half a second before a burst (as a
// long synchronous job or a full garbage collection would): what fires late, and what is dropped.
// Prints one JSON line (BackupChildResult) when the window is over.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { schedule as cronSchedule, type ScheduledTask } from "node-cron";
import { BackupScheduler, type ScheduledClan } from "../bot/backup-scheduler.ts";
import { openDatabase } from "../storage/db.ts";
import { migrate } from "../storage/migrations.ts";

export interface BackupChildResult {
  variant: string;
  pattern: string;
  stallMs: number;
  schedules: number;
  /** Loading (clanbot: from SQLite), parsing every schedule and arming its timer(s). */
  startupMs: number;
  rssBeforeStart: number;
  rssAfterStart: number;
  /** Live JavaScript heap after a full collection, before and after the start. */
  heapBeforeStart: number;
  heapAfterStart: number;
  /** How late each firing of the counted part of the window came after its time, ms. */
  lateness: number[];
  /** Slots in the counted part of the window, and how many of them fired. */
  expected: number;
  fired: number;
}

const PERIOD_MS = 10_000;
const ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"];
const CLANS = 100;

/**
 * Half of the schedules fire at the same second (every 10 s: a burst, as when every clan backs up
 * at 01:00), the rest spread over the other nine seconds of every ten. "shared": ten expressions
 * (in four zones), as people pick the same few times; "distinct": every schedule's expression is
 * written differently (the same times: minute, hour and month ranges split at different places),
 * so nothing can be shared.
 */
function cronOf(i: number, n: number, distinct: boolean): { cron: string; offset: number } {
  const offset = i < n / 2 ? 0 : 1 + (i % 9);
  const seconds = offset === 0 ? "*/10" : `${offset}-59/10`;
  if (!distinct) return { cron: `${seconds} * * * * *`, offset };
  const [m, h, mo] = [i % 60, Math.floor(i / 60) % 24, 1 + (Math.floor(i / 1440) % 12)];
  return { cron: `${seconds} 0-${m},${m}-59 0-${h},${h}-23 * 1-${mo},${mo}-12 *`, offset };
}

/** The slots of a schedule with this offset in [from, to]. */
function slotsIn(offset: number, from: number, to: number): number {
  const first = Math.ceil((from - offset * 1000) / PERIOD_MS) * PERIOD_MS + offset * 1000;
  return first > to ? 0 : Math.floor((to - first) / PERIOD_MS) + 1;
}

async function main(): Promise<void> {
  const [variant = "clanbot", countText = "10000", windowText = "30000", pattern = "shared"] = process.argv.slice(2);
  const distinct = pattern === "distinct";
  const stallMs = Number(process.argv[6] ?? "0");
  const n = Number(countText);
  const windowMs = Number(windowText);
  /** Every firing: when it was due, and how late it came. */
  const firings: { dueAt: number; late: number }[] = [];
  const record = (dueAt: number): void => void firings.push({ dueAt, late: Date.now() - dueAt });
  const dir = await mkdtemp(join(tmpdir(), "clanbot-bench-backup-"));
  let startupMs: number;
  let rssBeforeStart: number;
  let heapBeforeStart: number;
  let stop: () => Promise<void>;
  try {
    if (variant === "clanbot") {
      const db = await openDatabase(join(dir, "db.sqlite3"));
      await migrate(db);
      const now = Date.now();
      await db.transaction(async (q) => {
        for (let i = 0; i < n; i++) {
          const { cron, offset } = cronOf(i, n, distinct);
          const nextDue = Math.floor((now - offset * 1000) / PERIOD_MS + 1) * PERIOD_MS + offset * 1000;
          await q.run(
            `INSERT INTO backup_schedules (clan, target, cron, time_zone, notify, provider, created_by, created_at, next_due)
             VALUES (?, 'all', ?, ?, 'always', NULL, '@bench:x', ?, ?)`,
            [`c${i % CLANS}`, cron, ZONES[i % ZONES.length] as string, now, nextDue],
          );
        }
      });
      const clan: ScheduledClan = {
        room: "!bench:x",
        view: { name: "bench", flake: dir, machines: async () => [] },
        backups: { start: () => Promise.reject(new Error("not in the bench")), skip: () => Promise.reject(new Error("not in the bench")), cancel: async () => false },
      };
      const quiet = { info() {}, warn() {}, error() {} };
      globalThis.gc?.();
      ({ rss: rssBeforeStart, heapUsed: heapBeforeStart } = process.memoryUsage());
      const t0 = performance.now();
      const scheduler = new BackupScheduler({
        db,
        clock: Date,
        log: quiet,
        announcer: { deliver: async () => true },
        clans: new Map(Array.from({ length: CLANS }, (_, i) => [`c${i}`, clan])),
        prefix: "!",
        minIntervalMs: 0,
        fire: async (_s, dueAt) => record(dueAt),
      });
      await scheduler.start();
      startupMs = performance.now() - t0;
      stop = async () => {
        await scheduler.close(1000);
        await db.close();
      };
    } else {
      globalThis.gc?.();
      ({ rss: rssBeforeStart, heapUsed: heapBeforeStart } = process.memoryUsage());
      const t0 = performance.now();
      const tasks: ScheduledTask[] = [];
      for (let i = 0; i < n; i++) {
        tasks.push(cronSchedule(cronOf(i, n, distinct).cron, (ctx) => record(ctx.date.getTime()), { timezone: ZONES[i % ZONES.length] as string }));
      }
      startupMs = performance.now() - t0;
      stop = async () => {
        for (const t of tasks) await t.destroy();
      };
    }
    globalThis.gc?.();
    const { rss: rssAfterStart, heapUsed: heapAfterStart } = process.memoryUsage();
    const from = Date.now() + 1000;
    if (stallMs > 0) {
      // Half a second before the first burst at least two seconds into the window.
      const stallAt = Math.ceil((from + 2000) / PERIOD_MS) * PERIOD_MS - 500;
      setTimeout(() => {
        const until = Date.now() + stallMs;
        while (Date.now() < until);
      }, stallAt - Date.now());
    }
    await sleep(windowMs);
    // Slots near the end may be firing right now: count those that had a second and a half.
    const to = Date.now() - 1500;
    let expected = 0;
    for (let i = 0; i < n; i++) expected += slotsIn(cronOf(i, n, distinct).offset, from, to);
    const counted = firings.filter((f) => f.dueAt >= from && f.dueAt <= to);
    await stop();
    const result: BackupChildResult = {
      variant,
      pattern,
      stallMs,
      schedules: n,
      startupMs,
      rssBeforeStart,
      rssAfterStart,
      heapBeforeStart,
      heapAfterStart,
      lateness: counted.map((f) => f.late),
      expected,
      fired: counted.length,
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
process.exit(0);
