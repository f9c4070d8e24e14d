import { connect as tcpConnect } from "node:net";
import type { Drift, InstallerRead, MachineStatus, RebootReport, SshMachines, TrustResult } from "../commands/ssh-types.ts";
import type { Clock, Machine, ReplyContent } from "../commands/types.ts";
import { readInstallerCode } from "./installer-qr.ts";
import type { Db } from "../storage/db.ts";
import { lastActivatedSystems } from "../storage/deploys.ts";
import { forgetHostKey, pinHostKeyIfNone, pinnedHostKey, replaceHostKey } from "../storage/host-keys.ts";
import { KnownHostsFile, PinnedHostKeys, type HostKey, type HostKeyPolicy } from "./host-keys.ts";
import { Slots } from "./machine-queue.ts";
import { SshPool } from "./ssh-pool.ts";
import { BOOT_ID_COMMAND, HEALTH_COMMAND, REBOOT_COMMAND, asRoot, generationOf, parseHealth, rollbackCommand } from "./machine-health.ts";
import { SshError, connectSsh, type SshSession } from "./ssh-connection.ts";
import type { BotKey } from "./ssh-key.ts";
import { knownHostsName, parseTarget, type SshTarget } from "./ssh-target.ts";
import { routeTargets, type NetworkRoute } from "./clan-networks.ts";

export interface SshMachinesOptions {
  clan: string;
  db: Db;
  clock: Clock;
  key: BotKey;
  /** Host keys from this OpenSSH known_hosts file instead of pinning them on first contact. */
  knownHostsFile: string | undefined;
  /** Per machine: connecting, logging in and a quick command together. */
  timeoutMs: number;
  /** Machines talked to at once, in this clan. */
  parallel: number;
  /** How long a reboot may take until SSH answers again. */
  rebootTimeoutMs: number;
  /** Between attempts to reach a rebooting machine. */
  rebootPollMs: number;
  /** Where an installer's sshd listens. */
  installerPort: number;
  /** The inventory's machines (deploy.targetHost). */
  machines(signal: AbortSignal): Promise<Machine[]>;
  /** Each machine's `clan.core.networking.targetHost`, for machines the inventory has no target for. */
  configuredTargets(signal: AbortSignal): Promise<Record<string, string>>;
  /** How long a connection stays open after a status, for the next one (like ControlPersist); 0: closed at once. */
  keepOpenMs?: number;
  /** The clan's network routes per machine, best first (none: an older clan without exports). */
  routes?(signal: AbortSignal): Promise<Map<string, NetworkRoute[]>>;
  /** A host key was pinned, replaced or forgotten: clan's own ssh is told (ops/clan-known-hosts.ts). */
  onPinsChanged?(): Promise<void>;
}

/** Where a machine may be reached, in the order clan tries: inventory, networks by priority, configured. */
type Candidates = { readonly targets: readonly SshTarget[] } | { readonly error: string };

export interface RollbackOutcome {
  exitCode: number | undefined;
  generation: number | undefined;
  storePath: string | undefined;
  /** What went wrong before the rollback could run (no target, unreachable, host key). */
  problem: string | undefined;
}

/**
 * The clan's machines over SSH with the bot's key: health, reboot, rollback, host keys. Every remote
 * command is a constant of ops/machine-health.ts; machine names and addresses come from the clan.
 */
export class SshMachineService implements SshMachines {
  private readonly o: SshMachinesOptions;
  private readonly policy: HostKeyPolicy;
  private readonly slots: Slots;
  private readonly pool: SshPool;
  readonly publicKey: string;
  readonly keyFingerprint: string;
  readonly trustAdvice: string | undefined;

