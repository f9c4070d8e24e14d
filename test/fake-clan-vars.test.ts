// The fake `clan vars` follows clan_cli/vars: list's format, get's raw bytes and "has not been
// generated yet", set from stdin with a git commit, generate (-g, -r), check's exit status.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { type FakeClanFixture, makeFlake } from "../demo/fake-clan-fixture.ts";
import { runClan } from "./support/fake-clan-process.ts";

const FIXTURE: FakeClanFixture = {
  machines: { nas: { deploy: { targetHost: "root@nas.lan" } }, laptop: {} },
  vars: {
    nas: {
      borg: { files: { passphrase: { secret: true }, "repo.pub": { secret: false, value: "borg-pubkey-1" } } },
      "root-password": { files: { "password-hash": { secret: false, value: "$6$abc" }, password: { secret: true, value: "hunter2" } } },
    },
  },
};

let tmp: string;
let flake: string;
const git = (...args: string[]): string => execFileSync("git", ["-C", flake, ...args], { encoding: "utf8" });

before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "fake-clan-vars-"));
  flake = await makeFlake(path.join(tmp, "flake"), FIXTURE);
  git("init", "-q", "-b", "main");
  git("-c", "user.name=t", "-c", "user.email=t@t", "add", ".");
  git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "init");
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const env = { GIT_AUTHOR_NAME: "t", GIT_AUTHOR_EMAIL: "t@t", GIT_COMMITTER_NAME: "t", GIT_COMMITTER_EMAIL: "t@t" };
const clan = (args: string[], stdin?: string) => runClan([...args, "--flake", flake], { env, ...(stdin === undefined ? {} : { stdin }) });

describe("fake clan vars", () => {
  test("list: gen/file: value sorted, ******** for secrets, <not set>", async () => {
    const r = await clan(["vars", "list", "nas"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      r.stdout,
      "borg/passphrase: <not set>\nborg/repo.pub: borg-pubkey-1\nroot-password/password-hash: $6$abc\nroot-password/password: ********\n",
    );
    // sorted as strings, as clan sorts them: ".pub: " before ": "
    const laptop = await clan(["vars", "list", "laptop"]);
    assert.match(laptop.stdout, /^openssh\/ssh\.id_ed25519\.pub: ssh-ed25519 AAAA\S+ nixbld\nopenssh\/ssh\.id_ed25519: \*{8}\n$/);
  });

  test("get: raw value, no newline; not generated yet; unknown var; prefix", async () => {
    const ok = await clan(["vars", "get", "nas", "root-password/password"]);
    assert.deepEqual([ok.code, ok.stdout], [0, "hunter2"]);
    const missing = await clan(["vars", "get", "nas", "borg/passphrase"]);
    assert.deepEqual([missing.code, missing.stderr], [1, "Var borg/passphrase has not been generated yet\n"]);
    const unknown = await clan(["vars", "get", "nas", "nope/x"]);
    assert.deepEqual([unknown.code, unknown.stderr], [1, "Couldn't find var: nope/x for machine: nas\n"]);
    const prefix = await clan(["vars", "get", "nas", "borg/pass"]);
    assert.deepEqual([prefix.code, prefix.stderr], [1, "Did you mean: borg/passphrase\n"]);
    const usage = await clan(["vars", "get", "nas"]);
    assert.equal(usage.code, 2);
  });

  test("set: value from stdin, stored encrypted, committed", async () => {
    const value = "correct horse battery staple";
    const r = await clan(["vars", "set", "nas", "borg/passphrase"], value);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "");
    assert.match(r.stderr, /^\[nas\] Updated secret var borg\/passphrase for machines: nas\n\nCommitted vars\/per-machine\/nas\/borg\/passphrase\/secret to git\n$/);
    assert.ok(!r.stderr.includes(value));
    assert.equal(git("log", "-1", "--format=%s").trim(), "vars: update borg/passphrase for machine nas");
    const stored = await readFile(path.join(flake, "vars/per-machine/nas/borg/passphrase/secret"), "utf8");
    assert.ok(!stored.includes(value) && !stored.includes(Buffer.from(value).toString("base64")), "not in clear in the flake");
    assert.equal((await clan(["vars", "get", "nas", "borg/passphrase"])).stdout, value);
    assert.match((await clan(["vars", "list", "nas"])).stdout, /^borg\/passphrase: \*{8}$/m);
    // the same value again: nothing to commit
    const head = git("rev-parse", "HEAD");
    const again = await clan(["vars", "set", "nas", "borg/passphrase"], value);
    assert.equal(again.code, 0);
    assert.notEqual(git("rev-parse", "HEAD"), head, "a secret is re-encrypted (new nonce), as sops does");
  });

  test("set: a public var logs old and new; unknown machine fails", async () => {
    const r = await clan(["vars", "set", "nas", "borg/repo.pub"], "borg-pubkey-2");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /\[nas\] Updated var borg\/repo\.pub for machines: nas\n {2}old: borg-pubkey-1\n {2}new: borg-pubkey-2\n/);
    const bad = await clan(["vars", "set", "ghost", "borg/passphrase"], "x");
    assert.equal(bad.code, 1);
  });

  test("check and generate: missing vars, -g, -r, commits per generator", async () => {
    await makeFlake(path.join(tmp, "flake2"), FIXTURE);
    const f2 = path.join(tmp, "flake2");
    const c = (args: string[]) => runClan([...args, "--flake", f2], { env });
    const check = await c(["vars", "check", "nas"]);
    assert.equal(check.code, 1);
    assert.match(check.stderr, /Missing secret vars:\n {2}- borg\/passphrase\n/);
    const unknownGen = await c(["vars", "generate", "nas", "-g", "nope"]);
    assert.deepEqual([unknownGen.code, unknownGen.stderr], [1, "Generator(s) 'nope' not found in machines ['nas']\n"]);
    const gen = await c(["vars", "generate", "nas"]);
    assert.equal(gen.code, 0, gen.stderr);
    assert.match(gen.stderr, /\[nas\] Generating vars for generator borg/);
    assert.doesNotMatch(gen.stderr, /root-password/, "complete generators are left alone");
    assert.equal((await c(["vars", "check", "nas"])).code, 0);
    const secret = (await c(["vars", "get", "nas", "borg/passphrase"])).stdout;
    assert.match(secret, /^[0-9a-f]{32}$/);
    assert.ok(!gen.stderr.includes(secret), "a generated secret is never logged");
    const regen = await c(["vars", "generate", "nas", "-g", "root-password", "--regenerate"]);
    assert.equal(regen.code, 0, regen.stderr);
    assert.notEqual((await c(["vars", "get", "nas", "root-password/password"])).stdout, "hunter2");
    assert.deepEqual((await readdir(path.join(f2, "vars/per-machine/nas"))).sort(), ["borg", "root-password"]);
  });
});
