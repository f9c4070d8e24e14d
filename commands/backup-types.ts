/** What commands see of backups and schedules: the shapes only; the work is done in ops/ and bot/, the records in storage/. */

import type { Waiting } from "./deploy-types.ts";

/** Who asked for a backup: a person's command, or a schedule. */
export type BackupTrigger = "command" | "schedule";

/**
 * Where a backup run is. queued: waiting for the machine (another run holds it) or a slot;
 * running: `clan backups create`; listing: `clan backups list`, to learn the newest archive.
 * The rest are ends, and also what the record keeps as the result.
 */
export type BackupPhase = "queued" | "running" | "listing" | BackupEnd;

export type BackupEnd = "ok" | "failed" | "cancelled" | "timed-out" | "skipped" | "interrupted";

export const BACKUP_ENDS: ReadonlySet<BackupPhase> = new Set<BackupEnd>(["ok", "failed", "cancelled", "timed-out", "skipped", "interrupted"]);

export interface BackupRequest {
  /** The audit id of the command, or of the scheduled run's own audit row: backups are called by it (`#42`). */
  readonly id: number;
  readonly machine: string;
  /** `--provider`; undefined runs every provider the machine has, as clan does. */
  readonly provider?: string;
  /** The person, or `schedule #3`. */
  readonly sender: string;
  readonly trigger: BackupTrigger;
  readonly scheduleId?: number;
  /** When the schedule was due (its slot). */
  readonly dueAt?: number;
  /** A run that fell due while the bot was down, run once at start-up. */
  readonly late?: boolean;
}

/** One backup run of one machine, live or from the records. */
export interface BackupState extends BackupRequest {
  /** When it was asked for. */
  readonly startedAt: number;
  /** When `clan backups create` started (after any wait). */
  readonly runStartedAt?: number;
  readonly finishedAt?: number;
  readonly phase: BackupPhase;
  readonly waiting?: Waiting;
  /** The newest archive after a successful run. */
  readonly archive?: string;
  readonly exitCode?: number;
  /** The last lines of output, for a failure. */
  readonly tail: readonly string[];
  /** Who cancelled it, why it was skipped or timed out, or what went wrong after the backup itself. */
  readonly note?: string;
}

export interface RunningBackup {
  /** Resolves when the run has ended; never rejects for a failed backup. */
  readonly done: Promise<BackupState>;
  current(): BackupState;
}

/** A run started, or refused because another backup of the machine is running or queued. */
export type BackupStart = { readonly started: RunningBackup } | { readonly busy: BackupState };

/** A machine's backups as the bot has seen them. */
export interface MachineBackups {
  readonly machine: string;
  /** The last run that ended well. */
  readonly lastOk?: { readonly id: number; readonly finishedAt: number; readonly archive?: string };
  /** The last run that ended at all (skipped ones aside). */
  readonly last?: { readonly id: number; readonly finishedAt: number; readonly result: BackupEnd };
  /** Since when the room was told it is overdue, when it is. */
  readonly overdueSince?: number;
}

/** A clan's backups: one run per machine at a time, in line with deploys of the machine. */
export interface Backups {
  start(request: BackupRequest, onChange: (state: BackupState) => void): Promise<BackupStart>;
  /** Runs not yet ended, oldest first. */
  active(): BackupState[];
  /** Stops a run and resolves once it ended; false when nothing was left to stop. */
  cancel(id: number, by: string): Promise<boolean>;
  /** `clan backups list`: archive names, newest first. */
  archives(machine: string, provider: string | undefined, signal: AbortSignal): Promise<string[]>;
  /** Each machine's last success and last run, for these machines. */
  summary(machines: readonly string[]): Promise<MachineBackups[]>;
}

export type Notify = "always" | "failures";
export const NOTIFY: readonly Notify[] = ["always", "failures"];

export interface NewSchedule {
  /** A machine, `tag:<tag>` or `all`, checked against the inventory when it was made. */
  readonly target: string;
  readonly cron: string;
  readonly timeZone: string;
  readonly notify: Notify;
  readonly provider?: string;
  readonly createdBy: string;
}

export interface Schedule extends NewSchedule {
  readonly id: number;
  readonly createdAt: number;
  /** When it runs next. */
  readonly nextRun: number;
}

/** A cron expression and time zone, checked: the normalized forms and the next runs, or why not. */
export type ScheduleCheck =
  | { readonly ok: true; readonly cron: string; readonly timeZone: string; readonly next: readonly number[] }
  /** `tooOften`: the expression is fine, but runs closer together than backup.minInterval allows (refused, not bad input). */
  | { readonly ok: false; readonly reason: string; readonly tooOften?: boolean };

/** A clan's backup schedules, run by the bot's one scheduler. */
export interface Schedules {
  /** The time zone a schedule gets without `--tz`: the bot host's. */
  readonly defaultTimeZone: string;
  /** Parses a cron expression in a time zone (the default one when undefined). */
  check(cron: string, timeZone: string | undefined): ScheduleCheck;
  add(schedule: NewSchedule): Promise<Schedule>;
  list(): Promise<Schedule[]>;
  /** Removes one of this clan's schedules; undefined when it has none with that id. */
  remove(id: number): Promise<Schedule | undefined>;
}
