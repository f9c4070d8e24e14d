/** What commands see of VMs: the shapes only; the processes are run in ops/, the records kept in storage/. */

import type { LogAttachment } from "./deploy-types.ts";

/** A forwarded port: `host` on the bot's host reaches `guest` inside the VM. */
export interface VmPort {
  readonly host: number;
  readonly guest: number;
}

/** clan: `clan vms run` (clan up to 25.11); nix: the NixOS VM runner built with `nix build` (any NixOS flake). */
export type VmBackendKind = "clan" | "nix";

export interface VmBackendInfo {
  readonly kind: VmBackendKind;
  /** How the bot chose it, for `!help vm`: "`clan vms --help` answered", "set in the config". */
  readonly why: string;
}

/** building: nix builds the VM (nix backend); running: the VM's process is alive. */
export type VmPhase = "building" | "running";

export interface VmState {
  /** The audit id of the `!vm run` that started it. */
  readonly id: number;
  readonly machine: string;
  readonly sender: string;
  readonly startedAt: number;
  readonly ports: readonly VmPort[];
  readonly phase: VmPhase;
  readonly backend: VmBackendKind;
  /** The leader of the VM's process group, once it runs. */
  readonly pid: number | undefined;
  /** Resident memory of the VM's whole process group, in bytes (read when asked). */
  readonly memoryBytes: number | undefined;
  /** Found again after a restart of the bot: its exit status cannot be known. */
  readonly adopted: boolean;
}

/** How a VM ended. `unknown`: it was not the bot's child any more (found again after a restart). */
export type VmExit =
  | { readonly kind: "code"; readonly code: number }
  | { readonly kind: "signal"; readonly signal: string }
  | { readonly kind: "unknown" };

/**
 * stopped: ended by `!vm stop` within the stop timeout; killed: it had to be killed; exited: ended by
 * itself with status 0; crashed: ended by itself otherwise; ended: ended by itself, found again after a restart
 * so its exit status cannot be known; failed: never ran (the build or start failed);
 * lost: ended while the bot was away; interrupted: the bot died while it was being built.
 */
export type VmResult = "stopped" | "killed" | "exited" | "crashed" | "ended" | "failed" | "lost" | "interrupted";

export interface VmEnd {
  readonly id: number;
  readonly machine: string;
  readonly sender: string;
  readonly startedAt: number;
  readonly endedAt: number;
  readonly result: VmResult;
  readonly exit: VmExit;
  readonly stoppedBy: string | undefined;
  /** The last lines of its log. */
  readonly tail: readonly string[];
  /** What went wrong before it ran (a failed build), in words. */
  readonly reason: string | undefined;
}

export interface VmRequest {
  readonly id: number;
  readonly sender: string;
  readonly machine: string;
  readonly ports: readonly VmPort[];
}

/** Why a VM was not started; every reason is told to the person who asked. */
export type VmRefusal =
  | { readonly kind: "limit"; readonly max: number; readonly running: readonly VmState[] }
  | { readonly kind: "machine-running"; readonly vm: VmState }
  /** holder: a VM of this clan (`machine`), another clan's VM, or something else on the host. */
  | { readonly kind: "port-taken"; readonly port: number; readonly holder: "vm" | "other-clan" | "host"; readonly machine?: string };

export type VmStart =
  | { readonly kind: "running"; readonly vm: VmState }
  | { readonly kind: "refused"; readonly refusal: VmRefusal }
  | { readonly kind: "failed"; readonly end: VmEnd };

/** A clan's VMs on the bot's host. */
export interface Vms {
  readonly backend: VmBackendInfo;
  /** VMs at once on the bot's host, all clans together. */
  readonly max: number;
  /** The host name in the URLs of forwarded ports. */
  readonly publicHost: string;
  readonly stopTimeoutMs: number;
  /**
   * Checks the limits, then builds (nix backend) and starts the VM. Resolves once the VM runs, or
   * with why it does not. How a running VM ends later is told by the service itself (an announcement).
   */
  start(request: VmRequest, onPhase: (vm: VmState) => void): Promise<VmStart>;
  /** This clan's VMs, oldest first, with their memory read now. */
  list(): VmState[];
  /** Stops a VM: SIGTERM to its process group, SIGKILL after the stop timeout. Undefined when none runs. */
  stop(machine: string, by: string): Promise<VmEnd | undefined>;
  /** The last lines of the log of the machine's VM (running, or else the last one). */
  tail(machine: string, lines: number): Promise<{ readonly id: number; readonly lines: readonly string[] } | undefined>;
  logFile(machine: string): Promise<LogAttachment | undefined>;
}
