import { newestFirst } from "../commands/archives.ts";
import {
  BACKUP_ENDS,
  type BackupEnd,
  type BackupPhase,
  type BackupRequest,
  type BackupStart,
  type BackupState,
  type Backups,
  type MachineBackups,
} from "../commands/backup-types.ts";
import { SAFE_NAME, type Waiting } from "../commands/deploy-types.ts";
import { formatDuration } from "../commands/format.ts";
import type { Clock, Log } from "../commands/types.ts";
import type { Db } from "../storage/db.ts";
import { backupRunStarted, finishBackupRun, machineSummaries, startBackupRun } from "../storage/backups.ts";
import { untilAborted } from "./abort.ts";
import type { ClanCli } from "./clan-cli.ts";
import { OutputTail } from "./deploy-output.ts";
import { Slots, type MachineHolder, type MachineQueue, type QueueTicket } from "./machine-queue.ts";
import { processStartTime } from "./process-identity.ts";
import { runProcess, startErrorReason } from "./process-runner.ts";

export interface BackupServiceOptions {
  clan: string;
  flake: string;
  db: Db;
  clock: Clock;
  log: Log;
  clanCommand: string;
  /** For `clan backups list`, which is quick: clan.timeout applies. */
  cli: ClanCli;
  /** Backups run at once in this clan. */
  parallel: number;
  /** How long one machine's backup may run before it is stopped. */
  timeoutMs: number;
  /** Between SIGTERM and SIGKILL when a backup is cancelled or times out. */
  killGraceMs: number;
  /** The clan's line per machine, shared with its deploys. */
  queue: MachineQueue<MachineHolder>;
  env?: Record<string, string>;
  /** Every run that ended, after its record was written. */
  onEnd?: (state: BackupState) => void;
}

interface Run {
  readonly request: BackupRequest;
  readonly startedAt: number;
  phase: BackupPhase;
  runStartedAt?: number;
  finishedAt?: number;
  waiting?: Waiting;
  archive?: string;
  exitCode?: number;
  note?: string;
  readonly tail: OutputTail;
  readonly abort: AbortController;
  readonly onChange: (s: BackupState) => void;
  readonly holder: MachineHolder;
  ticket?: QueueTicket<MachineHolder>;
  done?: Promise<BackupState>;
}

/**
 * A clan's backups: `clan backups create` per machine, one run per machine at a time (a second is
 * refused), in the machine's line with its deploys (a backup waits for a deploy or restore of the
 * machine, and they for it), at most `parallel` at once, each with a timeout, cancellable, its
 * records in SQLite. After a successful run, `clan backups list` tells the newest archive.
 */
export class BackupService implements Backups {
  private readonly o: BackupServiceOptions;
  private readonly slots: Slots;
  private readonly runs = new Map<number, Run>();

  constructor(o: BackupServiceOptions) {
    this.o = o;
    this.slots = new Slots(o.parallel);
  }

  async start(request: BackupRequest, onChange: (s: BackupState) => void): Promise<BackupStart> {
    const { machine, provider } = request;
    if (!SAFE_NAME.test(machine)) throw new Error(`refusing to back up a machine named ${JSON.stringify(machine)}`);
    if (provider !== undefined && !SAFE_NAME.test(provider)) throw new Error(`refusing a backup provider named ${JSON.stringify(provider)}`);
    const busy = [...this.runs.values()].find((r) => r.request.machine === machine);
    if (busy) return { busy: snapshot(busy) };
    const run: Run = {
      request,
      startedAt: this.o.clock.now(),
      phase: "queued",
      tail: new OutputTail(),
      abort: new AbortController(),
      onChange,
      holder: {
        id: request.id,
        sender: request.sender,
        activity: "backing it up",
        since: () => run.runStartedAt ?? run.startedAt,
        moved: () => this.setWaiting(run),
      },
    };
    // Taken at once, before anything is awaited: a second start for the machine sees it.
    this.runs.set(request.id, run);
    try {
      await startBackupRun(this.o.db, this.o.clan, snapshot(run));
    } catch (err) {
      this.runs.delete(request.id);
      throw err;
    }
    run.done = this.execute(run);
    return { started: { done: run.done, current: () => snapshot(run) } };
  }

  /** A scheduled run that found the machine's last backup still going: recorded as skipped, never run. */
  async skip(request: BackupRequest, busy: BackupState): Promise<BackupState> {
    const now = this.o.clock.now();
    const state: BackupState = {
      ...request,
      startedAt: now,
      finishedAt: now,
      phase: "skipped",
      tail: [],
      note: `#${busy.id} (by ${busy.sender}) was still running`,
    };
    await startBackupRun(this.o.db, this.o.clan, state);
    return state;
  }

  active(): BackupState[] {
    return [...this.runs.values()].map(snapshot);
  }

  async cancel(id: number, by: string): Promise<boolean> {
    const run = this.runs.get(id);
    if (!run || BACKUP_ENDS.has(run.phase)) return false;
    run.note = `cancelled by ${by}`;
    run.abort.abort(new Error(run.note));
    await run.done;
    return true;
  }

  async archives(machine: string, provider: string | undefined, signal: AbortSignal): Promise<string[]> {
    if (!SAFE_NAME.test(machine)) throw new Error(`refusing to list backups of a machine named ${JSON.stringify(machine)}`);
    const args = ["backups", "list", machine, ...(provider !== undefined ? ["--provider", provider] : [])];
    const result = await this.o.cli.run(this.o.flake, args, `Listing the backups of ${machine}`, { collectStdout: true, signal });
    return newestFirst(result.stdout.split("\n").map((l) => l.trim()).filter((l) => l !== ""));
  }

