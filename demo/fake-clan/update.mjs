// clan machines update: clan_cli/machines/update.py and clan_lib/machines/update.py.
// Order of events, per machine in parallel after the vars generators ran for all
// machines: upload secrets (first ssh connection: host key check), upload the flake
// source (nix copy), nix build on the build host, copy the closure (only with a
// separate build host), nix-env --set, switch-to-configuration boot, then switch.

import { isatty } from "node:tty";
import { ClanCmdError, ClanError, PythonCrash, err, log, nixCommand, out } from "./errors.mjs";
import { nixosVersion, select, storePath, toplevelPath } from "./flake.mjs";
import { INVENTORY_SELECTOR } from "./commands.mjs";
import { applies, bytesStream, orphanGrace } from "./knobs.mjs";
import { emitBytes, readStdinLine, releaseStdin, runChild, runStandInsInline } from "./proc.mjs";
import { bestRemote } from "./network.mjs";
import { connectionRefused, nixSshEnv, parseAddress, remoteRun, sshUrl, target } from "./remote.mjs";

const LOCAL = Symbol("localhost");

function levenshtein(a, b) {
  if (a.length < b.length) return levenshtein(b, a);
  if (b.length === 0) return a.length;
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 0; i < a.length; i++) {
    const cur = [i + 1];
    for (let j = 0; j < b.length; j++) cur.push(Math.min(prev[j + 1] + 1, cur[j] + 1, prev[j] + (a[i] === b[j] ? 0 : 1)));
    prev = cur;
  }
  return prev[prev.length - 1];
}

/** clan_lib.machines.suggestions.validate_machine_names() */
export function validateMachineNames(names, available) {
  const invalid = names.filter((n) => !available.includes(n));
  if (invalid.length === 0) return;
  const lines = invalid.map((n) => {
    const suggestions = available
      .map((c) => [c, levenshtein(n.toLowerCase(), c.toLowerCase())])
      .sort((x, y) => x[1] - y[1] || (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0))
      .slice(0, 3)
      .map(([c]) => c);
    const text = suggestions.length > 0 ? `Did you mean: ${suggestions.join(", ")}?` : `Available machines: ${[...available].sort().join(", ")}`;
    return `Machine '${n}' not found. ${text}`;
  });
  throw new ClanError(lines.join("\n"));
}

function nixBuild(flags, debug) {
  return nixCommand(["build", "--flake-registry", "", "--print-out-paths", "--print-build-logs", ...(debug ? ["--show-trace"] : []), "--no-link", ...flags]);
}

async function localRun(prefix, cmd, { spec, logStreams = ["stderr"], check = true, msg = null, announce = false }) {
  if (announce) log(`$ ${cmd.join(" ")}`, prefix);
  const r = await runChild({ title: cmd.join(" ").slice(0, 200), ...spec }, { prefix, logStreams });
  if (check && r.returnCode !== 0) throw new ClanCmdError({ command: cmd, stdout: r.stdout, stderr: r.stderr, returnCode: r.returnCode, msg });
  return r;
}

// ---- vars generators ---------------------------------------------------------------

export const PROMPT_FRAMES = [
  ["clan_cli/machines/update.py", 210, "update_command", "run_generators(all_machines, full_closure=False)"],
  ["clan_lib/vars/generate.py", 320, "run_generators", "generator.name: prompt_func(generator) for generator in generators_to_run"],
  ["clan_lib/vars/generate.py", 252, "prompt_func", "prompt_values[prompt.name] = ask("],
  ["clan_lib/vars/prompt.py", 302, "ask", "return _get_secret_input_with_confirmation("],
  ["clan_lib/vars/prompt.py", 231, "_get_secret_input_with_confirmation", "first_input = get_input("],
  ["clan_lib/vars/prompt.py", 84, "get_input", "old_settings = termios.tcgetattr(fd)"],
];

