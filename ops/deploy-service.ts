import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  ARCHIVE_NAME,
  FINAL_PHASES,
  MACHINE_CHANGING,
  SAFE_NAME,
  type DeployRequest,
  type DeployResult,
  type DeployState,
  type Deploys,
  type FinalPhase,
  type LogAttachment,
  type MachineLock,
  type MachinePhase,
  type MachineRun,
  type RestoreSource,
  type RunningDeploy,
  type Waiting,
  type VarsGeneration,
} from "../commands/deploy-types.ts";
import { formatDuration } from "../commands/format.ts";
import type { Clock, Log } from "../commands/types.ts";
import type { Db } from "../storage/db.ts";
import { finishDeploy, machineFinished, machineStarted, recentDeploys, startDeploy } from "../storage/deploys.ts";
import { activeLocks, lockOf, releaseLock, takeLock } from "../storage/locks.ts";
import { untilAborted } from "./abort.ts";
import { INSTALL_DONE_MARK, OutputTail, phaseAfter, systemPathIn } from "./deploy-output.ts";
import { gitRevision } from "./git-revision.ts";
import { packLog } from "./log-attachment.ts";
import { writeSoon } from "./write-soon.ts";
import { LogFile } from "./log-file.ts";
import { MachineOutput } from "./machine-output.ts";
import { MachineQueue, Slots, sharedMachineQueue, type MachineHolder, type QueueTicket } from "./machine-queue.ts";
import { processStartTime } from "./process-identity.ts";
import { runProcess, startErrorReason, type RunResult } from "./process-runner.ts";
import { SshError } from "./ssh-connection.ts";
import type { RollbackOutcome } from "./ssh-machines.ts";

export interface DeployServiceOptions {
  clan: string;
  confirmAbove: number;
  flake: string;
  db: Db;
  clock: Clock;
  log: Log;
  clanCommand: string;
  nixCommand: string;
  /** Machines deployed at once in this clan. */
  parallel: number;
  /** How long one machine's deploy (or rollback) may take before it is killed. */
  timeoutMs: number;
  /** The same for an install, which takes longer. */
  installTimeoutMs: number;
  /** The same for a restore (default: timeoutMs). */
  restoreTimeoutMs?: number;
  /** Between SIGTERM and SIGKILL when a deploy is cancelled or times out. */
  killGraceMs: number;
  /** Deploy logs go to `<logDir>/deploy-<id>.log`. */
  logDir: string;
  /** The clan's line per machine, shared with its backups; default: one of its own. */
  queue?: MachineQueue<MachineHolder>;
  env?: Record<string, string>;
  /** `!rollback` of a machine over SSH. */
  rollback?: (machine: string, o: { signal: AbortSignal; timeoutMs: number; generation?: number; onLine: (line: string, stream: "stdout" | "stderr") => void }) => Promise<RollbackOutcome>;
  /** After a machine was installed (it has a new host key now). */
  afterInstall?: (machine: string) => Promise<void>;
  /** How a dry run builds: `clan machines build` (clans since 2025-11; it knows the clan's vars) or a raw `nix build`. Default nix. */
  dryRun?: "clan" | "nix";
  /**
   * The arguments that tell `clan machines update` how to reach a machine (route, the bot's key, the
   * host keys it pinned). Default: clan's own route, `--host-key-check accept-new`.
   */
  updateReach?: (machine: string, signal: AbortSignal) => Promise<string[]>;
  /** The bot's SSH private key, given to `clan machines install -i`: the current installer lets in keys only. */
  installKeyFile?: string;
}

/** clan_lib/machines/update.py, when switch inhibitors block `switch-to-configuration switch` after `boot` went well. */
const INHIBITED = /Live-switching '[^']*' was blocked by switch inhibitors/;

/** How one machine's step ended, whatever ran it (a local process or a command over SSH). */
type StepResult = Pick<RunResult, "exitCode" | "signal" | "timedOut" | "cancelled" | "startError" | "durationMs">;

