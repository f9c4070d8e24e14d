import { formatDuration } from "../commands/format.ts";
import type { Machine } from "../commands/types.ts";
import { Slots } from "./machine-queue.ts";
import { routesFromExports, type NetworkRoute } from "./clan-networks.ts";
import { runProcess, startErrorReason, type RunOptions, type RunResult } from "./process-runner.ts";

/** A clan CLI run that did not succeed, with a message a person can act on. */
export class ClanCliError extends Error {
  override readonly name = "ClanCliError";
  readonly kind: "not-found" | "failed" | "timeout" | "cancelled" | "bad-output";
  readonly result: RunResult | undefined;
  constructor(message: string, kind: ClanCliError["kind"], result?: RunResult) {
    super(message);
    this.kind = kind;
    this.result = result;
  }
}

export interface ClanCliOptions {
  /** Path or name of the clan executable (config `clan.command`). */
  command: string;
  timeoutMs: number;
  env?: Record<string, string>;
  /**
   * Processes this runner starts at once (config `clan.parallel`, one runner per clan); the others
   * wait in line, in the order they came. Unbounded without it.
   */
  parallel?: number;
}

const INVENTORY_MACHINES = "clanInternals.inventoryClass.inventorySerialization.machines";
const CONFIGURED_TARGETS = "clanInternals.machines.*.*.config.clan.core.networking.targetHost";
const EXPLICIT_UPDATE = "clanInternals.machines.*.*.config.clan.deployment.requireExplicitUpdate";
const STATE_VERSIONS = "clanInternals.machines.*.*.config.system.stateVersion";

interface InventoryMachine {
  name?: string;
  description?: string | null;
  tags?: string[];
  machineClass?: string;
  deploy?: { targetHost?: string | null };
}

/** The part of an error that explains it: clan's last meaningful stderr lines. */
function errorTail(lines: readonly string[], max = 6): string {
  const meaningful = lines.map((l) => l.trimEnd()).filter((l) => l.trim() !== "");
  return meaningful.slice(-max).join("\n");
}

/** The subcommand words of an invocation ("machines update", "select"), without its arguments. */
function subcommand(args: readonly string[]): string {
  const words: string[] = [];
  for (const a of args.slice(0, 2)) {
    if (!/^[a-z][a-z-]*$/.test(a)) break;
    words.push(a);
  }
  return words.join(" ");
}

export class ClanCli {
  private readonly opts: ClanCliOptions;
  private readonly slots: Slots | undefined;
  constructor(opts: ClanCliOptions) {
    this.opts = opts;
    this.slots = opts.parallel !== undefined ? new Slots(opts.parallel) : undefined;
  }

  /**
   * Runs `clan <args> --flake <flake>` and fails with a ClanCliError unless it exits 0.
   * `purpose` names the work in error messages: "Reading the clan's machines failed: ...".
   */
  async run(flake: string, args: readonly string[], purpose: string, extra: Partial<RunOptions> = {}): Promise<RunResult> {
    const fullArgs = [...args, "--flake", flake];
    let release: (() => void) | undefined;
    if (this.slots) {
      try {
        release = await this.slots.acquire(extra.signal);
      } catch (err) {
        if (!extra.signal?.aborted) throw err;
        throw new ClanCliError(`${purpose} was cancelled.`, "cancelled");
      }
    }
    let result: RunResult;
    try {
      result = await runProcess(this.opts.command, fullArgs, {
        timeoutMs: this.opts.timeoutMs,
        ...(this.opts.env ? { env: this.opts.env } : {}),
        ...extra,
      });
    } finally {
      release?.();
    }
    const what = `${purpose} failed: \`clan ${subcommand(args)}\``;
    if (result.startError !== undefined) {
      const why = startErrorReason(result.startError);
      throw new ClanCliError(`The clan CLI '${this.opts.command}' ${why}. Install clan or set clan.command in the config.`, "not-found", result);
    }
    if (result.cancelled) throw new ClanCliError(`${purpose} was cancelled.`, "cancelled", result);
    if (result.timedOut) {
      const limit = formatDuration(extra.timeoutMs ?? this.opts.timeoutMs);
      throw new ClanCliError(`${purpose} took longer than ${limit} and was stopped.`, "timeout", result);
    }
    if (result.exitCode !== 0) {
      const how = result.exitCode === undefined ? `was killed (${result.signal ?? "unknown signal"})` : `exited with status ${result.exitCode}`;
      const tail = errorTail(result.stderrTail);
      throw new ClanCliError(`${what} ${how}${tail ? `:\n${tail}` : "."}`, "failed", result);
    }
    return result;
  }