/**
 * A vars generator prompt (hangOnStdin). clan reads the answer from the terminal; with
 * a terminal the fake reads a line. Without one, the fake reads stdin: a line answers
 * it, an open pipe with nothing in it waits, and end of input fails the way clan fails
 * when stdin is not a terminal (termios.tcgetattr raises; uncaught; exit status 1).
 */
export async function prompt(machine, frames = PROMPT_FRAMES) {
  const ident = "root-password/password";
  log(`Prompting value for ${ident} for machines: ${machine}`);
  const text = `Enter the value for ${ident}:`;
  out(`${text} (hidden): `);
  const answer = await readStdinLine();
  if (answer === null) throw new PythonCrash("termios.error", "(25, 'Inappropriate ioctl for device')", frames);
  out("\n");
  if (isatty(0)) {
    out(`Confirm ${text} (hidden): `);
    const again = await readStdinLine();
    out("\n");
    if (again === null) throw new ClanError("User cancelled the input.");
  }
  log("Input received and confirmed. Processing...");
}

export function generatedVars(machine) {
  log(`Updated secret var openssh/ssh.id_ed25519 for machines: ${machine}\n`, machine);
  const key = Buffer.from(storePath(`ssh-key-${machine}`)).toString("base64").slice(0, 43);
  log(`Updated var openssh/ssh.id_ed25519.pub for machines: ${machine}\n  old: <not set>\n  new: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI${key} nixbld\n`, machine);
}

// ---- selection of machines -----------------------------------------------------------

export function machinesForUpdate(ctx, inventory) {
  const { ns } = ctx;
  const fixture = ctx.flake().fixture;
  const all = inventory.machines ?? {};
  const allNames = Object.keys(all);
  const withTags = allNames.filter((n) => ns.tags.every((t) => (all[n].tags ?? []).includes(t)));
  if (ns.tags.length > 0 && withTags.length === 0) throw new ClanError(`No machines found with tags: ${ns.tags.join(" AND ")}`);
  if (ns.machines.length === 0) {
    // requires_explicit_update(): `m.target_host` there is a method never called, so every
    // machine without requireExplicitUpdate is picked, reachable or not.
    const chosen = withTags.filter((n) => !fixture.machines[n]?.requireExplicitUpdate);
    const ignored = allNames.filter((n) => !chosen.includes(n));
    if (chosen.length === 0 && ignored.length > 0) {
      err(
        "WARNING: No machines to update.\nThe following defined machines were ignored because they\n- Require explicit update (see 'requireExplicitUpdate')\n\n",
      );
      for (const n of ignored) err(`${n}\n`);
    }
    return chosen;
  }
  validateMachineNames(ns.machines, allNames);
  for (const n of ns.machines) if (!withTags.includes(n)) throw new ClanError("This is an internal bug");
  return ns.machines;
}

export async function machinesUpdate(ctx) {
  const { ns } = ctx;
  if (ns.no_check) process.env.NIXOS_NO_CHECK = "1";
  const flake = ctx.flake();
  if (ctx.knobs().inlineStandIns === true) runStandInsInline();
  const inventory = select(flake, INVENTORY_SELECTOR);
  const toUpdate = machinesForUpdate(ctx, inventory);
  if (ns.target_host !== null && toUpdate.length > 1) throw new ClanError("Target Host can only be set for one machines");
  const allNames = Object.keys(inventory.machines ?? {});
  if (allNames.length === 0) throw new ClanError("At least one machine must be provided");

  for (const n of allNames) if (applies(ctx.knobs(n).hangOnStdin, n)) await prompt(n);
  releaseStdin();
  for (const n of allNames) if (applies(ctx.knobs(n).generateVars ?? true, n)) generatedVars(n);

  const seen = new Set();
  for (const n of toUpdate) {
    if (seen.has(n)) throw new ClanError(`A task with the name '${n}' is already running.`);
    seen.add(n);
    if (inventory.machines[n].machineClass === "darwin" && ns.specialisation !== null) {
      throw new ClanError(`--specialisation is not supported for darwin machine ${n}`);
    }
  }

  const results = await Promise.all(
    toUpdate.map((n) =>
      updateMachine(ctx, n, inventory.machines[n]).then(
        () => null,
        (e) => e,
      ),
    ),
  );
  let failed = 0;
  toUpdate.forEach((n, i) => {
    const e = results[i];
    if (e === null) return;
    if (!(e instanceof ClanError) && !(e instanceof PythonCrash)) throw e;
    log(`failed with error: ${e instanceof PythonCrash ? e.text : String(e)}`, n);
    failed += 1;
  });
  if (failed > 0) throw new ClanError(`${failed} hosts failed with an error. Check the logs above`);
}

