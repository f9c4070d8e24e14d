// The fake `nix build` (see the `nix` executable next to this file).

import { appendFileSync, chmodSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { isatty } from "node:tty";
import { FIXTURE_FILE, loadFixture, storePath, toplevelPath } from "./flake.mjs";
import { applies, knobsFor } from "./knobs.mjs";

const ATTR = /^nixosConfigurations\.("?)([^".]+)\1\.config\.system\.build\.(toplevel|vm)$/;
const QEMU = fileURLToPath(new URL("./fake-qemu.mjs", import.meta.url));

/**
 * A machine's VM: a real directory standing in for its store path (under <flake>/.fake-nix-store,
 * since /nix/store is not ours), whose bin/run-<hostName>-vm starts the fake QEMU (fake-qemu.mjs).
 */
function buildVm(dir, fixture, machine) {
  const hostName = fixture.machines[machine].hostName ?? machine;
  const out = storePath(`nixos-vm-${hostName}`, `${machine}\0${fixture.revision ?? 0}`).replace("/nix/store", path.join(dir, ".fake-nix-store"));
  const bin = path.join(out, "bin");
  mkdirSync(bin, { recursive: true });
  const q = (s) => `'${s.replaceAll("'", "'\\''")}'`;
  const runner = path.join(bin, `run-${hostName}-vm`);
  writeFileSync(runner, `#!/bin/sh\nexec ${q(process.execPath)} ${q(QEMU)} ${q(dir)} ${q(machine)} ${q(hostName)} "$@"\n`);
  chmodSync(runner, 0o555);
  return out;
}

function record(argv) {
  const file = process.env.FAKE_CLAN_LOG;
  if (!file) return;
  const stat = readFileSync("/proc/self/stat", "utf8");
  const pgid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]);
  const env = process.env.NO_COLOR !== undefined ? { NO_COLOR: process.env.NO_COLOR } : {};
  const entry = { program: "nix", argv, cwd: process.cwd(), pid: process.pid, ppid: process.ppid, pgid, env, stdinIsTTY: isatty(0), time: new Date().toISOString() };
  mkdirSync(path.dirname(file), { recursive: true });
  appendFileSync(file, `${JSON.stringify(entry)}\n`);
}

const fail = (text) => {
  process.stderr.write(`error: ${text}\n`);
  return 1;
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function main(argv) {
  record(argv);
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--extra-experimental-features") i++;
    else if (a === "--option") i += 2;
    else rest.push(a);
  }
  if (rest[0] !== "build") return fail(`fake nix: only 'nix build' is emulated, not ${JSON.stringify(rest)}`);
  const refs = [];
  const flags = new Set();
  let outLink = "result";
  const args = rest.slice(1);
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--no-link" || a === "--print-out-paths" || a === "-L" || a === "--print-build-logs") flags.add(a);
    else if (a === "--out-link" || a === "-o") {
      if (args[i + 1] === undefined) return fail(`flag '${a}' requires 1 argument`);
      outLink = args[++i];
    } else if (a.startsWith("-")) return fail(`unrecognised flag '${a}'\nTry 'nix --help' for more information.`);
    else refs.push(a);
  }
  if (refs.length !== 1) return fail("fake nix: expected exactly one installable");
  const hash = refs[0].indexOf("#");
  const flakeRef = hash === -1 ? refs[0] : refs[0].slice(0, hash);
  const attr = hash === -1 ? "" : refs[0].slice(hash + 1);
  const dir = path.resolve(flakeRef.replace(/^(path:|git\+file:\/\/)/, ""));
  if (!existsSync(path.join(dir, "flake.nix"))) return fail(`path '${dir}/flake.nix' does not exist`);
  const fixture = loadFixture(dir);
  if (!fixture) return fail(`fake nix: no ${FIXTURE_FILE} in ${dir}`);
  const m = ATTR.exec(attr);
  const machine = m?.[2];
  if (!machine || !fixture.machines[machine]) {
    return fail(
      `flake 'path:${dir}' does not provide attribute 'packages.x86_64-linux.${attr}', 'legacyPackages.x86_64-linux.${attr}' or '${attr}'`,
    );
  }
  const k = knobsFor(fixture, "nix build", machine);
  const vm = m[3] === "vm";
  const toplevel = vm ? storePath(`nixos-vm-${fixture.machines[machine].hostName ?? machine}`, String(fixture.revision ?? 0)) : toplevelPath(fixture, machine);
  const drv = storePath(`${path.basename(toplevel).slice(33)}.drv`, toplevel);
  process.stderr.write(`building '${drv}'...\n`);
  const count = k.outputLines ?? 0;
  const delay = k.delayMs ?? 0;
  for (let i = 1; i <= count; i++) {
    await sleep(delay / (count + 1));
    process.stderr.write(`${machine}> fake build output ${i}/${count}\n`);
  }
  await sleep(count ? delay / (count + 1) : delay);
  if (applies(k.hang, machine)) {
    setInterval(() => {}, 1 << 30);
    return new Promise(() => {});
  }
  if (applies(k.fail, machine)) {
    process.stderr.write(`${machine}> fake nix: injected build failure\n`);
    return fail(`builder for '${drv}' failed with exit code 1`);
  }
  const out = vm ? buildVm(dir, fixture, machine) : toplevel;
  // Like nix: a symlink to the result (a GC root), unless --no-link; only for outputs the fake really makes.
  if (vm && !flags.has("--no-link")) {
    rmSync(outLink, { force: true });
    symlinkSync(out, outLink);
  }
  if (flags.has("--print-out-paths")) process.stdout.write(`${out}\n`);
  return 0;
}
