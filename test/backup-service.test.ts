import assert from "node:assert/strict";
import { formatBackupStatus } from "../commands/backup-format.ts";
import { join } from "node:path";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { BackupState } from "../commands/backup-types.ts";
import type { Log } from "../commands/types.ts";
import { BackupService } from "../ops/backup-service.ts";
import { ClanCli } from "../ops/clan-cli.ts";
import { sharedMachineQueue, type MachineHolder } from "../ops/machine-queue.ts";
import { startCommand } from "../storage/audit.ts";
import { machineSummaries } from "../storage/backups.ts";
import { openDatabase } from "../storage/db.ts";
import { migrate } from "../storage/migrations.ts";
import { fakeClanPath, makeFlake, processesInGroup, readInvocations, type FakeClanFixture } from "../demo/fake-clan-fixture.ts";
import { tempDir } from "./support/temp-dir.ts";

const quiet: Log = { info() {}, warn() {}, error() {} };

const FIXTURE: FakeClanFixture = {
  machines: { nas: { deploy: { targetHost: "root@nas.lan" } }, laptop: { deploy: { targetHost: "root@laptop.lan" } } },
  backups: { nas: ["borg::nas::2026-11-19T01:00:00"], laptop: [] },
};

async function setup(fixture: FakeClanFixture, o: { timeoutMs?: number; parallel?: number } = {}) {
  const dir = await tempDir();
  const flake = await makeFlake(join(dir, "flake"), fixture);
  const db = await openDatabase(join(dir, "db.sqlite3"));
  await migrate(db);
  const queue = sharedMachineQueue();
  const clanLog = join(dir, "clan.jsonl");
  const env = { FAKE_CLAN_LOG: clanLog };
  const ended: BackupState[] = [];
  const service = new BackupService({
    clan: "fam",
    flake,
    db,
    clock: Date,
    log: quiet,
    clanCommand: fakeClanPath,
    cli: new ClanCli({ command: fakeClanPath, timeoutMs: 30_000, env }),
    parallel: o.parallel ?? 4,
    timeoutMs: o.timeoutMs ?? 30_000,
    killGraceMs: 1000,
    queue,
    env,
    onEnd: (s) => void ended.push(s),
  });
  const command = (sender = "@alice:x"): Promise<number> =>
    startCommand(db, { clan: "fam", room: "!r:x", sender, command: "backup", line: "!backup", eventId: undefined, startedAt: Date.now() });
  const backUp = async (machine: string, onChange: (s: BackupState) => void = () => undefined) => {
    const start = await service.start({ id: await command(), machine, sender: "@alice:x", trigger: "command" }, onChange);
    assert.ok("started" in start, "the backup did not start");
    return start.started;
  };
  return { db, service, queue, clanLog, ended, command, backUp };
}

test("a backup runs clan backups create, then learns the newest archive from clan backups list, and records it", async () => {
  const { service, db, clanLog, ended, backUp } = await setup(FIXTURE);
  const phases: string[] = [];
  const run = await backUp("nas", (s) => phases.push(s.phase));
  const final = await run.done;
  assert.equal(final.phase, "ok");
  assert.match(final.archive ?? "", /^borg::nas::\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/);
  assert.notEqual(final.archive, "borg::nas::2026-11-19T01:00:00");
  assert.deepEqual([...new Set(phases)], ["queued", "running", "listing", "ok"]);
  const argv = (await readInvocations(clanLog)).map((i) => i.argv.slice(0, 3).join(" "));
  // The archives before the run too: only a name that was not there before is this run's archive.
  assert.deepEqual(argv, ["backups list nas", "backups create nas", "backups list nas"]);
  assert.equal((await service.archives("nas", undefined, new AbortController().signal))[0], final.archive);
  const [summary] = await machineSummaries(db, "fam", ["nas"]);
  assert.equal(summary?.lastOk?.archive, final.archive);
  assert.equal(summary?.last?.result, "ok");
  assert.deepEqual(ended.map((e) => e.phase), ["ok"]);
});

test("a backup after which no new archive appeared says so, instead of passing an old archive off as its own", async () => {
  const { backUp } = await setup({ ...FIXTURE, behaviour: { "backups create": { noArchive: true } } });
  const final = await (await backUp("nas")).done;
  assert.equal(final.phase, "ok");
  assert.equal(final.archive, undefined);
  assert.equal(final.note, "no new archive appeared: the newest is still borg::nas::2026-11-19T01:00:00, which was there before this run");
  const shown = formatBackupStatus(final, Date.now()).text;
  assert.match(shown, /Note: no new archive appeared/);
  assert.doesNotMatch(shown, /Newest archive/);
});

