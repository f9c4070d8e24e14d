// The fake `clan` behaves like clan-core's CLI (clan-cli.md): arguments, outputs,
// exit statuses, error messages; and its test switches (delay, failure, hanging,
// prompts, bulk output, invocation log) do what they say.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import {
  type FakeClanFixture,
  NOT_EMULATED_EXIT,
  fakeClanPath,
  makeFlake,
  makeTempFlake,
  processesInGroup,
  readInvocations,
  removeFlake,
  writeFixture,
} from "../demo/fake-clan-fixture.ts";
import { cleanEnv, runClan, type ClanRun, type ClanRunOptions } from "./support/fake-clan-process.ts";

const clan = (args: string[], opts: ClanRunOptions = {}): Promise<ClanRun> => runClan(args, opts);

function lines(text: string): string[] {
  return text.split("\n").filter((l) => l !== "");
}

async function waitFor(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const FIXTURE: FakeClanFixture = {
  machines: {
    laptop: { description: "Dad’s laptop", tags: ["family"], machineClass: "nixos", deploy: { targetHost: "root@laptop.lan" }, hostName: "laptop" },
    nas: { tags: ["servers", "storage"], deploy: { targetHost: "root@nas.lan:2222" } },
    desktop: { tags: ["family", "servers"] },
  },
  backups: { nas: ["borg::nas::2026-11-20T01:00:00", "borg::nas::2026-11-19T01:00:00"] },
};

const USAGE_TOP = "usage: clan [-h] [SUBCOMMAND]\n";
const TOP_CHOICES = "{show,init,backups,b,templates,flash,ssh,secrets,vars,va,machines,m,select,se,network,net}";

let tmp: string;
let flake: string;

before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "fake-clan-test-"));
  flake = await makeFlake(path.join(tmp, "flake"), FIXTURE);
});

after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** A flake of its own for a test that needs other knobs; removed after the test. */
let flakes = 0;
async function withFlake(fixture: FakeClanFixture, fn: (dir: string) => Promise<void>): Promise<void> {
  flakes += 1;
  const dir = await makeFlake(path.join(tmp, `flake-${flakes}`), fixture);
  try {
    await fn(dir);
  } finally {
    await removeFlake(dir);
  }
}

