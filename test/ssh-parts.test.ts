// The pure parts of machines over SSH: target addresses, known_hosts matching, reading the health
// probe's answer, the root prefix, and how a status table reads.

import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { formatStatus, shortStorePath, shortVersion } from "../commands/ssh-format.ts";
import { parseKnownHosts } from "../ops/host-keys.ts";
import { asRoot, generationOf, parseHealth } from "../ops/machine-health.ts";
import { loadBotKey } from "../ops/ssh-key.ts";
import { parseTarget } from "../ops/ssh-target.ts";
import { tempDir } from "./support/temp-dir.ts";

test("clan target addresses: user, host, port, IPv6, options", () => {
  assert.deepEqual(parseTarget("root@laptop.lan"), { user: "root", host: "laptop.lan", port: 22, text: "root@laptop.lan" });
  // A target goes into clan's argv: it must never look like an option.
  for (const t of ["--help", "-oProxyCommand=x", "root@-x", "-root@host", "--target-host"]) assert.ok("error" in parseTarget(t), t);
  assert.deepEqual(parseTarget("nas"), { user: "root", host: "nas", port: 22, text: "nas" });
  assert.deepEqual(parseTarget("admin@10.0.0.5:2222"), { user: "admin", host: "10.0.0.5", port: 2222, text: "admin@10.0.0.5:2222" });
  assert.deepEqual(parseTarget("root@[fd00::1]:22"), { user: "root", host: "fd00::1", port: 22, text: "root@[fd00::1]:22" });
  assert.deepEqual(parseTarget("root@fd00::1"), { user: "root", host: "fd00::1", port: 22, text: "root@fd00::1" });
  assert.deepEqual(parseTarget("root@nas?Port=2022"), { user: "root", host: "nas", port: 2022, text: "root@nas?Port=2022" });
  assert.match((parseTarget("root@nas?ProxyJump=gw") as { error: string }).error, /SSH option ProxyJump, which the bot does not support/);
  assert.match((parseTarget("root@nas:99999") as { error: string }).error, /no valid port/);
  assert.match((parseTarget("ro ot@nas") as { error: string }).error, /no valid user/);
  assert.match((parseTarget("root@-oProxyCommand=x") as { error: string }).error, /no valid host/);
  assert.match((parseTarget("root@[fd00::1") as { error: string }).error, /unclosed/);
});

test("known_hosts: plain, [host]:port, hashed, wildcard, negated and @revoked lines", () => {
  const salt = Buffer.from("0123456789abcdef0123");
  const hash = createHmac("sha1", salt).update("[10.0.0.9]:2222").digest("base64");
  const entries = parseKnownHosts(
    [
      "# comment",
      "laptop.lan,10.0.0.4 ssh-ed25519 AAAAlaptop",
      "[10.0.0.5]:2222 ssh-ed25519 AAAAnas",
      `|1|${salt.toString("base64")}|${hash} ssh-ed25519 AAAAhashed`,
      "*.home,!router.home ssh-rsa AAAAwild",
      "@revoked old.lan ssh-ed25519 AAAAold",
      "@cert-authority *.lan ssh-ed25519 AAAAca",
      "broken-line",
    ].join("\n"),
  );
  const keysFor = (name: string): string[] => entries.filter((e) => e.matches(name)).map((e) => `${e.revoked ? "revoked " : ""}${e.base64}`);
  assert.deepEqual(keysFor("10.0.0.4"), ["AAAAlaptop"]);
  assert.deepEqual(keysFor("[10.0.0.5]:2222"), ["AAAAnas"]);
  assert.deepEqual(keysFor("10.0.0.5"), []);
  assert.deepEqual(keysFor("[10.0.0.9]:2222"), ["AAAAhashed"]);
  assert.deepEqual(keysFor("tv.home"), ["AAAAwild"]);
  assert.deepEqual(keysFor("router.home"), []);
  assert.deepEqual(keysFor("old.lan"), ["revoked AAAAold"]);
});

test("the health probe's answer: every field, missing ones left empty, a pending reboot", () => {
  const h = parseHealth(
    [
      "uptime 93784.12",
      "version 25.11.20260815.5e2a59a (Xantusia)",
      "link /run/current-system /nix/store/aaaa-nixos-system-nas-25.11",
      "link /run/booted-system /nix/store/bbbb-nixos-system-nas-25.11",
      "link /nix/var/nix/profiles/system system-42-link",
      "link /etc/unexpected /somewhere",
      "bootid 0d2c...",
      "disk 488245288 312477000 175768288",
      "failed nginx.service",
      "failed borgbackup-job-nas.service",
      "",
    ].join("\n"),
  );
  assert.equal(h.uptimeSeconds, 93784.12);
  assert.equal(h.generation, 42);
  assert.equal(h.rebootPending, true);
  assert.deepEqual(h.failedUnits, ["nginx.service", "borgbackup-job-nas.service"]);
  assert.deepEqual(h.rootDisk, { sizeKiB: 488245288, usedKiB: 312477000, availKiB: 175768288 });
  const bare = parseHealth("uptime \nversion \nbootid \ndisk   \n");
  assert.deepEqual(bare, {
    uptimeSeconds: undefined,
    nixosVersion: undefined,
    currentSystem: undefined,
    bootedSystem: undefined,
    generation: undefined,
    bootId: undefined,
    rebootPending: false,
    nextBootSystem: undefined,
    failedUnits: [],
    rootDisk: undefined,
  });
  assert.equal(generationOf("system-7-link"), 7);
  assert.equal(generationOf("something"), undefined);
});