test("a failing backup ends failed with its exit status and the error's last lines", async () => {
  const { backUp, db } = await setup({ ...FIXTURE, behaviour: { "backups create": { fail: ["nas"] } } });
  const final = await (await backUp("nas")).done;
  assert.equal(final.phase, "failed");
  assert.equal(final.exitCode, 1);
  assert.ok(final.tail.some((l) => /Job for borgbackup-job-nas\.service failed/.test(l)), final.tail.join("\n"));
  assert.equal(final.archive, undefined);
  const [summary] = await machineSummaries(db, "fam", ["nas"]);
  assert.equal(summary?.lastOk, undefined);
  assert.equal(summary?.last?.result, "failed");
});

test("runs of one machine never overlap: a second is refused while the first runs; another machine goes ahead", async () => {
  const { service, backUp, command } = await setup({ ...FIXTURE, behaviour: { "backups create": { delayMs: 1200 } } });
  const first = await backUp("nas");
  const second = await service.start({ id: await command("@bob:x"), machine: "nas", sender: "@bob:x", trigger: "command" }, () => undefined);
  assert.ok("busy" in second);
  assert.equal(second.busy.id, first.current().id);
  const other = await backUp("laptop");
  assert.deepEqual(service.active().map((s) => s.machine).sort(), ["laptop", "nas"]);
  assert.equal((await first.done).phase, "ok");
  assert.equal((await other.done).phase, "ok");
  assert.deepEqual(service.active(), []);
});

test("a hanging backup is stopped at the timeout, its whole process group with it", async () => {
  const { backUp, clanLog } = await setup({ ...FIXTURE, behaviour: { "backups create": { hang: true, orphanGraceMs: 60_000 } } }, { timeoutMs: 1500 });
  const final = await (await backUp("nas")).done;
  assert.equal(final.phase, "timed-out");
  assert.equal(final.note, "stopped after 2 s");
  const [create] = await readInvocations(clanLog);
  await sleep(200);
  assert.deepEqual(processesInGroup(create?.pgid as number), []);
});

test("a running backup is cancelled with its process group; a cancelled one cannot be cancelled again", async () => {
  const { service, backUp, clanLog } = await setup({ ...FIXTURE, behaviour: { "backups create": { hang: true } } });
  const run = await backUp("nas");
  while (run.current().phase !== "running" || !(await readInvocations(clanLog)).length) await sleep(50);
  const id = run.current().id;
  assert.equal(await service.cancel(id, "@bob:x"), true);
  const final = await run.done;
  assert.equal(final.phase, "cancelled");
  assert.equal(final.note, "cancelled by @bob:x");
  const [create] = await readInvocations(clanLog);
  await sleep(200);
  assert.deepEqual(processesInGroup(create?.pgid as number), []);
  assert.equal(await service.cancel(id, "@bob:x"), false);
});

test("a backup waits while a deploy holds the machine, says behind what, and runs when it is free", async () => {
  const { queue, backUp } = await setup(FIXTURE);
  const deploy: MachineHolder = { id: 41, sender: "@bob:x", activity: "deploying it", since: () => Date.now() - 60_000, moved: () => undefined };
  const ticket = queue.enter("nas", deploy);
  const seen: BackupState[] = [];
  const run = await backUp("nas", (s) => seen.push(s));
  await sleep(300);
  assert.equal(run.current().phase, "queued");
  assert.deepEqual({ ...run.current().waiting, since: 0 }, { kind: "machine", position: 1, deployId: 41, sender: "@bob:x", since: 0, activity: "deploying it" });
  ticket.leave();
  assert.equal((await run.done).phase, "ok");
  // And a deploy coming after a running backup waits behind it, told what the backup does.
  const slow = await setup({ ...FIXTURE, behaviour: { "backups create": { delayMs: 800 } } });
  const backup = await slow.backUp("nas");
  while (backup.current().phase !== "running") await sleep(20);
  const moves: string[] = [];
  const later = slow.queue.enter("nas", { ...deploy, moved: () => void moves.push("moved") });
  assert.equal(later.position(), 1);
  assert.equal(later.holder()?.activity, "backing it up");
  await later.granted;
  assert.equal(backup.current().phase, "ok");
  assert.ok(moves.length > 0, "the waiting deploy was told its line moved");
  later.leave();
  await backup.done;
});
