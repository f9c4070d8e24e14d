// The fake `clan machines install` behaves like clan-core's (clan_cli/machines/install.py,
// clan_lib/network/qr_code.py, clan_lib/machines/install.py running nixos-anywhere once
// per phase): its flags, the target from --target-host / -j / -P / the inventory, the
// confirmation prompt, the phases' output, errors and exit statuses; and its invocation
// log says where the installer data came from without ever holding the password.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import {
  type FakeClanFixture,
  type FakeClanInstallRecord,
  type FakeClanInvocation,
  fakeClanPath,
  makeFlake,
  readInvocations,
  removeFlake,
} from "../demo/fake-clan-fixture.ts";
import { cleanEnv, runClan, type ClanRun, type ClanRunOptions } from "./support/fake-clan-process.ts";

const clan = (args: string[], opts: ClanRunOptions = {}): Promise<ClanRun> => runClan(args, { cwd: tmp, ...opts });

function lines(text: string): string[] {
  return text.split("\n").filter((l) => l !== "");
}

/** Index of the first line matching `re`; fails if there is none. */
function at(all: string[], re: RegExp): number {
  const i = all.findIndex((l) => re.test(l));
  assert.ok(i >= 0, `no line matches ${re}`);
  return i;
}

const PASSWORD = "scabbed-defender-headlock";
const INSTALLER = { pass: PASSWORD, tor: "qjeerqk4cmdqbqbvebgtfjdgqdozchgokvvn36lmz2mlnzzzc2nhsbid.onion", addrs: ["192.168.122.86", "10.0.2.15"] };
const WARNING =
  "\x1b[31mWARNING: This will PERMANENTLY ERASE ALL DATA on the target host. All disks will be wiped, repartitioned, and reformatted. If you want to update an existing installation, use 'clan machines update' instead.\x1b[0m\n";
const NO_TARGET =
  "No target host for machine 'fresh'.\nProvide --target-host, --json, or --png, set\n'inventory.machines.<name>.deploy.targetHost',\nset 'clan.core.networking.targetHost' in your configuration,\nor configure the internet service for this machine.\n";

const FIXTURE: FakeClanFixture = {
  machines: {
    fresh: { description: "not installed yet", tags: ["new"] },
    laptop: { deploy: { targetHost: "root@laptop.lan" } },
    mac: { machineClass: "darwin", deploy: { targetHost: "admin@mac.lan" } },
  },
  behaviour: { "machines install": { generateVars: false } },
};

let tmp: string;
let flakes = 0;

before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "fake-clan-install-"));
});

after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

interface World {
  flake: string;
  log: string;
  /** The installer JSON written to a file with mode 0600. */
  jsonFile: string;
  run(args: string[], opts?: ClanRunOptions): Promise<ClanRun>;
  /** The `install` part of the last invocation; fails if there is none. */
  lastInstall(): Promise<{ entry: FakeClanInvocation; install: FakeClanInstallRecord; raw: string }>;
  fixture(): Promise<FakeClanFixture>;
}

/** A flake of its own (with these install knobs), a log, and the installer's JSON file. */
async function withWorld(knobs: NonNullable<FakeClanFixture["behaviour"]>["machines install"], fn: (w: World) => Promise<void>): Promise<void> {
  flakes += 1;
  const dir = path.join(tmp, `world-${flakes}`);
  const fixture: FakeClanFixture = { ...FIXTURE, behaviour: { "machines install": { generateVars: false, ...knobs } } };
  const flake = await makeFlake(path.join(dir, "flake"), fixture);
  const log = path.join(dir, "invocations.jsonl");
  const jsonFile = path.join(dir, "installer.json");
  await writeFile(jsonFile, JSON.stringify(INSTALLER));
  await chmod(jsonFile, 0o600);
  const w: World = {
    flake,
    log,
    jsonFile,
    run: (args, opts = {}) => clan(["machines", "install", ...args, "--flake", flake], { ...opts, env: { FAKE_CLAN_LOG: log, NO_COLOR: "1", ...opts.env } }),
    async lastInstall() {
      const all = await readInvocations(log);
      const entry = all.at(-1);
      assert.ok(entry?.install, "the last invocation has install fields");
      const raw = (await readFile(log, "utf8")).trimEnd().split("\n").at(-1)!;
      return { entry, install: entry.install, raw };
    },
    fixture: async () => JSON.parse(await readFile(path.join(flake, "clan-fixture.json"), "utf8")) as FakeClanFixture,
  };
  try {
    await fn(w);
  } finally {
    await removeFlake(dir);
  }
}

