// Helpers for tests that drive the fake `clan` (demo/fake-clan/clan): the
// fixture type, temporary flakes, the invocation log, and processes of a group.
// The fixture format and the behaviour knobs are documented at the top of the
// executable itself.

import { existsSync, readFileSync, readdirSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The directory to put first on PATH so that `clan` is the fake. */
export const fakeClanDir: string = findFakeClan(path.dirname(fileURLToPath(import.meta.url)));

/** Next to this file in the sources; from the built package (dist/demo/), the shipped demo/ folder. */
function findFakeClan(here: string): string {
  const beside = path.join(here, "fake-clan");
  return existsSync(beside) ? beside : path.join(here, "..", "..", "demo", "fake-clan");
}
/** Absolute path of the fake `clan` executable. */
export const fakeClanPath: string = path.join(fakeClanDir, "clan");
/** Absolute path of the fake `nix` (only `nix build` of a machine's system, for dry runs). */
export const fakeNixPath: string = path.join(fakeClanDir, "nix");
export const FIXTURE_FILE = "clan-fixture.json";
/** Exit status of the fake for a clan command it does not emulate, or a bad fixture. */
export const NOT_EMULATED_EXIT = 99;

export type FakeClanCommand =
  | "machines list"
  | "machines update"
  | "machines install"
  | "machines build"
  | "machines generations"
  | "select"
  | "backups create"
  | "backups list"
  | "backups restore"
  | "vars list"
  | "vars get"
  | "vars set"
  | "vars generate"
  | "vars check"
  | "nix build"
  /** `clan vms run` (FAKE_CLAN_RELEASE 25.11): the VM's build. */
  | "vms run"
  /** The fake QEMU (fake-qemu.mjs) that `run-<hostName>-vm` and `clan vms run` start. */
  | "vm";

/** The nixos-anywhere phases of `clan machines install`, in the order clan runs them. */
export type FakeClanInstallPhase = "kexec" | "disko" | "install" | "reboot";

/** true: every machine; a list: only these machines. */
export type MachineSwitch = boolean | string[];

export interface FakeClanKnobs {
  delayMs?: number;
  outputLines?: number;
  bytes?: number;
  bytesStream?: "stdout" | "stderr";
  fail?: MachineSwitch;
  /** update: "build" (default) | "connect" | "activate" | "inhibitors"; install: a phase (default "install") or "connect". */
  failPhase?: "build" | "connect" | "activate" | "inhibitors" | FakeClanInstallPhase;
  failMessage?: string;
  hang?: MachineSwitch;
  hangOnStdin?: MachineSwitch;
  generateVars?: MachineSwitch;
  orphanGraceMs?: number;
  /** backups create: the provider's job succeeds but makes no new archive. */
  noArchive?: MachineSwitch;
  /** update: the nix/ssh stand-ins run inside the fake instead of as child processes (benchmarks). */
  inlineStandIns?: boolean;
  /** install: installer addresses (or --target-host hosts) that do not answer. */
  unreachable?: string[];
  /** install: the target runs the clan installer, so kexec does nothing (default: true for -j/-P). */
  installer?: boolean;
  /** install with -j/-P: exit as clan really does (success: exit 1 "No reachable remote found in QR code data: "; ClanError: swallowed, exit 0). */
  qrCodeExitBug?: boolean;
  /** install: the installer lets root in by key only (PermitRootLogin prohibit-password, `"pass": null`): `-i FILE` must hold a key it has. */
  keyOnly?: boolean;
  /** install with keyOnly: the public keys on the installer ("ssh-ed25519 AAAA..."); absent: any key given with -i. */
  authorizedKeys?: string[];
  /** vm (the fake QEMU): time before the login prompt. */
  bootMs?: number;
  /** vm: SIGTERM does nothing, so a stop has to kill. */
  ignoreSigterm?: boolean;
  /** vm: a guest kernel panic this long after start, exit 1 (SIGUSR1 does it at once). */
  crashAfterMs?: number;
  /** vm: the guest powers off this long after start, exit 0. */
  exitAfterMs?: number;
  /** vm: memory it allocates and touches, so that its RSS shows. */
  memoryMiB?: number;
}

export interface FakeClanCommandKnobs extends FakeClanKnobs {
  perMachine?: Record<string, FakeClanKnobs>;
}

export interface FakeClanMachine {
  name?: string;
  description?: string;
  icon?: string;
  tags?: string[];
  machineClass?: "nixos" | "darwin";
  installedAt?: number;
  deploy?: { targetHost?: string; buildHost?: string; forwardAgent?: boolean };
  networking?: { targetHost?: string; buildHost?: string };
  hostName?: string;
  system?: string;
  requireExplicitUpdate?: boolean;
  /** system.stateVersion (default "25.11"). */
  stateVersion?: string;
  /** false: ssh does not know the host key yet (default true), when no known_hosts line names the host. */
  hostKeyKnown?: boolean;
  /** The host key the machine shows ("ssh-ed25519 AAAA..."): a known_hosts line with another key for its name fails. */
  hostKey?: string;
  state?: Record<string, { folders: string[]; preRestoreCommand?: string | null; postRestoreCommand?: string | null }>;
  /** Merged into the machine's evaluated NixOS config (for `clan select`). */
  config?: Record<string, unknown>;
}

export interface FakeClanFixture {
  machines: Record<string, FakeClanMachine>;
  meta?: Record<string, unknown>;
  instances?: Record<string, unknown>;
  system?: string;
  nixosVersion?: string;
  revision?: number;
  /** Every evaluation fails with this nix error, e.g. "error: syntax error, unexpected '}'". */
  broken?: string;
  /** Archive names per machine: a list (provider borgbackup) or per provider; `backups create` adds one (kept in .fake-clan-archives.jsonl). */
  backups?: Record<string, string[] | Record<string, string[]>>;
  behaviour?: Partial<Record<FakeClanCommand | "default", FakeClanCommandKnobs>>;
  /** The clan's networks (exported as clan.exports): instance -> service (default the instance name), priority, peers. */
  networks?: Record<string, FakeClanNetwork>;
  /** `clan machines generations`: per machine (default: one current generation). */
  generations?: Record<string, FakeClanGeneration[]>;
  /** Vars generators per machine (default: clan's openssh generator, generated). Values set later live in the flake's vars/. */
  vars?: Record<string, Record<string, FakeClanGenerator>>;
}

/** A vars generator of a machine (clan.core.vars.generators.<name>). */
export interface FakeClanGenerator {
  /** Its files: secret (default true) or public; `value`: its value before any `vars set`/`generate` (absent: not generated). */
  files: Record<string, { secret?: boolean; deploy?: boolean; value?: string }>;
  prompts?: string[];
  share?: boolean;
}

export interface FakeClanNetwork {
  /** "internet", "wireguard", "zerotier", "mycelium", "yggdrasil", "tor", "p2p-ssh-iroh" (its module and priority). */
  service?: string;
  priority?: number;
  /** Peers by machine: their addresses; down: nothing answers there. */
  peers: Record<string, { hosts: string[]; port?: number; user?: string; down?: boolean }>;
}

export interface FakeClanGeneration {
  generation: number;
  date: string;
  nixosVersion?: string;
  kernelVersion?: string;
  current?: boolean;
}

/** A file clan was given (-j FILE, -P FILE), as the fake found it. */
export interface FakeClanFileInfo {
  /** As given on the command line. */
  path: string;
  absolutePath: string;
  /** Permission bits, e.g. 0o600; null if the file did not exist. */
  mode: number | null;
  /** The same, e.g. "0600". */
  modeOctal: string | null;
  uid: number | null;
  size: number | null;
}

/**
 * What `clan machines install` was asked to do, logged once it chose its target (or failed
 * before that). Never the password: only whether there is one and where it came from.
 */
export interface FakeClanInstallRecord {
  machine: string;
  targetSource: "target-host" | "json" | "png" | "inventory";
  /** -j: an existing file's path ("file") or JSON text on the command line ("inline"). */
  jsonSource: "file" | "inline" | null;
  jsonFile: FakeClanFileInfo | null;
  png: FakeClanFileInfo | null;
  /** The installer JSON's addrs and tor, as parsed. */
  addrs: unknown;
  tor: unknown;
  /** Which installer address was used. */
  via: "direct" | "tor" | null;
  /** "user@host" clan installs to; null if none was found. */
  target: string | null;
  host: string | null;
  user: string | null;
  port: number | null;
  hasPassword: boolean;
  passwordSource: "json-file" | "json-inline" | "png" | "argv" | null;
  /** --password was on the command line (visible to anyone running ps). */
  passwordOnCommandLine: boolean;
  identityFile: string | null;
  yes: boolean;
  phases: string | null;
  buildOn: "auto" | "local" | "remote" | null;
  updateHardwareConfig: "nixos-facter" | "nixos-generate-config" | "none";
  hostKeyCheck: string;
}

export interface FakeClanInvocation {
  /** Set by the fake `nix` and the fake QEMU; absent for `clan`. */
  program?: "nix" | "qemu";
  argv: string[];
  cwd: string;
  pid: number;
  ppid: number;
  pgid?: number;
  env: { NO_COLOR?: string; CLAN_DIR?: string; QEMU_NET_OPTS?: string; NIX_DISK_IMAGE?: string };
  stdinIsTTY: boolean;
  time: string;
  /** Only for `clan machines install`. */
  install?: FakeClanInstallRecord;
}

export interface MakeFlakeOptions {
  /** Content of flake.nix; null leaves it out (clan then finds no flake). */
  flakeNix?: string | null;
}

const FLAKE_NIX = `{
  # A flake for the fake clan CLI; the clan itself is described in ${FIXTURE_FILE}.
  outputs = { self }: { };
}
`;

/** Writes (or rewrites) flake.nix and clan-fixture.json in an existing directory. */
export async function writeFixture(flakeDir: string, fixture: FakeClanFixture, options: MakeFlakeOptions = {}): Promise<void> {
  const flakeNix = options.flakeNix === undefined ? FLAKE_NIX : options.flakeNix;
  if (flakeNix !== null) await writeFile(path.join(flakeDir, "flake.nix"), flakeNix);
  await writeFile(path.join(flakeDir, FIXTURE_FILE), `${JSON.stringify(fixture, null, 2)}\n`);
}

/**
 * Makes `dir` a flake for the fake clan: creates it if needed (normally a path inside
 * a test's temporary directory), writes flake.nix and clan-fixture.json, returns `dir`.
 * Remove it with removeFlake(). For a fresh directory under os.tmpdir(), use makeTempFlake().
 */
export async function makeFlake(dir: string, fixture: FakeClanFixture, options: MakeFlakeOptions = {}): Promise<string> {
  if (path.resolve(dir) === path.resolve(os.tmpdir())) throw new Error("makeFlake: pass a directory of its own, not os.tmpdir()");
  await mkdir(dir, { recursive: true });
  await writeFixture(dir, fixture, options);
  return dir;
}

/** A flake in a fresh directory under os.tmpdir(); remove it with removeFlake(). */
export async function makeTempFlake(fixture: FakeClanFixture, options: MakeFlakeOptions = {}): Promise<string> {
  return makeFlake(await mkdtemp(path.join(os.tmpdir(), "fake-clan-flake-")), fixture, options);
}

export async function removeFlake(flakeDir: string): Promise<void> {
  await rm(flakeDir, { recursive: true, force: true });
}

/** The invocations recorded in $FAKE_CLAN_LOG, oldest first; none if the file does not exist. */
export async function readInvocations(logPath: string): Promise<FakeClanInvocation[]> {
  let text: string;
  try {
    text = await readFile(logPath, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw e;
  }
  return text
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line) as FakeClanInvocation);
}

/**
 * Live (not zombie) processes whose process group is `pgid`, read from /proc (Linux).
 * After the group was killed this is empty; a killed process whose parent has not
 * reaped it yet is a zombie and does not count.
 */
export function processesInGroup(pgid: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue; // exited while we looked
    }
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (fields[0] !== "Z" && fields[0] !== "X" && Number(fields[2]) === pgid) pids.push(Number(entry));
  }
  return pids;
}

/** Waits until nothing of process group `pgid` is left; false when something still is after `timeoutMs`. */
export async function groupGone(pgid: number, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (processesInGroup(pgid).length === 0) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}
