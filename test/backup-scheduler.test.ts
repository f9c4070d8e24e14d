import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { BackupScheduler, type ScheduledClan } from "../bot/backup-scheduler.ts";
import { BackupWatch } from "../bot/backup-watch.ts";
import type { Message } from "../commands/format.ts";
import type { Log, Machine } from "../commands/types.ts";
import { BackupService } from "../ops/backup-service.ts";
import { ClanCli } from "../ops/clan-cli.ts";
import type { CronParse } from "../ops/cron.ts";
import { sharedMachineQueue } from "../ops/machine-queue.ts";
import { recentCommands } from "../storage/audit.ts";
import { storedSchedules, type StoredSchedule } from "../storage/backup-schedules.ts";
import { openDatabase, type Db } from "../storage/db.ts";
import { migrate } from "../storage/migrations.ts";
import { fakeClanPath, makeFlake, writeFixture, type FakeClanFixture } from "../demo/fake-clan-fixture.ts";
import { tempDir } from "./support/temp-dir.ts";

const quiet: Log = { info() {}, warn() {}, error() {} };
const HOUR = 3600_000;
const T0 = Date.UTC(2026, 10, 20, 0, 0, 0);

/** A clock the test moves. */
function manualClock(start = T0) {
  let now = start;
  return { now: () => now, set: (t: number) => void (now = t), advance: (ms: number) => void (now += ms) };
}

/** Cron times that come every `period` ms on that clock, whatever the expression says. */
function everyPeriod(clock: { now(): number }, period = HOUR): (cron: string, timeZone: string) => CronParse {
  return (cron, timeZone) => ({
    ok: true,
    times: {
      cron,
      timeZone,
      next: (count = 1) => Array.from({ length: count }, (_, i) => (Math.floor(clock.now() / period) + 1 + i) * period),
      dispose: () => undefined,
    },
  });
}

/** What the room is told, as text. */
function recordingAnnouncer() {
  const told: string[] = [];
  return {
    told,
    async deliver(_clan: string, m: Message) {
      told.push(m.text);
      return true;
    },
    async until(n: number, ms = 10_000) {
      const end = Date.now() + ms;
      while (told.length < n && Date.now() < end) await sleep(20);
      assert.ok(told.length >= n, `expected ${n} notifications, got:\n${told.join("\n---\n")}`);
    },
  };
}

async function database(): Promise<Db> {
  const db = await openDatabase(join(await tempDir(), "db.sqlite3"));
  await migrate(db);
  return db;
}

const NO_CLAN: ScheduledClan = {
  room: "!r:x",
  view: { name: "fam", flake: "/x", machines: async () => [] },
  backups: { start: async () => assert.fail("no backups here"), skip: async () => assert.fail("no backups here"), cancel: async () => false },
};

function firingScheduler(db: Db, clock: ReturnType<typeof manualClock>, fired: { id: number; dueAt: number; late: boolean }[]) {
  return new BackupScheduler({
    db,
    clock,
    log: quiet,
    announcer: recordingAnnouncer(),
    clans: new Map([["fam", NO_CLAN]]),
    prefix: "!",
    minIntervalMs: 60_000,
    parse: everyPeriod(clock),
    fire: async (s: StoredSchedule, dueAt: number, late: boolean) => void fired.push({ id: s.id, dueAt, late }),
    defaultTimeZone: "UTC",
  });
}

const SCHEDULE = { target: "nas", cron: "0 * * * *", timeZone: "UTC", notify: "always" as const, createdBy: "@alice:x" };

/** Until the schedules' stored next slots are all after `t` (they are stored after each firing). */
async function storedAfter(db: Db, t: number): Promise<StoredSchedule[]> {
  for (let i = 0; i < 200; i++) {
    const all = await storedSchedules(db);
    if (all.every((s) => s.nextDue > t)) return all;
    await sleep(10);
  }
  assert.fail("the next slots were not stored");
}