  constructor(o: SshMachinesOptions) {
    this.o = o;
    this.slots = new Slots(o.parallel);
    this.pool = new SshPool(o.keepOpenMs ?? 0);
    this.publicKey = o.key.publicLine;
    this.keyFingerprint = o.key.fingerprint;
    const { db, clan, clock } = o;
    this.policy = o.knownHostsFile
      ? new KnownHostsFile(o.knownHostsFile)
      : new PinnedHostKeys({
          pinned: (machine) => pinnedHostKey(db, clan, machine),
          pinIfNone: async (machine, key, host) => {
            const pinned = await pinHostKeyIfNone(db, clan, machine, key, host, clock.now());
            if (pinned.base64 === key.base64) await this.o.onPinsChanged?.();
            return pinned;
          },
        });
    this.trustAdvice = this.policy.trustAdvice;
  }

  async status(machines: readonly string[], signal: AbortSignal): Promise<MachineStatus[]> {
    const [targets, deployed] = await Promise.all([this.targets(machines, signal), lastActivatedSystems(this.o.db, this.o.clan, machines)]);
    return Promise.all(
      machines.map(async (machine): Promise<MachineStatus> => {
        const found = targets.get(machine);
        if (!found || "error" in found) return { machine, ok: false, target: undefined, problem: "no-target", detail: found?.error ?? noTargetText };
        let target = found.targets[0] as SshTarget;
        const release = await this.slots.acquire(signal);
        try {
          const deadline = AbortSignal.any([signal, AbortSignal.timeout(this.o.timeoutMs)]);
          // A connection kept from the last status skips the handshakes; one the machine dropped meanwhile fails at once and is replaced.
          let kept: SshSession | undefined;
          for (const t of found.targets) {
            kept = this.pool.take(poolKey(machine, t));
            if (kept) {
              target = t;
              break;
            }
          }
          let reused = kept !== undefined;
          let r: Awaited<ReturnType<SshSession["exec"]>> | undefined;
          let session = kept;
          if (kept) {
            r = await kept.exec(HEALTH_COMMAND, { timeoutMs: this.o.timeoutMs, signal: deadline }).catch((err: unknown) => {
              if (signal.aborted || !(err instanceof SshError) || err.kind !== "closed") throw err;
              kept.close();
              reused = false;
              return undefined;
            });
          }
          if (r === undefined) {
            const opened = await this.open(machine, found.targets, deadline, (t) => (target = t));
            session = opened.session;
            r = await session.exec(HEALTH_COMMAND, { timeoutMs: this.o.timeoutMs, signal: deadline }).catch((err: unknown) => {
              opened.session.close();
              throw err;
            });
          }
          const open = session as SshSession;
          let keep = false;
          try {
            if (r.exitCode !== 0) {
              return { machine, ok: false, target: target.text, problem: "failed", detail: `the status command failed (${r.stderr.trim().split("\n").pop() || `exit ${String(r.exitCode)}`})` };
            }
            const health = parseHealth(r.stdout);
            const last = deployed.get(machine);
            const drift: Drift = !last || !health.currentSystem
              ? { kind: "unknown" }
              : last.storePath === health.currentSystem
                ? { kind: "in-sync", deployId: last.deployId }
                : { kind: "drifted", expected: last.storePath, deployId: last.deployId };
            keep = true;
            return { machine, ok: true, target: target.text, health, drift, pinnedNow: !reused && open.pinnedNow };
          } finally {
            if (keep) this.pool.give(poolKey(machine, target), open);
            else open.close();
          }
        } catch (err) {
          return { machine, ok: false, target: target.text, ...problemOf(err, signal, this.o.timeoutMs) };
        } finally {
          release();
        }
      }),
    );
  }

  /** Closes the connections kept open (the bot is stopping). */
  close(): void {
    this.pool.close();
  }

