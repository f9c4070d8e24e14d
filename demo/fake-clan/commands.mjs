// clan machines list, clan select, clan backups {create,list,restore}.

import { ClanError, PythonCrash, log, out } from "./errors.mjs";
import { addArchive, archivesOf, select, systemOf } from "./flake.mjs";
import { applies, bytesStream, orphanGrace } from "./knobs.mjs";
import { emitBytes, hangForever, sleep } from "./proc.mjs";
import { pyJsonDumps } from "./pyjson.mjs";
import { bestRemote } from "./network.mjs";
import { remoteRun } from "./remote.mjs";

export const INVENTORY_SELECTOR = "clanInternals.inventoryClass.inventorySerialization.{instances,machines,meta}";

export function injectedFailure(k, machine = null) {
  if (!applies(k.fail, machine)) return null;
  return k.failMessage ?? "error: fake-clan: injected evaluation failure";
}

/** delayMs / outputLines / bytes / hang for commands that do their work in-process (evaluation). */
export async function evalWork(k, prefix = null) {
  const n = k.outputLines ?? 0;
  const delay = k.delayMs ?? 0;
  for (let i = 1; i <= n; i++) {
    if (delay > 0) await sleep(delay / (n + 1));
    log(`evaluating (fake progress ${i}/${n})`, prefix);
  }
  if (delay > 0) await sleep(n > 0 ? delay / (n + 1) : delay);
  await emitBytes(k.bytes, { prefix, stream: bytesStream(k) });
  if (k.hang === true) await hangForever();
}

export async function machinesList(ctx) {
  const flake = ctx.flake();
  const k = ctx.knobs();
  const inventory = select(flake, INVENTORY_SELECTOR, injectedFailure(k));
  await evalWork(k);
  const tags = ctx.ns.tags ?? [];
  const names = Object.keys(inventory.machines ?? {})
    .filter((n) => tags.every((t) => (inventory.machines[n].tags ?? []).includes(t)))
    .sort();
  for (const n of names) out(`${n}\n`);
}

export async function selectCommand(ctx) {
  if (ctx.identifier === null) {
    throw new PythonCrash("AttributeError", "'NoneType' object has no attribute 'select'", [
      ["clan_cli/select.py", 11, "select_command", "print(json.dumps(flake.select(args.selector), indent=4))"],
    ]);
  }
  const flake = ctx.flake();
  const k = ctx.knobs();
  const value = select(flake, ctx.ns.selector, injectedFailure(k));
  await evalWork(k);
  out(`${pyJsonDumps(value)}\n`);
}

// ---- backups --------------------------------------------------------------------

function backupsSelector(fixture, machine) {
  return `clanInternals.machines.${systemOf(fixture ?? {})}."${machine}".config.clan.core.backups`;
}

function stateSelector(fixture, machine) {
  return `clanInternals.machines.${systemOf(fixture ?? {})}."${machine}".config.clan.core.state`;
}

/** Machine.target_host() via get_best_remote() (network.mjs). */
export function machineTargetHost(flake, name) {
  return bestRemote(flake, name);
}

function scriptSpec(k, machine, { before = [], after = [], exitCode = 0 } = {}) {
  return {
    before,
    after,
    progress: k.outputLines ? { count: k.outputLines, template: "fake backup progress {i}/{n}", stream: "stderr" } : undefined,
    delayMs: k.delayMs ?? 0,
    hang: applies(k.hang, machine),
    exitCode,
    orphanGraceMs: orphanGrace(k),
  };
}

export async function backupsCreate(ctx) {
  const name = ctx.ns.machine;
  log(`creating backup for ${name}`, name);
  const flake = ctx.flake();
  const k = ctx.knobs(name);
  const backups = select(flake, backupsSelector(flake.fixture, name));
  const remote = machineTargetHost(flake, name);
  const providers = ctx.ns.provider === null ? Object.keys(backups.providers) : [ctx.ns.provider];
  if (ctx.ns.provider === null && providers.length === 0) throw new ClanError("No providers specified");
  if (ctx.ns.provider !== null && !(ctx.ns.provider in backups.providers)) {
    throw new ClanError(`provider ${ctx.ns.provider} not found`);
  }
  for (const p of providers) {
    const failing = applies(k.fail, name);
    const unit = `${p}-job-${name}.service`;
    const spec = scriptSpec(k, name, {
      after: failing
        ? [
            ["stderr", `Job for ${unit} failed because the control process exited with error code.`],
            ["stderr", `See "systemctl status ${unit}" and "journalctl -xeu ${unit}" for details.`],
          ]
        : [],
      exitCode: failing ? 1 : 0,
    });
    const work = remoteRun(ctx, remote, [backups.providers[p].create], { spec });
    await Promise.all([work, emitBytes(k.bytes, { prefix: name, stream: bytesStream(k) })]);
    // clan only starts the provider's job: one that did nothing (noArchive) leaves no new archive, and clan cannot tell.
    if (!applies(k.noArchive, name)) addArchive(flake, name, p);
    out("successfully started backup\n");
  }
}

