// The bot's parts for clan as it is in 26.05 and after: routes from clan's network exports,
// installer addresses, generations, the known_hosts block for clan's ssh, dry runs through
// `clan machines build`, deploys blocked by switch inhibitors, and a multi-machine deploy whose
// clan processes do not all run the clan's shared preparation at once.

import assert from "node:assert/strict";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { archiveTime, newestFirst } from "../commands/archives.ts";
import { formatDeployStatus } from "../commands/deploy-format.ts";
import { ARCHIVE_NAME, type DeployState } from "../commands/deploy-types.ts";
import { formatGenerations } from "../commands/generations.ts";
import type { Log } from "../commands/types.ts";
import { describeBackend } from "../commands/vm-format.ts";
import { writeBlock } from "../ops/clan-known-hosts.ts";
import { parseGenerations } from "../ops/clan-generations.ts";
import { routeTargets, routesFromExports } from "../ops/clan-networks.ts";
import { detectDryRun } from "../ops/clan-reach.ts";
import { DeployService, bracketIpv6 } from "../ops/deploy-service.ts";
import { rollbackCommand } from "../ops/machine-health.ts";
import { installerOrder } from "../ops/ssh-machines.ts";
import { startCommand } from "../storage/audit.ts";
import { openDatabase } from "../storage/db.ts";
import { migrate } from "../storage/migrations.ts";
import { fakeClanPath, fakeNixPath, makeFlake, readInvocations, type FakeClanFixture } from "../demo/fake-clan-fixture.ts";
import { tempDir } from "./support/temp-dir.ts";

const quiet: Log = { info() {}, warn() {}, error() {} };

test("routes: clan.exports read per machine, best priority first; var hosts read; tor and iroh left out", async () => {
  const exports = {
    exports: {
      "internet:net::": { networking: { module: "clan_lib.network.direct", priority: 2000 } },
      "internet:net:peer:nas": { peer: { hosts: [{ plain: "nas.example.org" }], port: 22 } },
      "wireguard:wg::": { networking: { module: "clan_lib.network.direct", priority: 1000 } },
      "wireguard:wg:peer:nas": { peer: { hosts: [{ plain: "10.42.0.2" }] } },
      "wireguard:wg:peer:pi": { peer: { hosts: [{ plain: "10.42.0.3" }], user: "admin", port: 2222 } },
      "zerotier:zt::": { networking: { module: "clan_lib.network.zerotier", priority: 900 } },
      "zerotier:zt:peer:pi": { peer: { hosts: [{ var: { machine: "pi", generator: "zerotier", file: "zerotier-ip" } }] } },
      "tor:tor::": { networking: { module: "clan_lib.network.tor", priority: 10 } },
      "tor:tor:peer:pi": { peer: { hosts: [{ plain: "abc.onion" }] } },
      "wireguard:other::": { networking: { module: "clan_lib.network.direct", priority: 1500 } },
    },
  };
  const asked: string[] = [];
  const routes = await routesFromExports(exports, async (h) => {
    asked.push(`${h.machine} ${h.var}`);
    return "fd7a:1:2::3\n";
  });
  assert.deepEqual(asked, ["pi zerotier/zerotier-ip"]);
  assert.deepEqual(routes.get("nas")?.map((r) => [r.network, r.priority, r.hosts]), [
    ["net", 2000, ["nas.example.org"]],
    ["wg", 1000, ["10.42.0.2"]],
  ]);
  const pi = routes.get("pi") ?? [];
  assert.deepEqual(pi.map((r) => r.network), ["wg", "zt"]);
  assert.deepEqual(pi.flatMap(routeTargets), ["admin@10.42.0.3:2222", "root@[fd7a:1:2::3]"]);
  assert.equal((await routesFromExports({}, async () => undefined)).size, 0, "an older clan without exports");
});

test("installer addresses: IPv4 first, then IPv6, link-local last; IPv6 in brackets for clan", () => {
  assert.deepEqual(installerOrder(["fe80::1", "2001:db8::5", "192.168.1.9", "[fd00::2]", "10.0.0.2"]), ["192.168.1.9", "10.0.0.2", "2001:db8::5", "[fd00::2]", "fe80::1"]);
  assert.equal(bracketIpv6("2001:db8::5"), "[2001:db8::5]");
  assert.equal(bracketIpv6("root@2001:db8::5"), "root@[2001:db8::5]");
  assert.equal(bracketIpv6("[::1]"), "[::1]");
  assert.equal(bracketIpv6("192.168.1.9"), "192.168.1.9");
  assert.equal(bracketIpv6("root@host:2222"), "root@host:2222");
});