  /** `clan select` prints JSON; parse it or say clearly that the answer was not JSON. */
  async select(flake: string, selector: string, purpose: string, signal?: AbortSignal): Promise<unknown> {
    const result = await this.run(flake, ["select", selector], purpose, { collectStdout: true, ...(signal ? { signal } : {}) });
    try {
      return JSON.parse(result.stdout) as unknown;
    } catch {
      throw new ClanCliError(`\`clan select\` did not print JSON for '${selector}'.`, "bad-output", result);
    }
  }

  /**
   * Each machine's `clan.core.networking.targetHost` (where the inventory names none), read for all
   * machines of every system at once; machines without one are left out.
   */
  async configuredTargets(flake: string, signal?: AbortSignal): Promise<Record<string, string>> {
    return this.perMachine(flake, CONFIGURED_TARGETS, "Reading the machines' target hosts", (v) => (typeof v === "string" && v ? v : undefined), signal);
  }

  /** Machines with `clan.deployment.requireExplicitUpdate`: clan leaves them out of an update without names. */
  async explicitUpdateMachines(flake: string, signal?: AbortSignal): Promise<Set<string>> {
    const found = await this.perMachine(flake, EXPLICIT_UPDATE, "Reading which machines must be updated by name", (v) => (v === true ? true : undefined), signal);
    return new Set(Object.keys(found));
  }

  /** Each machine's `system.stateVersion`. */
  async stateVersions(flake: string, signal?: AbortSignal): Promise<Record<string, string>> {
    return this.perMachine(flake, STATE_VERSIONS, "Reading the machines' state versions", (v) => (typeof v === "string" && v ? v : undefined), signal);
  }

  /**
   * The clan's network routes per machine, best first (`clan.?exports`, as clan's get_best_remote
   * reads them). A clan without exports (older clans) has none.
   */
  async routes(flake: string, signal?: AbortSignal): Promise<Map<string, NetworkRoute[]>> {
    const raw = await this.select(flake, "clan.?exports", "Reading the clan's networks", signal);
    return routesFromExports(raw, async (h) => {
      try {
        const r = await this.run(flake, ["vars", "get", h.machine, h.var], "Reading a network address", { collectStdout: true, ...(signal ? { signal } : {}) });
        return r.stdout;
      } catch (err) {
        if (err instanceof ClanCliError && err.kind === "failed") return undefined;
        throw err;
      }
    });
  }

  /** One value per machine, read for all machines of every system at once; undefined values left out. */
  private async perMachine<T>(flake: string, selector: string, purpose: string, value: (v: unknown) => T | undefined, signal?: AbortSignal): Promise<Record<string, T>> {
    const raw = await this.select(flake, selector, purpose, signal);
    const found: Record<string, T> = {};
    if (raw === null || typeof raw !== "object") return found;
    for (const perSystem of Object.values(raw as Record<string, unknown>)) {
      if (perSystem === null || typeof perSystem !== "object") continue;
      for (const [machine, v] of Object.entries(perSystem as Record<string, unknown>)) {
        const got = value(v);
        if (got !== undefined) found[machine] = got;
      }
    }
    return found;
  }

  /** The inventory's machines, sorted by name. */
  async machines(flake: string, signal?: AbortSignal): Promise<Machine[]> {
    const raw = await this.select(flake, INVENTORY_MACHINES, "Reading the clan's machines", signal);
    if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
      throw new ClanCliError("The clan's inventory of machines is not an object.", "bad-output");
    }
    return Object.entries(raw as Record<string, InventoryMachine>)
      .map(([name, m]) => ({
        name: m.name ?? name,
        ...(m.description ? { description: m.description } : {}),
        tags: Array.isArray(m.tags) ? m.tags.filter((t) => typeof t === "string") : [],
        ...(m.deploy?.targetHost ? { targetHost: m.deploy.targetHost } : {}),
        ...(m.machineClass ? { machineClass: m.machineClass } : {}),
      }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }
}
