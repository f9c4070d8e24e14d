// `clan vms run` and `clan vms inspect` (clan_cli/vms, releases up to 25.11; removed in 26.05).
// The fake plays 26.05 (no `vms`: argparse's "invalid choice", exit 2) unless
// $FAKE_CLAN_RELEASE is 25.11 or older.
//
// `clan vms run MACHINE [-p HOST:GUEST]... [--no-block] [-c CMD...]` builds the VM (knobs of
// "vms run": delayMs, outputLines, fail, hang) and then runs it in the foreground: the fake QEMU
// (fake-qemu.mjs, knobs of "vm") as a child in clan's process group, with the -p forwards in
// QEMU_NET_OPTS and its output on clan's stdout/stderr; clan ends when the VM ends. A VM that
// exits non-zero ends clan with a ClanError (exit 1).

import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { addSubcommands, addSubparser, COMMON_FLAGS } from "./argparse.mjs";
import { ClanError, log } from "./errors.mjs";
import { machineNames } from "./flake.mjs";
import { applies } from "./knobs.mjs";
import { hangForever, sleep } from "./proc.mjs";

const QEMU = fileURLToPath(new URL("./fake-qemu.mjs", import.meta.url));

/** Releases up to 25.11 have `clan vms`. */
/** FAKE_CLAN_RELEASE (default 26.05) is this release or later. */
export function releaseAtLeast(year, month) {
  const [y, m] = (process.env.FAKE_CLAN_RELEASE ?? "26.05").split(".").map(Number);
  return y > year || (y === year && m >= month);
}

export function vmsAvailable() {
  const release = process.env.FAKE_CLAN_RELEASE ?? "26.05";
  const [y, m] = release.split(".").map(Number);
  return y < 26 || (y === 26 && m < 5);
}

export function addVmsParser(root, top) {
  const vms = top("vms", "Manage virtual machines", []);
  addSubcommands(vms, { required: true, help: "the command to run" });
  const machine = { dest: "machine", nargs: 1, help: "machine to run" };
  addSubparser(vms, "run", {
    help: "run a VM from a machine",
    positionals: [machine],
    options: [
      { flags: ["-p", "--publish"], dest: "publish", nargs: 1, kind: "append", default: [], metavar: "PORTMAP", help: "Forward ports from host to guest" },
      { flags: ["--no-block"], dest: "no_block", nargs: 0, kind: "true", help: "Do no block on the vm" },
      { flags: ["-c", "--command"], dest: "command", nargs: "+", kind: "store", help: "Run a command in the VM" },
      ...COMMON_FLAGS,
    ],
  });
  addSubparser(vms, "inspect", { help: "inspect the vm configuration", positionals: [{ ...machine, help: "machine to inspect" }], options: [...COMMON_FLAGS] });
}

function checkMachine(ctx) {
  const name = ctx.ns.machine;
  const names = machineNames(ctx.flake().fixture ?? { machines: {} });
  if (!names.includes(name)) throw new ClanError(`Machine '${name}' not found. Available machines: ${names.join(", ")}`);
  return name;
}

function hostNameOf(ctx, name) {
  return ctx.flake().fixture.machines[name]?.hostName ?? name;
}

export async function vmsInspect(ctx) {
  const name = checkMachine(ctx);
  process.stdout.write(`${JSON.stringify({ machine_name: name, machine_icon: null, machine_description: null, cores: 1, memory_size: 1024, graphics: false, waypipe: false }, null, 4)}\n`);
}

export async function vmsRun(ctx) {
  const name = checkMachine(ctx);
  const k = ctx.knobs(name);
  const ports = [];
  for (const p of ctx.ns.publish) {
    const m = /^(\d+):(\d+)$/.exec(p);
    if (!m) throw new ClanError(`Invalid port mapping: ${p}. Expected HOST:GUEST`);
    ports.push(`hostfwd=tcp::${m[1]}-:${m[2]}`);
  }
  log(`Building VM for ${name}`, name);
  const lines = k.outputLines ?? 0;
  for (let i = 1; i <= lines; i++) {
    await sleep((k.delayMs ?? 0) / (lines + 1));
    log(`fake build output ${i}/${lines}`, name);
  }
  await sleep(lines ? (k.delayMs ?? 0) / (lines + 1) : (k.delayMs ?? 0));
  if (applies(k.hang, name)) await hangForever();
  if (applies(k.fail, name)) throw new ClanError(`nix build failed for the VM of '${name}' (exit code 1).`);
  log(`Starting VM ${name}`, name);
  const child = spawn(process.execPath, [QEMU, ctx.flake().root, name, hostNameOf(ctx, name)], {
    stdio: ["ignore", "inherit", "inherit"],
    env: { ...process.env, QEMU_NET_OPTS: ports.join(",") },
  });
  const code = await new Promise((resolve) => child.once("exit", (c, s) => resolve(c ?? (s ? 128 : 1))));
  if (code !== 0) throw new ClanError(`QEMU exited with status ${code}`);
  log(`VM ${name} stopped`, name);
}