test("generations: clan's table parsed; the answer shows them newest first and how to go back", () => {
  const stdout = [
    "Generation   | Date                | NixOS Version           | Kernel Version",
    "-------------+---------------------+-------------------------+---------------",
    "41           | 2026-11-01 10:00:00 | 25.11.20261020.aaaaaaa  | 6.12.40       ",
    "42 ← current | 2026-11-20 01:00:00 | 26.05.20261115.bbbbbbb  | 6.12.41       ",
    "",
  ].join("\n");
  const gens = parseGenerations(stdout);
  assert.deepEqual(gens, [
    { generation: 41, current: false, date: "2026-11-01 10:00:00", nixosVersion: "25.11.20261020.aaaaaaa", kernelVersion: "6.12.40" },
    { generation: 42, current: true, date: "2026-11-20 01:00:00", nixosVersion: "26.05.20261115.bbbbbbb", kernelVersion: "6.12.41" },
  ]);
  const { text } = formatGenerations("nas", gens, "!");
  assert.match(text, /nas: 2 generations\*, running 42\./);
  assert.ok(text.indexOf("42 (current)") < text.indexOf("41"), text);
  assert.match(text, /!rollback nas 41/);
  assert.match(rollbackCommand(41), /nix-env --profile \/nix\/var\/nix\/profiles\/system --switch-generation 41\n/);
  assert.throws(() => rollbackCommand(Number.NaN));
});

test("known_hosts for clan's ssh: the clan's block replaced in place, the rest of the file kept, removed when empty", async () => {
  const dir = await tempDir();
  const file = join(dir, ".ssh", "known_hosts");
  await mkdir(join(dir, ".ssh"));
  await writeFile(file, "github.com ssh-ed25519 AAAAgithub\n");
  await writeBlock(file, "family", ["nas.lan ssh-ed25519 AAAAnas"]);
  await writeBlock(file, "work", ["[10.0.0.2]:2222 ssh-ed25519 AAAAsrv"]);
  await writeBlock(file, "family", ["nas.lan ssh-ed25519 AAAAnew", "pi ssh-ed25519 AAAApi"]);
  const text = await readFile(file, "utf8");
  assert.equal(
    text,
    [
      "github.com ssh-ed25519 AAAAgithub",
      "# clanbot work: host keys pinned by clanbot (rewritten by it; edit outside this block)",
      "[10.0.0.2]:2222 ssh-ed25519 AAAAsrv",
      "# clanbot work: end",
      "# clanbot family: host keys pinned by clanbot (rewritten by it; edit outside this block)",
      "nas.lan ssh-ed25519 AAAAnew",
      "pi ssh-ed25519 AAAApi",
      "# clanbot family: end",
      "",
    ].join("\n"),
  );
  await writeBlock(file, "work", []);
  assert.doesNotMatch(await readFile(file, "utf8"), /work/);
  await writeBlock(join(dir, "none"), "x", []);
});

test("!help vm says what a VM of a machine with clan secrets has and has not", () => {
  const text = describeBackend({ kind: "nix", why: "this host's clan has no `clan vms` (removed in 26.05)" }, 2, "bot.lan");
  assert.match(text, /public clan vars/);
  assert.match(text, /secret clan vars .*not in the VM/);
  assert.match(text, /empty disk/);
});

test("dry runs: `clan machines build` where the clan has it (25.11 on), raw nix build before", async () => {
  assert.equal((await detectDryRun(fakeClanPath, 10_000)).kind, "clan");
  process.env.FAKE_CLAN_RELEASE = "25.05";
  try {
    assert.equal((await detectDryRun(fakeClanPath, 10_000)).kind, "nix");
  } finally {
    delete process.env.FAKE_CLAN_RELEASE;
  }
  assert.equal((await detectDryRun("/nonexistent/clan", 10_000)).kind, "nix");
});

