import { spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import type { VmBackendInfo, VmBackendKind, VmPort } from "../commands/vm-types.ts";
import { runProcess, startErrorReason, type RunResult } from "./process-runner.ts";

/**
 * Which way this host runs VMs. `clan vms run` exists in clan up to release 25.11 and was removed in
 * 26.05 (argparse then answers "invalid choice", exit 2); the NixOS VM runner works with any NixOS flake.
 */
export async function detectVmBackend(clanCommand: string, configured: "auto" | VmBackendKind, timeoutMs: number): Promise<VmBackendInfo> {
  if (configured !== "auto") return { kind: configured, why: "set in the config (`vm.backend`)" };
  const r = await runProcess(clanCommand, ["vms", "--help"], { timeoutMs, collectStdout: true });
  if (r.exitCode === 0) return { kind: "clan", why: "this host's clan has `clan vms` (releases up to 25.11)" };
  if (r.startError !== undefined) return { kind: "nix", why: `the clan CLI '${clanCommand}' ${startErrorReason(r.startError)}` };
  return { kind: "nix", why: "this host's clan has no `clan vms` (removed in 26.05)" };
}

/** `clan vms run`: it builds the VM and runs it in the foreground until the VM ends. */
export function clanVmArgs(flake: string, machine: string, ports: readonly VmPort[]): string[] {
  return ["vms", "run", machine, ...ports.flatMap((p) => ["-p", `${p.host}:${p.guest}`]), "--flake", flake];
}

/** `nix build` of the machine's VM; the out-link keeps it from being garbage-collected while it runs. */
export function nixVmBuildArgs(flake: string, machine: string, outLink: string): string[] {
  return [
    "--extra-experimental-features",
    "nix-command flakes",
    "build",
    `${flake}#nixosConfigurations.${machine}.config.system.build.vm`,
    "--out-link",
    outLink,
    "--print-out-paths",
  ];
}

/** QEMU's user network takes forwards as `hostfwd=tcp::HOST-:GUEST`, comma-separated, in QEMU_NET_OPTS. */
export function qemuNetOpts(ports: readonly VmPort[]): string {
  return ports.map((p) => `hostfwd=tcp::${p.host}-:${p.guest}`).join(",");
}

/**
 * The runner script of a built VM. It is named after the machine's networking.hostName, which can
 * differ from its clan name; the VM's output holds exactly one `bin/run-*-vm`, so it is looked up
 * there instead of evaluating the host name a second time.
 */
export async function findVmRunner(storePath: string): Promise<string | { error: string }> {
  let names: string[];
  try {
    names = await readdir(join(storePath, "bin"));
  } catch (err) {
    return { error: `the build's output ${storePath} has no bin/ (${(err as NodeJS.ErrnoException).code ?? String(err)})` };
  }
  const runners = names.filter((n) => /^run-.+-vm$/.test(n));
  if (runners.length !== 1) return { error: `expected one bin/run-<hostName>-vm in ${storePath}, found ${runners.length ? runners.join(", ") : "none"}` };
  return join(storePath, "bin", runners[0] as string);
}

/** The store path `nix build --print-out-paths` printed. */
export function builtPath(r: RunResult): string | undefined {
  return r.stdout.split("\n").map((l) => l.trim()).find((l) => l.startsWith("/"));
}

/**
 * Starts a VM's process detached: its own process group, stdin closed, output appended to its log
 * file (not a pipe the bot holds), so that it outlives the bot and a restart can find it again.
 */
export function spawnDetached(
  file: string,
  args: readonly string[],
  opts: { cwd: string; env: Record<string, string>; logPath: string; onExit: (code: number | null, signal: NodeJS.Signals | null) => void },
): { pid: number } | { error: string } {
  const fd = openSync(opts.logPath, "a", 0o600);
  try {
    const child = spawn(file, args, { cwd: opts.cwd, env: { ...process.env, NO_COLOR: "1", ...opts.env }, stdio: ["ignore", fd, fd], detached: true });
    let spawnError: string | undefined;
    child.once("error", (err: NodeJS.ErrnoException) => {
      spawnError = err.code ?? err.message;
    });
    if (child.pid === undefined) {
      // spawn reports ENOENT/EACCES asynchronously, but leaves pid unset at once.
      return { error: `'${file}' could not be started${spawnError ? ` (${spawnError})` : ""}` };
    }
    child.once("exit", opts.onExit);
    // The bot may end before the VM does: it must not wait for it.
    child.unref();
    return { pid: child.pid };
  } finally {
    closeSync(fd);
  }
}
