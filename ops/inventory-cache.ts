import type { Clock, Machine } from "../commands/types.ts";
import type { ClanCli } from "./clan-cli.ts";

/**
 * Evaluating a flake's inventory takes seconds on a real clan, so one read is shared by everyone
 * asking at the same time and reused for `ttlMs`. `fresh` forces a new read (after a git pull).
 */
export class InventoryCache {
  private readonly cli: ClanCli;
  private readonly flake: string;
  private readonly ttlMs: number;
  private readonly clock: Clock;
  private cached: { at: number; machines: Machine[] } | undefined;
  private pending: Promise<Machine[]> | undefined;

  constructor(cli: ClanCli, flake: string, ttlMs: number, clock: Clock) {
    this.cli = cli;
    this.flake = flake;
    this.ttlMs = ttlMs;
    this.clock = clock;
  }

  async machines(signal: AbortSignal, fresh = false): Promise<Machine[]> {
    if (!fresh && this.cached && this.clock.now() - this.cached.at < this.ttlMs) return this.cached.machines;
    if (!this.pending || fresh) {
      // Shared between callers, so no single caller's signal may cancel it.
      const read = this.cli.machines(this.flake).then(
        (machines) => {
          this.cached = { at: this.clock.now(), machines };
          return machines;
        },
      );
      this.pending = read;
      void read.finally(() => {
        if (this.pending === read) this.pending = undefined;
      }).catch(() => undefined);
    }
    return abortable(this.pending, signal);
  }
}

function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