async function service(fixture: FakeClanFixture, o: Partial<ConstructorParameters<typeof DeployService>[0]> = {}) {
  const dir = await tempDir();
  const flake = await makeFlake(join(dir, "flake"), fixture);
  const db = await openDatabase(join(dir, "db.sqlite3"));
  await migrate(db);
  const log = join(dir, "clan.jsonl");
  process.env.FAKE_CLAN_LOG = log;
  const s = new DeployService({
    clan: "fam",
    confirmAbove: 3,
    flake,
    db,
    clock: Date,
    log: quiet,
    clanCommand: fakeClanPath,
    nixCommand: fakeNixPath,
    parallel: 4,
    timeoutMs: 30_000,
    installTimeoutMs: 30_000,
    killGraceMs: 2000,
    logDir: join(dir, "logs"),
    ...o,
  });
  const run = async (kind: "switch" | "dry-run", machines: string[], onChange: (s: DeployState) => void = () => {}) => {
    const id = await startCommand(db, { clan: "fam", room: "!r:x", sender: "@a:x", command: "deploy", line: "!deploy", eventId: undefined, startedAt: Date.now() });
    return (await s.start({ id, kind, sender: "@a:x", machines }, onChange)).done;
  };
  return { run, log, flake };
}

const target = (n: string) => ({ deploy: { targetHost: `root@${n}.lan` } });

test("switch inhibitors: 'switched at next boot: reboot needed', the deploy ok, !reboot offered", async () => {
  const { run } = await service({
    machines: { a: target("a"), b: target("b") },
    behaviour: { "machines update": { generateVars: false, fail: ["a"], failPhase: "inhibitors" } },
  });
  const final = await run("switch", ["a", "b"]);
  assert.deepEqual(final.machines.map((m) => [m.machine, m.phase]), [["a", "reboot-needed"], ["b", "done"]]);
  assert.equal(final.result, "ok");
  const { text } = formatDeployStatus(final, Date.now(), "!");
  assert.match(text, /🔁 \*a\*: switched at next boot: reboot needed/);
  assert.match(text, /a runs the old system until it reboots: .* An admin can `!reboot a`\./);
});

test("a deploy of several machines: one clan process does the shared preparation, the others start after it", async () => {
  const seen: DeployState[] = [];
  const { run, log } = await service({
    machines: { a: target("a"), b: target("b"), c: target("c") },
    behaviour: { "machines update": { generateVars: false, delayMs: 400 } },
  });
  const final = await run("switch", ["a", "b", "c"], (s) => seen.push(s));
  assert.deepEqual(final.machines.map((m) => m.phase), ["done", "done", "done"]);
  assert.ok(seen.some((s) => s.machines.some((m) => m.waiting?.kind === "preparation")), "the others said they wait for the preparation");
  const runs = (await readInvocations(log)).filter((i) => i.argv[1] === "update");
  assert.equal(runs.length, 3);
  const times = runs.map((r) => Date.parse(r.time)).sort((x, y) => x - y);
  // The first process reaches its own machine's work (the source upload) before the build's 400 ms; the others start then, together.
  assert.ok((times[1] as number) - (times[0] as number) >= 50, `the others started ${(times[1] as number) - (times[0] as number)} ms after the first`);
  assert.ok((times[2] as number) - (times[1] as number) < 300, "the others started together");
});

test("a dry run with clan machines build reports the system it built", async () => {
  const { run, log, flake } = await service({ machines: { a: target("a") }, behaviour: { default: { generateVars: false } } }, { dryRun: "clan" });
  const final = await run("dry-run", ["a"]);
  assert.equal(final.machines[0]?.phase, "done");
  assert.match(final.machines[0]?.storePath ?? "", /^\/nix\/store\/[0-9a-z]{32}-nixos-system-a-/);
  const [build] = (await readInvocations(log)).filter((i) => i.argv[1] === "build");
  assert.deepEqual(build?.argv, ["machines", "build", "a", "--no-link", "--flake", flake]);
});

test("borg archive names as clan makes them (<dest>::<user@host:/path>::<archive>): dated, ordered, restorable", () => {
  const older = "nas-backup::borg@backup.lan:/srv/borg/2025-01-01::nas-nas-backup-2026-11-18T01:00:00";
  const newer = "nas-backup::borg@backup.lan:/srv/borg/2025-01-01::nas-nas-backup-2026-11-19T01:00:00";
  const offsite = "offsite::u123@u123.your-storagebox.de:./nas::nas-offsite-2026-11-19T03:00:00";
  assert.equal(archiveTime(newer), Date.parse("2026-11-19T01:00:00Z"), "the archive's date, not the one in the repo's path");
  assert.deepEqual(newestFirst([older, offsite, newer]), [offsite, newer, older]);
  for (const name of [older, offsite]) assert.match(name, ARCHIVE_NAME);
});