  summary(machines: readonly string[]): Promise<MachineBackups[]> {
    return machineSummaries(this.o.db, this.o.clan, machines);
  }

  private async execute(run: Run): Promise<BackupState> {
    const { machine, provider } = run.request;
    const signal = run.abort.signal;
    let release: (() => void) | undefined;
    try {
      run.ticket = this.o.queue.enter(machine, run.holder);
      this.setWaiting(run);
      await untilAborted(run.ticket.granted, signal);
      if (this.slots.inUse >= this.o.parallel) {
        run.waiting = { kind: "slot", running: this.slots.inUse };
        this.emit(run);
      }
      release = await this.slots.acquire(signal);
      run.waiting = undefined;
      // The archives before, to tell whether the run made one: clan only starts the provider's job.
      const before = await this.archives(machine, provider, signal).catch(() => undefined);
      const end = await this.create(run, machine, provider);
      if (end !== "ok") return await this.end(run, end);
      run.phase = "listing";
      this.emit(run);
      try {
        const newest = (await this.archives(machine, provider, signal))[0];
        if (newest !== undefined && before?.includes(newest)) {
          run.note = `no new archive appeared: the newest is still ${newest}, which was there before this run`;
        } else if (newest === undefined) {
          run.note = "no archive appeared: clan lists none for this machine";
        } else run.archive = newest;
      } catch (err) {
        // The backup itself went through; only its name is unknown.
        run.note = `the backup ran, but listing the archives failed: ${err instanceof Error ? err.message : String(err)}`;
      }
      return await this.end(run, "ok");
    } catch (err) {
      if (signal.aborted) return await this.end(run, "cancelled");
      run.tail.push(`clanbot: ${err instanceof Error ? err.message : String(err)}`);
      this.o.log.error({ err, backup: run.request.id, machine }, "backup of a machine failed inside the bot");
      return await this.end(run, "failed");
    } finally {
      release?.();
      run.ticket?.leave();
    }
  }

  /** `clan backups create`: how it ended. */
  private async create(run: Run, machine: string, provider: string | undefined): Promise<BackupEnd> {
    const { clock, db } = this.o;
    run.phase = "running";
    const startedAt = clock.now();
    run.runStartedAt = startedAt;
    this.emit(run);
    let recording: Promise<void> = Promise.resolve();
    const args = ["backups", "create", machine, ...(provider !== undefined ? ["--provider", provider] : []), "--flake", this.o.flake];
    const result = await runProcess(this.o.clanCommand, args, {
      cwd: this.o.flake,
      timeoutMs: this.o.timeoutMs,
      killGraceMs: this.o.killGraceMs,
      signal: run.abort.signal,
      stderrTailLines: 0,
      onLine: (line) => run.tail.push(line),
      onSpawn: (pid) => {
        recording = backupRunStarted(db, run.request.id, startedAt, pid, processStartTime(pid));
      },
      ...(this.o.env ? { env: this.o.env } : {}),
    });
    await recording;
    if (result.cancelled) return "cancelled";
    if (result.timedOut) {
      run.note = `stopped after ${formatDuration(this.o.timeoutMs)}`;
      return "timed-out";
    }
    if (result.startError !== undefined) {
      run.tail.push(`clanbot: '${this.o.clanCommand}' ${startErrorReason(result.startError)}`);
      return "failed";
    }
    if (result.exitCode !== undefined) run.exitCode = result.exitCode;
    return result.exitCode === 0 ? "ok" : "failed";
  }

  private async end(run: Run, phase: BackupEnd): Promise<BackupState> {
    run.phase = phase;
    run.waiting = undefined;
    run.finishedAt = this.o.clock.now();
    const state = snapshot(run) as BackupState & { phase: BackupEnd; finishedAt: number };
    this.runs.delete(run.request.id);
    try {
      await finishBackupRun(this.o.db, state);
    } catch (err) {
      this.o.log.error({ err, backup: run.request.id }, "could not record how a backup ended");
    }
    run.onChange(state);
    this.o.onEnd?.(state);
    return state;
  }

  private setWaiting(run: Run): void {
    const t = run.ticket;
    if (!t || run.phase !== "queued") return;
    const position = t.position();
    const holder = t.holder();
    if (position > 0 && holder) {
      run.waiting = {
        kind: "machine",
        position,
        deployId: holder.id,
        sender: holder.sender,
        since: holder.since(run.request.machine),
        activity: holder.activity,
      };
    } else if (run.waiting?.kind === "machine") run.waiting = undefined;
    this.emit(run);
  }

  private emit(run: Run): void {
    if (BACKUP_ENDS.has(run.phase)) return;
    run.onChange(snapshot(run));
  }
}

function snapshot(run: Run): BackupState {
  const ended = BACKUP_ENDS.has(run.phase);
  return {
    ...run.request,
    startedAt: run.startedAt,
    phase: run.phase,
    // Output is only shown for a failure; reading the tail decodes it.
    tail: run.phase === "failed" || run.phase === "timed-out" ? run.tail.get() : [],
    ...(run.runStartedAt !== undefined ? { runStartedAt: run.runStartedAt } : {}),
    ...(run.finishedAt !== undefined ? { finishedAt: run.finishedAt } : {}),
    ...(run.waiting && !ended ? { waiting: run.waiting } : {}),
    ...(run.archive !== undefined ? { archive: run.archive } : {}),
    ...(run.exitCode !== undefined ? { exitCode: run.exitCode } : {}),
    ...(run.note !== undefined ? { note: run.note } : {}),
  };
}