describe("argument parsing (python argparse)", { concurrency: 4 }, () => {
  test("an unknown subcommand is a usage error, exit 2", async () => {
    const r = await clan(["deploy"]);
    assert.equal(r.code, 2);
    assert.equal(r.stdout, "");
    assert.equal(
      r.stderr,
      `${USAGE_TOP}clan: error: argument ${TOP_CHOICES}: invalid choice: 'deploy' (choose from show, init, backups, b, templates, flash, ssh, secrets, vars, va, machines, m, select, se, network, net)\n`,
    );
  });

  test("--flake belongs after the subcommand, as in clan", async () => {
    const r = await clan(["--flake", flake, "machines", "list"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, new RegExp(`invalid choice: '${flake}'`));
  });

  test("a missing positional argument names it, with the subcommand's usage", async () => {
    const r = await clan(["backups", "create"]);
    assert.equal(r.code, 2);
    assert.equal(
      r.stderr,
      "usage: clan [-h] [SUBCOMMAND] backups create [-h] [--provider PROVIDER]\n" +
        "                                             [--debug] [--option name value]\n" +
        "                                             [--flake PATH]\n" +
        "                                             machine\n" +
        "clan [-h] [SUBCOMMAND] backups create: error: the following arguments are required: machine\n",
    );
  });

  test("unknown options are reported by the top-level parser", async () => {
    const r = await clan(["machines", "list", "--bogus", "--flake", flake]);
    assert.equal(r.code, 2);
    assert.equal(r.stderr, `${USAGE_TOP}clan: error: unrecognized arguments: --bogus\n`);
  });

  test("choices are checked", async () => {
    const r = await clan(["machines", "update", "laptop", "--host-key-check", "yes", "--flake", flake]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /machines update: error: argument --host-key-check: invalid choice: 'yes' \(choose from strict, ask, accept-new, tofu, none\)\n$/);
  });

  test("--help prints usage and exits 0; clan has no --version", async () => {
    const help = await clan(["--help"]);
    assert.equal(help.code, 0);
    assert.ok(help.stdout.startsWith(`${USAGE_TOP}\nThe clan cli tool\n`));
    assert.match(help.stdout, /machines \(m\) +Manage machines and their configuration/);
    const version = await clan(["--version"]);
    assert.equal(version.code, 2);
    assert.equal(version.stderr, `${USAGE_TOP}clan: error: unrecognized arguments: --version\n`);
  });

  test("clan commands the fake does not emulate exit 99", async () => {
    const r = await clan(["vars", "fix", "laptop"]);
    assert.equal(r.code, NOT_EMULATED_EXIT);
    assert.match(r.stderr, /not emulated/);
  });
});

describe("finding the flake", { concurrency: 4 }, () => {
  test("a path that does not exist", async () => {
    const missing = path.join(tmp, "nope");
    const r = await clan(["machines", "list", "--flake", missing]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `${missing}: \nFlake '${missing}' does not exist or is not a valid flake.\n`);
  });

  test("a directory without flake.nix", async () => {
    const dir = await makeTempFlake(FIXTURE, { flakeNix: null });
    try {
      const r = await clan(["machines", "list", "--flake", dir]);
      assert.equal(r.code, 1);
      assert.equal(r.stderr, `${dir}: \nFlake is invalid. Could not find a flake.nix file in '${dir}'.\n`);
    } finally {
      await removeFlake(dir);
    }
    assert.ok(!existsSync(dir));
  });

  test("no --flake, no CLAN_DIR, no project around the current directory", async () => {
    const dir = await mkdtemp(path.join(tmp, "empty-"));
    const r = await clan(["machines", "list"], { cwd: dir });
    assert.equal(r.code, 1);
    assert.equal(
      r.stderr,
      "No clan flake found in the current directory or its parents - Use the --flake flag to specify a clan flake path or URL\n",
    );
  });

  test("CLAN_DIR and the current directory work like --flake", async () => {
    const viaEnv = await clan(["machines", "list"], { env: { CLAN_DIR: flake } });
    assert.equal(viaEnv.stdout, "desktop\nlaptop\nnas\n");
    const viaCwd = await clan(["machines", "list"], { cwd: flake });
    assert.equal(viaCwd.stdout, "desktop\nlaptop\nnas\n");
  });

  test("a broken flake fails every evaluating command with nix's error", async () => {
    await withFlake({ ...FIXTURE, broken: "error: syntax error, unexpected '}'\n       at /nix/store/abc-source/flake.nix:12:1:" }, async (dir) => {
      const reason = "  Reason: syntax error, unexpected '}'\n       at /nix/store/abc-source/flake.nix:12:1:. Use flag '--debug' to see full nix trace.\n";
      const inventory = "clanInternals.inventoryClass.inventorySerialization.{instances,machines,meta}";
      const list = await clan(["machines", "list", "--flake", dir]);
      assert.equal(list.code, 1);
      assert.equal(list.stdout, "");
      assert.equal(list.stderr, `Error on: $ clan select '${inventory}'\n${reason}`);
      const update = await clan(["machines", "update", "laptop", "--flake", dir]);
      assert.equal(update.code, 1);
      assert.equal(update.stderr, `Error on: $ clan select '${inventory}'\n${reason}`);
      const sel = await clan(["select", "clanInternals.inventoryClass.inventorySerialization.machines", "--flake", dir]);
      assert.equal(sel.code, 1);
      assert.match(sel.stderr, /syntax error, unexpected/);
    });
  });
});

describe("clan machines list", () => {
  test("prints the machine names sorted, one per line, nothing else", async () => {
    const r = await clan(["machines", "list", "--flake", flake]);
    assert.deepEqual([r.code, r.stdout, r.stderr], [0, "desktop\nlaptop\nnas\n", ""]);
  });

  test("several tags must all match", async () => {
    assert.equal((await clan(["machines", "list", "--tags", "family", "--flake", flake])).stdout, "desktop\nlaptop\n");
    assert.equal((await clan(["machines", "list", "--tags", "family", "servers", "--flake", flake])).stdout, "desktop\n");
    const none = await clan(["m", "list", "--tags", "family", "storage", "--flake", flake]);
    assert.deepEqual([none.code, none.stdout], [0, ""]);
  });

  test("delayMs and fail", async () => {
    await withFlake({ ...FIXTURE, behaviour: { "machines list": { delayMs: 300 } } }, async (dir) => {
      const r = await clan(["machines", "list", "--flake", dir]);
      assert.equal(r.code, 0);
      assert.ok(r.ms >= 300, `took ${r.ms} ms`);
    });
    await withFlake({ ...FIXTURE, behaviour: { "machines list": { fail: true, failMessage: "error: infinite recursion encountered" } } }, async (dir) => {
      const r = await clan(["machines", "list", "--flake", dir]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /Reason: infinite recursion encountered\. Use flag '--debug'/);
    });
  });
});

describe("clan select", () => {
  test("the inventory's machines as JSON with indent 4, keys sorted as nix does", async () => {
    await withFlake({ machines: { laptop: FIXTURE.machines.laptop! } }, async (dir) => {
      const r = await clan(["select", "clanInternals.inventoryClass.inventorySerialization.machines", "--flake", dir]);
      assert.equal(r.code, 0);
      assert.equal(
        r.stdout,
        `{
    "laptop": {
        "deploy": {
            "buildHost": null,
            "forwardAgent": null,
            "targetHost": "root@laptop.lan"
        },
        "description": "Dad\\u2019s laptop",
        "icon": null,
        "installedAt": null,
        "machineClass": "nixos",
        "name": "laptop",
        "tags": [
            "family"
        ]
    }
}
`,
      );
      assert.deepEqual(Object.keys(JSON.parse(r.stdout).laptop), ["deploy", "description", "icon", "installedAt", "machineClass", "name", "tags"]);
    });
  });

  test("machine config values, sets and wildcards", async () => {
    await withFlake(
      { machines: { a: { networking: { targetHost: "root@10.0.0.1" } }, b: {} } },
      async (dir) => {
        const one = await clan(["select", 'clanInternals.machines.x86_64-linux."a".config.clan.core.networking.targetHost', "--flake", dir]);
        assert.equal(one.stdout, '"root@10.0.0.1"\n');
        const all = await clan(["se", "clanInternals.machines.x86_64-linux.*.config.clan.core.networking.{targetHost,?nope}", "--flake", dir]);
        assert.deepEqual(JSON.parse(all.stdout), { a: { targetHost: "root@10.0.0.1" }, b: { targetHost: null } });
      },
    );
  });

  test("an attribute that does not exist fails like clan's select", async () => {
    const r = await clan(["select", "clanInternals.inventoryClass.nope", "--flake", flake]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, "");
    assert.equal(
      r.stderr,
      "Error on: $ clan select 'clanInternals.inventoryClass.nope'\n  Reason: attribute 'nope' missing. Use flag '--debug' to see full nix trace.\n",
    );
  });

  test("without any flake, clan select crashes with a Python traceback", async () => {
    const dir = await mkdtemp(path.join(tmp, "empty-"));
    const r = await clan(["select", "x"], { cwd: dir });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^Traceback \(most recent call last\):\n/);
    assert.match(r.stderr, /AttributeError: 'NoneType' object has no attribute 'select'\n$/);
  });
});