/**
 * The first line of a machine's own work in `clan machines update`, after the work every process
 * does for the whole clan (inventory migrations, the vars generators of all machines, their git
 * commits): uploading the flake's source, the build, or the route clan found for it.
 */
const PREPARED = /copying path '[^']*' to '|\$ nix\b.* (copy|build|flake archive)\b|reachable via \S+ network|darwin-rebuild/;

const WHAT: Record<DeployRequest["kind"], string> = {
  switch: "deploy",
  "dry-run": "dry run",
  rollback: "rollback",
  install: "install",
  restore: "restore",
  vars: "vars generation",
};

/** What a run of each kind does to a machine, for those waiting behind it. */
const ACTIVITY: Record<DeployRequest["kind"], string> = {
  switch: "deploying it",
  "dry-run": "building it",
  rollback: "rolling it back",
  install: "installing it",
  restore: "restoring it",
  vars: "generating its vars",
};

interface LiveMachine {
  machine: string;
  phase: MachinePhase;
  startedAt?: number;
  finishedAt?: number;
  waiting?: Waiting;
  exitCode?: number;
  storePath?: string;
  generation?: number;
  /** An install printed nixos-anywhere's last step. */
  installDone?: boolean;
  /** clan said switch inhibitors blocked the live switch (the new system is the boot default). */
  inhibited?: boolean;
  note?: string;
  tail: OutputTail;
  abort: AbortController;
  ticket?: QueueTicket<MachineHolder>;
  /** Resolves when this machine's part has ended. */
  settled?: Promise<void>;
}

interface Job {
  request: DeployRequest;
  revision: string | undefined;
  startedAt: number;
  finishedAt?: number;
  result: DeployResult;
  cancelledBy?: string;
  machines: Map<string, LiveMachine>;
  log: LogFile;
  onChange: (s: DeployState) => void;
  /** The job as the machines' lines see it. */
  holder: MachineHolder;
  /**
   * Several machines of one deploy: one clan process goes first and does the clan's shared
   * preparation; the others start once it has moved on to its own machine.
   */
  gate?: { preparer?: string; opened: boolean; open: () => void; ready: Promise<void> };
}

/**
 * A clan's deploys: one clan process per machine, one deploy per machine at a time (the rest wait
 * in line), at most `parallel` at once, each with a timeout, its output streamed to a log file and
 * a bounded tail, its records in SQLite, and cancellable while it waits or runs.
 */
export class DeployService implements Deploys {
  private readonly o: DeployServiceOptions;
  private readonly queue: MachineQueue<MachineHolder>;
  private readonly slots: Slots;
  private readonly jobs = new Map<number, Job>();
  readonly confirmAbove: number;

  constructor(o: DeployServiceOptions) {
    this.o = o;
    this.confirmAbove = o.confirmAbove;
    this.slots = new Slots(o.parallel);
    this.queue = o.queue ?? sharedMachineQueue();
  }

