import assert from "node:assert/strict";
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import type { DeployState } from "../commands/deploy-types.ts";
import type { Log } from "../commands/types.ts";
import { DeployService } from "../ops/deploy-service.ts";
import { startCommand } from "../storage/audit.ts";
import { openDatabase, type Db } from "../storage/db.ts";
import { migrate } from "../storage/migrations.ts";
import { fakeClanPath, fakeNixPath, makeFlake, type FakeClanFixture } from "../demo/fake-clan-fixture.ts";
import { tempDir } from "./support/temp-dir.ts";

const quiet: Log = { info() {}, warn() {}, error() {} };
const LIVE = new Set(["building", "copying", "activating"]);

async function setup(fixture: FakeClanFixture, parallel: number, clanCommand = fakeClanPath) {
  const dir = await tempDir();
  const flake = await makeFlake(join(dir, "flake"), fixture);
  const db: Db = await openDatabase(join(dir, "db.sqlite3"));
  await migrate(db);
  const service = new DeployService({
    clan: "fam",
    confirmAbove: 3,
    flake,
    db,
    clock: Date,
    log: quiet,
    clanCommand,
    nixCommand: fakeNixPath,
    parallel,
    timeoutMs: 30_000,
    installTimeoutMs: 30_000,
    killGraceMs: 2000,
    logDir: join(dir, "logs"),
  });
  /** A command row for the deploy to belong to, as the dispatcher writes it. */
  const command = (sender: string): Promise<number> =>
    startCommand(db, { clan: "fam", room: "!r:x", sender, command: "deploy", line: "!deploy", eventId: undefined, startedAt: Date.now() });
  return { dir, db, service, command };
}

const machines = (names: string[], extra: Record<string, unknown> = {}): FakeClanFixture["machines"] =>
  Object.fromEntries(names.map((n) => [n, { tags: ["all"], deploy: { targetHost: `root@${n}.lan` }, ...extra }]));

test("never more machines at once than deploy.parallel, and all of them in the end", async () => {
  const names = ["a", "b", "c", "d", "e"];
  const { service, command } = await setup(
    { machines: machines(names), behaviour: { "machines update": { delayMs: 600, generateVars: false } } },
    2,
  );
  let most = 0;
  const seen: DeployState[] = [];
  const id = await command("@alice:x");
  const running = await service.start({ id, kind: "switch", sender: "@alice:x", machines: names }, (s) => {
    seen.push(s);
    most = Math.max(most, s.machines.filter((m) => LIVE.has(m.phase)).length);
  });
  const final = await running.done;
  assert.equal(final.result, "ok");
  assert.deepEqual(final.machines.map((m) => m.phase), ["done", "done", "done", "done", "done"]);
  assert.equal(most, 2);
  assert.ok(seen.some((s) => s.machines.some((m) => m.waiting?.kind === "slot")), "waiting machines should say they wait for a slot");
  const [record] = await service.history(1);
  assert.deepEqual(record?.machines.map((m) => m.state), ["done", "done", "done", "done", "done"]);
});

test("a machine locked by someone else is skipped when its turn comes; the holder may deploy it", async () => {
  const { service, command } = await setup({ machines: machines(["a", "b"]), behaviour: { "machines update": { generateVars: false } } }, 4);
  const now = Date.now();
  assert.deepEqual(await service.lock({ machine: "b", holder: "@bob:x", reason: "disk swap", since: now, until: now + 60_000 }), { taken: true });
  const held = await service.lock({ machine: "b", holder: "@alice:x", reason: undefined, since: now, until: now + 60_000 });
  assert.equal(held.taken, false);

  const alice = await (await service.start({ id: await command("@alice:x"), kind: "switch", sender: "@alice:x", machines: ["a", "b"] }, () => {})).done;
  assert.deepEqual(alice.machines.map((m) => [m.machine, m.phase, m.note]), [
    ["a", "done", undefined],
    ["b", "skipped", "locked by @bob:x (disk swap)"],
  ]);
  assert.equal(alice.result, "ok");
  const bob = await (await service.start({ id: await command("@bob:x"), kind: "switch", sender: "@bob:x", machines: ["b"] }, () => {})).done;
  assert.equal(bob.machines[0]?.phase, "done");
});

test("cancelling a queued deploy takes it out of line without running anything", async () => {
  const { service, command } = await setup({ machines: machines(["a"]), behaviour: { "machines update": { delayMs: 1500, generateVars: false } } }, 4);
  const first = await service.start({ id: await command("@alice:x"), kind: "switch", sender: "@alice:x", machines: ["a"] }, () => {});
  const secondId = await command("@bob:x");
  const second = await service.start({ id: secondId, kind: "switch", sender: "@bob:x", machines: ["a"] }, () => {});
  assert.equal(second.current().machines[0]?.waiting?.kind, "machine");
  assert.equal(await service.cancel(secondId, "@bob:x"), true);
  const cancelled = await second.done;
  assert.equal(cancelled.result, "cancelled");
  assert.equal(cancelled.machines[0]?.startedAt, undefined, "a cancelled queued deploy never started");
  assert.equal((await first.done).result, "ok");
  assert.equal(await service.cancel(secondId, "@bob:x"), false);
});

test("the deploy log is written as it comes, with mode 0600, and attached whole", async () => {
  const { service, command, dir } = await setup({ machines: machines(["a"]), behaviour: { "machines update": { outputLines: 3 } } }, 4);
  const id = await command("@alice:x");
  await (await service.start({ id, kind: "switch", sender: "@alice:x", machines: ["a"] }, () => {})).done;
  const path = join(dir, "logs", `deploy-${id}.log`);
  assert.equal((await stat(path)).mode & 0o777, 0o600);
  const file = await service.logFile(id);
  const text = Buffer.from(file.data).toString("utf8");
  assert.equal(file.mimetype, "text/plain");
  assert.match(text, /^# clanbot deploy #\d+ of a by @alice:x, clan fam/);
  assert.match(text, /\[a\] system-path> fake build output 3\/3/);
  assert.match(text, /\[a\] clanbot: exit status 0 after/);
});

test("a missing clan executable fails the machine with a reason instead of throwing", async () => {
  const { service, command } = await setup({ machines: machines(["a"]) }, 4, "/nonexistent/clan");
  const final = await (await service.start({ id: await command("@alice:x"), kind: "switch", sender: "@alice:x", machines: ["a"] }, () => {})).done;
  assert.equal(final.result, "failed");
  assert.deepEqual(final.machines[0]?.tail, ["clanbot: '/nonexistent/clan' was not found"]);
});