test("a schedule fires at its time and then at each next one, its next slot stored", async () => {
  const db = await database();
  const clock = manualClock(T0 + 10 * 60_000);
  const fired: { id: number; dueAt: number; late: boolean }[] = [];
  const scheduler = firingScheduler(db, clock, fired);
  await scheduler.start();
  const s = await scheduler.forClan("fam").add(SCHEDULE);
  assert.equal(s.nextRun, T0 + HOUR);
  assert.equal(scheduler.fireDue(), 0);
  clock.set(T0 + HOUR);
  assert.equal(scheduler.fireDue(), 1);
  assert.deepEqual(fired, [{ id: s.id, dueAt: T0 + HOUR, late: false }]);
  assert.equal((await storedAfter(db, T0 + HOUR))[0]?.nextDue, T0 + 2 * HOUR);
  clock.set(T0 + 2 * HOUR + 5);
  scheduler.fireDue();
  assert.deepEqual(fired.map((f) => f.dueAt), [T0 + HOUR, T0 + 2 * HOUR]);
  assert.equal((await scheduler.forClan("fam").list())[0]?.nextRun, T0 + 3 * HOUR);
  await scheduler.close(100);
});

test("schedules survive a restart; one that fell due while the bot was down runs once, late, not once per missed slot", async () => {
  const db = await database();
  const clock = manualClock(T0 + 10 * 60_000);
  const fired: { id: number; dueAt: number; late: boolean }[] = [];
  const before = firingScheduler(db, clock, fired);
  await before.start();
  const missed = await before.forClan("fam").add(SCHEDULE);
  await before.close(100);

  // Down for three days and a half: 84 hourly slots went by.
  clock.set(T0 + 84 * HOUR + 30 * 60_000);
  const after = firingScheduler(db, clock, fired);
  assert.equal(await after.start(), 1);
  assert.deepEqual(fired, [{ id: missed.id, dueAt: T0 + HOUR, late: true }]);
  const [stored] = await storedAfter(db, clock.now());
  assert.equal(stored?.nextDue, T0 + 85 * HOUR);
  clock.set(T0 + 85 * HOUR);
  after.fireDue();
  assert.deepEqual(fired.at(-1), { id: missed.id, dueAt: T0 + 85 * HOUR, late: false });
  await after.close(100);
});

test("a removed schedule does not fire; another clan's schedules are out of reach", async () => {
  const db = await database();
  const clock = manualClock();
  const fired: { id: number; dueAt: number; late: boolean }[] = [];
  const scheduler = firingScheduler(db, clock, fired);
  await scheduler.start();
  const fam = scheduler.forClan("fam");
  const s = await fam.add(SCHEDULE);
  assert.equal(await scheduler.forClan("work").remove(s.id), undefined);
  assert.deepEqual(await scheduler.forClan("work").list(), []);
  assert.equal((await fam.remove(s.id))?.id, s.id);
  assert.equal(await fam.remove(s.id), undefined);
  clock.advance(5 * HOUR);
  assert.equal(scheduler.fireDue(), 0);
  assert.deepEqual(fired, []);
  await scheduler.close(100);
});

test("a thousand schedules due at the same second fire in one go and all move on", async () => {
  const db = await database();
  const clock = manualClock();
  const fired: { id: number; dueAt: number; late: boolean }[] = [];
  const scheduler = firingScheduler(db, clock, fired);
  await scheduler.start();
  for (let i = 0; i < 1000; i++) await scheduler.forClan("fam").add(SCHEDULE);
  clock.set(T0 + HOUR);
  assert.equal(scheduler.fireDue(), 1000);
  assert.equal(fired.length, 1000);
  assert.equal((await storedAfter(db, T0 + HOUR)).length, 1000);
  await scheduler.close(100);
});

test("!schedule's check: a cron or time zone that does not parse, or runs too often, is refused with the reason", async () => {
  const db = await database();
  const scheduler = new BackupScheduler({ db, clock: Date, log: quiet, announcer: recordingAnnouncer(), clans: new Map(), prefix: "!", minIntervalMs: 15 * 60_000 });
  const schedules = scheduler.forClan("fam");
  const ok = schedules.check("0 1 * * *", "Europe/Berlin");
  assert.ok(ok.ok);
  assert.equal(ok.next.length, 10);
  assert.equal(ok.timeZone, "Europe/Berlin");
  const often = schedules.check("* 1 * * *", "UTC");
  assert.ok(!often.ok);
  assert.match(often.reason, /'\* 1 \* \* \*' runs every 1 min at times \(.*01:00.*01:01.*\); backups are scheduled at most every 15 min \(backup\.minInterval\)/);
  const bad = schedules.check("0 1 * * *", "Mars/Olympus");
  assert.ok(!bad.ok);
  assert.match(bad.reason, /not a time zone I know/);
  assert.equal(schedules.defaultTimeZone, Intl.DateTimeFormat().resolvedOptions().timeZone);
  await scheduler.close(100);
});