export async function backupsList(ctx) {
  const name = ctx.ns.machine;
  const k = ctx.knobs(name);
  const flake = ctx.flake();
  const sel = backupsSelector(flake.fixture, name);
  const backups = select(flake, sel);
  const remote = machineTargetHost(flake, name);
  const results = [];
  const providers = ctx.ns.provider === null ? Object.keys(backups.providers) : [ctx.ns.provider];
  for (const p of providers) {
    if (!(p in backups.providers)) {
      throw new PythonCrash("KeyError", `'${p}'`, [
        ["clan_cli/backups/list.py", 17, "list_command", "backups = list_backups(machine=machine, provider=args.provider)"],
        ["clan_lib/backups/list.py", 60, "list_backups", "results += list_provider(machine, host, provider)"],
        ["clan_lib/backups/list.py", 22, "list_provider", 'list_command = backup_metadata["providers"][provider]["list"]'],
      ]);
    }
    const names = archivesOf(flake, name, p);
    const failing = applies(k.fail, name);
    const listCommand = backups.providers[p].list;
    const json = JSON.stringify(names.map((n) => ({ job_name: `${p}-job-${name}`, name: n })));
    const spec = scriptSpec(k, name, {
      after: failing ? [["stderr", "fake-clan: injected failure of the list command"]] : [["stdout", json]],
      exitCode: failing ? 2 : 0,
    });
    const [r] = await Promise.all([remoteRun(ctx, remote, [listCommand], { spec, logStreams: [], check: false }), emitBytes(k.bytes, { prefix: name, stream: bytesStream(k) })]);
    if (r.returnCode !== 0) {
      let msg = `Failed to list backups for provider ${p}:`;
      msg += `\n${listCommand} exited with ${r.returnCode}`;
      if (r.stderr) msg += `\nerror output: ${r.stderr}`;
      throw new ClanError(msg);
    }
    for (const a of JSON.parse(r.stdout)) results.push(a.name);
  }
  for (const n of results.sort()) out(`${n}\n`);
}

export async function backupsRestore(ctx) {
  const { machine: name, provider, name: archive, service } = ctx.ns;
  const k = ctx.knobs(name);
  const flake = ctx.flake();
  const remote = machineTargetHost(flake, name);
  const errors = [];
  const restoreService = async (svc) => {
    const backups = select(flake, backupsSelector(flake.fixture, name));
    const state = select(flake, stateSelector(flake.fixture, name));
    if (!(svc in state)) {
      throw new ClanError(`Service ${svc} not found in configuration. Available services are: ${Object.keys(state).join(", ")}`);
    }
    const env = { NAME: archive, FOLDERS: [...new Set(state[svc].folders ?? [])].join(":") };
    const quick = { orphanGraceMs: orphanGrace(k) };
    if (state[svc].preRestoreCommand) {
      await remoteRun(ctx, remote, [state[svc].preRestoreCommand], { env, spec: quick });
    }
    if (!(provider in backups.providers)) {
      throw new PythonCrash("KeyError", `'${provider}'`, [
        ["clan_lib/backups/restore.py", 81, "restore_backup", "restore_service(machine, host, name, provider, service)"],
        ["clan_lib/backups/restore.py", 43, "restore_service", '[backup_metadata["providers"][provider]["restore"]],'],
      ]);
    }
    const known = archivesOf(flake, name, provider).includes(archive);
    const failing = applies(k.fail, name) || !known;
    const spec = scriptSpec(k, name, {
      after: failing ? [["stderr", known ? "fake-clan: injected restore failure" : `Archive ${archive} does not exist`]] : [],
      exitCode: failing ? 2 : 0,
    });
    await Promise.all([
      remoteRun(ctx, remote, [backups.providers[provider].restore], { env, spec, msg: null }),
      emitBytes(k.bytes, { prefix: name, stream: bytesStream(k) }),
    ]);
    if (state[svc].postRestoreCommand) {
      await remoteRun(ctx, remote, [state[svc].postRestoreCommand], { env, spec: quick });
    }
  };
  const services = service === null ? Object.keys(select(flake, stateSelector(flake.fixture, name))) : [service];
  for (const svc of services) {
    try {
      await restoreService(svc);
    } catch (e) {
      if (!(e instanceof ClanError)) throw e;
      errors.push(`${svc}: ${e}`);
    }
  }
  if (errors.length > 0) throw new ClanError(`Restore failed for the following services:\n${errors.join("\n")}`);
}

