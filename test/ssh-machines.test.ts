// Machines over SSH against real OpenSSH servers (test/support/fake-machine.ts): status, host key
// pinning and changes, known_hosts, drift after a rollback, reboot, and the rollback itself.

import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, test } from "node:test";
import type { MachineStatus } from "../commands/ssh-types.ts";
import type { Log, Machine } from "../commands/types.ts";
import { DeployService } from "../ops/deploy-service.ts";
import { loadBotKey } from "../ops/ssh-key.ts";
import { SshMachineService } from "../ops/ssh-machines.ts";
import { startCommand } from "../storage/audit.ts";
import { openDatabase } from "../storage/db.ts";
import { migrate } from "../storage/migrations.ts";
import { FakeMachine, freePort, silentPort } from "./support/fake-machine.ts";
import { tempDir } from "./support/temp-dir.ts";

const quiet: Log = { info() {}, warn() {}, error() {} };
const dir = await tempDir("clanbot-ssh-");
const key = loadBotKey(join(dir, "bot", "id_ed25519"), true);
const machines: FakeMachine[] = [];
after(async () => {
  await Promise.all(machines.map((m) => m.stop()));
});

async function machine(name: string, o: Partial<Parameters<typeof FakeMachine.start>[0]> = {}): Promise<FakeMachine> {
  const m = await FakeMachine.start({ dir: join(dir, name), authorizedKeys: [key.publicLine], hostName: name, ...o });
  machines.push(m);
  return m;
}

async function service(inventory: Machine[], o: { knownHostsFile?: string; timeoutMs?: number; rebootTimeoutMs?: number; installerPort?: number; configured?: Record<string, string> } = {}) {
  const db = await openDatabase(join(await tempDir(), "db.sqlite3"));
  await migrate(db);
  const ssh = new SshMachineService({
    clan: "fam",
    db,
    clock: Date,
    key,
    knownHostsFile: o.knownHostsFile,
    timeoutMs: o.timeoutMs ?? 5000,
    parallel: 4,
    rebootTimeoutMs: o.rebootTimeoutMs ?? 8000,
    rebootPollMs: 200,
    installerPort: o.installerPort ?? 22,
    machines: async () => inventory,
    configuredTargets: async () => o.configured ?? {},
  });
  return { db, ssh };
}

const inv = (name: string, target?: string): Machine => ({ name, tags: [], ...(target ? { targetHost: target } : {}) });
const signal = new AbortController().signal;

function ok(s: MachineStatus | undefined): Extract<MachineStatus, { ok: true }> {
  assert.ok(s?.ok, `expected ${s?.machine} to answer, got ${JSON.stringify(s)}`);
  return s;
}

function notOk(s: MachineStatus | undefined): Extract<MachineStatus, { ok: false }> {
  assert.ok(s && !s.ok, `expected ${s?.machine} not to answer, got ${JSON.stringify(s)}`);
  return s;
}

test("status of a healthy machine: version, system, generation, failed units, disk; host key pinned on first contact", async () => {
  const laptop = await machine("laptop", { failedUnits: ["borgbackup-job-nas.service"], generations: 3 });
  const { ssh } = await service([inv("laptop", laptop.target)]);
  const [first] = await ssh.status(["laptop"], signal);
  const s = ok(first);
  assert.equal(s.health.nixosVersion, "25.11.20260815.5e2a59a (Xantusia)");
  assert.equal(s.health.currentSystem, await laptop.currentSystem());
  assert.equal(s.health.generation, 3);
  assert.equal(s.health.rebootPending, false);
  assert.deepEqual(s.health.failedUnits, ["borgbackup-job-nas.service"]);
  assert.ok(s.health.rootDisk && s.health.rootDisk.sizeKiB > 0);
  assert.ok(s.health.uptimeSeconds !== undefined && s.health.uptimeSeconds > 0);
  assert.deepEqual(s.drift, { kind: "unknown" });
  assert.equal(s.pinnedNow, true);
  const [again] = await ssh.status(["laptop"], signal);
  assert.equal(ok(again).pinnedNow, false);
});

