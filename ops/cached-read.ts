import type { Clock } from "../commands/types.ts";
import { untilAborted } from "./abort.ts";

interface Pending<T> {
  readonly promise: Promise<T>;
  /** Counts reads started: a fresh request needs one started after it. */
  readonly generation: number;
}

/**
 * A flake evaluation (the inventory, the machines' target hosts) takes seconds on a real clan, so
 * one read is shared by everyone asking at the same time and reused for `ttlMs`. `fresh` forces a
 * new read (after a git pull): one that starts after it was asked for, shared with every fresh
 * request made while the read before it was still running, so that many `!refresh` at once cost one
 * more evaluation, not one each.
 */
export class CachedRead<T> {
  private readonly read: () => Promise<T>;
  private readonly ttlMs: number;
  private readonly clock: Clock;
  private cached: { at: number; value: T } | undefined;
  private pending: Pending<T> | undefined;
  /** The read that follows the running one, for fresh requests made while it runs. */
  private next: Promise<T> | undefined;
  private started = 0;

  constructor(read: () => Promise<T>, ttlMs: number, clock: Clock) {
    this.read = read;
    this.ttlMs = ttlMs;
    this.clock = clock;
  }

  async get(signal: AbortSignal, fresh = false): Promise<T> {
    if (!fresh && this.cached && this.clock.now() - this.cached.at < this.ttlMs) return this.cached.value;
    if (!fresh || !this.pending) return untilAborted((this.pending ?? this.start()).promise, signal);
    if (!this.next) {
      const before = this.pending;
      const next = before.promise
        .then(
          () => undefined,
          () => undefined,
        )
        .then(() => {
          this.next = undefined;
          // A read started since (by someone else) began after this request: share it.
          const p = this.pending && this.pending.generation > before.generation ? this.pending : this.start();
          return p.promise;
        });
      this.next = next;
      next.catch(() => undefined);
    }
    return untilAborted(this.next, signal);
  }

  private start(): Pending<T> {
    // Shared between callers, so no single caller's signal may cancel it.
    const promise = this.read().then((value) => {
      this.cached = { at: this.clock.now(), value };
      return value;
    });
    const pending = { promise, generation: ++this.started };
    this.pending = pending;
    void promise
      .finally(() => {
        if (this.pending === pending) this.pending = undefined;
      })
      .catch(() => undefined);
    return pending;
  }
}