describe("clan machines update", { concurrency: 4 }, () => {
  const quiet: FakeClanFixture = { ...FIXTURE, behaviour: { "machines update": { generateVars: ["laptop"] } } };

  test("goes through vars, upload, build, boot then switch, all on stderr prefixed [machine]", async () => {
    await withFlake(quiet, async (dir) => {
      const r = await clan(["machines", "update", "laptop", "--host-key-check", "accept-new", "--flake", dir]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "");
      const out = lines(r.stderr);
      for (const l of out) assert.match(l, /^(\[laptop\] |  old: |  new: )/, l);
      const at = (re: RegExp): number => {
        const i = out.findIndex((l) => re.test(l));
        assert.ok(i >= 0, `no line matches ${re}`);
        return i;
      };
      const order = [
        at(/^\[laptop\] Updated secret var openssh\/ssh\.id_ed25519 for machines: laptop$/),
        at(/^\[laptop\] copying path '\/nix\/store\/[0-9a-z]{32}-source' to 'ssh-ng:\/\/root@laptop\.lan'\.\.\.$/),
        at(/^\[laptop\] \$ nix .* build .*#nixosConfigurations\."laptop"\.config\.system\.build\.toplevel /),
        at(/^\[laptop\] building '/),
        at(/^\[laptop\] \/nix\/store\/[0-9a-z]{32}-nixos-system-laptop-/),
        at(/^\[laptop\] \$ nix-env -p \/nix\/var\/nix\/profiles\/system --set /),
        at(/^\[laptop\] \$ systemd-run .*\/bin\/switch-to-configuration boot$/),
        at(/^\[laptop\] \$ systemd-run .*\/bin\/switch-to-configuration switch$/),
        at(/^\[laptop\] activating the configuration\.\.\.$/),
      ];
      assert.deepEqual(order, [...order].sort((a, b) => a - b));
    });
  });

  test("a failing machine: its error, then 'N hosts failed', exit 1; the others still deploy", async () => {
    await withFlake({ ...FIXTURE, behaviour: { "machines update": { fail: ["nas"], generateVars: false } } }, async (dir) => {
      const r = await clan(["machines", "update", "laptop", "nas", "--flake", dir]);
      assert.equal(r.code, 1);
      const out = lines(r.stderr);
      assert.ok(out.some((l) => /^\[nas\] error: builder for '\/nix\/store\/[0-9a-z]{32}-nixos-system-nas-.*\.drv' failed with exit code 1$/.test(l)));
      assert.ok(out.includes("[laptop] activating the configuration..."));
      assert.deepEqual(out.slice(-2), ["[nas] failed with error: nix build failed for 'nas' (exit code 1).", "1 hosts failed with an error. Check the logs above"]);
    });
  });

  test("with inlineStandIns the stand-ins run inside the fake: the same output, success and failure alike", async () => {
    const args = (dir: string) => ["machines", "update", "laptop", "nas", "--flake", dir];
    const knobs = { fail: ["nas"], generateVars: false, delayMs: 300 };
    const runs: ClanRun[] = [];
    for (const inlineStandIns of [false, true]) {
      await withFlake({ ...FIXTURE, behaviour: { "machines update": { ...knobs, inlineStandIns } } }, async (dir) => {
        const started = performance.now();
        runs.push(await clan(args(dir)));
        assert.ok(performance.now() - started >= 300, "the build's delay is kept");
      });
    }
    const [children, inline] = runs as [ClanRun, ClanRun];
    assert.equal(inline.code, 1);
    assert.equal(inline.code, children.code);
    // Per machine, in order (the two machines' lines interleave by timing); the flake's source path and
    // systemd-run's unit names differ from run to run.
    const of = (r: ClanRun, m: string): string[] =>
      lines(r.stderr)
        .filter((l) => l.startsWith(`[${m}] `))
        .map((l) => l.replace(/\/nix\/store\/[0-9a-z]{32}-source/g, "<source>").replace(/--unit=(clan-\w+-\w+)-[0-9a-f]{8}/g, "--unit=$1"));
    for (const m of ["laptop", "nas"]) assert.deepEqual(of(inline, m), of(children, m));
    assert.ok(of(inline, "laptop").includes("[laptop] activating the configuration..."));
    assert.equal(lines(inline.stderr).at(-1), "1 hosts failed with an error. Check the logs above");
  });

  test("activation failure is retried once, as clan does", async () => {
    await withFlake({ ...FIXTURE, behaviour: { "machines update": { fail: true, failPhase: "activate", generateVars: false } } }, async (dir) => {
      const r = await clan(["machines", "update", "nas", "--flake", dir]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /\n\[nas\] activation returned 4 — retrying\n/);
      assert.match(r.stderr, /\[nas\] failed with error: switch-to-configuration failed on 'nas' \(exit code 4\)\. See above for details\.\n1 hosts failed/);
    });
  });

  test("an unknown machine, suggestions as clan makes them", async () => {
    const r = await clan(["machines", "update", "labtop", "--flake", flake]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, "Machine 'labtop' not found. Did you mean: laptop, desktop, nas?\n");
  });

  test("--target-host is for one machine only", async () => {
    const r = await clan(["machines", "update", "laptop", "nas", "--target-host", "root@10.0.0.9", "--flake", flake]);
    assert.deepEqual([r.code, r.stderr], [1, "Target Host can only be set for one machines\n"]);
  });

  test("without names: every machine not requiring an explicit update, reachable or not (as clan's code does)", async () => {
    const fixture: FakeClanFixture = {
      machines: { ...FIXTURE.machines, nas: { ...FIXTURE.machines.nas, requireExplicitUpdate: true } },
      behaviour: { "machines update": { generateVars: false } },
    };
    await withFlake(fixture, async (dir) => {
      const r = await clan(["machines", "update", "--flake", dir]);
      assert.equal(r.code, 1);
      const prefixes = new Set(lines(r.stderr).map((l) => l.split(" ")[0]));
      assert.deepEqual([...prefixes].sort(), ["1", "[desktop]", "[laptop]"]);
      assert.match(r.stderr, /\[desktop\] failed with error: Could not find any way to connect to machine 'desktop'\. No targetHost configured and machine not reachable via any network\.\n/);
      assert.match(r.stderr, /\n1 hosts failed with an error\. Check the logs above\n$/);
    });
  });

  test("--host-key-check ask with an unknown host key and no terminal fails at once", async () => {
    const fixture: FakeClanFixture = {
      machines: { laptop: { ...FIXTURE.machines.laptop, hostKeyKnown: false } },
      behaviour: { "machines update": { generateVars: false } },
    };
    await withFlake(fixture, async (dir) => {
      const r = await clan(["machines", "update", "laptop", "--flake", dir], { stdin: "ignore" });
      assert.equal(r.code, 1);
      assert.ok(r.ms < 5000, `took ${r.ms} ms`);
      const out = lines(r.stderr);
      assert.equal(out[0], "[laptop] Host key verification failed.");
      assert.equal(out[1], "[laptop] failed with error: ");
      assert.equal(out.at(-1), "1 hosts failed with an error. Check the logs above");

      const strict = await clan(["machines", "update", "laptop", "--host-key-check", "strict", "--flake", dir]);
      assert.equal(strict.code, 1);
      assert.match(strict.stderr, /^\[laptop\] No ED25519 host key is known for laptop\.lan and you have requested strict checking\.\n\[laptop\] Host key verification failed\.\n/);

      const accept = await clan(["machines", "update", "laptop", "--host-key-check", "accept-new", "--flake", dir]);
      assert.equal(accept.code, 0);
      assert.match(accept.stderr, /^\[laptop\] Warning: Permanently added 'laptop\.lan' \(ED25519\) to the list of known hosts\.\n/);
      const askAgain = await clan(["machines", "update", "laptop", "--flake", dir]);
      assert.equal(askAgain.code, 0, "the key accepted before is known now");
    });
  });

  test("a vars prompt (hangOnStdin) fails fast with stdin closed, waits on an open pipe, takes an answer", async () => {
    const fixture: FakeClanFixture = { ...FIXTURE, behaviour: { "machines update": { hangOnStdin: ["laptop"], generateVars: false } } };
    await withFlake(fixture, async (dir) => {
      const closed = await clan(["machines", "update", "laptop", "--flake", dir], { stdin: "ignore" });
      assert.equal(closed.code, 1);
      assert.ok(closed.ms < 5000, `took ${closed.ms} ms`);
      assert.equal(closed.stdout, "Enter the value for root-password/password: (hidden): ");
      assert.match(closed.stderr, /^Prompting value for root-password\/password for machines: laptop\nTraceback/);
      assert.match(closed.stderr, /termios\.error: \(25, 'Inappropriate ioctl for device'\)\n$/);

      const eof = await clan(["machines", "update", "nas", "--flake", dir], { stdin: "" });
      assert.equal(eof.code, 1, "every machine's generators run, so nas's update prompts for laptop too");

      const child = spawn(fakeClanPath, ["machines", "update", "laptop", "--flake", dir], { env: cleanEnv(), stdio: ["pipe", "pipe", "pipe"] });
      let stderr = "";
      child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
      child.stdout.resume();
      const exited = new Promise<number | null>((r) => child.on("close", (code) => r(code)));
      await waitFor(() => stderr.includes("Prompting value"), 5000, "the prompt");
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(child.exitCode, null, "still waiting for an answer");
      child.stdin.end("hunter2\n");
      assert.equal(await exited, 0);
      assert.match(stderr, /Input received and confirmed\. Processing\.\.\.\n/);
    });
  });

  test("hang: the nix build child hangs until the process group is killed", async () => {
    await withFlake({ ...FIXTURE, behaviour: { "machines update": { hang: ["nas"], generateVars: false } } }, async (dir) => {
      const log = path.join(dir, "invocations.jsonl");
      const child = spawn(fakeClanPath, ["machines", "update", "nas", "--flake", dir], {
        env: cleanEnv({ FAKE_CLAN_LOG: log }),
        stdio: ["ignore", "ignore", "pipe"],
        detached: true,
      });
      let stderr = "";
      child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
      const exited = new Promise<NodeJS.Signals | null>((r) => child.on("close", (_code, signal) => r(signal)));
      await waitFor(() => stderr.includes("[nas] building '"), 5000, "the build");
      const [inv] = await readInvocations(log);
      assert.ok(inv && inv.pid === child.pid && inv.pgid === child.pid);
      const members = processesInGroup(inv.pgid!);
      assert.ok(members.length >= 2, `the fake and its nix build: ${members.join(",")}`);
      assert.ok(members.includes(child.pid!));
      process.kill(-inv.pgid!, "SIGTERM");
      assert.equal(await exited, "SIGTERM");
      await waitFor(() => processesInGroup(inv.pgid!).length === 0, 3000, "the group to be gone");
    });
  });

  test("killing only clan's pid leaves its nix child running, as with the real clan", async () => {
    const fixture: FakeClanFixture = { ...FIXTURE, behaviour: { "machines update": { hang: true, orphanGraceMs: 400, generateVars: false } } };
    await withFlake(fixture, async (dir) => {
      const child = spawn(fakeClanPath, ["machines", "update", "laptop", "--flake", dir], { env: cleanEnv(), stdio: ["ignore", "ignore", "pipe"], detached: true });
      let stderr = "";
      child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
      const exited = new Promise((r) => child.on("close", r));
      await waitFor(() => stderr.includes("[laptop] building '"), 5000, "the build");
      child.kill("SIGTERM");
      await exited;
      assert.ok(processesInGroup(child.pid!).length >= 1, "the orphaned nix build is still there");
      await waitFor(() => processesInGroup(child.pid!).length === 0, 3000, "the orphan to give up");
    });
  });

  test("delayMs and outputLines shape the build", async () => {
    await withFlake({ ...FIXTURE, behaviour: { "machines update": { delayMs: 400, outputLines: 5, generateVars: false } } }, async (dir) => {
      const r = await clan(["machines", "update", "laptop", "--flake", dir]);
      assert.equal(r.code, 0);
      assert.ok(r.ms >= 400, `took ${r.ms} ms`);
      assert.equal(lines(r.stderr).filter((l) => /^\[laptop\] system-path> fake build output \d\/5$/.test(l)).length, 5);
    });
  });

  test("bytes: exactly that much more output, streamed", async () => {
    const base: FakeClanFixture = { ...FIXTURE, behaviour: { "machines update": { generateVars: false } } };
    const big: FakeClanFixture = { ...FIXTURE, behaviour: { "machines update": { generateVars: false, bytes: 3_000_001 } } };
    await withFlake(base, async (dir) => {
      const plain = await clan(["machines", "update", "laptop", "--flake", dir]);
      await writeFixture(dir, big);
      const loud = await clan(["machines", "update", "laptop", "--flake", dir]);
      assert.equal(loud.code, 0);
      assert.equal(Buffer.byteLength(loud.stderr) - Buffer.byteLength(plain.stderr), 3_000_001);
      assert.ok(loud.stderr.endsWith("\n"));
    });
  });
});

describe("clan backups", { concurrency: 4 }, () => {
  test("create", async () => {
    // Its own flake: a backup made adds an archive, which the other tests here do not expect.
    await withFlake(FIXTURE, async (dir) => {
      const r = await clan(["backups", "create", "nas", "--flake", dir]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "successfully started backup\n");
      assert.match(r.stderr, /^\[nas\] creating backup for nas\n\[nas\] \$ \/nix\/store\/[0-9a-z]{32}-borgbackup-create\n$/);
      const none = await clan(["backups", "create", "laptop", "--flake", dir]);
      assert.deepEqual([none.code, none.stderr], [1, "[laptop] creating backup for laptop\nNo providers specified\n"]);
      const other = await clan(["backups", "create", "nas", "--provider", "restic", "--flake", dir]);
      assert.deepEqual([other.code, other.stderr], [1, "[nas] creating backup for nas\nprovider restic not found\n"]);
    });
  });

  test("create makes an archive that list shows and restore accepts; a failed create makes none", async () => {
    await withFlake(FIXTURE, async (dir) => {
      const before = Date.now();
      assert.equal((await clan(["backups", "create", "nas", "--flake", dir])).code, 0);
      assert.equal((await clan(["backups", "create", "nas", "--flake", dir])).code, 0);
      const listed = lines((await clan(["backups", "list", "nas", "--flake", dir])).stdout);
      assert.equal(listed.length, 4);
      const made = listed.slice(2);
      for (const name of made) {
        const stamp = /^borg::nas::(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(-2)?$/.exec(name);
        assert.ok(stamp, name);
        assert.ok(Math.abs(Date.parse(`${stamp[1]}Z`) - before) < 5000, name);
      }
      assert.notEqual(made[0], made[1], "two backups in the same second get different names");
      const restored = await clan(["backups", "restore", "nas", "borgbackup", made[1] as string, "--flake", dir]);
      assert.equal(restored.code, 0, restored.stderr);
      await writeFixture(dir, { ...FIXTURE, behaviour: { "backups create": { fail: ["nas"] } } });
      assert.equal((await clan(["backups", "create", "nas", "--flake", dir])).code, 1);
      assert.equal(lines((await clan(["backups", "list", "nas", "--flake", dir])).stdout).length, 4);
    });
    // A provider without archives yet: the first is named after the provider and the machine.
    await withFlake({ machines: { box: { deploy: { targetHost: "root@box" } } }, backups: { box: { localbackup: [] } } }, async (dir) => {
      assert.equal((await clan(["backups", "create", "box", "--flake", dir])).code, 0);
      assert.match((await clan(["backups", "list", "box", "--flake", dir])).stdout, /^localbackup::box::\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\n$/);
    });
  });

  test("list prints archive names sorted", async () => {
    const r = await clan(["backups", "list", "nas", "--flake", flake]);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, "borg::nas::2026-11-19T01:00:00\nborg::nas::2026-11-20T01:00:00\n");
    const unknown = await clan(["b", "list", "zzz", "--flake", flake]);
    assert.equal(unknown.code, 1);
    assert.equal(
      unknown.stderr,
      "Error on: $ clan select 'clanInternals.machines.x86_64-linux.\"zzz\".config.clan.core.backups'\n  Reason: attribute 'zzz' missing. Use flag '--debug' to see full nix trace.\n",
    );
  });

  test("restore", async () => {
    const ok = await clan(["backups", "restore", "nas", "borgbackup", "borg::nas::2026-11-20T01:00:00", "--flake", flake]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stderr, /^\[nas\] \$ export NAME=borg::nas::2026-11-20T01:00:00 FOLDERS=\/var\/lib\/data; \/nix\/store\/[0-9a-z]{32}-borgbackup-restore\n$/);
    const missing = await clan(["backups", "restore", "nas", "borgbackup", "borg::nas::nope", "--flake", flake]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /\nRestore failed for the following services:\ndata: \n/);
    const service = await clan(["backups", "restore", "nas", "borgbackup", "x", "--service", "mail", "--flake", flake]);
    assert.match(service.stderr, /^Restore failed for the following services:\nmail: Service mail not found in configuration\. Available services are: data\n$/);
  });

  test("fail and hang knobs reach the remote script", async () => {
    await withFlake({ ...FIXTURE, behaviour: { "backups create": { fail: ["nas"] } } }, async (dir) => {
      const r = await clan(["backups", "create", "nas", "--flake", dir]);
      assert.equal(r.code, 1);
      assert.equal(r.stdout, "");
      assert.match(r.stderr, /\[nas\] Job for borgbackup-job-nas\.service failed/);
      assert.match(r.stderr, /Return Code: 1\n\n$/);
    });
    await withFlake({ ...FIXTURE, behaviour: { "backups create": { hang: true } } }, async (dir) => {
      const child = spawn(fakeClanPath, ["backups", "create", "nas", "--flake", dir], { env: cleanEnv(), stdio: ["ignore", "pipe", "pipe"], detached: true });
      let stderr = "";
      child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
      child.stdout.resume();
      const exited = new Promise((r) => child.on("close", r));
      await waitFor(() => stderr.includes("-borgbackup-create\n"), 5000, "the backup script");
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(child.exitCode, null, "hanging");
      process.kill(-child.pid!, "SIGKILL");
      await exited;
      await waitFor(() => processesInGroup(child.pid!).length === 0, 3000, "the group to be gone");
    });
  });
});

describe("invocation log", () => {
  test("one JSON line per run with argv, cwd, pid, pgid and env", async () => {
    const log = path.join(tmp, "log.jsonl");
    assert.deepEqual(await readInvocations(log), [], "nothing ran yet");
    await clan(["machines", "list", "--flake", flake], { env: { FAKE_CLAN_LOG: log, NO_COLOR: "1", CLAN_DIR: flake }, cwd: tmp });
    await clan(["nonsense"], { env: { FAKE_CLAN_LOG: log } });
    const runs = await readInvocations(log);
    assert.equal(runs.length, 2);
    const [first, second] = runs;
    assert.deepEqual(first!.argv, ["machines", "list", "--flake", flake]);
    assert.equal(first!.cwd, tmp);
    assert.deepEqual(first!.env, { NO_COLOR: "1", CLAN_DIR: flake });
    assert.equal(typeof first!.pid, "number");
    assert.ok(Number.isInteger(first!.pgid));
    assert.deepEqual(second!.argv, ["nonsense"]);
    assert.deepEqual(second!.env, {});
    assert.ok(!Number.isNaN(Date.parse(first!.time)));
    const raw = await readFile(log, "utf8");
    assert.equal(raw.split("\n").length, 3);
  });
});

describe("runtimes", () => {
  test("runs on this test's Node (24) as well as through its #! line", async () => {
    const r = await clan(["machines", "list", "--flake", flake], { node: process.execPath });
    assert.deepEqual([r.code, r.stdout], [0, "desktop\nlaptop\nnas\n"]);
  });
});