test("a pending reboot shows when the running system is not the booted one", async () => {
  const nas = await machine("nas");
  await nas.setCurrentSystem(await nas.generationPath(1));
  const { ssh } = await service([inv("nas", nas.target)]);
  assert.equal(ok((await ssh.status(["nas"], signal))[0]).health.rebootPending, true);
});

test("unreachable, silent and target-less machines are reported, each in its own way, while the others answer", async () => {
  const up = await machine("up");
  const closed = await freePort();
  const silent = await silentPort();
  after(() => silent.close());
  const { ssh } = await service([inv("up", up.target), inv("gone", `root@127.0.0.1:${closed}`), inv("hung", `root@127.0.0.1:${silent.port}`), inv("nowhere")], {
    timeoutMs: 1500,
  });
  const t0 = performance.now();
  const [a, b, c, d] = await ssh.status(["up", "gone", "hung", "nowhere"], signal);
  const took = performance.now() - t0;
  ok(a);
  assert.equal(notOk(b).problem, "unreachable");
  assert.match(notOk(b).detail, /ECONNREFUSED/);
  assert.equal(notOk(c).problem, "timeout");
  assert.match(notOk(c).detail, /no answer within 2 s|no answer within 1 s/);
  assert.equal(notOk(d).problem, "no-target");
  assert.match(notOk(d).detail, /targetHost/);
  assert.ok(took < 4000, `the silent machine held everything up for ${Math.round(took)} ms`);
});

test("a machine's clan.core.networking.targetHost is used when the inventory names none", async () => {
  const m = await machine("configured");
  const { ssh } = await service([inv("configured")], { configured: { configured: m.target } });
  ok((await ssh.status(["configured"], signal))[0]);
});

test("a changed host key stops the connection before anything runs, with both fingerprints; !trust accepts the new one", async () => {
  const m = await machine("rekeyed");
  const { ssh } = await service([inv("rekeyed", m.target)]);
  ok((await ssh.status(["rekeyed"], signal))[0]);
  const before = await m.hostKeyFingerprint();
  const commandsBefore = (await m.commands()).length;
  await m.rotateHostKey();
  const afterFp = await m.hostKeyFingerprint();
  const s = notOk((await ssh.status(["rekeyed"], signal))[0]);
  assert.equal(s.problem, "host-key-changed");
  assert.ok(s.detail.includes(before) && s.detail.includes(afterFp), s.detail);
  assert.equal((await m.commands()).length, commandsBefore, "a command ran on a machine with a changed host key");
  assert.deepEqual(await ssh.trust("rekeyed", signal), { kind: "pinned", fingerprint: afterFp, previous: before });
  assert.deepEqual(await ssh.trust("rekeyed", signal), { kind: "unchanged", fingerprint: afterFp });
  ok((await ssh.status(["rekeyed"], signal))[0]);
});

test("with a known_hosts file: its key is accepted, another key refused, an unlisted host is unknown", async () => {
  const m = await machine("listed");
  const file = join(dir, "known_hosts");
  await writeFile(file, `# the admin's file\n${await m.hostKeyLine()}\n`);
  const { ssh } = await service([inv("listed", m.target)], { knownHostsFile: file });
  assert.ok(ssh.trustAdvice?.includes(file));
  ok((await ssh.status(["listed"], signal))[0]);
  await m.rotateHostKey();
  assert.equal(notOk((await ssh.status(["listed"], signal))[0]).problem, "host-key-changed");
  await writeFile(file, "[127.0.0.1]:1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n");
  const unknown = notOk((await ssh.status(["listed"], signal))[0]);
  assert.equal(unknown.problem, "host-key-unknown");
  assert.ok(unknown.detail.includes(file));
});