  async reboot(machine: string, signal: AbortSignal, progress: (stage: "rebooting" | "waiting") => void): Promise<RebootReport> {
    this.pool.drop(`${machine}\n`);
    const { target, session } = await this.open(machine, await this.candidatesOf(machine, signal), AbortSignal.any([signal, AbortSignal.timeout(this.o.timeoutMs)]));
    let bootId: string;
    try {
      bootId = (await session.exec(BOOT_ID_COMMAND, { timeoutMs: this.o.timeoutMs, signal })).stdout.trim();
      progress("rebooting");
      // The machine may hang up before it reports an exit status: that is a reboot going well.
      const r = await session.exec(asRoot(target.user, REBOOT_COMMAND), { timeoutMs: this.o.timeoutMs, signal });
      if (!r.dropped && r.exitCode !== 0) throw new SshError("closed", `\`${REBOOT_COMMAND}\` failed: ${r.stderr.trim() || `exit status ${String(r.exitCode)}`}`);
    } finally {
      session.close();
    }
    const started = this.o.clock.now();
    progress("waiting");
    const deadline = started + this.o.rebootTimeoutMs;
    while (this.o.clock.now() < deadline) {
      await sleep(this.o.rebootPollMs, signal);
      const left = deadline - this.o.clock.now();
      if (left <= 0) break;
      try {
        const attempt = AbortSignal.any([signal, AbortSignal.timeout(Math.min(this.o.timeoutMs, left))]);
        const s = await this.connect(machine, target, attempt);
        try {
          const now = (await s.exec(BOOT_ID_COMMAND, { timeoutMs: Math.min(this.o.timeoutMs, left), signal: attempt })).stdout.trim();
          if (now && now !== bootId) return { target: target.text, downtimeMs: this.o.clock.now() - started, cameBack: true, waitedMs: this.o.clock.now() - started };
        } finally {
          s.close();
        }
      } catch (err) {
        if (signal.aborted) throw err;
        // A changed host key after a reboot is no reason to keep waiting: say so.
        if (err instanceof SshError && (err.kind === "host-key-changed" || err.kind === "auth")) throw err;
      }
    }
    return { target: target.text, downtimeMs: undefined, cameBack: false, waitedMs: this.o.clock.now() - started };
  }

  /** Runs the rollback on the machine, its output line by line; for the deploy service. */
  async rollback(machine: string, o: { signal: AbortSignal; timeoutMs: number; generation?: number; onLine: (line: string, stream: "stdout" | "stderr") => void }): Promise<RollbackOutcome> {
    let target: SshTarget;
    let session: SshSession;
    try {
      ({ target, session } = await this.open(machine, await this.candidatesOf(machine, o.signal), AbortSignal.any([o.signal, AbortSignal.timeout(this.o.timeoutMs)])));
    } catch (err) {
      if (o.signal.aborted) throw err;
      return { exitCode: undefined, generation: undefined, storePath: undefined, problem: err instanceof Error ? err.message : String(err) };
    }
    try {
      let generation: number | undefined;
      let storePath: string | undefined;
      const r = await session.exec(asRoot(target.user, rollbackCommand(o.generation)), {
        timeoutMs: o.timeoutMs,
        signal: o.signal,
        onLine: (line, stream) => {
          if (line.startsWith("clanbot-generation ")) generation = generationOf(line.slice("clanbot-generation ".length).trim());
          else if (line.startsWith("clanbot-system ")) storePath = line.slice("clanbot-system ".length).trim() || undefined;
          else o.onLine(line, stream);
        },
      });
      return { exitCode: r.exitCode, generation, storePath, problem: r.dropped ? "the connection dropped before the rollback ended" : undefined };
    } finally {
      session.close();
    }
  }

  async trust(machine: string, signal: AbortSignal): Promise<TrustResult> {
    const target = await this.reachableTarget(machine, signal);
    let offered: HostKey | undefined;
    // Log in while accepting whatever key is offered: trusting means taking the key seen now.
    const session = await connectSsh({
      target,
      privateKey: this.o.key.privateKey,
      timeoutMs: this.o.timeoutMs,
      signal,
      verifyHostKey: async (key) => {
        offered = key;
        return { ok: true };
      },
    }).catch((err: unknown) => {
      // Not being let in with the bot's key still shows the key: trusting it does not depend on that.
      if (offered && err instanceof SshError && err.kind === "auth") return undefined;
      throw err;
    });
    session?.close();
    const key = offered as HostKey;
    const pinned = await pinnedHostKey(this.o.db, this.o.clan, machine);
    if (pinned && pinned.base64 === key.base64 && pinned.type === key.type) return { kind: "unchanged", fingerprint: key.fingerprint };
    const host = knownHostsName(target.host, target.port);
    this.pool.drop(`${machine}\n`);
    const previous = await replaceHostKey(this.o.db, this.o.clan, machine, key, host, this.o.clock.now(), "trust");
    await this.o.onPinsChanged?.();
    return { kind: "pinned", fingerprint: key.fingerprint, previous: previous?.fingerprint };
  }

