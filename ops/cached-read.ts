import type { Clock } from "../commands/types.ts";
import { untilAborted } from "./abort.ts";

/**
 * A flake evaluation (the inventory, the machines' target hosts) takes seconds on a real clan, so
 * one read is shared by everyone asking at the same time and reused for `ttlMs`. `fresh` forces a
 * new read (after a git pull).
 */
export class CachedRead<T> {
  private readonly read: () => Promise<T>;
  private readonly ttlMs: number;
  private readonly clock: Clock;
  private cached: { at: number; value: T } | undefined;
  private pending: Promise<T> | undefined;

  constructor(read: () => Promise<T>, ttlMs: number, clock: Clock) {
    this.read = read;
    this.ttlMs = ttlMs;
    this.clock = clock;
  }

  async get(signal: AbortSignal, fresh = false): Promise<T> {
    if (!fresh && this.cached && this.clock.now() - this.cached.at < this.ttlMs) return this.cached.value;
    if (!this.pending || fresh) {
      // Shared between callers, so no single caller's signal may cancel it.
      const read = this.read().then((value) => {
        this.cached = { at: this.clock.now(), value };
        return value;
      });
      this.pending = read;
      void read
        .finally(() => {
          if (this.pending === read) this.pending = undefined;
        })
        .catch(() => undefined);
    }
    return untilAborted(this.pending, signal);
  }
}