  async start(request: DeployRequest, onChange: (s: DeployState) => void): Promise<RunningDeploy> {
    for (const m of request.machines) if (!SAFE_NAME.test(m)) throw new Error(`refusing to deploy a machine named ${JSON.stringify(m)}`);
    if (request.vars?.generator !== undefined && !SAFE_NAME.test(request.vars.generator)) throw new Error(`refusing the generator ${JSON.stringify(request.vars.generator)}`);
    const r = request.restore;
    if (r && (!SAFE_NAME.test(r.provider) || (r.service !== undefined && !SAFE_NAME.test(r.service)) || !ARCHIVE_NAME.test(r.archive))) {
      throw new Error(`refusing to restore ${JSON.stringify(r)}`);
    }
    const { clock, db, clan, flake } = this.o;
    const revision = await gitRevision(flake);
    const startedAt = clock.now();
    const logPath = this.logPathOf(request.id);
    await startDeploy(db, { ...request, clan, revision, startedAt, logPath });
    const log = new LogFile(logPath);
    log.line(`# clanbot ${WHAT[request.kind]} #${request.id} of ${request.machines.join(", ")} by ${request.sender}, clan ${clan}`);
    log.line(`# started ${new Date(startedAt).toISOString()}, flake ${flake} at ${revision ?? "(not a git checkout)"}`);
    if (request.restore) log.line(`# restoring ${request.restore.archive} from ${request.restore.provider}, ${request.restore.service ?? "every service"}`);
    const machines = new Map<string, LiveMachine>(
      request.machines.map((m) => [m, { machine: m, phase: "queued", tail: new OutputTail(), abort: new AbortController() }]),
    );
    const job: Job = {
      request,
      revision,
      startedAt,
      result: "running",
      machines,
      log,
      onChange,
      holder: {
        id: request.id,
        sender: request.sender,
        activity: ACTIVITY[request.kind],
        since: (machine) => machines.get(machine)?.startedAt ?? startedAt,
        moved: (machine) => {
          const m = machines.get(machine);
          if (m) this.setWaiting(job, m);
        },
      },
    };
    if (request.kind === "switch" && request.machines.length > 1) {
      let open = (): void => {};
      const ready = new Promise<void>((resolve) => (open = resolve));
      const gate: NonNullable<Job["gate"]> = { opened: false, ready, open: () => ((gate.opened = true), open()) };
      job.gate = gate;
    }
    this.jobs.set(request.id, job);
    const runs = [...job.machines.values()].map((m) => (m.settled = this.runMachine(job, m)));
    const done = Promise.all(runs).then(() => this.finish(job));
    return { done, current: () => snapshot(job) };
  }

  active(): DeployState[] {
    return [...this.jobs.values()].map(snapshot);
  }

  async cancel(id: number, by: string, machine?: string): Promise<boolean> {
    const job = this.jobs.get(id);
    if (!job) return false;
    const targets = [...job.machines.values()].filter((m) => !FINAL_PHASES.has(m.phase) && (machine === undefined || m.machine === machine));
    if (!targets.length) return false;
    if (machine === undefined) job.cancelledBy = by;
    for (const m of targets) {
      m.note = `cancelled by ${by}`;
      m.abort.abort(new Error(m.note));
    }
    await Promise.all(targets.map((m) => m.settled));
    return true;
  }

  history(limit: number, machine?: string) {
    return recentDeploys(this.o.db, this.o.clan, limit, machine);
  }

  locks(): Promise<MachineLock[]> {
    return activeLocks(this.o.db, this.o.clan, this.o.clock.now());
  }

  lock(lock: MachineLock) {
    return takeLock(this.o.db, this.o.clan, lock, this.o.clock.now());
  }

  unlock(machine: string) {
    return releaseLock(this.o.db, this.o.clan, machine, this.o.clock.now());
  }

