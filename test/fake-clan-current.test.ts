// The fake `clan` follows clan-core as of 26.05 and main of 2026-08 (clan-cli.md, "second
// reading"): switch inhibitors, `machines build`, `machines generations`, which machines an
// update without names picks, routes over the clan's networks by priority, the IPv6 bracket
// rule, the key-only installer, host keys from the ssh options clan passes on, borg archive
// names, and no `clan vms` in 26.05.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { type FakeClanFixture, fakeClanPath, makeFlake, removeFlake } from "../demo/fake-clan-fixture.ts";
import { cleanEnv, runClan, type ClanRun, type ClanRunOptions } from "./support/fake-clan-process.ts";

const clan = (args: string[], opts: ClanRunOptions = {}): Promise<ClanRun> => runClan(args, { cwd: tmp, ...opts });
const lines = (text: string): string[] => text.split("\n").filter((l) => l !== "");

const KEY_A = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKeyOfTheMachineAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
const KEY_B = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAnotherKeyBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";

const FIXTURE: FakeClanFixture = {
  machines: {
    laptop: { deploy: { targetHost: "root@laptop.lan" }, tags: ["family"] },
    nas: { requireExplicitUpdate: true, deploy: { targetHost: "root@nas.lan" }, hostKey: KEY_A },
    overlay: { tags: ["family"] },
    lost: {},
  },
  networks: {
    internet: { peers: { overlay: { hosts: ["203.0.113.7"], down: true } } },
    wg: { service: "wireguard", peers: { overlay: { hosts: ["10.42.0.7"] } } },
    zt: { service: "zerotier", peers: { overlay: { hosts: ["fd00::7"] }, lost: { hosts: ["fd00::9"], down: true } } },
  },
  generations: {
    laptop: [
      { generation: 41, date: "2026-11-01 10:00:00", nixosVersion: "25.11.20261020.aaaaaaa", kernelVersion: "6.12.40" },
      { generation: 42, date: "2026-11-20 01:00:00", nixosVersion: "26.05.20261115.bbbbbbb", kernelVersion: "6.12.41", current: true },
    ],
  },
  backups: { nas: ["nas-backup::borg@backup:.::nas-nas-backup-2026-11-19T01:00:00"] },
  behaviour: { default: { generateVars: false } },
};

let tmp: string;
let flake: string;
let n = 0;

before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "fake-clan-current-"));
  flake = await makeFlake(path.join(tmp, "flake"), FIXTURE);
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function withFlake(fixture: FakeClanFixture, fn: (dir: string) => Promise<void>): Promise<void> {
  n += 1;
  const dir = await makeFlake(path.join(tmp, `flake-${n}`), fixture);
  try {
    await fn(dir);
  } finally {
    await removeFlake(dir);
  }
}

describe("machines update", { concurrency: 4 }, () => {
  test("switch inhibitors: boot entry written, then exit 1 with clan's message (update.py)", async () => {
    const fixture = { ...FIXTURE, behaviour: { default: { generateVars: false }, "machines update": { fail: ["laptop"], failPhase: "inhibitors" as const } } };
    await withFlake(fixture, async (dir) => {
      const r = await clan(["machines", "update", "laptop", "--host-key-check", "accept-new", "--flake", dir]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /switch-to-configuration boot\n/);
      assert.match(
        r.stderr,
        /\[laptop\] failed with error: Live-switching 'laptop' was blocked by switch inhibitors \(critical system components changed\)\.\nThe new configuration has been registered for the next boot\.\nPlease reboot 'laptop' to complete the update\.\nTo force a live switch despite inhibitors, re-run with --no-check\.\n/,
      );
      assert.match(r.stderr, /1 hosts failed with an error\. Check the logs above\n$/);
      const forced = await clan(["machines", "update", "laptop", "--no-check", "--host-key-check", "accept-new", "--flake", dir]);
      assert.equal(forced.code, 0, forced.stderr);
    });
  });

  test("no names: requireExplicitUpdate machines are left out; the rest go, unreachable ones fail", async () => {
    const r = await clan(["machines", "update", "--host-key-check", "accept-new", "--flake", flake]);
    assert.equal(r.code, 1);
    const machines = new Set(lines(r.stderr).filter((l) => l.startsWith("[")).map((l) => l.slice(1, l.indexOf("]"))));
    assert.deepEqual([...machines].sort(), ["laptop", "lost", "overlay"]);
    assert.match(r.stderr, /\[lost\] failed with error: Could not find any way to connect to machine 'lost'/);
    assert.match(r.stderr, /\n1 hosts failed with an error/);
  });

  test("routes: the highest-priority network that answers (internet down: wireguard 1000 before zerotier 900)", async () => {
    const r = await clan(["machines", "update", "overlay", "--host-key-check", "accept-new", "--flake", flake]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^\[overlay\] Machine overlay reachable via wg network$/m);
    assert.match(r.stderr, /ssh-ng:\/\/root@10\.42\.0\.7/);
    const exports = JSON.parse((await clan(["select", "clan.?exports", "--flake", flake])).stdout) as { exports: Record<string, unknown> };
    assert.deepEqual(exports.exports["wireguard:wg::"], { networking: { module: "clan_lib.network.direct", priority: 1000 } });
    assert.deepEqual(exports.exports["zerotier:zt:peer:overlay"], { peer: { hosts: [{ plain: "fd00::7" }], port: 22 } });
  });
});