// ---------------------------------------------------------------------------------------------
// Scheduled backups with the fake clan

const FIXTURE: FakeClanFixture = {
  machines: { nas: { tags: ["servers"], deploy: { targetHost: "root@nas.lan" } }, laptop: { deploy: { targetHost: "root@laptop.lan" } } },
  backups: { nas: ["borg::nas::2026-11-19T01:00:00"], laptop: [] },
};

async function clanWorld(fixture: FakeClanFixture) {
  const dir = await tempDir();
  const flake = await makeFlake(join(dir, "flake"), fixture);
  const db = await database();
  const clock = manualClock();
  const announcer = recordingAnnouncer();
  const cli = new ClanCli({ command: fakeClanPath, timeoutMs: 30_000 });
  let inventory: Machine[] = await cli.machines(flake);
  const backups = new BackupService({
    clan: "fam",
    flake,
    db,
    clock,
    log: quiet,
    clanCommand: fakeClanPath,
    cli,
    parallel: 4,
    timeoutMs: 30_000,
    killGraceMs: 1000,
    queue: sharedMachineQueue(),
  });
  const clan: ScheduledClan = { room: "!r:x", view: { name: "fam", flake, machines: async () => inventory }, backups };
  const scheduler = new BackupScheduler({
    db,
    clock,
    log: quiet,
    announcer,
    clans: new Map([["fam", clan]]),
    prefix: "!",
    minIntervalMs: 60_000,
    parse: everyPeriod(clock),
  });
  await scheduler.start();
  return {
    db,
    flake,
    clock,
    announcer,
    scheduler,
    backups,
    schedules: scheduler.forClan("fam"),
    setInventory: (m: Machine[]) => void (inventory = m),
    /** Moves the clock to the next hour and fires what is due. */
    nextSlot() {
      clock.set((Math.floor(clock.now() / HOUR) + 1) * HOUR);
      return scheduler.fireDue();
    },
  };
}

