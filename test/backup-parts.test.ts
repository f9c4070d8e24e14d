import assert from "node:assert/strict";
import { test } from "node:test";
import { getTasks } from "node-cron";
import { Announcer } from "../bot/announcer.ts";
import { ScheduleTimer } from "../bot/schedule-timer.ts";
import { archiveTime, newestFirst } from "../commands/archives.ts";
import { formatArchives, formatBackupNotice, formatBackupStatus, formatOverdue, localTime } from "../commands/backup-format.ts";
import type { BackupState } from "../commands/backup-types.ts";
import type { Message } from "../commands/format.ts";
import { knownTimeZone, parseCron } from "../ops/cron.ts";

const quiet = { info() {}, warn() {}, error() {} };
const NOW = Date.UTC(2026, 10, 21, 12, 0, 0);

// ---------------------------------------------------------------------------------------------
// commands/archives.ts

test("an archive's time is read from the date and time in its name; without a zone it is UTC", () => {
  assert.equal(archiveTime("borg::nas::2026-11-20T01:00:00"), Date.UTC(2026, 10, 20, 1, 0, 0));
  assert.equal(archiveTime("borg::u1@h:/./borg::nas-borg-2026-11-20T01:02:03"), Date.UTC(2026, 10, 20, 1, 2, 3));
  assert.equal(archiveTime("local::/mnt/backup::2026-11-20_01-02-03"), Date.UTC(2026, 10, 20, 1, 2, 3));
  assert.equal(archiveTime("x::2026-11-20T01:00:00+02:00"), Date.UTC(2026, 10, 19, 23, 0, 0));
  assert.equal(archiveTime("borg::nas::weekly"), undefined);
});

test("archives are listed newest first by their time; names without one come last", () => {
  const names = ["borg::nas::2026-11-19T01:00:00", "borg::nas::2026-11-21T01:00:00", "borg::nas::manual", "borg::nas::2026-11-20T01:00:00", "borg::nas::2026-11-20T01:00:00"];
  assert.deepEqual(newestFirst(names), ["borg::nas::2026-11-21T01:00:00", "borg::nas::2026-11-20T01:00:00", "borg::nas::2026-11-19T01:00:00", "borg::nas::manual"]);
});

// ---------------------------------------------------------------------------------------------
// ops/cron.ts

test("a cron expression is parsed in its time zone, and its next runs come from node-cron", () => {
  const r = parseCron("0  1 * * *", "europe/berlin");
  assert.ok(r.ok);
  assert.equal(r.times.cron, "0 1 * * *");
  assert.equal(r.times.timeZone, "Europe/Berlin");
  const [a, b] = r.times.next(2) as [number, number];
  assert.equal(b - a, 24 * 3600_000);
  assert.equal(localTime(a, "Europe/Berlin").slice(-5), "01:00");
  r.times.dispose();
  const daily = parseCron("@daily", "UTC");
  assert.ok(daily.ok);
  assert.equal(new Date(daily.times.next()[0] as number).getUTCHours(), 0);
  daily.times.dispose();
  // ICU calls it Asia/Calcutta; people write Asia/Kolkata.
  assert.equal(knownTimeZone("Asia/Kolkata"), "Asia/Kolkata");
});

test("schedules with the same expression and zone share one node-cron task, which goes with the last of them", () => {
  const before = getTasks().size;
  const a = parseCron("0 2 * * *", "UTC");
  const b = parseCron("0  2 * * *", "UTC");
  const other = parseCron("0 2 * * *", "Europe/Berlin");
  assert.ok(a.ok && b.ok && other.ok);
  assert.equal(getTasks().size, before + 2);
  a.times.dispose();
  a.times.dispose();
  assert.equal(getTasks().size, before + 2);
  assert.equal(new Date(b.times.next()[0] as number).getUTCHours(), 2);
  assert.throws(() => a.times.next(), /disposed/);
  b.times.dispose();
  other.times.dispose();
  assert.equal(getTasks().size, before);
});

test("a cron expression or time zone that does not parse is refused with the reason", () => {
  const reason = (cron: string, tz = "UTC"): string => {
    const r = parseCron(cron, tz);
    assert.ok(!r.ok, `'${cron}' in ${tz} was accepted`);
    return r.reason;
  };
  assert.equal(reason("61 1 * * *"), "'61' is not a valid minute");
  assert.equal(reason("0 25 * * *"), "'25' is not a valid hour");
  assert.match(reason("0 1 * *"), /a cron expression has 5 fields .* '0 1 \* \*' has 4/);
  assert.match(reason("0 1 * * * * *"), /has 7/);
  assert.match(reason("0 1; rm -rf / * * *"), /has characters cron does not use/);
  assert.match(reason("0 0 31 2 *"), /names a day that its months do not have/);
  assert.equal(reason("0 1 * * *", "Mars/Olympus"), "'Mars/Olympus' is not a time zone I know; use a name such as Europe/Berlin or UTC");
});

// ---------------------------------------------------------------------------------------------
// bot/schedule-timer.ts

