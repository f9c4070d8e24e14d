import { hostname } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { commandTable } from "../commands/index.ts";
import { formatEnd, isAnnounced } from "../commands/vm-format.ts";
import type { ClanView, Clock } from "../commands/types.ts";
import { BackupService } from "../ops/backup-service.ts";
import { ClanCli } from "../ops/clan-cli.ts";
import { DeployService } from "../ops/deploy-service.ts";
import { CachedRead } from "../ops/cached-read.ts";
import { ClanKnownHosts } from "../ops/clan-known-hosts.ts";
import { detectDryRun, updateReachArgs } from "../ops/clan-reach.ts";
import { parseGenerations } from "../ops/clan-generations.ts";
import { parseVarsList } from "../ops/clan-vars.ts";
import { gitRevision } from "../ops/git-revision.ts";
import { pinnedHostLines } from "../storage/host-keys.ts";
import { sharedMachineQueue } from "../ops/machine-queue.ts";
import { loadBotKey, loadSealedBotKey, type BotKey } from "../ops/ssh-key.ts";
import type { SecretBox } from "../ops/secret-box.ts";
import { defaultSshKeyFile, makeRuntimeDir, openBotSecrets } from "./secrets.ts";
import { SshMachineService } from "../ops/ssh-machines.ts";
import { detectVmBackend } from "../ops/vm-backend.ts";
import { VmService } from "../ops/vm-service.ts";
import { interruptCommands, recentCommands, runningCommands, type UnfinishedCommand } from "../storage/audit.ts";
import { openDatabase, type Db } from "../storage/db.ts";
import { forgetEventsBefore } from "../storage/handled-events.ts";
import { forgetSentPosts } from "../storage/outbox.ts";
import { migrate } from "../storage/migrations.ts";
import { ConfigError, clanThresholds, type ClanConfig, type Config } from "./config.ts";
import { Announcer } from "./announcer.ts";
import { recoverBackups } from "./backup-recovery.ts";
import { BackupScheduler, type ScheduledClan } from "./backup-scheduler.ts";
import { BackupWatch } from "./backup-watch.ts";
import { InviteService } from "./invite-service.ts";
import { announceInterrupted, recoverDeploys, type ClanPoster } from "./deploy-recovery.ts";
import { CommandLimit } from "./command-limit.ts";
import { Dispatcher, type ClanRuntime } from "./dispatcher.ts";
import type { Logger } from "./logger.ts";

/** How long handled event ids are kept; older events are ignored on sight, so they cannot run twice. */
export const HANDLED_EVENT_RETENTION_MS = 7 * 24 * 3600_000;
/** Between SIGTERM and SIGKILL when a clan process is stopped. */
export const KILL_GRACE_MS = 10_000;

export interface App {
  config: Config;
  db: Db;
  dispatcher: Dispatcher;
  clock: Clock;
  log: Logger;
  clans: readonly ClanConfig[];
  /** What the bot says on its own; front ends connect it once they can post. */
  announcer: Announcer;
  /** Join codes for every clan: the join page redeems them, the Matrix front end connects the invites. */
  invites: InviteService;
  /**
   * Commands the bot was running when it last stopped, still marked running: the Matrix front end
   * answers or tells about them and marks them; `interruptUnfinished` marks them where nobody can be told.
   */
  unfinished: readonly UnfinishedCommand[];
  interruptUnfinished(): Promise<void>;
  /** The bot's age identity: every secret it keeps is encrypted with it. */
  secrets: SecretBox;
  /** Tells each clan's room, once, about deploys the bot did not see to their end. */
  announceInterrupted(post: ClanPoster): Promise<void>;
  close(): Promise<void>;
}

