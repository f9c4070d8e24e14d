import { mkdirSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import type { LogAttachment } from "../commands/deploy-types.ts";
import type { Clock, Log } from "../commands/types.ts";
import type { VmBackendInfo, VmEnd, VmExit, VmPort, VmRefusal, VmRequest, VmResult, VmStart, VmState, Vms } from "../commands/vm-types.ts";
import type { Db } from "../storage/db.ts";
import { endVm, lastVmOf, startVm, unfinishedVms, vmBuilding, vmRunning, type VmRecord } from "../storage/vms.ts";
import { packLog } from "./log-attachment.ts";
import { LogFile } from "./log-file.ts";
import { readTail } from "./log-tail.ts";
import { groupMembers, groupRssBytes, signalGroup } from "./process-group.ts";
import { isSameProcess, processStartTime, stopLeftoverGroup } from "./process-identity.ts";
import { runProcess, startErrorReason } from "./process-runner.ts";
import { builtPath, clanVmArgs, findVmRunner, nixVmBuildArgs, qemuNetOpts, spawnDetached } from "./vm-backend.ts";

export interface VmServiceOptions {
  db: Db;
  clock: Clock;
  log: Log;
  backend: VmBackendInfo;
  clanCommand: string;
  nixCommand: string;
  /** VMs at once on this host, all clans together. */
  max: number;
  publicHost: string;
  stopTimeoutMs: number;
  /** A VM that ends this soon after it started did not start: `!vm run` says so instead of "running". */
  startGraceMs: number;
  buildTimeoutMs: number;
  /** Logs go to `<dir>/logs/<clan>/`, each VM's disk image and build link to `<dir>/<clan>/<machine>/`. */
  dir: string;
  /** How often a VM found again after a restart (not the bot's child) is checked. */
  pollMs?: number;
  /** A VM ended without `!vm stop` (exited, crashed, lost meanwhile): the room is told. */
  onEnd: (clan: string, end: VmEnd) => void;
}

const TAIL_LINES = 15;

interface LiveVm {
  id: number;
  clan: string;
  machine: string;
  sender: string;
  startedAt: number;
  ports: readonly VmPort[];
  phase: "building" | "running";
  backend: VmRecord["backend"];
  logPath: string;
  adopted: boolean;
  pid?: number;
  pidStart?: string;
  starting: boolean;
  stopping?: { by: string; killed: boolean; timer?: NodeJS.Timeout };
  build: AbortController;
  poll?: NodeJS.Timeout;
  finishing: boolean;
  ended: Promise<VmEnd>;
  resolveEnded: (end: VmEnd) => void;
}

/** Whether something on this host already listens on `port` (another program, not one of our VMs). */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen({ port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/**
 * The VMs on the bot's host, of every clan: the limit and the forwarded ports are the host's, so one
 * service holds them all; `forClan` gives each clan its view. A VM runs detached, its output in its
 * log, its process recorded, so it outlives the bot and is found again by `recover` at the next start.
 */
export class VmService {
  private readonly o: VmServiceOptions;
  private readonly live = new Map<number, LiveVm>();

  constructor(o: VmServiceOptions) {
    this.o = o;
  }

  forClan(clan: string, flake: string): Vms {
    return {
      backend: this.o.backend,
      max: this.o.max,
      publicHost: this.o.publicHost,
      stopTimeoutMs: this.o.stopTimeoutMs,
      start: (request, onPhase) => this.start(clan, flake, request, onPhase),
      list: () => [...this.live.values()].filter((v) => v.clan === clan).map((v) => this.state(v, true)),
      stop: (machine, by) => this.stop(clan, machine, by),
      tail: async (machine, lines) => {
        const vm = await this.logOf(clan, machine);
        return vm && { id: vm.id, lines: await readTail(vm.logPath, lines) };
      },
      logFile: async (machine): Promise<LogAttachment | undefined> => {
        const vm = await this.logOf(clan, machine);
        return vm && packLog(vm.logPath);
      },
    };
  }

  /** At start: VMs still running are watched again; ones that ended meanwhile, or died being built, are told. */
  async recover(): Promise<void> {
    for (const r of await unfinishedVms(this.o.db)) {
      if (r.result === "running" && r.pid !== undefined && isSameProcess(r.pid, r.pidStart)) {
        const vm = this.track(r, "running", true);
        vm.pid = r.pid;
        if (r.pidStart !== undefined) vm.pidStart = r.pidStart;
        vm.starting = false;
        this.watch(vm);
        this.o.log.info({ vm: r.id, clan: r.clan, machine: r.machine, pid: r.pid }, "watching a VM started before this restart");
        continue;
      }
      // A build nobody waits for must not go on and hold the machine.
      if (r.result === "building" && r.pid !== undefined) stopLeftoverGroup(r.pid, r.pidStart, this.o.stopTimeoutMs);
      const end: VmEnd = {
        ...this.endBase(r),
        result: r.result === "building" ? "interrupted" : "lost",
        exit: { kind: "unknown" },
        stoppedBy: undefined,
        tail: await readTail(r.logPath, TAIL_LINES),
        reason: r.result === "building" ? "the bot stopped while it was being built" : "it ended while the bot was away",
      };
      await endVm(this.o.db, r.id, end);
      this.o.onEnd(r.clan, end);
    }
  }

  /** The bot stops: VMs go on running (found again at the next start); builds in progress are stopped. */
  close(): void {
    for (const vm of this.live.values()) {
      clearInterval(vm.poll);
      vm.build.abort(new Error("the bot is shutting down"));
    }
  }

  private async start(clan: string, flake: string, req: VmRequest, onPhase: (vm: VmState) => void): Promise<VmStart> {
    const refusal = this.refusal(clan, req);
    if (refusal) return { kind: "refused", refusal };
    const dir = join(this.o.dir, clan, req.machine);
    const logDir = join(this.o.dir, "logs", clan);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    mkdirSync(logDir, { recursive: true, mode: 0o700 });
    const record: VmRecord = {
      id: req.id,
      clan,
      machine: req.machine,
      sender: req.sender,
      backend: this.o.backend.kind,
      ports: req.ports,
      logPath: join(logDir, `vm-${req.id}-${req.machine}.log`),
      startedAt: this.o.clock.now(),
      result: "building",
      pid: undefined,
      pidStart: undefined,
    };
    // Taken before the first await, so that two requests at once cannot both pass the checks.
    const vm = this.track(record, "building", false);
    try {
      return await this.startTracked(vm, record, flake, dir, req, onPhase);
    } catch (err) {
      // Nothing runs (or what runs is not recorded): the machine and its ports must not stay taken.
      if (vm.pid === undefined) this.live.delete(vm.id);
      throw err;
    }
  }

  private async startTracked(vm: LiveVm, record: VmRecord, flake: string, dir: string, req: VmRequest, onPhase: (vm: VmState) => void): Promise<VmStart> {
    for (const p of req.ports) {
      if (!(await portFree(p.host))) {
        this.live.delete(vm.id);
        return { kind: "refused", refusal: { kind: "port-taken", port: p.host, holder: "host" } };
      }
    }
    await startVm(this.o.db, record);
    onPhase(this.state(vm, false));
    const launch = await this.launch(vm, flake, dir);
    if ("error" in launch) return { kind: "failed", end: await this.finish(vm, { kind: "unknown" }, launch.error) };
    vm.phase = "running";
    onPhase(this.state(vm, false));
    const early = await Promise.race([vm.ended, new Promise<undefined>((r) => setTimeout(() => r(undefined), this.o.startGraceMs).unref())]);
    vm.starting = false;
    if (early) return { kind: "failed", end: early };
    return { kind: "running", vm: this.state(vm, true) };
  }

  private refusal(clan: string, req: VmRequest): VmRefusal | undefined {
    const all = [...this.live.values()];
    const same = all.find((v) => v.clan === clan && v.machine === req.machine);
    if (same) return { kind: "machine-running", vm: this.state(same, false) };
    for (const p of req.ports) {
      const holder = all.find((v) => v.ports.some((q) => q.host === p.host));
      if (holder) return { kind: "port-taken", port: p.host, holder: holder.clan === clan ? "vm" : "other-clan", ...(holder.clan === clan ? { machine: holder.machine } : {}) };
    }
    if (all.length >= this.o.max) return { kind: "limit", max: this.o.max, running: all.filter((v) => v.clan === clan).map((v) => this.state(v, false)) };
    return undefined;
  }

  /** Builds (nix backend) and spawns the VM's process; an error in words when it could not be started. */
  private async launch(vm: LiveVm, flake: string, dir: string): Promise<{ pid: number } | { error: string }> {
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
      const exit: VmExit = code !== null ? { kind: "code", code } : { kind: "signal", signal: signal ?? "unknown" };
      void this.finish(vm, exit).catch((err: unknown) => this.o.log.error({ err, vm: vm.id }, "could not record the end of a VM"));
    };
    let spawned: { pid: number } | { error: string };
    if (this.o.backend.kind === "clan") {
      spawned = spawnDetached(this.o.clanCommand, clanVmArgs(flake, vm.machine, vm.ports), { cwd: dir, env: {}, logPath: vm.logPath, onExit });
    } else {
      const runner = await this.build(vm, flake, dir);
      if (typeof runner !== "string") return runner;
      spawned = spawnDetached(runner, [], {
        cwd: dir,
        // The disk image would otherwise land in the working directory, named after the host name.
        env: { QEMU_NET_OPTS: qemuNetOpts(vm.ports), NIX_DISK_IMAGE: join(dir, "disk.qcow2") },
        logPath: vm.logPath,
        onExit,
      });
    }
    if ("error" in spawned) return spawned;
    vm.pid = spawned.pid;
    const start = processStartTime(spawned.pid);
    if (start !== undefined) vm.pidStart = start;
    await vmRunning(this.o.db, vm.id, spawned.pid, start);
    return spawned;
  }

  /** `nix build` of the VM, its output in the VM's log; the runner script it produced. */
  private async build(vm: LiveVm, flake: string, dir: string): Promise<string | { error: string }> {
    const log = new LogFile(vm.logPath);
    try {
      log.line(`clanbot: nix build of ${vm.machine}'s VM`);
      const r = await runProcess(this.o.nixCommand, nixVmBuildArgs(flake, vm.machine, join(dir, "result")), {
        timeoutMs: this.o.buildTimeoutMs,
        signal: vm.build.signal,
        collectStdout: true,
        stderrTailLines: 0,
        onLine: (line, stream) => stream === "stderr" && log.line(line),
        onSpawn: (pid) => void vmBuilding(this.o.db, vm.id, pid, processStartTime(pid)).catch((err: unknown) => this.o.log.warn({ err }, "could not record a VM build")),
      });
      if (r.startError !== undefined) return { error: `the nix command '${this.o.nixCommand}' ${startErrorReason(r.startError)}` };
      if (r.cancelled) return { error: vm.stopping ? `stopped by ${vm.stopping.by} while it was being built` : "the build was stopped" };
      if (r.timedOut) return { error: "the build took too long and was stopped" };
      if (r.exitCode !== 0) return { error: `the VM could not be built (nix build exited with status ${r.exitCode ?? r.signal ?? "?"})` };
      const path = builtPath(r);
      if (path === undefined) return { error: "nix build printed no store path" };
      const runner = await findVmRunner(path);
      if (typeof runner === "string") log.line(`clanbot: starting ${runner}`);
      return runner;
    } finally {
      log.close();
    }
  }

  /** A VM found again after a restart is not the bot's child: whether it still lives is checked every so often. */
  private watch(vm: LiveVm): void {
    vm.poll = setInterval(() => {
      if (vm.pid !== undefined && isSameProcess(vm.pid, vm.pidStart)) return;
      clearInterval(vm.poll);
      void this.finish(vm, { kind: "unknown" }).catch((err: unknown) => this.o.log.error({ err, vm: vm.id }, "could not record the end of a VM"));
    }, this.o.pollMs ?? 1000);
    vm.poll.unref();
  }

  private async stop(clan: string, machine: string, by: string): Promise<VmEnd | undefined> {
    const vm = [...this.live.values()].find((v) => v.clan === clan && v.machine === machine);
    if (!vm) return undefined;
    if (!vm.stopping) {
      vm.stopping = { by, killed: false };
      const stopping = vm.stopping;
      if (vm.pid === undefined) vm.build.abort(new Error(`stopped by ${by}`));
      else {
        const pid = vm.pid;
        signalGroup(pid, "SIGTERM");
        stopping.timer = setTimeout(() => {
          stopping.killed = true;
          signalGroup(pid, "SIGKILL");
        }, this.o.stopTimeoutMs);
      }
    }
    return vm.ended;
  }

  /** The VM's leader ended: what it left in its group is ended too, the record closed, the room told. */
  private async finish(vm: LiveVm, exit: VmExit, reason?: string): Promise<VmEnd> {
    if (vm.finishing) return vm.ended;
    vm.finishing = true;
    clearInterval(vm.poll);
    if (vm.pid !== undefined) {
      // Being stopped: the rest of the group (QEMU under `clan vms run`) gets until the stop timeout.
      while (vm.stopping && !vm.stopping.killed && groupMembers(vm.pid).length) await new Promise((r) => setTimeout(r, 100));
      signalGroup(vm.pid, "SIGKILL");
    }
    clearTimeout(vm.stopping?.timer);
    const result: VmResult = vm.stopping
      ? vm.stopping.killed
        ? "killed"
        : "stopped"
      : reason !== undefined || vm.starting
        ? "failed"
        : exit.kind === "unknown"
          ? "ended"
          : exit.kind === "code" && exit.code === 0
            ? "exited"
            : "crashed";
    const end: VmEnd = {
      ...this.endBase(vm),
      result,
      exit,
      stoppedBy: vm.stopping?.by,
      tail: await readTail(vm.logPath, TAIL_LINES),
      reason,
    };
    this.live.delete(vm.id);
    await endVm(this.o.db, vm.id, end);
    vm.resolveEnded(end);
    if (!vm.stopping && !vm.starting) this.o.onEnd(vm.clan, end);
    return end;
  }

  private endBase(r: { id: number; machine: string; sender: string; startedAt: number }): Pick<VmEnd, "id" | "machine" | "sender" | "startedAt" | "endedAt"> {
    return { id: r.id, machine: r.machine, sender: r.sender, startedAt: r.startedAt, endedAt: this.o.clock.now() };
  }

  private track(r: VmRecord, phase: LiveVm["phase"], adopted: boolean): LiveVm {
    let resolveEnded: (end: VmEnd) => void = () => undefined;
    const ended = new Promise<VmEnd>((resolve) => (resolveEnded = resolve));
    const vm: LiveVm = {
      id: r.id,
      clan: r.clan,
      machine: r.machine,
      sender: r.sender,
      startedAt: r.startedAt,
      ports: r.ports,
      phase,
      backend: r.backend,
      logPath: r.logPath,
      adopted,
      starting: true,
      build: new AbortController(),
      finishing: false,
      ended,
      resolveEnded,
    };
    this.live.set(vm.id, vm);
    return vm;
  }

  private state(vm: LiveVm, withMemory: boolean): VmState {
    return {
      id: vm.id,
      machine: vm.machine,
      sender: vm.sender,
      startedAt: vm.startedAt,
      ports: vm.ports,
      phase: vm.phase,
      backend: vm.backend,
      pid: vm.pid,
      memoryBytes: withMemory && vm.pid !== undefined ? groupRssBytes(vm.pid) : undefined,
      adopted: vm.adopted,
    };
  }

  private async logOf(clan: string, machine: string): Promise<{ id: number; logPath: string } | undefined> {
    const vm = [...this.live.values()].find((v) => v.clan === clan && v.machine === machine);
    return vm ?? (await lastVmOf(this.o.db, clan, machine));
  }
}