describe("machines build and generations", { concurrency: 4 }, () => {
  test("build: 'Building N machine(s)...', then the store paths on stdout; a failure is 'Build failed for m'", async () => {
    const r = await clan(["machines", "build", "laptop", "nas", "--no-link", "--flake", flake]);
    assert.equal(r.code, 0, r.stderr);
    const out = lines(r.stdout);
    assert.equal(out[0], "Building 2 machine(s)...");
    assert.equal(out.length, 3);
    for (const p of out.slice(1)) assert.match(p, /^\/nix\/store\/[0-9a-z]{32}-nixos-system-(laptop|nas)-/);
    const fixture = { ...FIXTURE, behaviour: { "machines build": { fail: ["nas"] } } };
    await withFlake(fixture, async (dir) => {
      const f = await clan(["machines", "build", "nas", "--no-link", "--flake", dir]);
      assert.equal(f.code, 1);
      assert.match(f.stderr, /Build failed for nas: /);
    });
  });

  test("generations: clan's table for a named machine, the current one marked", async () => {
    const r = await clan(["machines", "generations", "laptop", "--host-key-check", "accept-new", "--flake", flake]);
    assert.equal(r.code, 0, r.stderr);
    const out = lines(r.stdout);
    assert.match(out[0] ?? "", /^Generation +\| Date +\| NixOS Version +\| Kernel Version$/);
    assert.match(out[1] ?? "", /^-+-\+-/);
    assert.match(out[2] ?? "", /^41 +\| 2026-11-01 10:00:00 \| 25\.11\.20261020\.aaaaaaa \| 6\.12\.40 *$/);
    assert.match(out[3] ?? "", /^42 ← current \| 2026-11-20 01:00:00 \| 26\.05\.20261115\.bbbbbbb \| 6\.12\.41 *$/);
  });
});

