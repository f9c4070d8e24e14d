// A clan machine for SSH tests: a real OpenSSH server (Debian's openssh-server) on 127.0.0.1 and a
// free port, with a generated host key, the bot's public key authorized, and as its only command
// test/support/fake-machine/shell, which gives the bot's fixed commands the machine's own /run,
// /nix (system generations) and boot id inside a directory, plus stand-ins for nixos-version,
// systemctl and nix-env that record their calls. A reboot stops sshd, changes the boot id and
// starts it again after `rebootDowntimeMs` (or never, with `comesBack: false`).

import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync, mkdirSync } from "node:fs";
import { mkdir, readFile, readlink, rm, symlink, unlink, writeFile } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import { userInfo } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { answersSsh } from "../../ops/ssh-machines.ts";
import { stopAtExit } from "./leftovers.ts";

const run = promisify(execFile);
const HERE = dirname(fileURLToPath(import.meta.url));
const SHELL = join(HERE, "fake-machine", "shell");
const SWITCH = join(HERE, "fake-machine", "bin", "switch-to-configuration");
export const SSHD = "/usr/sbin/sshd";

export interface FakeMachineOptions {
  /** Where the machine lives (its root, sshd config and keys); a test's temp dir. */
  dir: string;
  /** authorized_keys lines: the bot's public key. */
  authorizedKeys: string[];
  hostName?: string;
  nixosVersion?: string;
  /** System generations 1..n; the newest is current and booted. Default 2. */
  generations?: number;
  failedUnits?: string[];
  rebootDowntimeMs?: number;
  comesBack?: boolean;
  /** Only the sshd: commands run on this host as they are, without the machine's directory or stand-ins (benchmarks). */
  plain?: boolean;
  /** Addresses sshd listens on (default 127.0.0.1): "::1" too for an installer that shows an IPv6 address. */
  listen?: string[];
  /** Runs sshd through this command, e.g. `ip netns exec <ns>` (benchmarks: a machine in a network namespace). */
  wrap?: string[];
}

/** A free TCP port on 127.0.0.1 (closed again at once). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A port that accepts connections and then says nothing: a machine that hangs. */
export async function silentPort(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as { port: number }).port,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

export function storePathOf(hostName: string, version: string, generation: number): string {
  const hash = Buffer.from(`${hostName}-${generation}`).toString("hex").padEnd(32, "0").slice(0, 32).replace(/[eotu]/g, "a");
  return `/nix/store/${hash}-nixos-system-${hostName}-${version}`;
}

export class FakeMachine {
  readonly dir: string;
  readonly root: string;
  readonly port: number;
  readonly user: string;
  readonly hostName: string;
  private readonly o: FakeMachineOptions;
  private sshd: ChildProcess | undefined;
  private watcher: NodeJS.Timeout | undefined;
  private rebooting = false;
  /** How many times the machine rebooted. */
  reboots = 0;

  private constructor(o: FakeMachineOptions, port: number) {
    this.o = o;
    this.dir = o.dir;
    this.root = join(o.dir, "root");
    this.port = port;
    this.user = userInfo().username;
    this.hostName = o.hostName ?? "machine";
  }

  static async start(o: FakeMachineOptions): Promise<FakeMachine> {
    const m = new FakeMachine(o, await freePort());
    await m.setUp();
    await m.startSshd();
    m.watcher = setInterval(() => void m.watchReboot(), 50);
    return m;
  }

  /** `user@127.0.0.1:port`, as an inventory's deploy.targetHost. */
  get target(): string {
    return `${this.user}@127.0.0.1:${this.port}`;
  }

