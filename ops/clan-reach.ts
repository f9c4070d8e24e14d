import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Db } from "../storage/db.ts";
import { pinnedHostKey } from "../storage/host-keys.ts";
import { runProcess, startErrorReason } from "./process-runner.ts";
import { knownHostsName, type SshTarget } from "./ssh-target.ts";

/**
 * How a dry run builds: `clan machines build` (clan since 2025-11; it runs the vars generators
 * and knows the clan's secrets), else a raw `nix build` of the system. Asked once at start, as
 * the VM backend is: argparse answers `--help` with exit 0 only for a subcommand it has.
 */
export async function detectDryRun(clanCommand: string, timeoutMs: number): Promise<{ kind: "clan" | "nix"; why: string }> {
  const r = await runProcess(clanCommand, ["machines", "build", "--help"], { timeoutMs, collectStdout: true });
  if (r.exitCode === 0) return { kind: "clan", why: "this host's clan has `clan machines build`" };
  if (r.startError !== undefined) return { kind: "nix", why: `the clan CLI '${clanCommand}' ${startErrorReason(r.startError)}` };
  return { kind: "nix", why: "this host's clan has no `clan machines build` (before 2025-11): raw nix build" };
}

export interface UpdateReachOptions {
  db: Db;
  clan: string;
  /** The bot's private key: clan's ssh logs in with it, as the bot's own SSH does. */
  keyFile: string;
  /** Where the per-machine known_hosts files for clan's ssh go. */
  dir: string;
  /** Where the bot reaches the machine (its own route, the one clan would take). */
  reachable(machine: string, signal: AbortSignal): Promise<SshTarget>;
}

/**
 * The arguments that make `clan machines update` reach a machine the way the bot's own SSH does:
 * the same route (`--target-host`), the bot's key (`IdentityFile`), and the host key the bot pinned
 * (`UserKnownHostsFile`, checked strictly). clan passes a target's `?Option=Value` pairs to ssh as
 * `-o` options, and to nix copy through NIX_SSHOPTS (clan_lib/ssh/remote.py). Without a pinned key
 * the first key seen is accepted, as before. Without a route, clan finds its own and says why not.
 */
export async function updateReachArgs(o: UpdateReachOptions, machine: string, signal: AbortSignal): Promise<string[]> {
  let target: SshTarget;
  try {
    target = await o.reachable(machine, signal);
  } catch {
    return ["--host-key-check", "accept-new"];
  }
  const pinned = await pinnedHostKey(o.db, o.clan, machine);
  await mkdir(o.dir, { recursive: true, mode: 0o700 });
  const file = join(o.dir, `${o.clan}-${machine}`);
  const name = knownHostsName(target.host, target.port);
  await writeFile(file, pinned ? `${name} ${pinned.type} ${pinned.base64}\n` : "", { mode: 0o600 });
  const host = target.host.includes(":") ? `[${target.host}]` : target.host;
  const options = [`UserKnownHostsFile=${file}`, `IdentityFile=${o.keyFile}`, "IdentitiesOnly=yes"].join("&");
  return ["--target-host", `${target.user}@${host}:${target.port}?${options}`, "--host-key-check", pinned ? "strict" : "accept-new"];
}
