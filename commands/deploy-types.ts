/** What commands see of deploys: the shapes only; the work is done in ops/, the records in storage/. */

import type { Attachment } from "./types.ts";

/**
 * switch: `clan machines update`; dry-run: `nix build` only; rollback: the previous generation over SSH;
 * install: `clan machines install`; restore: `clan backups restore`; vars: `clan vars generate`.
 */
export type DeployKind = "switch" | "dry-run" | "rollback" | "install" | "restore" | "vars";

/** What `!vars generate` asks of clan: one generator or all, missing vars only or all of them anew. */
export interface VarsGeneration {
  readonly generator?: string;
  readonly regenerate: boolean;
}

/** Machine, provider and service names as clan has them; anything else never reaches a command line. */
export const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;

/** An archive name as `clan backups list` prints them: one word, never an option. */
export const ARCHIVE_NAME = /^[^\s\x00-\x1f-][^\s\x00-\x1f]{0,511}$/;

/** Kinds that change a machine: one at a time per machine, held back by locks. */
export const MACHINE_CHANGING: ReadonlySet<DeployKind> = new Set<DeployKind>(["switch", "rollback", "install", "restore"]);

/** What a restore puts back: an archive of a provider, for one service or all of them. */
export interface RestoreSource {
  readonly provider: string;
  readonly archive: string;
  readonly service?: string;
}

/** The installer's QR code: the password, its Tor address and the addresses it listens on. */
export interface InstallerInfo {
  readonly pass: string | null;
  readonly tor: string | null;
  readonly addrs: readonly string[];
}

/** Where an install goes: the installer of a QR code (at the address that answered), or a plain target. */
export type InstallSource =
  | { readonly kind: "installer"; readonly installer: InstallerInfo; readonly address: string }
  | { readonly kind: "target"; readonly target: string };

/** Where one machine of a deploy is. The first four move forward; the rest are ends. */
export type MachinePhase =
  | "queued"
  | "building"
  | "copying"
  | "activating"
  | "done"
  | "failed"
  | "cancelled"
  | "timed-out"
  | "skipped"
  | "interrupted"
  | "reboot-needed";

/**
 * reboot-needed: clan built and registered the new system for the next boot, but switch inhibitors
 * (critical components such as dbus changed) kept it from switching live: a reboot finishes it.
 */
export type FinalPhase = "done" | "failed" | "cancelled" | "timed-out" | "skipped" | "interrupted" | "reboot-needed";

export const FINAL_PHASES: ReadonlySet<MachinePhase> = new Set<FinalPhase>(["done", "failed", "cancelled", "timed-out", "skipped", "interrupted", "reboot-needed"]);

/**
 * Why a queued machine waits: another run (a deploy, a backup) holds the machine, or every slot is
 * taken. `deployId` is the id of the run holding it; `activity` what it does ("deploying it").
 */
export type Waiting =
  | {
      readonly kind: "machine";
      readonly position: number;
      readonly deployId: number;
      readonly sender: string;
      readonly since: number;
      readonly activity: string;
    }
  | { readonly kind: "slot"; readonly running: number }
  /** Behind the clan's shared preparation (vars generators, inventory migrations), which `machine`'s process does first. */
  | { readonly kind: "preparation"; readonly machine: string };

export interface MachineRun {
  readonly machine: string;
  readonly phase: MachinePhase;
  readonly startedAt?: number;
  readonly finishedAt?: number;
  readonly waiting?: Waiting;
  readonly exitCode?: number;
  /** The system built (dry run) or activated (deploy, rollback). */
  readonly storePath?: string;
  /** The system generation a rollback ended on. */
  readonly generation?: number;
  /** The last lines of output, for a failure. */
  readonly tail: readonly string[];
  /** Why it was skipped, or who cancelled it. */
  readonly note?: string;
}

export type DeployResult = "running" | "ok" | "failed" | "cancelled" | "timed-out" | "interrupted";

export interface DeployState {
  readonly id: number;
  readonly kind: DeployKind;
  readonly sender: string;
  /** The flake's git revision: a short commit, "+dirty" when the work tree has changes. */
  readonly revision: string | undefined;
  readonly startedAt: number;
  readonly finishedAt?: number;
  readonly result: DeployResult;
  readonly cancelledBy?: string;
  readonly machines: readonly MachineRun[];
  /** For a restore: what it puts back. */
  readonly restore?: RestoreSource;
}

export interface DeployRequest {
  /** The audit id of the command: deploys are called by it (`#42`). */
  readonly id: number;
  readonly kind: DeployKind;
  readonly sender: string;
  readonly machines: readonly string[];
  /** For a rollback: the generation to switch to (default: the previous one). */
  readonly generation?: number;
  /** For an install: where to. */
  readonly install?: InstallSource;
  /** For a restore: what to put back. */
  readonly restore?: RestoreSource;
  /** For a vars generation: which generators, and whether anew. */
  readonly vars?: VarsGeneration;
}

export interface RunningDeploy {
  /** Resolves when every machine has ended; never rejects for a failed deploy. */
  readonly done: Promise<DeployState>;
  current(): DeployState;
}

export interface LogAttachment extends Attachment {
  /** Set when only the end of the log is attached: the size of the whole log. */
  readonly truncatedFrom?: number;
}

/** One row of `!deploys`. */
export interface DeployRecord {
  readonly id: number;
  readonly kind: DeployKind;
  readonly sender: string;
  readonly revision: string | undefined;
  readonly startedAt: number;
  readonly finishedAt: number | undefined;
  readonly result: DeployResult;
  readonly cancelledBy: string | undefined;
  readonly machines: readonly { readonly machine: string; readonly state: string }[];
}

export interface MachineLock {
  readonly machine: string;
  readonly holder: string;
  readonly reason: string | undefined;
  readonly since: number;
  readonly until: number;
}

/** A clan's deploys: the queue per machine, the slots, the locks and the history. */
export interface Deploys {
  /** Deploys of more machines than this (or of `all`) ask for confirmation first. */
  readonly confirmAbove: number;
  start(request: DeployRequest, onChange: (state: DeployState) => void): Promise<RunningDeploy>;
  /** Deploys not yet ended, oldest first. */
  active(): DeployState[];
  /** Stops a deploy, or only one machine of it, and resolves once they ended; false when nothing was left to stop. */
  cancel(id: number, by: string, machine?: string): Promise<boolean>;
  history(limit: number, machine?: string): Promise<DeployRecord[]>;
  /** The whole log of a deploy, ready to attach (compressed, or only its end, when large). */
  logFile(id: number): Promise<LogAttachment>;
  locks(): Promise<MachineLock[]>;
  /** Takes or renews a lock; returns the lock that stands in the way when someone else holds it. */
  lock(lock: MachineLock): Promise<{ taken: true } | { taken: false; held: MachineLock }>;
  unlock(machine: string): Promise<MachineLock | undefined>;
}