test("switch inhibitors: running = booted, but the profile (the next boot) is newer: a reboot is pending", () => {
  const system = (x: string): string => `/nix/store/${x.repeat(32)}-nixos-system-nas-26.05`;
  const h = parseHealth(
    [`link /run/current-system ${system("a")}`, `link /run/booted-system ${system("a")}`, `profile ${system("b")}`, "link /nix/var/nix/profiles/system system-43-link"].join("\n"),
  );
  assert.equal(h.rebootPending, true);
  assert.equal(h.nextBootSystem, system("b"));
  const same = parseHealth([`link /run/current-system ${system("a")}`, `link /run/booted-system ${system("a")}`, `profile ${system("a")}`].join("\n"));
  assert.equal(same.rebootPending, false);
});

test("commands as root: unchanged for root, through sudo -n with the command quoted otherwise", () => {
  assert.equal(asRoot("root", "systemctl reboot"), "systemctl reboot");
  assert.equal(asRoot("admin", "printf 'a'"), `sudo -n sh -c 'printf '"'"'a'"'"''`);
});

test("the status table: one row per machine, problems spelled out below, hints for host keys and refused keys", () => {
  const health = parseHealth(
    "uptime 7200\nversion 25.11.20260815.5e2a59a (Xantusia)\nlink /run/current-system /nix/store/abcdefgh12-nixos-system-laptop\nlink /run/booted-system /nix/store/abcdefgh12-nixos-system-laptop\nlink /nix/var/nix/profiles/system system-12-link\ndisk 100000000 50000000 50000000\n",
  );
  const m = formatStatus(
    [
      { machine: "laptop", ok: true, target: "root@laptop", health, drift: { kind: "in-sync", deployId: 42 }, pinnedNow: true },
      { machine: "nas", ok: false, target: "root@nas", problem: "host-key-changed", detail: "its host key changed: it was SHA256:old, it is now SHA256:new" },
      { machine: "tv", ok: false, target: "root@tv", problem: "auth", detail: "root@tv does not accept the bot's SSH key" },
      { machine: "pi", ok: false, target: undefined, problem: "no-target", detail: "no target host" },
    ],
    "!",
  );
  const [summary, tableText] = m.text.split("\n\n");
  assert.equal(summary, "4 machines: 1 up, 3 not.");
  assert.match(tableText ?? "", /^Machine +State +Up +NixOS +System +Reboot +Failed units +Disk \/ +Drift$/m);
  assert.match(tableText ?? "", /\*laptop\* +🟢 up +2 h +25\.11 \(5e2a59a\) +`abcdefgh` gen 12 +no +none +50% of 102 GB +as deployed \(#42\)/);
  assert.match(m.text, /\*nas\* \(root@nas\): its host key changed: it was SHA256:old, it is now SHA256:new/);
  assert.match(m.text, /an admin accepts the new key with `!trust nas`/);
  assert.match(m.text, /`!sshkey` shows it and how to add it/);
  assert.match(m.text, /First contact with laptop: I pinned its host key/);
  assert.match(m.html, /<table>/);
  assert.equal(shortVersion(undefined), "not NixOS?");
  assert.equal(shortStorePath("/nix/store/0123456789abcdef-nixos-system-x"), "01234567");
});

test("the bot's key: made once with mode 0600 (its directory 0700), read back the same, refused with the reason when unusable", async () => {
  const dir = await tempDir();
  // ssh2 reads back only about 299 in 300 of the keys it makes: enough keys that a missed retry shows.
  for (let i = 0; i < 400; i++) {
    const path = join(dir, `k${i}`, "id_ed25519");
    const made = loadBotKey(path, true);
    assert.equal(loadBotKey(path, false).publicLine, made.publicLine);
    if (i === 0) {
      assert.equal(statSync(path).mode & 0o777, 0o600);
      assert.equal(statSync(join(dir, "k0")).mode & 0o777, 0o700);
      assert.match(made.publicLine, /^ssh-ed25519 AAAA\S+ clanbot@/);
      assert.match(made.fingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/);
    }
  }
  assert.throws(() => loadBotKey(join(dir, "missing"), false), /cannot read the SSH key .*missing \(ENOENT\)/);
  writeFileSync(join(dir, "junk"), "not a key");
  assert.throws(() => loadBotKey(join(dir, "junk"), false), /the SSH key .*junk cannot be used/);
});