  readInstallerCode(content: ReplyContent): Promise<InstallerRead> {
    return readInstallerCode(content);
  }

  parseTarget(text: string): SshTarget | { error: string } {
    return parseTarget(text);
  }

  async forgetHostKey(machine: string): Promise<void> {
    this.pool.drop(`${machine}\n`);
    await forgetHostKey(this.o.db, this.o.clan, machine);
    await this.o.onPinsChanged?.();
  }

  /**
   * Where the bot reaches a machine now, as clan would: the inventory's target, else the first network
   * route (best first) whose SSH port answers, else the configured targetHost. For clan's own ssh.
   */
  async reachableTarget(machine: string, signal: AbortSignal): Promise<SshTarget> {
    const targets = await this.candidatesOf(machine, signal);
    if (targets.length === 1) return targets[0] as SshTarget;
    const step = Math.max(1000, Math.floor(this.o.timeoutMs / targets.length));
    for (const t of targets.slice(0, -1)) if (await answersSsh(t.host, t.port, step, signal)) return t;
    return targets[targets.length - 1] as SshTarget;
  }

  async firstAnswering(addresses: readonly string[], signal: AbortSignal): Promise<string | undefined> {
    const ordered = installerOrder(addresses);
    const answers = ordered.map((a) => answersSsh(unbracket(a), this.o.installerPort, Math.min(this.o.timeoutMs, 5000), signal));
    // In that order: a later address only wins when the earlier ones do not answer.
    for (const [i, answer] of answers.entries()) if (await answer) return ordered[i];
    return undefined;
  }

  async installerLogin(address: string, signal: AbortSignal): Promise<"accepted" | "refused" | "unreachable"> {
    const target: SshTarget = { user: "root", host: unbracket(address), port: this.o.installerPort, text: address };
    try {
      const session = await connectSsh({
        target,
        privateKey: this.o.key.privateKey,
        timeoutMs: this.o.timeoutMs,
        signal: AbortSignal.any([signal, AbortSignal.timeout(this.o.timeoutMs)]),
        verifyHostKey: async () => ({ ok: true }),
      });
      session.close();
      return "accepted";
    } catch (err) {
      if (err instanceof SshError && err.kind === "auth") return "refused";
      return "unreachable";
    }
  }

  private connect(machine: string, target: SshTarget, signal: AbortSignal): Promise<SshSession> {
    return connectSsh({
      target,
      privateKey: this.o.key.privateKey,
      timeoutMs: this.o.timeoutMs,
      signal,
      verifyHostKey: (key) => this.policy.check(machine, target, key),
    });
  }

  /**
   * Connects over the first candidate that answers, in order; each but the last gets a share of the
   * deadline, so that a dead network route leaves time for the next. A machine that answered and
   * refused (host key, login) is not tried elsewhere.
   */
  private async open(machine: string, targets: readonly SshTarget[], signal: AbortSignal, trying?: (t: SshTarget) => void): Promise<{ target: SshTarget; session: SshSession }> {
    const step = Math.max(1000, Math.floor(this.o.timeoutMs / targets.length));
    for (const [i, target] of targets.entries()) {
      trying?.(target);
      const last = i === targets.length - 1;
      try {
        const attempt = last ? signal : AbortSignal.any([signal, AbortSignal.timeout(step)]);
        return { target, session: await this.connect(machine, target, attempt) };
      } catch (err) {
        if (last || signal.aborted || !(err instanceof SshError) || !["unreachable", "cancelled", "timeout", "closed"].includes(err.kind)) throw err;
      }
    }
    throw new SshError("unreachable", noTargetText);
  }