/** Start-up wiring shared by both front ends: storage, the clan CLI, one runtime per clan, the dispatcher. */
export async function createApp(
  config: Config,
  clans: readonly ClanConfig[],
  log: Logger,
  clock: Clock = Date,
  env: NodeJS.ProcessEnv = process.env,
): Promise<App> {
  // First: a missing or wrong identity stops the start before anything is read or made.
  const secrets = await openBotSecrets(config);
  const db = await openDatabase(config.storage.path);
  await migrate(db);
  const unfinished = await runningCommands(db);
  if (unfinished.length) log.warn({ interrupted: unfinished.length }, "commands were still running when the bot last stopped");
  await forgetEventsBefore(db, clock.now() - HANDLED_EVENT_RETENTION_MS);
  // Sent posts are kept as long as the events they answer: a replayed command finds its answer (and its once key).
  await forgetSentPosts(db, clock.now() - HANDLED_EVENT_RETENTION_MS);
  await recoverDeploys(db, clock, log, config.deploy.keepLogs, KILL_GRACE_MS);
  const logDir = resolve(config.deploy.logDir ?? join(dirname(config.storage.path), "logs"));

  const announcer = new Announcer(log);
  const invites = new InviteService({
    db,
    clock,
    log,
    announcer,
    clans: clans.map((c) => ({ name: c.name, room: c.room, joinUrl: c.joinUrl })),
    publicUrl: config.web.publicUrl,
  });
  const prefix = config.commands.prefix;
  // Before the scheduler starts: only runs of earlier starts are told here.
  await recoverBackups({ db, clock, log, announcer, prefix }, KILL_GRACE_MS);
  const runtime = await makeRuntimeDir(env);
  const key = await botKey(config, secrets, runtime.dir);
  const vmBackend = await detectVmBackend(config.clan.command, config.vm.backend, config.clan.timeout);
  log.info({ backend: vmBackend.kind, why: vmBackend.why }, "VMs are run with this backend");
  const dryRun = await detectDryRun(config.clan.command, config.clan.timeout);
  log.info({ dryRun: dryRun.kind, why: dryRun.why }, "dry runs build with this");
  const sshDir = join(dirname(config.storage.path), "ssh");
  const vms = new VmService({
    db,
    clock,
    log,
    backend: vmBackend,
    clanCommand: config.clan.command,
    nixCommand: config.nix.command,
    max: config.vm.max,
    publicHost: config.vm.publicHost ?? hostname(),
    stopTimeoutMs: config.vm.stopTimeout,
    startGraceMs: config.vm.startGrace,
    buildTimeoutMs: config.vm.buildTimeout,
    dir: resolve(config.vm.dir ?? join(dirname(config.storage.path), "vms")),
    // The room hears of a VM that ended on its own; the announcer holds it until a front end can post.
    onEnd: (clan, end) => {
      if (isAnnounced(end)) void announcer.announce(clan, formatEnd(end, config.vm.stopTimeout, clock.now()));
    },
  });
  await vms.recover();
  // The clans as the scheduler and the overdue watch see them, filled in below.
  const scheduled = new Map<string, ScheduledClan>();
  const watch = new BackupWatch({
    db,
    clock,
    log,
    announcer,
    clans: scheduled,
    prefix,
    maxAgeMs: config.backup.maxAge,
    intervalMs: config.backup.watchInterval,
  });
  const scheduler = new BackupScheduler({ db, clock, log, announcer, clans: scheduled, prefix, minIntervalMs: config.backup.minInterval });
  const runtimes = new Map<string, ClanRuntime>();
  const sshServices: SshMachineService[] = [];
  for (const clan of clans) {
    const flake = resolve(clan.flake);
    // The clan's quick reads (inventory, target hosts, backup lists): at most clan.parallel processes at once.
    const cli = new ClanCli({ command: config.clan.command, timeoutMs: config.clan.timeout, parallel: config.clan.parallel });
    const inventory = new CachedRead(() => cli.machines(flake), config.clan.inventoryCacheTtl, clock);
    const configuredTargets = new CachedRead(() => cli.configuredTargets(flake), config.clan.inventoryCacheTtl, clock);
    const routes = new CachedRead(() => cli.routes(flake), config.clan.inventoryCacheTtl, clock);
    const explicitOnly = new CachedRead(() => cli.explicitUpdateMachines(flake), config.clan.inventoryCacheTtl, clock);
    const view: ClanView = {
      name: clan.name,
      flake,
      machines: (signal, fresh) => inventory.get(signal, fresh),
      async updatePlan(signal) {
        const [machines, explicit, configured, networks] = await Promise.all([inventory.get(signal), explicitOnly.get(signal), configuredTargets.get(signal), routes.get(signal)]);
        const noRoute = machines.filter((m) => !m.targetHost && !networks.get(m.name)?.length && !configured[m.name]).map((m) => m.name);
        return { explicitOnly: explicit, noRoute: new Set(noRoute) };
      },
    };
    const stateVersions = new CachedRead(() => cli.stateVersions(flake), config.clan.inventoryCacheTtl, clock);
    view.stateVersions = (signal) => stateVersions.get(signal);
    view.generations = async (machine, signal) => {
      const reach = await updateReachArgs(clanReach, machine, signal);
      const r = await cli.run(flake, ["machines", "generations", machine, ...reach], `Listing the generations of ${machine}`, { collectStdout: true, signal });
      return parseGenerations(r.stdout);
    };
    view.vars = async (machine, signal) => {
      const r = await cli.run(flake, ["vars", "list", machine], `Listing the vars of ${machine}`, { collectStdout: true, signal });
      return parseVarsList(r.stdout);
    };
    view.setVar = async (machine, varId, value, signal) => {
      // The value goes on stdin only; clan commits the change to the flake's git.
      await cli.run(flake, ["vars", "set", machine, varId], `Setting ${varId} of ${machine}`, { input: value, signal });
      return { commit: await gitRevision(flake) };
    };
    const knownHosts = new ClanKnownHosts({
      clan: clan.name,
      clanFile: join(sshDir, `known_hosts-${clan.name}`),
      userFile: config.clan.sshKnownHosts === false ? undefined : config.clan.sshKnownHosts,
      pinned: () => pinnedHostLines(db, clan.name),
    });
    await knownHosts.sync();
    const ssh = new SshMachineService({
      clan: clan.name,
      db,
      clock,
      key,
      knownHostsFile: config.ssh.knownHosts,
      timeoutMs: config.ssh.timeout,
      parallel: config.ssh.parallel,
      keepOpenMs: config.ssh.keepOpen,
      rebootTimeoutMs: config.ssh.rebootTimeout,
      rebootPollMs: config.ssh.rebootPoll,
      installerPort: config.install.installerPort,
      machines: (signal) => inventory.get(signal),
      configuredTargets: (signal) => configuredTargets.get(signal),
      routes: (signal) => routes.get(signal),
      onPinsChanged: () => knownHosts.sync(),
    });
    sshServices.push(ssh);
    // How clan's own ssh reaches a machine: the bot's route, key and pinned host key (ops/clan-reach.ts).
    const clanReach = { db, clan: clan.name, keyFile: key.path, dir: join(sshDir, "clan-known-hosts"), reachable: (m: string, s: AbortSignal) => ssh.reachableTarget(m, s) };
    // Deploys and backups of a clan: the same clan processes, stopped the same way, in one line per machine.
    const jobs = { clan: clan.name, flake, db, clock, log, clanCommand: config.clan.command, killGraceMs: KILL_GRACE_MS, queue: sharedMachineQueue() };
    const backups = new BackupService({
      ...jobs,
      cli,
      parallel: config.backup.parallel,
      timeoutMs: config.backup.timeout,
      // A success may end an overdue alert: say so now rather than at the next look.
      onEnd: (s) => void (s.phase === "ok" ? watch.check(clan.name) : undefined),
    });
    scheduled.set(clan.name, { room: clan.room, view, backups });
    runtimes.set(clan.name, {
      view,
      store: { recentCommands: (limit) => recentCommands(db, clan.name, limit) },
      ssh,
      invites: invites.forClan(clan.name),
      vms: vms.forClan(clan.name, flake),
      backups,
      schedules: scheduler.forClan(clan.name),
      deploys: new DeployService({
        ...jobs,
        nixCommand: config.nix.command,
        parallel: config.deploy.parallel,
        confirmAbove: config.deploy.confirmAbove,
        timeoutMs: config.deploy.timeout,
        installTimeoutMs: config.install.timeout,
        restoreTimeoutMs: config.backup.timeout,
        logDir: join(logDir, clan.name),
        rollback: (machine, o) => ssh.rollback(machine, o),
        afterInstall: (machine) => ssh.forgetHostKey(machine),
        dryRun: dryRun.kind,
        installKeyFile: key.path,
        updateReach: (machine, signal) => updateReachArgs(clanReach, machine, signal),
      }),
      thresholds: clanThresholds(config, clan),
    });
  }
  const dispatcher = new Dispatcher({
    table: commandTable,
    db,
    clans: runtimes,
    clock,
    log,
    prefix,
    maxCommandAgeMs: config.matrix?.maxCommandAge ?? 15 * 60_000,
    confirmTimeoutMs: config.commands.confirmTimeout,
    installReplyTimeoutMs: config.install.replyTimeout,
    limit: new CommandLimit({
      requests: config.commands.rateLimit.requests,
      windowMs: config.commands.rateLimit.window,
      exempt: config.commands.rateLimit.exempt,
    }),
  });
  await scheduler.start();
  watch.start();
  return {
    config,
    secrets,
    db,
    dispatcher,
    clock,
    log,
    clans,
    announcer,
    invites,
    unfinished,
    interruptUnfinished: () => interruptCommands(db, unfinished.map((c) => c.id), clock.now()),
    announceInterrupted: (post) =>
      announceInterrupted(
        db,
        clans.map((c) => c.name),
        post,
        clock,
        prefix,
      ),
    async close() {
      announcer.disconnect();
      invites.disconnect();
      await Promise.all([dispatcher.drain(KILL_GRACE_MS), scheduler.close(KILL_GRACE_MS), watch.close()]);
      vms.close();
      for (const s of sshServices) s.close();
      await db.close();
      await runtime.remove();
    },
  };
}

/** The bot's SSH key: the configured file, or its own one (encrypted) made on first start next to the SQLite file. */
async function botKey(config: Config, secrets: SecretBox, runtimeDir: string): Promise<BotKey> {
  try {
    if (config.ssh.keyFile !== undefined) return loadBotKey(resolve(config.ssh.keyFile), false);
    return await loadSealedBotKey(secrets, defaultSshKeyFile(config), runtimeDir);
  } catch (err) {
    throw new ConfigError(`ssh.keyFile: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** The console's single clan: the flake in `dir`, named after its directory. */
export function consoleClan(dir: string): ClanConfig {
  const flake = resolve(dir);
  const name = basename(flake).replace(/[^A-Za-z0-9_.-]/g, "-").replace(/^[^A-Za-z0-9]+/, "") || "clan";
  return { name, room: "!console:localhost", flake, permissions: undefined };
}