// ---- one machine ---------------------------------------------------------------------

const SECRETS_UPLOAD = ["bash", "-c", 'install -d -m "$1" "$0" && find "$0" -mindepth 1 -delete && tar -C "$0" -xzf -', "/var/lib/sops-nix", "700"];

async function updateMachine(ctx, name, inv) {
  const { ns } = ctx;
  const flake = ctx.flake();
  const fixture = flake.fixture;
  const fm = fixture.machines[name] ?? {};
  const k = ctx.knobs(name);
  const failing = applies(k.fail, name);
  const failPhase = failing ? (k.failPhase ?? "build") : null;
  const grace = orphanGrace(k);

  const remote = ns.target_host !== null ? parseAddress(ns.target_host, name) : bestRemote(flake, name, name);
  remote.hostKeyCheck = ns.host_key_check;
  remote.forwardAgent = inv.deploy.forwardAgent ?? false;

  const buildAddress = ns.build_host ?? inv.deploy.buildHost ?? fm.networking?.buildHost ?? null;
  let buildHost = remote;
  if (buildAddress === "localhost") buildHost = LOCAL;
  else if (buildAddress !== null) {
    buildHost = parseAddress(buildAddress, name);
    buildHost.hostKeyCheck = ns.build_host !== null ? ns.host_key_check : "ask";
    buildHost.isBuildHost = true;
  }

  // 1. secrets (quiet; this is the first ssh connection to the target)
  if (failPhase === "connect") throw connectionRefused(remote, SECRETS_UPLOAD);
  await remoteRun(ctx, remote, SECRETS_UPLOAD, { quiet: true, spec: null, logStreams: ["stdout", "stderr"] });

  // 2. the flake's source, to the build host
  const src = storePath("source", `${flake.root}\0${fixture.revision ?? 0}`);
  if (buildHost !== LOCAL) {
    const scheme = ns.upload_inputs ? "ssh" : "ssh-ng";
    let url = sshUrl(buildHost, scheme);
    if (inv.machineClass === "darwin") {
      url += scheme === "ssh-ng" ? "?remote-program=bash -lc 'exec nix-daemon --stdio'" : "?remote-program=bash -lc 'exec nix-store --serve --write'";
    }
    const cmd = ns.upload_inputs
      ? nixCommand(["flake", "archive", "--to", url, "--json", flake.identifier])
      : nixCommand(["copy", "--to", url, "--no-check-sigs", src]);
    const lines = [["stderr", `copying path '${src}' to '${url}'...`]];
    if (ns.upload_inputs) lines.push(["stderr", `copying path '${storePath("source", "nixpkgs")}' to '${url}'...`]);
    await localRun(name, cmd, {
      spec: { before: lines, after: ns.upload_inputs ? [["stdout", JSON.stringify({ path: src })]] : [], orphanGraceMs: grace },
      msg: "failed to upload sources",
    });
  }

  const nixOptions = ["--show-trace", "--option", "keep-going", "true", "--option", "accept-flake-config", "true", "-L", ...ns.option];
  if (inv.machineClass === "darwin") return updateDarwin(ctx, name, { remote, buildHost, src, nixOptions, k, failPhase, grace });

  // 3. build
  const host = fm.hostName ?? name;
  const system = `nixos-system-${host}-${nixosVersion(fixture)}`;
  const toplevel = toplevelPath(fixture, name);
  const drv = (n) => storePath(`${n}.drv`, toplevel);
  const attr = `${src}#nixosConfigurations."${name}".config.system.build.toplevel`;
  const buildCmd = nixBuild([attr, ...nixOptions], ns.debug);
  const buildFails = failPhase === "build";
  const spec = {
    title: "nix build",
    before: [
      ["stderr", "these 3 derivations will be built:"],
      ...[drv("etc"), drv("system-path"), drv(system)].sort().map((d) => ["stderr", `  ${d}`]),
      ["stderr", `copying path '${storePath("fake-package-1.0", toplevel)}' from 'https://cache.nixos.org'...`],
      ["stderr", `building '${drv("system-path")}'...`],
    ],
    progress: k.outputLines ? { count: k.outputLines, template: "system-path> fake build output {i}/{n}", stream: "stderr" } : undefined,
    after: buildFails
      ? [
          ["stderr", `building '${drv(system)}'...`],
          ["stderr", `${system}> fake-clan: injected build failure`],
          ["stderr", `error: builder for '${drv(system)}' failed with exit code 1`],
        ]
      : [
          ["stderr", `building '${drv("etc")}'...`],
          ["stderr", `building '${drv(system)}'...`],
          ["stdout", toplevel],
        ],
    delayMs: k.delayMs ?? 0,
    hang: applies(k.hang, name),
    exitCode: buildFails ? 1 : 0,
    orphanGraceMs: grace,
  };
  const both = ["stdout", "stderr"];
  const building =
    buildHost === LOCAL
      ? localRun(name, buildCmd, { spec, logStreams: both, check: false, announce: true })
      : remoteRun(ctx, buildHost, buildCmd, { spec, logStreams: both, check: false });
  const [ret] = await Promise.all([building, emitBytes(k.bytes, { prefix: name, stream: bytesStream(k) })]);
  if (ret.returnCode !== 0) throw new ClanError(`nix build failed for '${name}' (exit code ${ret.returnCode}).`);

  // 4. closure to the target, when it was built elsewhere
  if (buildHost !== remote) {
    const cmd = nixCommand(["copy", "--to", sshUrl(remote, "ssh-ng"), "--no-check-sigs", toplevel]);
    const copySpec = { title: "nix copy", before: [["stderr", `copying path '${toplevel}' to '${sshUrl(remote, "ssh-ng")}'...`]], orphanGraceMs: grace };
    const msg = `failed to copy closure to ${target(remote)}`;
    if (buildHost === LOCAL) await localRun(name, cmd, { spec: copySpec, logStreams: both, msg, announce: true });
    else await remoteRun(ctx, buildHost, cmd, { spec: copySpec, logStreams: both, msg, env: nixSshEnv(remote) });
  }

  // 5. activation
  await remoteRun(ctx, remote, ["test", "-e", `${toplevel}/nixos-version`], { spec: null, check: false });
  await remoteRun(ctx, remote, ["nix-env", "-p", "/nix/var/nix/profiles/system", "--set", toplevel], { spec: null, logStreams: both });
  const switchBin = `${ns.specialisation !== null ? `${toplevel}/specialisation/${ns.specialisation}` : toplevel}/bin/switch-to-configuration`;
  const switchCmd = (action) => {
    const unit = `clan-${action}-${name}-${Math.floor(Math.random() * 0xffffffff).toString(16).padStart(8, "0")}`;
    const cmd = ["systemd-run", "--pipe", "--wait", "--quiet", "--collect", "--no-ask-password", "--service-type=exec", `--unit=${unit}`, "-E", "LOCALE_ARCHIVE", "-E", "NIXOS_INSTALL_BOOTLOADER=0"];
    if (process.env.NIXOS_NO_CHECK) cmd.push("-E", `NIXOS_NO_CHECK=${process.env.NIXOS_NO_CHECK}`);
    return [...cmd, "--", switchBin, action];
  };
  const boot = await remoteRun(ctx, remote, switchCmd("boot"), { spec: { title: "switch-to-configuration boot", orphanGraceMs: grace }, logStreams: both, check: false });
  if (boot.returnCode !== 0) {
    throw new ClanError(`switch-to-configuration boot failed on '${name}' (exit code ${boot.returnCode}). See above for details.`);
  }
  const inhibited = failPhase === "inhibitors" && !process.env.NIXOS_NO_CHECK;
  const switchFails = failPhase === "activate" || inhibited;
  const switchSpec = {
    title: "switch-to-configuration switch",
    before: switchFails
      ? inhibited
        ? [["stderr", "Pre-switch check 'switchInhibitors' failed: critical components changed (dbus)"]]
        : [
            ["stderr", "activating the configuration..."],
            ["stderr", "setting up /etc..."],
            ["stderr", "Failed to restart fake-clan-injected.service"],
            ["stderr", "warning: error(s) occurred while switching to the new configuration"],
          ]
      : [
          ["stderr", "activating the configuration..."],
          ["stderr", "setting up /etc..."],
          ["stderr", "reloading user units for root..."],
          ["stderr", "restarting sysinit-reactivation.target"],
          ["stderr", "the following new units were started: sysinit-reactivation.target, systemd-tmpfiles-resetup.service"],
        ],
    exitCode: switchFails ? (inhibited ? 1 : 4) : 0,
    orphanGraceMs: grace,
  };
  const sw = await remoteRun(ctx, remote, switchCmd("switch"), { spec: switchSpec, logStreams: both, check: false });
  if (sw.returnCode === 0) return;
  if (`${sw.stdout}${sw.stderr}`.includes("Pre-switch check")) {
    throw new ClanError(
      `Live-switching '${name}' was blocked by switch inhibitors (critical system components changed).\nThe new configuration has been registered for the next boot.\nPlease reboot '${name}' to complete the update.\nTo force a live switch despite inhibitors, re-run with --no-check.`,
    );
  }
  log(`[${name}] activation returned ${sw.returnCode} — retrying`);
  const retry = await remoteRun(ctx, remote, switchCmd("switch"), { spec: switchSpec, logStreams: both, check: false });
  if (retry.returnCode === 0) return;
  await remoteRun(ctx, remote, ["readlink", "/run/current-system"], { spec: null, check: false });
  throw new ClanError(`switch-to-configuration failed on '${name}' (exit code ${retry.returnCode}). See above for details.`);
}