  private async candidatesOf(machine: string, signal: AbortSignal): Promise<readonly SshTarget[]> {
    const c = (await this.targets([machine], signal)).get(machine);
    if (!c || "error" in c) throw new SshError("unreachable", c?.error ?? noTargetText);
    return c.targets;
  }

  /**
   * As clan's get_best_remote: the inventory's deploy.targetHost; else the clan's network routes,
   * best first (each tried in turn when connecting); then clan.core.networking.targetHost.
   */
  private async targets(machines: readonly string[], signal: AbortSignal): Promise<Map<string, Candidates>> {
    const inventory = new Map((await this.o.machines(signal)).map((m) => [m.name, m]));
    const found = new Map<string, Candidates>();
    const missing: string[] = [];
    for (const machine of machines) {
      const text = inventory.get(machine)?.targetHost;
      if (text) found.set(machine, one(parseTarget(text)));
      else missing.push(machine);
    }
    if (!missing.length) return found;
    const [configured, routes] = await Promise.all([this.o.configuredTargets(signal), this.o.routes ? this.o.routes(signal) : new Map<string, NetworkRoute[]>()]);
    for (const machine of missing) {
      const texts = [...(routes.get(machine) ?? []).flatMap(routeTargets), ...(configured[machine] ? [configured[machine]] : [])];
      const parsed = texts.map(parseTarget);
      const usable = parsed.filter((t): t is SshTarget => !("error" in t));
      if (usable.length) found.set(machine, { targets: usable });
      else if (parsed[0] && "error" in parsed[0]) found.set(machine, { error: parsed[0].error });
    }
    return found;
  }
}

function poolKey(machine: string, t: SshTarget): string {
  return `${machine}\n${t.user}@${t.host}:${t.port}`;
}

function one(t: SshTarget | { error: string }): Candidates {
  return "error" in t ? t : { targets: [t] };
}

const noTargetText = "no way to reach it: no inventory deploy.targetHost, no clan network has it as a peer, no clan.core.networking.targetHost";

function problemOf(err: unknown, signal: AbortSignal, timeoutMs: number): { problem: Extract<MachineStatus, { ok: false }>["problem"]; detail: string } {
  if (signal.aborted) return { problem: "cancelled", detail: "cancelled" };
  if (err instanceof SshError) {
    // The per-machine deadline aborts the connection: that is a timeout, not a cancel.
    if (err.kind === "cancelled") return { problem: "timeout", detail: `no answer within ${Math.round(timeoutMs / 1000)} s` };
    return { problem: err.kind, detail: err.message };
  }
  return { problem: "failed", detail: err instanceof Error ? err.message : String(err) };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

function unbracket(address: string): string {
  return address.startsWith("[") && address.endsWith("]") ? address.slice(1, -1) : address;
}

/**
 * The installer's addresses in the order worth trying: IPv4 (the usual LAN), then IPv6 that is
 * not link-local, then link-local IPv6 (fe80::, which needs an interface the code does not name);
 * in the installer's order within each.
 */
export function installerOrder(addresses: readonly string[]): string[] {
  const rank = (a: string): number => {
    const h = unbracket(a).toLowerCase();
    if (!h.includes(":")) return 0;
    return /^fe[89ab]/.test(h) ? 2 : 1;
  };
  return [...addresses].map((a, i) => ({ a, i, r: rank(a) })).sort((x, y) => x.r - y.r || x.i - y.i).map((x) => x.a);
}

/** Whether `host:port` answers with an SSH banner within `timeoutMs`. */
export function answersSsh(host: string, port: number, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ host, port });
    const done = (ok: boolean): void => {
      signal?.removeEventListener("abort", onAbort);
      socket.destroy();
      resolve(ok);
    };
    const onAbort = (): void => done(false);
    signal?.addEventListener("abort", onAbort, { once: true });
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once("data", (d: Buffer) => done(d.toString("latin1").startsWith("SSH-")));
    socket.once("error", () => done(false));
  });
}