  private async runMachine(job: Job, m: LiveMachine): Promise<void> {
    const { request } = job;
    let release: (() => void) | undefined;
    try {
      const changesMachine = MACHINE_CHANGING.has(request.kind);
      if (changesMachine) {
        m.ticket = this.queue.enter(m.machine, job.holder);
        this.setWaiting(job, m);
        await untilAborted(m.ticket.granted, m.abort.signal);
      }
      const gate = job.gate;
      if (gate && !gate.opened) {
        if (gate.preparer === undefined) gate.preparer = m.machine;
        else {
          m.waiting = { kind: "preparation", machine: gate.preparer };
          this.emit(job);
          await untilAborted(gate.ready, m.abort.signal);
          m.waiting = undefined;
        }
      }
      if (this.slots.inUse >= this.o.parallel) {
        m.waiting = { kind: "slot", running: this.slots.inUse };
        this.emit(job);
      }
      release = await this.slots.acquire(m.abort.signal);
      m.waiting = undefined;
      if (changesMachine) {
        const lock = await lockOf(this.o.db, this.o.clan, m.machine, this.o.clock.now());
        if (lock && lock.holder !== request.sender) {
          m.note = `locked by ${lock.holder}${lock.reason ? ` (${lock.reason})` : ""}`;
          return await this.end(job, m, "skipped");
        }
      }
      const result = await this.runStep(job, m);
      const phase: FinalPhase = result.cancelled
        ? "cancelled"
        : result.timedOut
          ? "timed-out"
          : request.kind === "install"
            ? this.installOutcome(job, m, result)
            : result.exitCode === 0 && result.startError === undefined
              ? "done"
              : request.kind === "switch" && m.inhibited
                ? "reboot-needed"
                : "failed";
      if (result.startError !== undefined) m.tail.push(startErrorText(request.kind === "dry-run" ? this.o.nixCommand : this.o.clanCommand, result.startError));
      if (phase === "timed-out") m.note = `stopped after ${formatDuration(this.timeoutOf(request))}`;
      m.exitCode = result.exitCode;
      if (phase === "done" && request.kind === "install") await this.o.afterInstall?.(m.machine);
      await this.end(job, m, phase);
    } catch (err) {
      if (m.abort.signal.aborted) return await this.end(job, m, "cancelled");
      m.tail.push(`clanbot: ${err instanceof Error ? err.message : String(err)}`);
      this.o.log.error({ err, deploy: request.id, machine: m.machine }, "deploy of a machine failed inside the bot");
      await this.end(job, m, "failed");
    } finally {
      if (job.gate?.preparer === m.machine && !job.gate.opened) job.gate.open();
      release?.();
      m.ticket?.leave();
    }
  }

  private async runStep(job: Job, m: LiveMachine): Promise<StepResult> {
    const { request } = job;
    if (request.kind === "rollback") return this.runRollback(job, m);
    if (request.kind === "vars") return this.runProcess(job, m, this.o.clanCommand, varsGenerateArgs(m.machine, this.o.flake, request.vars ?? { regenerate: false }));
    if (request.kind === "restore") {
      if (!request.restore) throw new Error("a restore without an archive");
      return this.runProcess(job, m, this.o.clanCommand, restoreArgs(m.machine, this.o.flake, request.restore));
    }
    if (request.kind !== "install") {
      if (request.kind === "dry-run") {
        if (this.o.dryRun === "clan") return this.runProcess(job, m, this.o.clanCommand, clanBuildArgs(this.o.flake, m.machine));
        return this.runProcess(job, m, this.o.nixCommand, dryRunArgs(this.o.flake, m.machine));
      }
      const reach = this.o.updateReach ? await this.o.updateReach(m.machine, m.abort.signal) : ["--host-key-check", "accept-new"];
      return this.runProcess(job, m, this.o.clanCommand, ["machines", "update", m.machine, ...reach, "--flake", this.o.flake]);
    }
    const source = request.install;
    if (!source) throw new Error("an install without a target");
    const key = this.o.installKeyFile ? ["-i", this.o.installKeyFile] : [];
    if (source.kind === "target") return this.runProcess(job, m, this.o.clanCommand, installArgs(m.machine, this.o.flake, [`--target-host=${source.target}`, ...key]));
    // The installer's password goes to clan in a file only the bot can read, never on a command line.
    const jsonPath = join(this.o.logDir, `install-${request.id}-${m.machine}.json`);
    const { pass, tor } = source.installer;
    // The address that answered first; IPv6 ones in brackets, or clan refuses the whole code.
    const info = { pass, tor, addrs: [source.address, ...source.installer.addrs.filter((a) => a !== source.address)].map(bracketIpv6) };
    await writeFile(jsonPath, JSON.stringify(info), { mode: 0o600, flag: "wx" });
    try {
      // Should clan ever print the password, it stays out of the log and the room all the same.
      const secrets = pass !== null && pass.length >= 4 ? [pass] : [];
      return await this.runProcess(job, m, this.o.clanCommand, installArgs(m.machine, this.o.flake, ["-j", jsonPath, ...key]), secrets);
    } finally {
      await rm(jsonPath, { force: true });
    }
  }