async function updateDarwin(ctx, name, { remote, buildHost, src, nixOptions, k, failPhase, grace }) {
  const bh = buildHost === remote ? remote : buildHost;
  const cmd = ["/run/current-system/sw/bin/darwin-rebuild", "switch", ...nixOptions, "--flake", `${src}#${name}`];
  const fails = failPhase !== null;
  const spec = {
    title: "darwin-rebuild switch",
    before: [["stdout", "building the system configuration..."]],
    progress: k.outputLines ? { count: k.outputLines, template: "fake darwin build output {i}/{n}", stream: "stderr" } : undefined,
    after: fails
      ? [["stderr", "error: fake-clan: injected darwin-rebuild failure"]]
      : [
          ["stdout", "setting up /etc..."],
          ["stdout", "setting up launchd services..."],
          ["stdout", "activating system..."],
        ],
    delayMs: k.delayMs ?? 0,
    hang: applies(k.hang, name),
    exitCode: fails ? 1 : 0,
    orphanGraceMs: grace,
  };
  const both = ["stdout", "stderr"];
  const running =
    bh === LOCAL
      ? localRun(name, cmd, { spec, logStreams: both, announce: true })
      : remoteRun(ctx, bh, cmd, { spec, logStreams: both, env: nixSshEnv(bh) });
  await Promise.all([running, emitBytes(k.bytes, { prefix: name, stream: bytesStream(k) })]);
}