describe("install from the current installer", { concurrency: 4 }, () => {
  test("a bare IPv6 address in addrs makes the whole -j run fail; in brackets it works", async () => {
    const bare = await clan(["machines", "install", "laptop", "-j", JSON.stringify({ pass: null, addrs: ["2001:db8::5", "192.0.2.5"] }), "--yes", "--flake", flake]);
    assert.equal(bare.code, 1);
    assert.match(bare.stderr, /IPv6 addresses must be enclosed in brackets/);
    const key = path.join(tmp, "id_test");
    await writeFile(`${key}.pub`, `${KEY_B} bot\n`);
    await writeFile(key, "not read: the .pub beside it is\n");
    const bracketed = await clan(["machines", "install", "laptop", "-j", JSON.stringify({ pass: null, addrs: ["[2001:db8::5]"] }), "-i", key, "--yes", "--flake", flake]);
    assert.equal(bracketed.code, 0, bracketed.stderr);
    assert.match(bracketed.stdout + bracketed.stderr, /### Done! ###/);
  });

  test('key only ("pass": null): without -i, or with a key it lacks, ssh-copy-id is refused for ever', async () => {
    const key = path.join(tmp, "id_other");
    await writeFile(`${key}.pub`, `${KEY_B} other\n`);
    await writeFile(key, "x\n");
    const fixture = { ...FIXTURE, behaviour: { default: { generateVars: false }, "machines install": { keyOnly: true, authorizedKeys: [KEY_A] } } };
    await withFlake(fixture, async (dir) => {
      for (const extra of [[], ["-i", key]]) {
        const child = spawn(fakeClanPath, ["machines", "install", "laptop", "-j", JSON.stringify({ pass: null, addrs: ["192.0.2.5"] }), ...extra, "--yes", "--flake", dir], {
          env: cleanEnv({ NO_COLOR: "1" }),
          stdio: ["ignore", "pipe", "pipe"],
          detached: true,
        });
        let stderr = "";
        child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
        child.stdout.resume();
        const closed = new Promise<void>((r) => child.on("close", () => r()));
        await new Promise((r) => setTimeout(r, 1500));
        assert.equal(child.exitCode, null, "still retrying");
        assert.match(stderr, /ERROR: root@192\.0\.2\.5: Permission denied \(publickey\)\.$/m);
        process.kill(-child.pid!, "SIGKILL");
        await closed;
      }
      await writeFile(`${key}.pub`, `${KEY_A} bot\n`);
      const ok = await clan(["machines", "install", "laptop", "-j", JSON.stringify({ pass: null, addrs: ["192.0.2.5"] }), "-i", key, "--yes", "--flake", dir]);
      assert.equal(ok.code, 0, ok.stderr);
    });
  });
});

describe("host keys and backups", { concurrency: 4 }, () => {
  test("backups: the user's known_hosts decides (no --host-key-check); a key that differs fails", async () => {
    await withFlake({ ...FIXTURE, machines: { ...FIXTURE.machines, nas: { ...FIXTURE.machines.nas, hostKeyKnown: false } } }, async (dir) => {
      const knownHosts = path.join(dir, "known_hosts");
      const env = { FAKE_CLAN_SSH_KNOWN_HOSTS: knownHosts };
      const unknown = await clan(["backups", "create", "nas", "--flake", dir], { env, stdin: "ignore" });
      assert.equal(unknown.code, 1);
      assert.match(unknown.stderr, /Host key verification failed\./);
      await writeFile(knownHosts, `nas.lan ${KEY_B}\n`);
      const changed = await clan(["backups", "create", "nas", "--flake", dir], { env, stdin: "ignore" });
      assert.equal(changed.code, 1);
      assert.match(changed.stderr, /REMOTE HOST IDENTIFICATION HAS CHANGED/);
      await writeFile(knownHosts, `laptop.lan ${KEY_B}\nnas.lan ${KEY_A}\n`);
      const pinned = await clan(["backups", "create", "nas", "--flake", dir], { env, stdin: "ignore" });
      assert.equal(pinned.code, 0, pinned.stderr);
      assert.equal(pinned.stdout, "successfully started backup\n");
    });
  });

  test("update: UserKnownHostsFile in the target's ssh options replaces the user's file", async () => {
    await withFlake({ ...FIXTURE, machines: { ...FIXTURE.machines, nas: { ...FIXTURE.machines.nas, hostKeyKnown: false } } }, async (dir) => {
      const file = path.join(dir, "pinned");
      await writeFile(file, `nas.lan ${KEY_A}\n`);
      const target = `root@nas.lan?UserKnownHostsFile=${file}&StrictHostKeyChecking=yes`;
      const r = await clan(["machines", "update", "nas", "--target-host", target, "--host-key-check", "strict", "--flake", dir], { stdin: "ignore" });
      assert.equal(r.code, 0, r.stderr);
    });
  });
});

describe("archives and VMs", { concurrency: 4 }, () => {
  test("borg archive names are <dest>::<user@host:path>::<archive>; create adds one in that form", async () => {
    await withFlake(FIXTURE, async (dir) => {
      const env = { FAKE_CLAN_SSH_KNOWN_HOSTS: path.join(dir, "kh") };
      assert.equal((await clan(["backups", "create", "nas", "--flake", dir], { env })).code, 0);
      const names = lines((await clan(["backups", "list", "nas", "--flake", dir], { env })).stdout);
      assert.equal(names.length, 2);
      for (const name of names) assert.match(name, /^nas-backup::borg@backup:\.::nas-nas-backup-\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$/);
    });
  });

  test("26.05 has no `clan vms`: argparse refuses it; 25.11 has it", async () => {
    const r = await clan(["vms", "run", "laptop", "--flake", flake]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /invalid choice: 'vms'/);
    const old = await clan(["vms", "--help"], { env: { FAKE_CLAN_RELEASE: "25.11" } });
    assert.equal(old.code, 0);
    const fixture = JSON.parse(await readFile(path.join(flake, "clan-fixture.json"), "utf8")) as FakeClanFixture;
    assert.ok(fixture.machines.laptop);
  });
});