  private async setUp(): Promise<void> {
    const { dir, root } = this;
    const version = this.o.nixosVersion ?? "25.11.20260815.5e2a59a";
    await mkdir(join(root, "run"), { recursive: true });
    await mkdir(join(root, "nix/var/nix/profiles"), { recursive: true });
    await writeFile(join(root, "nixos-version"), `${version} (Xantusia)\n`);
    await writeFile(join(root, "boot_id"), `${randomUUID()}\n`);
    await writeFile(join(root, "failed-units"), (this.o.failedUnits ?? []).join("\n"));
    const generations = this.o.generations ?? 2;
    for (let g = 1; g <= generations; g++) await this.addGeneration(g, version);
    await this.setProfile(generations);
    const current = await this.generationPath(generations);
    await symlink(current, join(root, "run/current-system"));
    await symlink(current, join(root, "run/booted-system"));
    await writeFile(join(dir, "authorized_keys"), `${this.o.authorizedKeys.join("\n")}\n`, { mode: 0o600 });
    await this.newHostKey();
    if (process.getuid?.() === 0 && !existsSync("/run/sshd")) mkdirSync("/run/sshd", { mode: 0o755 });
    const config = [
      `Port ${this.port}`,
      ...(this.o.listen ?? ["127.0.0.1"]).map((a) => `ListenAddress ${a}`),
      `HostKey ${join(dir, "host_key")}`,
      `PidFile ${join(dir, "sshd.pid")}`,
      `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
      "StrictModes no",
      "UsePAM no",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "PubkeyAuthentication yes",
      "PermitRootLogin prohibit-password",
      // sshd runs every command through the login shell, and Debian's bash then reads ~/.bashrc when it
      // sees it was started by sshd at shell level 1: this host's own set-up (pyenv, cargo; ~100 ms a
      // command here), which a clan machine would not have. A shell level above 1 skips it.
      ...(this.o.plain ? ["SetEnv SHLVL=1"] : [`ForceCommand ${SHELL}`, `SetEnv SHLVL=1 MACHINE_ROOT=${root}`]),
      "LogLevel ERROR",
      "",
    ];
    await writeFile(join(dir, "sshd_config"), config.join("\n"));
  }

  /** Adds system generation `g` (a store path with bin/switch-to-configuration). */
  async addGeneration(g: number, version = this.o.nixosVersion ?? "25.11.20260815.5e2a59a"): Promise<string> {
    const store = storePathOf(this.hostName, version, g);
    await mkdir(join(this.root, store, "bin"), { recursive: true });
    await symlink(SWITCH, join(this.root, store, "bin/switch-to-configuration")).catch(() => undefined);
    const link = join(this.root, `nix/var/nix/profiles/system-${g}-link`);
    await rm(link, { force: true });
    await symlink(join(this.root, store), link);
    return store;
  }

  /** Points the system profile at generation `g` (what a deploy does before switching). */
  async setProfile(g: number): Promise<void> {
    const profile = join(this.root, "nix/var/nix/profiles/system");
    await rm(profile, { force: true });
    await symlink(`system-${g}-link`, profile);
  }

  async generationPath(g: number): Promise<string> {
    return (await readlink(join(this.root, `nix/var/nix/profiles/system-${g}-link`))).slice(this.root.length) || "/";
  }

  /** As the bot sees it: /run/current-system's store path. */
  async currentSystem(): Promise<string> {
    return (await readlink(join(this.root, "run/current-system"))).replace(this.root, "");
  }

  async setCurrentSystem(storePath: string): Promise<void> {
    const link = join(this.root, "run/current-system");
    await unlink(link);
    await symlink(join(this.root, storePath), link);
  }

  async profileGeneration(): Promise<string> {
    return readlink(join(this.root, "nix/var/nix/profiles/system"));
  }

  async bootId(): Promise<string> {
    return (await readFile(join(this.root, "boot_id"), "utf8")).trim();
  }

  /** The stand-ins' calls, one line each: `nix-env --profile /nix/var/nix/profiles/system --rollback`. */
  async calls(): Promise<string[]> {
    return lines(join(this.root, "calls.log"));
  }

  /** The commands the bot sent, as sshd received them. */
  async commands(): Promise<string[]> {
    return lines(join(this.root, "commands.log"));
  }

  async setFailedUnits(units: string[]): Promise<void> {
    await writeFile(join(this.root, "failed-units"), units.join("\n"));
  }

  /** Makes every command hang (sshd still answers). */
  async hangCommands(on: boolean): Promise<void> {
    if (on) await writeFile(join(this.root, "hang"), "");
    else await rm(join(this.root, "hang"), { force: true });
  }

  async failSwitch(message: string | undefined): Promise<void> {
    if (message !== undefined) await writeFile(join(this.root, "fail-switch"), message);
    else await rm(join(this.root, "fail-switch"), { force: true });
  }

  /** A fresh host key, as after a reinstall, and sshd restarted with it. */
  async rotateHostKey(): Promise<void> {
    await this.stopSshd();
    await this.newHostKey();
    await this.startSshd();
  }

  /** SHA256:... of the current host key, as ssh-keygen -l shows it. */
  async hostKeyFingerprint(): Promise<string> {
    const { stdout } = await run("ssh-keygen", ["-l", "-f", join(this.dir, "host_key.pub")]);
    return stdout.split(" ")[1] ?? "";
  }

  async hostKeyLine(): Promise<string> {
    const [type, key] = (await readFile(join(this.dir, "host_key.pub"), "utf8")).trim().split(" ");
    return `[127.0.0.1]:${this.port} ${type} ${key}`;
  }

  private async newHostKey(): Promise<void> {
    await rm(join(this.dir, "host_key"), { force: true });
    await rm(join(this.dir, "host_key.pub"), { force: true });
    await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", `host@${this.hostName}`, "-f", join(this.dir, "host_key")]);
  }

  async startSshd(): Promise<void> {
    const argv = [...(this.o.wrap ?? []), SSHD, "-D", "-e", "-f", join(this.dir, "sshd_config")];
    const child = spawn(argv[0] as string, argv.slice(1), { detached: true, stdio: ["ignore", "ignore", "pipe"] });
    stopAtExit(child, true);
    let stderr = "";
    child.stderr?.on("data", (c: Buffer) => (stderr += c.toString()));
    this.sshd = child;
    // Ready when the port answers with an SSH banner.
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`sshd exited (${child.exitCode}): ${stderr}`);
      if (await answersSsh(this.o.listen?.[0] ?? "127.0.0.1", this.port, 500)) return;
      if (Date.now() > deadline) throw new Error(`sshd did not answer on ${this.port}: ${stderr}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** Stops sshd and every session it has (as a reboot or a power cut would). */
  async stopSshd(): Promise<void> {
    const child = this.sshd;
    this.sshd = undefined;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    try {
      process.kill(-(child.pid as number), "SIGKILL");
    } catch {
      /* already gone */
    }
    // Sessions are sshd's children in its process group, but forked sessions may have moved on.
    await run("pkill", ["-KILL", "-f", `MACHINE_ROOT=${this.root}`]).catch(() => undefined);
    await exited;
  }

  private async watchReboot(): Promise<void> {
    const flag = join(this.root, "reboot-requested");
    if (this.rebooting || !existsSync(flag)) return;
    this.rebooting = true;
    try {
      await unlink(flag);
      await new Promise((r) => setTimeout(r, 100));
      await this.stopSshd();
      await writeFile(join(this.root, "boot_id"), `${randomUUID()}\n`);
      const current = await this.currentSystem();
      await unlink(join(this.root, "run/booted-system"));
      await symlink(join(this.root, current), join(this.root, "run/booted-system"));
      this.reboots++;
      if (this.o.comesBack === false) return;
      await new Promise((r) => setTimeout(r, this.o.rebootDowntimeMs ?? 500));
      await this.startSshd();
    } finally {
      this.rebooting = false;
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.watcher);
    await this.stopSshd();
  }
}

async function lines(path: string): Promise<string[]> {
  try {
    return (await readFile(path, "utf8")).split("\n").filter((l) => l !== "");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
}