test("rollback: previous generation activated, recorded like a deploy, so status shows no drift until the system changes", async () => {
  const m = await machine("rollme", { generations: 3 });
  const { db, ssh } = await service([inv("rollme", m.target)]);
  const deploys = new DeployService({
    clan: "fam",
    confirmAbove: 3,
    flake: dir,
    db,
    clock: Date,
    log: quiet,
    clanCommand: "clan",
    nixCommand: "nix",
    parallel: 2,
    timeoutMs: 10_000,
    installTimeoutMs: 10_000,
    killGraceMs: 1000,
    logDir: join(dir, "logs"),
    rollback: (machine, o) => ssh.rollback(machine, o),
  });
  const id = await startCommand(db, { clan: "fam", room: "!r:x", sender: "@admin:x", command: "rollback", line: "!rollback rollme", eventId: undefined, startedAt: Date.now() });
  const running = await deploys.start({ id, kind: "rollback", sender: "@admin:x", machines: ["rollme"] }, () => undefined);
  const final = await running.done;
  assert.equal(final.result, "ok");
  const run = final.machines[0];
  assert.equal(run?.generation, 2);
  const gen2 = await m.generationPath(2);
  assert.equal(run?.storePath, gen2);
  assert.equal(await m.currentSystem(), gen2);
  assert.deepEqual(await m.calls(), ["nix-env --profile /nix/var/nix/profiles/system --rollback", `switch-to-configuration switch (${gen2})`]);
  assert.deepEqual((await deploys.history(5, "rollme")).map((r) => [r.id, r.kind, r.result]), [[id, "rollback", "ok"]]);

  assert.deepEqual(ok((await ssh.status(["rollme"], signal))[0]).drift, { kind: "in-sync", deployId: id });
  await m.setCurrentSystem(await m.generationPath(3));
  assert.deepEqual(ok((await ssh.status(["rollme"], signal))[0]).drift, { kind: "drifted", expected: gen2, deployId: id });
});

test("rollback with no older generation fails with nix-env's own words and changes nothing", async () => {
  const m = await machine("fresh", { generations: 1 });
  const { ssh } = await service([inv("fresh", m.target)]);
  const seen: string[] = [];
  const out = await ssh.rollback("fresh", { signal, timeoutMs: 5000, onLine: (l) => seen.push(l) });
  assert.notEqual(out.exitCode, 0);
  assert.ok(seen.some((l) => l.includes("no generation older than the current (1) exists")), seen.join("\n"));
  assert.equal(await m.currentSystem(), await m.generationPath(1));
  assert.ok(!(await m.calls()).some((c) => c.startsWith("switch-to-configuration")));
});

test("reboot: waits for a new boot and reports the downtime", async () => {
  const m = await machine("rebooter", { rebootDowntimeMs: 700 });
  const { ssh } = await service([inv("rebooter", m.target)]);
  const bootBefore = await m.bootId();
  const stages: string[] = [];
  const r = await ssh.reboot("rebooter", signal, (s) => stages.push(s));
  assert.equal(r.cameBack, true);
  assert.ok(r.downtimeMs !== undefined && r.downtimeMs >= 700, `downtime ${r.downtimeMs}`);
  assert.deepEqual(stages, ["rebooting", "waiting"]);
  assert.notEqual(await m.bootId(), bootBefore);
  assert.equal(m.reboots, 1);
  assert.ok((await m.calls()).some((c) => c.endsWith("systemctl reboot") || c === "systemctl reboot"));
});

test("reboot: a machine that does not come back is reported after the bounded wait", async () => {
  const m = await machine("deadend", { comesBack: false });
  const { ssh } = await service([inv("deadend", m.target)], { timeoutMs: 1000, rebootTimeoutMs: 2500 });
  const r = await ssh.reboot("deadend", signal, () => undefined);
  assert.equal(r.cameBack, false);
  assert.ok(r.waitedMs >= 2500 && r.waitedMs < 5000, `waited ${r.waitedMs}`);
});

test("installer addresses: the first one that answers with SSH wins, in the installer's order", async () => {
  const m = await machine("installer");
  const { ssh } = await service([], { installerPort: m.port, timeoutMs: 2000 });
  assert.equal(await ssh.firstAnswering(["127.0.0.2", "127.0.0.1"], signal), "127.0.0.1");
  await m.stopSshd();
  assert.equal(await ssh.firstAnswering(["127.0.0.1"], signal), undefined);
});
