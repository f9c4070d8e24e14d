/** What commands see of the machines over SSH: shapes only; the work is done in ops/. */

import type { InstallerInfo } from "./deploy-types.ts";
import type { ReplyContent } from "./types.ts";

export type InstallerRead = { readonly ok: true; readonly installer: InstallerInfo } | { readonly ok: false; readonly reason: string };

/** What `!status` learns from a machine (read by ops/machine-health.ts). */
export interface MachineHealth {
  readonly uptimeSeconds: number | undefined;
  /** `25.11.20260815.5e2a59a (Xantusia)`, or undefined when the machine is not NixOS. */
  readonly nixosVersion: string | undefined;
  readonly currentSystem: string | undefined;
  readonly bootedSystem: string | undefined;
  /** `system-42-link` → 42. */
  readonly generation: number | undefined;
  readonly bootId: string | undefined;
  /** The running system differs from the booted one, or the next boot starts another (the profile's). */
  readonly rebootPending: boolean;
  /** Where /nix/var/nix/profiles/system points: what the next boot starts. */
  readonly nextBootSystem?: string | undefined;
  readonly failedUnits: readonly string[];
  readonly rootDisk: { readonly sizeKiB: number; readonly usedKiB: number; readonly availKiB: number } | undefined;
}

/** Whether the running system is the one the bot last deployed (or rolled back to) there. */
export type Drift =
  | { readonly kind: "in-sync"; readonly deployId: number }
  | { readonly kind: "drifted"; readonly expected: string; readonly deployId: number }
  | { readonly kind: "unknown" };

export type MachineStatus =
  | { readonly machine: string; readonly ok: true; readonly target: string; readonly health: MachineHealth; readonly drift: Drift; readonly pinnedNow: boolean }
  | {
      readonly machine: string;
      readonly ok: false;
      readonly target: string | undefined;
      /** no-target: nothing to connect to; the rest: what went wrong on the way. */
      readonly problem: "no-target" | "unreachable" | "timeout" | "host-key-changed" | "host-key-unknown" | "auth" | "closed" | "cancelled" | "failed";
      readonly detail: string;
    };

export interface RebootReport {
  readonly target: string;
  /** From the reboot command until SSH answered again with a new boot id. */
  readonly downtimeMs: number | undefined;
  readonly cameBack: boolean;
  /** How long the bot waited before giving up (when it did not come back). */
  readonly waitedMs: number;
}

export type TrustResult =
  | { readonly kind: "pinned"; readonly fingerprint: string; readonly previous: string | undefined }
  | { readonly kind: "unchanged"; readonly fingerprint: string };

/** The clan's machines over SSH, with the bot's own key. */
export interface SshMachines {
  /** authorized_keys line of the bot's key. */
  readonly publicKey: string;
  readonly keyFingerprint: string;
  /** Set when host keys come from a known_hosts file: what `!trust` should say instead. */
  readonly trustAdvice: string | undefined;
  status(machines: readonly string[], signal: AbortSignal): Promise<MachineStatus[]>;
  /** Reboots and waits (bounded) until SSH answers with a new boot id. */
  reboot(machine: string, signal: AbortSignal, progress: (stage: "rebooting" | "waiting") => void): Promise<RebootReport>;
  /** Connects and pins the key the machine offers now. */
  trust(machine: string, signal: AbortSignal): Promise<TrustResult>;
  /**
   * The first of `addresses` where something answers with an SSH banner (the installer's port):
   * IPv4 first, then global IPv6, link-local IPv6 (unusable without its interface) last.
   */
  firstAnswering(addresses: readonly string[], signal: AbortSignal): Promise<string | undefined>;
  /** Whether the installer at `address` lets root in with the bot's key (any host key: an installer's is new at each boot). */
  installerLogin(address: string, signal: AbortSignal): Promise<"accepted" | "refused" | "unreachable">;
  /** A reinstalled machine has a new host key: forget the pinned one. */
  forgetHostKey(machine: string): Promise<void>;
  /** The installer's QR code from a photo (JPEG, PNG) or its pasted JSON; never echoes the password. */
  readInstallerCode(content: ReplyContent): Promise<InstallerRead>;
  /** Checks `user@host:port` as typed; `text` is the address as it will be passed on. */
  parseTarget(text: string): { readonly text: string } | { readonly error: string };
  }
