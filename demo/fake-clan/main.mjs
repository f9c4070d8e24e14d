// The fake clan's main(): invocation log, argument parsing, dispatch, and the way
// clan_cli.cli.main() turns errors into output and an exit status.

import { appendFileSync, mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { isatty } from "node:tty";
import { ArgparseExit, formatHelp, parseArgs } from "./argparse.mjs";
import { buildParser } from "./cli.mjs";
import { machinesBuild, machinesGenerations } from "./build.mjs";
import { backupsCreate, backupsList, backupsRestore, machinesList, selectCommand } from "./commands.mjs";
import { ClanError, FakeSetupError, NOT_EMULATED_EXIT, PythonCrash, err, log, out, traceback } from "./errors.mjs";
import { flakeIdentifier, openFlake, requireFlake } from "./flake.mjs";
import { machinesInstall } from "./install.mjs";
import { knobsFor } from "./knobs.mjs";
import { killChildren } from "./proc.mjs";
import { machinesUpdate } from "./update.mjs";
import { varsCheck, varsGenerate, varsGet, varsList, varsSet } from "./vars.mjs";
import { vmsInspect, vmsRun } from "./vms.mjs";

const HANDLERS = {
  "machines list": machinesList,
  "machines update": machinesUpdate,
  "machines install": machinesInstall,
  "machines build": machinesBuild,
  "machines generations": machinesGenerations,
  select: selectCommand,
  "backups create": backupsCreate,
  "backups list": backupsList,
  "backups restore": backupsRestore,
  "vars list": varsList,
  "vars get": varsGet,
  "vars set": varsSet,
  "vars generate": varsGenerate,
  "vars check": varsCheck,
  "vms run": vmsRun,
  "vms inspect": vmsInspect,
};

function processGroup() {
  try {
    const stat = readFileSync("/proc/self/stat", "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[2]);
  } catch {
    return undefined;
  }
}

/**
 * The invocation log entry of this run: one JSON line, written once. Every command
 * writes it at once, except `machines install`, which adds an `install` object
 * (install.mjs) and writes it as soon as it knows its target (or fails before).
 */
function invocationLog(argv) {
  const env = {};
  for (const name of ["NO_COLOR", "CLAN_DIR"]) if (process.env[name] !== undefined) env[name] = process.env[name];
  const entry = {
    argv,
    cwd: process.cwd(),
    pid: process.pid,
    ppid: process.ppid,
    pgid: processGroup(),
    env,
    stdinIsTTY: isatty(0),
    time: new Date().toISOString(),
  };
  let written = false;
  return (extra = {}) => {
    const file = process.env.FAKE_CLAN_LOG;
    if (written || !file) return;
    written = true;
    mkdirSync(path.dirname(file), { recursive: true });
    appendFileSync(file, `${JSON.stringify({ ...entry, ...extra })}\n`);
  };
}

export async function main(argv) {
  const record = invocationLog(argv);
  const installRecord = {};
  const recordInstall = () => record({ install: installRecord });
  process.on("SIGINT", () => {
    // KeyboardInterrupt: clan logs a warning and exits 1; its children get the
    // signal too when it came from the terminal (same process group).
    recordInstall();
    killChildren("SIGTERM");
    log("Interrupted by user");
    process.exit(1);
  });

  const root = buildParser();
  let ns;
  try {
    ns = parseArgs(root, argv);
  } catch (e) {
    record();
    if (!(e instanceof ArgparseExit)) throw e;
    out(e.stdout);
    err(e.stderr);
    return e.code;
  }
  const command = ns._path.join(" ");
  if (command === "machines install") process.on("exit", recordInstall);
  else record();
  if (argv.length === 0) out(formatHelp(root));
  if (ns._path.length === 0) return 0;

  const handler = HANDLERS[command];
  if (!handler) {
    err(`fake-clan: 'clan ${command}' is not emulated by the fake (arguments: ${JSON.stringify(ns._rest ?? [])})\n`);
    return NOT_EMULATED_EXIT;
  }
  if (ns.debug) log("Debug log activated");

  const identifier = flakeIdentifier(ns.flake);
  let flake = null;
  const ctx = {
    ns,
    command,
    identifier,
    debug: ns.debug,
    /** machines install: the `install` fields of the invocation log entry, and writing it. */
    installRecord,
    recordInvocation: recordInstall,
    flake() {
      if (flake === null) {
        if (ns.debug) log(`Prefetching flake ${identifier}`);
        flake = openFlake(identifier, ns.option);
      }
      return flake;
    },
    knobs(machine = null) {
      return knobsFor(ctx.flake().fixture, command, machine);
    },
  };

  try {
    if (command !== "select") requireFlake(identifier);
    const code = await handler(ctx);
    return typeof code === "number" ? code : 0;
  } catch (e) {
    if (command === "machines install") recordInstall();
    if (e instanceof ClanError) {
      if (ns.debug) {
        log("Exited with error");
        err(traceback(new PythonCrash(e.pyType, e.message)));
      } else log(String(e));
      return 1;
    }
    if (e instanceof PythonCrash) {
      err(traceback(e));
      return 1;
    }
    if (e instanceof FakeSetupError) {
      err(`fake-clan: ${e.message}\n`);
      return NOT_EMULATED_EXIT;
    }
    throw e;
  }
}