test("the schedule timer hands over everything due, earliest first, in one call; moved and deleted keys are not", () => {
  let now = 1000;
  const calls: { key: string; at: number }[][] = [];
  const timer = new ScheduleTimer<string>({ clock: { now: () => now }, onDue: (due) => void calls.push([...due]) });
  timer.set("b", 2000);
  timer.set("a", 1500);
  timer.set("c", 3000);
  timer.set("moved", 1200);
  timer.set("moved", 5000);
  timer.set("gone", 1100);
  timer.delete("gone");
  assert.equal(timer.fireDue(), 0);
  now = 2000;
  assert.equal(timer.fireDue(), 2);
  assert.deepEqual(calls, [[{ key: "a", at: 1500 }, { key: "b", at: 2000 }]]);
  assert.equal(timer.dueAt("a"), undefined, "a fired key is out until it is set again");
  assert.equal(timer.dueAt("moved"), 5000);
  now = 10_000;
  timer.fireDue();
  assert.deepEqual(calls[1]?.map((d) => d.key), ["c", "moved"]);
  assert.equal(timer.size, 0);
  timer.close();
});

test("the schedule timer keeps order through many keys, replacements and removals", () => {
  let now = 0;
  const fired: number[] = [];
  const timer = new ScheduleTimer<number>({ clock: { now: () => now }, onDue: (due) => due.forEach((d) => fired.push(d.at)) });
  const at = new Map<number, number>();
  for (let i = 0; i < 2000; i++) {
    const t = (i * 7919) % 10_007;
    at.set(i, t);
    timer.set(i, t);
  }
  for (let i = 0; i < 2000; i += 3) {
    at.set(i, at.get(i)! + 20_000);
    timer.set(i, at.get(i)!);
  }
  for (let i = 1; i < 2000; i += 5) {
    at.delete(i);
    timer.delete(i);
  }
  now = Number.MAX_SAFE_INTEGER;
  timer.fireDue();
  assert.deepEqual(fired, [...at.values()].sort((a, b) => a - b));
  timer.close();
});

test("the schedule timer fires on time by itself", async () => {
  const started = Date.now();
  const fired = await new Promise<number>((resolve) => {
    const timer = new ScheduleTimer<string>({ clock: Date, onDue: () => resolve(Date.now()) });
    timer.set("x", started + 150);
    // unref'd: something else must keep the process alive meanwhile
    setTimeout(() => undefined, 500);
  });
  assert.ok(fired >= started + 150 && fired < started + 400, `fired after ${fired - started} ms`);
});

// ---------------------------------------------------------------------------------------------
// bot/announcer.ts: deliver

test("a delivery waits for a front end and says whether it was posted; the bot stopping gives it up", async () => {
  const announcer = new Announcer(quiet);
  const note = (text: string): Message => ({ text, html: text });
  const early = announcer.deliver("home", note("early"), "$cmd");
  const posted: string[] = [];
  await announcer.connect(async (clan, m, replyTo) => void posted.push(`${clan}: ${m.text} ${replyTo ?? "-"}`));
  assert.equal(await early, true);
  assert.equal(await announcer.deliver("home", note("now")), true);
  assert.deepEqual(posted, ["home: early $cmd", "home: now -"]);
  announcer.disconnect();
  assert.equal(await announcer.deliver("home", note("late")), false);

  const waiting = new Announcer(quiet);
  const pending = waiting.deliver("home", note("never"));
  waiting.disconnect();
  assert.equal(await pending, false);
});

// ---------------------------------------------------------------------------------------------
// commands/backup-format.ts

function run(extra: Partial<BackupState> & Pick<BackupState, "phase">): BackupState {
  return { id: 42, machine: "nas", sender: "@alice:example.org", trigger: "command", startedAt: NOW - 60_000, tail: [], ...extra };
}