  /**
   * An install ended well when nixos-anywhere's last step said `### Done! ###`, whatever clan's exit
   * status: with `-j`, clan (clan_lib/network/qr_code.py) goes on trying the installer's other
   * addresses after the install, so a finished install exits 1 ("No reachable remote found in QR
   * code data") and a failed one can exit 0 without a word.
   */
  private installOutcome(job: Job, m: LiveMachine, result: StepResult): FinalPhase {
    if (result.startError !== undefined || !m.installDone) {
      if (result.exitCode === 0) m.tail.push("clanbot: clan exited 0, but the install never reached its last step (### Done! ###)");
      return "failed";
    }
    if (result.exitCode !== 0) job.log.line(`[${m.machine}] clanbot: the install reached its last step; clan's exit status ${String(result.exitCode)} after it is not counted`);
    return "done";
  }

  private timeoutOf(request: DeployRequest): number {
    if (request.kind === "install") return this.o.installTimeoutMs;
    if (request.kind === "restore") return this.o.restoreTimeoutMs ?? this.o.timeoutMs;
    return this.o.timeoutMs;
  }

  private async runRollback(job: Job, m: LiveMachine): Promise<StepResult> {
    const { clock } = this.o;
    const prefix = `[${m.machine}] `;
    if (!this.o.rollback) throw new Error("rollbacks need SSH, which is not set up");
    m.phase = "activating";
    m.startedAt = clock.now();
    this.emit(job);
    await machineStarted(this.o.db, job.request.id, m.machine, m.startedAt, undefined, undefined);
    const to = job.request.generation;
    job.log.line(`${prefix}clanbot: rolling back to ${to !== undefined ? `generation ${to}` : "the previous system generation"} over SSH`);
    const onLine = (line: string): void => {
      job.log.line(prefix + line);
      m.tail.push(line);
    };
    const started = performance.now();
    const result = (r: Partial<StepResult>): StepResult => ({
      exitCode: undefined,
      signal: undefined,
      timedOut: false,
      cancelled: false,
      startError: undefined,
      durationMs: performance.now() - started,
      ...r,
    });
    try {
      const out = await this.o.rollback(m.machine, { signal: m.abort.signal, timeoutMs: this.o.timeoutMs, onLine, ...(to !== undefined ? { generation: to } : {}) });
      if (out.problem) onLine(`clanbot: ${out.problem}`);
      if (out.generation !== undefined) m.generation = out.generation;
      if (out.storePath) m.storePath = out.storePath;
      return result({ exitCode: out.problem ? undefined : out.exitCode });
    } catch (err) {
      if (err instanceof SshError && err.kind === "timeout") return result({ timedOut: true });
      if (m.abort.signal.aborted) return result({ cancelled: true });
      throw err;
    }
  }