test("every scheduled run is told in the room: 🟢 with the archive, 🔴 with the error's tail", async () => {
  const w = await clanWorld({ ...FIXTURE, behaviour: { "backups create": { fail: ["laptop"] } } });
  await w.schedules.add({ ...SCHEDULE, target: "all" });
  assert.equal(w.nextSlot(), 1);
  await w.announcer.until(2);
  const nas = w.announcer.told.find((t) => t.includes("*nas*")) ?? "";
  const laptop = w.announcer.told.find((t) => t.includes("*laptop*")) ?? "";
  assert.match(nas, /^🟢 Backup of \*nas\* \(every provider\) done in \d+ ms: newest archive `borg::nas::[0-9T:-]+`\.\n\n_#\d+, schedule #1\._$/);
  assert.match(laptop, /^🔴 Backup of \*laptop\* \(every provider\) failed after \d+ ms \(exit status 1\)\.[\s\S]*Job for borgbackup-job-laptop\.service failed/);
  // Each run has its own audit row, by the schedule.
  const audit = await recentCommands(w.db, "fam", 10);
  assert.deepEqual(audit.map((a) => [a.sender, a.line, a.result]).sort(), [
    ["schedule #1", "!backup laptop", "failed"],
    ["schedule #1", "!backup nas", "ok"],
  ]);
  await w.scheduler.close(1000);
});

test("with --notify failures, successes stay quiet but the first success after a failure is told as recovered", async () => {
  const w = await clanWorld({ ...FIXTURE, behaviour: { "backups create": { fail: ["nas"] } } });
  await w.schedules.add({ ...SCHEDULE, notify: "failures" });
  w.nextSlot();
  await w.announcer.until(1);
  assert.match(w.announcer.told[0] ?? "", /^🔴 Backup of \*nas\*/);
  await writeFixture(w.flake, FIXTURE);
  w.nextSlot();
  await w.announcer.until(2);
  assert.match(w.announcer.told[1] ?? "", /^🟢 Backups of \*nas\* work again \(every provider\): done in .*The run before \(#\d+ .*\) had failed\./);
  w.nextSlot();
  // The third run's end, however long the machine takes for it (it lists the archives before and after).
  for (let i = 0; i < 100; i++) {
    const [done] = await w.db.all<{ n: number }>("SELECT COUNT(*) AS n FROM backup_runs WHERE result = 'ok'");
    if ((done?.n ?? 0) >= 2) break;
    await sleep(100);
  }
  await sleep(500);
  assert.equal(w.announcer.told.length, 2, `a success was told:\n${w.announcer.told.join("\n---\n")}`);
  const untold = await w.db.all<{ n: number }>("SELECT COUNT(*) AS n FROM backup_runs WHERE announced = 0");
  assert.equal(untold[0]?.n, 0, "the quiet success counts as told");
  await w.scheduler.close(1000);
});

test("a run still going when the next is due makes that one skip, and the room is told", async () => {
  const w = await clanWorld({ ...FIXTURE, behaviour: { "backups create": { delayMs: 2500 } } });
  await w.schedules.add(SCHEDULE);
  w.nextSlot();
  await sleep(500);
  w.nextSlot();
  await w.announcer.until(1);
  assert.match(w.announcer.told[0] ?? "", /^⏭️ Backup of \*nas\* skipped: #\d+ \(by schedule #1\) was still running \(since .*\)\. Backups of one machine never overlap\./);
  await w.announcer.until(2);
  assert.match(w.announcer.told[1] ?? "", /^🟢 Backup of \*nas\*/);
  const runs = await w.db.all<{ result: string }>("SELECT result FROM backup_runs ORDER BY id");
  assert.deepEqual(runs.map((r) => r.result), ["ok", "skipped"]);
  const audit = await recentCommands(w.db, "fam", 10);
  assert.deepEqual(audit.map((a) => a.result).sort(), ["ok", "refused"]);
  await w.scheduler.close(1000);
});

test("a schedule whose machines are gone from the inventory says so instead of backing up nothing", async () => {
  const w = await clanWorld(FIXTURE);
  await w.schedules.add({ ...SCHEDULE, target: "tag:servers" });
  w.setInventory([{ name: "laptop", tags: [] }]);
  w.nextSlot();
  await w.announcer.until(1);
  assert.match(w.announcer.told[0] ?? "", /🔴 \*Schedule #1\* \(backups of the machines tagged servers at `0 \* \* \* \*`\) could not run: 'tag:servers' picks no machine/);
  await w.scheduler.close(1000);
});

// ---------------------------------------------------------------------------------------------
// bot/backup-watch.ts

test("a machine without a successful backup for backup.maxAge gets one alert, across looks and restarts, and one all-clear", async () => {
  const w = await clanWorld(FIXTURE);
  await w.schedules.add(SCHEDULE);
  const watch = (): BackupWatch =>
    new BackupWatch({
      db: w.db,
      clock: w.clock,
      log: quiet,
      announcer: w.announcer,
      clans: new Map([["fam", { view: { name: "fam", flake: w.flake, machines: async () => [{ name: "nas", tags: [] }] } }]]),
      prefix: "!",
      maxAgeMs: 36 * HOUR,
      intervalMs: HOUR,
    });
  const first = watch();
  await first.checkAll();
  w.clock.advance(30 * HOUR);
  await first.checkAll();
  assert.deepEqual(w.announcer.told, [], "not overdue yet");
  w.clock.advance(7 * HOUR);
  await first.checkAll();
  await first.checkAll();
  assert.equal(w.announcer.told.length, 1);
  assert.match(w.announcer.told[0] ?? "", /^🔴 No successful backup of \*nas\* for 37 h: more than backup\.maxAge \(36 h\)\.[\s\S]*It has not been backed up successfully since it was scheduled\./);
  await first.close();

  const restarted = watch();
  w.clock.advance(HOUR);
  await restarted.checkAll();
  assert.equal(w.announcer.told.length, 1, "the alert was told again after a restart");

  const start = await w.backups.start({ id: 9001, machine: "nas", sender: "@alice:x", trigger: "command" }, () => undefined);
  assert.ok("started" in start);
  assert.equal((await start.started.done).phase, "ok");
  await restarted.checkAll();
  await restarted.checkAll();
  assert.equal(w.announcer.told.length, 2);
  assert.match(w.announcer.told[1] ?? "", /^🟢 \*nas\* is backed up again \(#9001\): archive `borg::nas::[^`]+`, after the alert 1 h ago\.$/);
  await restarted.close();
  await w.scheduler.close(1000);
});
