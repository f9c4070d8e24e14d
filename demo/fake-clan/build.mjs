// clan machines build (clan_cli/machines/build.py, clan_lib/machines/build.py) and
// clan machines generations (clan_cli/machines/generations.py, clan_lib/machines/generations.py).

import { ClanCmdError, ClanError, log, nixCommand, out } from "./errors.mjs";
import { nixosVersion, select, toplevelPath } from "./flake.mjs";
import { INVENTORY_SELECTOR } from "./commands.mjs";
import { applies, bytesStream, orphanGrace } from "./knobs.mjs";
import { bestRemote } from "./network.mjs";
import { emitBytes, runChild } from "./proc.mjs";
import { remoteRun } from "./remote.mjs";
import { generatedVars, machinesForUpdate, validateMachineNames } from "./update.mjs";

/** get_machines_for_build(): without names every machine (with the tags); requireExplicitUpdate does not matter. */
function machinesForBuild(ctx, inventory) {
  const { ns } = ctx;
  const all = inventory.machines ?? {};
  const names = Object.keys(all);
  const withTags = names.filter((n) => ns.tags.every((t) => (all[n].tags ?? []).includes(t)));
  if (ns.tags.length > 0 && withTags.length === 0) throw new ClanError(`No machines found with tags: ${ns.tags.join(" AND ")}`);
  if (ns.machines.length === 0) return withTags;
  validateMachineNames(ns.machines, names);
  const chosen = ns.tags.length > 0 ? ns.machines.filter((n) => withTags.includes(n)) : ns.machines;
  if (chosen.length === 0 && ns.tags.length > 0) throw new ClanError(`No specified machines found with tags: ${ns.tags.join(" AND ")}`);
  return chosen;
}

export async function machinesBuild(ctx) {
  const { ns } = ctx;
  const flake = ctx.flake();
  const inventory = select(flake, INVENTORY_SELECTOR);
  const machines = machinesForBuild(ctx, inventory);
  if (machines.length === 0) {
    out("No machines to build.\n");
    return;
  }
  out(`Building ${machines.length} machine(s)...\n`);
  if (ns.format !== "toplevel") out(`Format: ${ns.format}\n`);
  for (const n of machines) if (applies(ctx.knobs(n).generateVars ?? true, n)) generatedVars(n);
  const build = async (name) => {
    const k = ctx.knobs(name);
    const failing = applies(k.fail, name);
    const toplevel = toplevelPath(flake.fixture, name);
    const flags = [`${flake.identifier}#nixosConfigurations."${name}".config.system.build.toplevel`, ...ns.option];
    if (ns.dry_run) flags.push("--dry-run");
    if (ns.no_link) flags.push("--no-link");
    else flags.push("--out-link", `result-${name}-${ns.format}`);
    const cmd = nixCommand(["build", "--print-out-paths", "--print-build-logs", ...flags]);
    const system = `nixos-system-${flake.fixture.machines[name]?.hostName ?? name}-${nixosVersion(flake.fixture)}`;
    const spec = {
      title: "nix build",
      before: [["stderr", `building '${system}.drv'...`]],
      progress: k.outputLines ? { count: k.outputLines, template: "system-path> fake build output {i}/{n}", stream: "stderr" } : undefined,
      after: failing
        ? [["stderr", `error: builder for '${system}.drv' failed with exit code 1`]]
        : ns.dry_run
          ? []
          : [["stdout", toplevel]],
      delayMs: k.delayMs ?? 0,
      hang: applies(k.hang, name),
      exitCode: failing ? 1 : 0,
      orphanGraceMs: orphanGrace(k),
    };
    const [r] = await Promise.all([runChild(spec, { prefix: name, logStreams: ["stderr"] }), emitBytes(k.bytes, { prefix: name, stream: bytesStream(k) })]);
    if (r.returnCode !== 0) throw new ClanCmdError({ command: cmd, stdout: r.stdout, stderr: r.stderr, returnCode: r.returnCode });
    return r.stdout.trim();
  };
  const results = await Promise.all(machines.map((n) => build(n).then((p) => ({ p }), (e) => ({ e }))));
  for (const r of results) if (r.p) out(`${r.p}\n`);
  results.forEach((r, i) => {
    if (r.e === undefined) return;
    if (!(r.e instanceof ClanError)) throw r.e;
    throw new ClanError(`Build failed for ${machines[i]}: ${r.e}`);
  });
}

// ---- generations -------------------------------------------------------------------

/** fixture.generations.<m>: [{ generation, date, nixosVersion, kernelVersion, current }]; default: one current. */
export function generationsOf(fixture, name) {
  const given = fixture.generations?.[name];
  if (given) return [...given].sort((a, b) => a.generation - b.generation);
  return [{ generation: 1, date: "2026-11-20 01:00:00", nixosVersion: nixosVersion(fixture), kernelVersion: "6.12.41", current: true }];
}

function table(headers, rows) {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells) => `${cells.map((c, i) => c.padEnd(widths[i])).join(" | ")}\n`;
  return line(headers) + `${widths.map((w) => "-".repeat(w)).join("-+-")}\n` + rows.map(line).join("");
}

export async function machinesGenerations(ctx) {
  const { ns } = ctx;
  const flake = ctx.flake();
  const inventory = select(flake, INVENTORY_SELECTOR);
  const machines = machinesForUpdate(ctx, inventory);
  if (ns.target_host !== null && machines.length > 1) throw new ClanError("Target Host can only be set for one machines");
  const found = [];
  for (const name of machines) {
    let remote;
    try {
      remote = bestRemote(flake, name, name);
    } catch (e) {
      if (!(e instanceof ClanError)) throw e;
      log(`Skipping ${name} as it has no target host configured.`);
      continue;
    }
    remote.hostKeyCheck = ns.host_key_check;
    const failing = applies(ctx.knobs(name).fail, name);
    const gens = generationsOf(flake.fixture, name);
    const json = JSON.stringify(gens);
    try {
      await remoteRun(ctx, remote, ["nixos-rebuild", "list-generations", "--json"], {
        spec: { after: failing ? [["stderr", "fake-clan: injected failure"]] : [["stdout", json]], exitCode: failing ? 1 : 0, orphanGraceMs: 5000 },
        logStreams: ["stderr"],
      });
      found.push([name, gens, null]);
    } catch (e) {
      if (!(e instanceof ClanError)) throw e;
      found.push([name, null, e]);
    }
  }
  const rowsOf = (gens) => gens.map((g) => [`${g.generation}${g.current ? " ← current" : ""}`, g.date, g.nixosVersion ?? "", g.kernelVersion ?? ""]);
  if (ns.machines.length > 0 || ns.tags.length > 0) {
    for (const [, gens] of found) if (gens) out(`${table(["Generation", "Date", "NixOS Version", "Kernel Version"], rowsOf(gens))}\n`);
  } else {
    out("Current Generations Summary\n");
    const rows = [];
    for (const [name, gens] of found) {
      const cur = gens?.find((g) => g.current);
      if (cur) rows.push([name, String(cur.generation), cur.date, cur.nixosVersion ?? ""]);
    }
    if (rows.length === 0) out("Couldn't retrieve data from any machine.\n");
    else out(`${table(["Machine", "Current Generation", "Date", "NixOS Version"], rows)}\n`);
  }
  for (const [name, , e] of found) if (e) throw new ClanError(`Failed for machine ${name}: ${e}`);
}