  private async runProcess(job: Job, m: LiveMachine, file: string, args: readonly string[], secrets: readonly string[] = []): Promise<RunResult> {
    const { request } = job;
    const { db, clock } = this.o;
    m.phase = "building";
    m.startedAt = clock.now();
    this.emit(job);
    const prefix = `[${m.machine}] `;
    job.log.line(`${prefix}clanbot: $ ${[file, ...args].join(" ")}`);
    let recording: Promise<void> = Promise.resolve();
    const output = new MachineOutput(job.log, m.tail, prefix, secrets, (line, stream) => {
      // A dry run's result is what nix prints on stdout; a deploy's (or install's) is the system profile it sets.
      const path = request.kind !== "dry-run" || stream === "stdout" ? systemPathIn(line) : undefined;
      if (path) m.storePath = path;
      if (request.kind === "install" && line.includes(INSTALL_DONE_MARK)) m.installDone = true;
      if (request.kind === "switch" && INHIBITED.test(line)) m.inhibited = true;
      if (job.gate?.preparer === m.machine && !job.gate.opened && PREPARED.test(line)) {
        job.log.line(`${prefix}clanbot: the clan's shared preparation is done; the other machines start now`);
        job.gate.open();
      }
      const next = phaseAfter(m.phase, line);
      if (next !== m.phase) {
        m.phase = next;
        this.emit(job);
      }
    });
    let result: RunResult;
    try {
      result = await runProcess(file, args, {
        cwd: this.o.flake,
        timeoutMs: this.timeoutOf(request),
        killGraceMs: this.o.killGraceMs,
        signal: m.abort.signal,
        // The machine's own tail (both streams) is kept by its output.
        stderrTailLines: 0,
        ...(this.o.env ? { env: this.o.env } : {}),
        onSpawn: (pid) => {
          recording = machineStarted(db, request.id, m.machine, m.startedAt as number, pid, processStartTime(pid));
        },
        output,
      });
    } finally {
      // No more output: the tail's lines as text, and the buffer their bytes were copied into let go.
      m.tail.settle();
    }
    await recording;
    const how = result.cancelled
      ? "cancelled"
      : result.timedOut
        ? "timed out"
        : result.exitCode !== undefined
          ? `exit status ${result.exitCode}`
          : `killed by ${result.signal ?? "a signal"}`;
    job.log.line(`${prefix}clanbot: ${how} after ${formatDuration(result.durationMs)}`);
    return result;
  }

  private async end(job: Job, m: LiveMachine, phase: FinalPhase): Promise<void> {
    m.phase = phase;
    m.waiting = undefined;
    m.finishedAt = this.o.clock.now();
    const finished = { state: phase, at: m.finishedAt, exitCode: m.exitCode, storePath: m.storePath };
    await writeSoon(() => machineFinished(this.o.db, job.request.id, m.machine, finished), this.o.log, `how ${m.machine} ended in deploy #${job.request.id}`);
    this.emit(job);
  }

  private async finish(job: Job): Promise<DeployState> {
    const phases = [...job.machines.values()].map((m) => m.phase);
    job.result = job.cancelledBy
      ? "cancelled"
      : phases.includes("failed")
        ? "failed"
        : phases.includes("timed-out")
          ? "timed-out"
          : phases.includes("cancelled")
            ? "cancelled"
            : phases.every((p) => p === "skipped")
              ? "failed"
              : "ok";
    job.finishedAt = this.o.clock.now();
    job.log.line(`# ended ${new Date(job.finishedAt).toISOString()}: ${job.result}`);
    job.log.close();
    // A deploy that ran to its end is shown as it ended, also when the disk is full: the record follows when it can.
    const result = job.result as Exclude<DeployResult, "running">;
    const finishedAt = job.finishedAt;
    await writeSoon(() => finishDeploy(this.o.db, job.request.id, result, finishedAt, job.cancelledBy), this.o.log, `the result of deploy #${job.request.id}`);
    this.jobs.delete(job.request.id);
    const state = snapshot(job);
    job.onChange(state);
    return state;
  }

  logFile(id: number): Promise<LogAttachment> {
    return packLog(this.logPathOf(id));
  }

  private logPathOf(id: number): string {
    return join(this.o.logDir, `deploy-${id}.log`);
  }

  private setWaiting(job: Job, m: LiveMachine): void {
    const t = m.ticket;
    if (!t || FINAL_PHASES.has(m.phase) || m.phase !== "queued") return;
    const position = t.position();
    const holder = t.holder();
    if (position > 0 && holder) {
      m.waiting = { kind: "machine", position, deployId: holder.id, sender: holder.sender, since: holder.since(m.machine), activity: holder.activity };
    } else if (m.waiting?.kind === "machine") m.waiting = undefined;
    this.emit(job);
  }