describe("clan machines install", { concurrency: 4 }, () => {
  test("-j FILE: the first installer address, as root, every phase in order, exit 0; the log has the file, not the password", async () => {
    await withWorld({}, async (w) => {
      const r = await w.run(["fresh", "-j", w.jsonFile, "--yes"], { stdin: "ignore" });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, WARNING);
      const out = lines(r.stderr);
      // clan's reachability check of the address it picked, then its log.info line
      // (that line really contains the installer's password: clan prints the dataclass)
      assert.equal(out[0], "Connection to 192.168.122.86 22 port [tcp/ssh] succeeded!");
      assert.match(out[1]!, /^reachable via RemoteWithNetwork\(network=Network\(peers=\{'installer': .*module_name='clan_lib\.network\.direct'.* after connection$/);
      assert.ok(out[1]!.includes(`password='${PASSWORD}'`));
      for (const l of out.slice(2)) assert.match(l, /^\[fresh\] /, l);
      const order = [
        at(out, /^\[fresh\] ### Uploading install SSH keys ###$/),
        at(out, /^\[fresh\] Number of key\(s\) added: 1$/),
        at(out, /^\[fresh\] ### Formatting hard drive with disko ###$/),
        at(out, /^\[fresh\] ### Installing NixOS ###$/),
        at(out, /^\[fresh\] installation finished!$/),
        at(out, /^\[fresh\] ### Rebooting ###$/),
      ];
      assert.deepEqual(order, [...order].sort((a, b) => a - b));
      assert.equal(out.filter((l) => l === "[fresh] ### Done! ###").length, 4, "one nixos-anywhere run per phase");
      assert.ok(!out.some((l) => l.includes("Switching system into kexec")), "the clan installer needs no kexec");

      const { entry, install, raw } = await w.lastInstall();
      assert.deepEqual(entry.argv, ["machines", "install", "fresh", "-j", w.jsonFile, "--yes", "--flake", w.flake]);
      assert.equal(install.targetSource, "json");
      assert.equal(install.jsonSource, "file");
      assert.equal(install.jsonFile?.path, w.jsonFile);
      assert.equal(install.jsonFile?.mode, 0o600);
      assert.equal(install.jsonFile?.modeOctal, "0600");
      assert.deepEqual(install.addrs, INSTALLER.addrs);
      assert.equal(install.tor, INSTALLER.tor);
      assert.equal(install.via, "direct");
      assert.equal(install.target, "root@192.168.122.86");
      assert.equal(install.hasPassword, true);
      assert.equal(install.passwordSource, "json-file");
      assert.equal(install.passwordOnCommandLine, false);
      assert.ok(!raw.includes(PASSWORD), "the password never reaches the log");

      const after = await w.fixture();
      assert.ok(Math.abs(after.machines.fresh!.installedAt! - Date.now() / 1000) < 60, "installedAt persisted in the inventory");
    });
  });

  test("JSON given inline, or --password on the command line, works but shows as such in the log", async () => {
    await withWorld({}, async (w) => {
      const inline = await w.run(["fresh", "--json", JSON.stringify(INSTALLER), "--yes", "--phases", "reboot"]);
      assert.equal(inline.code, 0, inline.stderr);
      const a = (await w.lastInstall()).install;
      assert.equal(a.jsonSource, "inline");
      assert.equal(a.jsonFile, null);
      assert.equal(a.passwordSource, "json-inline");
      assert.equal(a.target, "root@192.168.122.86");

      const pw = await w.run(["fresh", "--target-host", "nixos@10.0.0.9:2222", "--password", "hunter2", "--yes", "--phases", "reboot"]);
      assert.equal(pw.code, 0, pw.stderr);
      const b = (await w.lastInstall()).install;
      assert.equal(b.targetSource, "target-host");
      assert.equal(b.passwordSource, "argv");
      assert.equal(b.passwordOnCommandLine, true);
      assert.deepEqual([b.target, b.port], ["nixos@10.0.0.9", 2222]);

      const key = await w.run(["fresh", "-j", w.jsonFile, "-i", "/keys/id_ed25519", "--yes", "--phases", "reboot"]);
      assert.equal(key.code, 0, key.stderr);
      const c = (await w.lastInstall()).install;
      assert.deepEqual([c.passwordOnCommandLine, c.identityFile, c.passwordSource], [false, "/keys/id_ed25519", "json-file"]);
    });
  });

  test("no target at all: clan's error, exit 1; an unknown machine: 'does not exist'", async () => {
    await withWorld({}, async (w) => {
      const r = await w.run(["fresh", "--yes"], { stdin: "ignore" });
      assert.deepEqual([r.code, r.stdout, r.stderr], [1, "", NO_TARGET]);
      const { install } = await w.lastInstall();
      assert.deepEqual([install.targetSource, install.target], ["inventory", null]);

      const unknown = await w.run(["ghost", "--yes"], { stdin: "ignore" });
      assert.deepEqual([unknown.code, unknown.stderr], [1, "Machine ghost does not exist\n"]);

      // with a target, clan only finds out when it evaluates the machine's vars
      const later = await w.run(["ghost", "--target-host", "root@10.0.0.9", "--yes"], { stdin: "ignore" });
      assert.equal(later.code, 1);
      assert.match(later.stderr, /^Error while executing:\$ clan select 'clanInternals\.machines\.x86_64-linux\.\{ghost\}\.config\.clan\.core\.vars\.generators/);
      assert.match(later.stderr, /Reason: attribute 'ghost' missing\. Use flag '--debug' to see full nix trace\.\n$/);

      const mac = await w.run(["mac", "--yes"], { stdin: "ignore" });
      assert.deepEqual([mac.code, mac.stderr], [1, "Installing macOS machines is not yet supported\n"]);

      const inventory = await w.run(["laptop", "--yes", "--phases", "kexec"], { stdin: "ignore" });
      assert.equal(inventory.code, 0, inventory.stderr);
      assert.match(inventory.stderr, /^\[laptop\] ### Switching system into kexec ###$/m, "not an installer: kexec runs");
      assert.equal((await w.lastInstall()).install.target, "root@laptop.lan");
    });
  });

  test("without --yes: stdin closed fails at once (EOFError), 'n' or nothing aborts with 0, 'y' installs", async () => {
    await withWorld({}, async (w) => {
      const closed = await w.run(["fresh", "-j", w.jsonFile], { stdin: "ignore" });
      assert.equal(closed.code, 1);
      assert.ok(closed.ms < 5000, `took ${closed.ms} ms`);
      assert.equal(closed.stdout, `${WARNING}Install fresh to root@192.168.122.86? [y/N] `);
      assert.match(closed.stderr, /\nTraceback \(most recent call last\):\n/);
      assert.match(closed.stderr, /clan_cli\/machines\/install\.py", line 210, in install_command\n/);
      assert.match(closed.stderr, /\nEOFError: EOF when reading a line\n$/);
      assert.ok(!closed.stderr.includes("[fresh]"), "nothing was installed");
      assert.equal((await w.lastInstall()).install.yes, false);

      for (const answer of ["n\n", "\n"]) {
        const no = await w.run(["fresh", "-j", w.jsonFile], { stdin: answer });
        assert.equal(no.code, 0, no.stderr);
        assert.ok(!no.stderr.includes("[fresh]"), "nothing was installed");
      }
      const yes = await w.run(["fresh", "-j", w.jsonFile, "--phases", "reboot"], { stdin: "yes\ny\n" });
      assert.equal(yes.code, 0, yes.stderr);
      assert.ok(yes.stdout.includes("Invalid input 'yes'. Please enter 'y' for yes or 'n' for no.\n"), "only 'y' is a yes");
      assert.match(yes.stderr, /^\[fresh\] ### Rebooting ###$/m);
      assert.equal(typeof (await w.fixture()).machines.fresh!.installedAt, "number");
    });
  });

  test("a failing phase: its output, then clan's command error for that nixos-anywhere run, exit 1", async () => {
    await withWorld({ fail: true, failPhase: "disko" }, async (w) => {
      const r = await w.run(["fresh", "-j", w.jsonFile, "--yes"], { stdin: "ignore" });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^\[fresh\] Problem opening \/dev\/vda for reading! Error is 2\.$/m);
      assert.ok(!r.stderr.includes("Installing NixOS"), "the install phase never ran");
      assert.match(r.stderr, /\n=+ Command =+\nnixos-anywhere \\\n {4}--flake '[^\n]+#fresh' \\\n/);
      assert.match(r.stderr, / {4}--env-password --ssh-option \\\n {4}IdentitiesOnly=yes \\\n/);
      assert.match(r.stderr, / {4}root@192\.168\.122\.86 \\\n {4}--phases disko\n/);
      assert.match(r.stderr, /\nReturn Code: 2\n\n$/);
      assert.equal(r.stderr.split(PASSWORD).length - 1, 1, "only clan's 'reachable via' line has it: nixos-anywhere gets it in SSHPASS, not argv");
      assert.equal((await w.fixture()).machines.fresh!.installedAt, undefined);
    });
    await withWorld({ fail: true, failMessage: "error: fake-clan: out of disk space" }, async (w) => {
      const r = await w.run(["fresh", "--target-host", "root@10.0.0.9", "--yes"], { stdin: "ignore" });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^\[fresh\] error: fake-clan: out of disk space$/m);
      assert.match(r.stderr, /--phases install\n/);
      assert.match(r.stderr, /\nReturn Code: 1\n\n$/);
    });
  });

  test("unreachable installer addresses are skipped; none reachable is clan's error", async () => {
    await withWorld({ unreachable: ["192.168.122.86"] }, async (w) => {
      const r = await w.run(["fresh", "-j", w.jsonFile, "--yes", "--phases", "reboot"], { stdin: "ignore" });
      assert.equal(r.code, 0, r.stderr);
      assert.equal((await w.lastInstall()).install.target, "root@10.0.2.15");
    });
    await withWorld({ unreachable: [...INSTALLER.addrs, INSTALLER.tor] }, async (w) => {
      const r = await w.run(["fresh", "-j", w.jsonFile, "--yes"], { stdin: "ignore" });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /\nNo reachable remote found in QR code data: \n$/);
      assert.match(r.stderr, /^Tor is now running$/m, "clan starts tor for the onion address");
      assert.equal((await w.lastInstall()).install.target, null);
    });
    await withWorld({ unreachable: INSTALLER.addrs }, async (w) => {
      const r = await w.run(["fresh", "-j", w.jsonFile, "--yes", "--phases", "reboot"], { stdin: "ignore" });
      assert.equal(r.code, 0, r.stderr);
      const { install } = await w.lastInstall();
      assert.deepEqual([install.via, install.target], ["tor", `root@${INSTALLER.tor}`]);
      assert.match(r.stderr, /\nTerminating Tor process\.\.\.\nTor process terminated\n$/);
    });
  });

  test("qrCodeExitBug: -j ends the way clan really does (success exit 1, a failed phase exit 0)", async () => {
    const single = JSON.stringify({ pass: PASSWORD, addrs: ["192.168.122.86"] });
    await withWorld({ qrCodeExitBug: true }, async (w) => {
      const ok = await w.run(["fresh", "-j", single, "--yes"], { stdin: "ignore" });
      assert.equal(ok.code, 1);
      assert.match(ok.stderr, /\[fresh\] ### Rebooting ###\n[^]*\nNo reachable remote found in QR code data: \n$/);
    });
    await withWorld({ qrCodeExitBug: true, fail: true }, async (w) => {
      const failed = await w.run(["fresh", "-j", single, "--yes"], { stdin: "ignore" });
      assert.equal(failed.code, 0);
      assert.ok(!failed.stderr.includes("Return Code"), "the error is swallowed");
    });
  });

  test("-P: the installer's QR code image", async () => {
    const QRCode = (await import("qrcode")).default;
    await withWorld({}, async (w) => {
      const png = path.join(path.dirname(w.flake), "installer.png");
      await writeFile(png, await QRCode.toBuffer(JSON.stringify(INSTALLER), { type: "png" }));
      const r = await w.run(["fresh", "-P", png, "--yes", "--phases", "reboot"], { stdin: "ignore" });
      assert.equal(r.code, 0, r.stderr);
      const { install } = await w.lastInstall();
      assert.deepEqual([install.targetSource, install.png?.path, install.target, install.passwordSource], ["png", png, "root@192.168.122.86", "png"]);

      const missing = await w.run(["fresh", "-P", path.join(tmp, "nope.png"), "--yes"]);
      assert.deepEqual([missing.code, missing.stderr], [1, `QR code image file not found: ${path.join(tmp, "nope.png")}\n`]);
    });
  });

  test("bad installer JSON: Python's JSONDecodeError traceback; a bad address: clan's error", async () => {
    await withWorld({}, async (w) => {
      const r = await w.run(["fresh", "-j", '{"pass": x}', "--yes"]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /install\.py", line 176, in install_command\n {4}data = json\.loads\(args\.json\)\n/);
      assert.match(r.stderr, /\njson\.decoder\.JSONDecodeError: Expecting value: line 1 column 10 \(char 9\)\n$/);
      // a path that is not a file is parsed as JSON text, as clan does
      const typo = await w.run(["fresh", "-j", `${w.jsonFile}.typo`, "--yes"]);
      assert.match(typo.stderr, /JSONDecodeError: Expecting value: line 1 column 1 \(char 0\)\n$/);
      assert.equal((await w.lastInstall()).install.jsonSource, "inline");
      const addr = await w.run(["fresh", "-j", '{"addrs": [42]}', "--yes"]);
      assert.deepEqual([addr.code, addr.stderr], [1, "Invalid address format: 42\n"]);
    });
  });

  test("arguments: clan's flags, mutually exclusive targets and auth, unknown flags exit 2", async () => {
    await withWorld({}, async (w) => {
      const both = await w.run(["fresh", "-j", w.jsonFile, "--target-host", "root@h"]);
      assert.equal(both.code, 2);
      assert.match(both.stderr, /\[--password PASSWORD \|\n +-i IDENTITY_FILE\] \[-P PNG\]\n/);
      assert.match(both.stderr, /machines install: error: argument --target-host: not allowed with argument -j\/--json\n$/);
      const auth = await w.run(["fresh", "--password", "x", "-i", "key"]);
      assert.match(auth.stderr, /error: argument -i: not allowed with argument --password\n$/);
      const bogus = await w.run(["fresh", "--bogus"]);
      assert.deepEqual([bogus.code, bogus.stderr], [2, "usage: clan [-h] [SUBCOMMAND]\nclan: error: unrecognized arguments: --bogus\n"]);
      const choice = await w.run(["fresh", "--build-on", "cloud"]);
      assert.match(choice.stderr, /argument --build-on: invalid choice: 'cloud' \(choose from auto, local, remote\)\n$/);
      const phase = await w.run(["fresh", "-j", w.jsonFile, "--yes", "--phases", "kexec,format"], { stdin: "ignore" });
      assert.equal(phase.code, 1);
      assert.match(phase.stderr, /^\[fresh\] aborted: Unknown phase: format$/m);
      assert.match(phase.stderr, / {4}--phases kexec,format \\\n/);
      const help = await clan(["machines", "install", "--help"]);
      assert.equal(help.code, 0);
      assert.match(help.stdout, /\n {2}-j, --json JSON {7}specify the json file for ssh data/);
    });
  });

  test("knobs: delayMs and outputLines shape each run; hang and connect never end until killed", async () => {
    await withWorld({ delayMs: 300, outputLines: 2 }, async (w) => {
      const r = await w.run(["fresh", "-j", w.jsonFile, "--yes", "--phases", "disko,install"], { stdin: "ignore" });
      assert.equal(r.code, 0, r.stderr);
      assert.ok(r.ms >= 600, `two runs of 300 ms took ${r.ms} ms`);
      assert.equal(lines(r.stderr).filter((l) => /^\[fresh\] \+ fake disko step \d\/2$/.test(l)).length, 2);
      assert.equal(lines(r.stderr).filter((l) => /^\[fresh\] nixos-system-fresh-.*> fake build output \d\/2$/.test(l)).length, 2);
    });
    for (const knobs of [{ hang: true }, { fail: true, failPhase: "connect" as const }]) {
      await withWorld(knobs, async (w) => {
        const child = spawn(fakeClanPath, ["machines", "install", "fresh", "--target-host", "root@10.0.0.9", "--yes", "--flake", w.flake], {
          env: cleanEnv({ NO_COLOR: "1" }),
          stdio: ["ignore", "pipe", "pipe"],
          detached: true,
        });
        let stderr = "";
        child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
        child.stdout.resume();
        const exited = new Promise<void>((r) => child.on("close", () => r()));
        await new Promise((r) => setTimeout(r, 1000));
        assert.equal(child.exitCode, null, `${JSON.stringify(knobs)}: still running`);
        if (knobs.hang) assert.match(stderr, /^\[fresh\] ### Gathering machine facts ###$/m);
        else assert.match(stderr, /ERROR: ssh: connect to host 10\.0\.0\.9 port 22: Connection refused$/m);
        process.kill(-child.pid!, "SIGKILL");
        await exited;
      });
    }
  });
});