test("the status message of !backup: queued behind a deploy, running, done with the newest archive, failed with the tail", () => {
  const queued = formatBackupStatus(
    run({ phase: "queued", waiting: { kind: "machine", position: 1, deployId: 41, sender: "@bob:example.org", since: NOW - 120_000, activity: "deploying it" } }),
    NOW,
  ).text;
  assert.match(queued, /\*Backup #42\* of nas \(every provider\) by @alice:example\.org/);
  assert.match(queued, /⏳ queued, next behind #41 by @bob:example\.org \(deploying it since 2 min ago\)/);
  assert.match(formatBackupStatus(run({ phase: "running", runStartedAt: NOW - 5000 }), NOW).text, /💾 backing up \(5 s so far\)/);
  const done = formatBackupStatus(run({ phase: "ok", provider: "borgbackup", runStartedAt: NOW - 30_000, finishedAt: NOW, archive: "borg::nas::x" }), NOW);
  assert.match(done.text, /\(borgbackup\)[\s\S]*✅ Done in 30 s\. Newest archive: `borg::nas::x`\./);
  const failed = formatBackupStatus(run({ phase: "failed", runStartedAt: NOW - 3000, finishedAt: NOW, exitCode: 1, tail: ["Job for borgbackup-job-nas.service failed", "<b>"] }), NOW);
  assert.match(failed.text, /❌ Failed after 3 s \(exit status 1\)\.[\s\S]*```\nJob for borgbackup-job-nas\.service failed\n<b>\n```/);
  assert.ok(failed.html.includes("&lt;b&gt;"), failed.html);
});

test("notifications: 🟢 with the archive and duration, 🔴 with the tail, recovered, skipped, late", () => {
  const scheduled = { trigger: "schedule" as const, scheduleId: 3, sender: "schedule #3" };
  const ok = formatBackupNotice(run({ ...scheduled, phase: "ok", provider: "borgbackup", runStartedAt: NOW - 125_000, finishedAt: NOW, archive: "borg::nas::a" }), { now: NOW, prefix: "!" });
  assert.match(ok.text, /^🟢 Backup of \*nas\* \(borgbackup\) done in 2 min 5 s: newest archive `borg::nas::a`\.\n\n_#42, schedule #3\._$/);
  const failed = formatBackupNotice(run({ ...scheduled, phase: "failed", runStartedAt: NOW - 4000, finishedAt: NOW, exitCode: 1, tail: ["boom"] }), { now: NOW, prefix: "!" });
  assert.match(failed.text, /^🔴 Backup of \*nas\* \(every provider\) failed after 4 s \(exit status 1\)\.[\s\S]*```\nboom\n```/);
  const before = run({ ...scheduled, id: 40, phase: "failed", finishedAt: NOW - 3600_000 });
  const recovered = formatBackupNotice(run({ ...scheduled, phase: "ok", runStartedAt: NOW - 1000, finishedAt: NOW }), { now: NOW, prefix: "!", recoveredFrom: before });
  assert.match(recovered.text, /🟢 Backups of \*nas\* work again \(every provider\): done in 1 s\. The run before \(#40 1 h ago\) had failed\./);
  const busy = run({ id: 41, phase: "running", runStartedAt: NOW - 3_900_000 });
  const skipped = formatBackupNotice(run({ ...scheduled, phase: "skipped", note: "#41 (by schedule #3) was still running", finishedAt: NOW }), { now: NOW, prefix: "!", busy });
  assert.match(skipped.text, /⏭️ Backup of \*nas\* skipped: #41 \(by schedule #3\) was still running \(since 1 h 5 min ago\)\. Backups of one machine never overlap\./);
  const late = formatBackupNotice(run({ ...scheduled, phase: "ok", late: true, dueAt: NOW - 3 * 3600_000, finishedAt: NOW }), { now: NOW, prefix: "!" });
  assert.match(late.text, /_#42, schedule #3; late: it was due 3 h ago, while the bot was down\._/);
  const interrupted = formatBackupNotice(run({ phase: "interrupted", finishedAt: NOW }), { now: NOW, prefix: "!" });
  assert.match(interrupted.text, /⚠️ Backup #42 of \*nas\* \(every provider\) by @alice:example\.org was interrupted: the bot stopped while it ran\. Nothing was run again; `!backup nas` starts a new one\./);
});

test("the overdue alert says for how long, the last success and the last failure", () => {
  const m = { machine: "nas", lastOk: { id: 7, finishedAt: NOW - 40 * 3600_000, archive: "borg::nas::a" }, last: { id: 9, finishedAt: NOW - 3600_000, result: "failed" as const } };
  const text = formatOverdue(m, NOW - 100 * 3600_000, 36 * 3600_000, NOW, "!").text;
  assert.match(text, /🔴 No successful backup of \*nas\* for 40 h: more than backup\.maxAge \(36 h\)\./);
  assert.match(text, /The last one was #7, archive `borg::nas::a`\. The last run, #9 1 h ago, failed\. `!backup nas` tries now/);
  const never = formatOverdue({ machine: "nas" }, NOW - 37 * 3600_000, 36 * 3600_000, NOW, "!").text;
  assert.match(never, /for 37 h[\s\S]*It has not been backed up successfully since it was scheduled\./);
});

test("!backups <machine> cuts a long list and says how many were left out", () => {
  const archives = Array.from({ length: 30 }, (_, i) => `borg::nas::${new Date(NOW - 3600_000 - i * 86_400_000).toISOString().slice(0, 19)}`);
  const sorted = newestFirst(archives);
  const text = formatArchives({ machine: "nas", provider: undefined, archives: sorted, limit: 20, summary: undefined, prefix: "!" }, NOW).text;
  assert.match(text, /^\*nas\*: 30 archives, the newest made 1 h ago\./);
  assert.equal(text.split("\n").filter((l) => l.startsWith("• ")).length, 20);
  assert.match(text, /… and 10 older ones not shown \(`--limit 30` shows more\)\./);
  assert.match(text, /The bot has not backed it up successfully yet\./);
  assert.match(formatArchives({ machine: "nas", provider: "borgbackup", archives: [], limit: 20, summary: undefined, prefix: "!" }, NOW).text, /no archives from borgbackup yet/);
});