  private emit(job: Job): void {
    if (job.result !== "running") return;
    job.onChange(snapshot(job));
  }
}

function snapshot(job: Job): DeployState {
  const machines: MachineRun[] = [...job.machines.values()].map((m) => ({
    machine: m.machine,
    phase: m.phase,
    tail: m.phase === "failed" || m.phase === "timed-out" ? m.tail.get() : [],
    ...(m.startedAt !== undefined ? { startedAt: m.startedAt } : {}),
    ...(m.finishedAt !== undefined ? { finishedAt: m.finishedAt } : {}),
    ...(m.waiting ? { waiting: m.waiting } : {}),
    ...(m.exitCode !== undefined ? { exitCode: m.exitCode } : {}),
    ...(m.storePath ? { storePath: m.storePath } : {}),
    ...(m.generation !== undefined ? { generation: m.generation } : {}),
    ...(m.note ? { note: m.note } : {}),
  }));
  return {
    id: job.request.id,
    kind: job.request.kind,
    sender: job.request.sender,
    revision: job.revision,
    startedAt: job.startedAt,
    result: job.result,
    machines,
    ...(job.finishedAt !== undefined ? { finishedAt: job.finishedAt } : {}),
    ...(job.cancelledBy ? { cancelledBy: job.cancelledBy } : {}),
    ...(job.request.restore ? { restore: job.request.restore } : {}),
  };
}

/** `nix build` of a machine's system without switching to it. */
export function dryRunArgs(flake: string, machine: string): string[] {
  return [
    "--extra-experimental-features",
    "nix-command flakes",
    "build",
    `${flake}#nixosConfigurations.${machine}.config.system.build.toplevel`,
    "--no-link",
    "--print-out-paths",
  ];
}

/** `clan machines build` of one machine's system, without a result link in the flake. */
export function clanBuildArgs(flake: string, machine: string): string[] {
  return ["machines", "build", machine, "--no-link", "--flake", flake];
}

/**
 * `clan machines install`, never asking (`--yes`). No `--host-key-check`: clan ignores it there
 * (nixos-anywhere runs with StrictHostKeyChecking=no and UserKnownHostsFile=/dev/null).
 */
export function installArgs(machine: string, flake: string, target: readonly string[]): string[] {
  return ["machines", "install", machine, ...target, "--yes", "--flake", flake];
}

/**
 * An installer address as clan's `_parse_ssh_uri` takes it: a bare IPv6 address (two or more
 * colons, no brackets) in brackets. A port after an IPv6 address cannot be told apart, so there is none.
 */
export function bracketIpv6(address: string): string {
  const at = address.lastIndexOf("@");
  const user = at >= 0 ? address.slice(0, at + 1) : "";
  const host = address.slice(at + 1);
  return (host.match(/:/g) ?? []).length > 1 && !host.startsWith("[") ? `${user}[${host}]` : address;
}

/** `clan vars generate`: the missing vars of a machine (or all of one generator's anew with --regenerate). */
export function varsGenerateArgs(machine: string, flake: string, v: VarsGeneration): string[] {
  return ["vars", "generate", machine, ...(v.generator !== undefined ? ["--generator", v.generator] : []), ...(v.regenerate ? ["--regenerate"] : []), "--flake", flake];
}

/** `clan backups restore`: one archive of one provider, for one service or (without `--service`) all of them. */
export function restoreArgs(machine: string, flake: string, r: RestoreSource): string[] {
  return ["backups", "restore", machine, r.provider, r.archive, ...(r.service !== undefined ? ["--service", r.service] : []), "--flake", flake];
}

function startErrorText(command: string, code: string): string {
  return `clanbot: '${command}' ${startErrorReason(code)}`;
}
