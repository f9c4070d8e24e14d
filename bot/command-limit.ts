import { LEVELS, type Level } from "../commands/types.ts";
import { RateLimiter } from "./web/rate-limiter.ts";

export interface CommandLimitOptions {
  /** Commands a person may send at once in one clan; the bucket refills evenly over `windowMs`. */
  requests: number;
  windowMs: number;
  /** People at this level or above are not limited; "nobody" limits everyone. */
  exempt: Level | "nobody";
}

/** What to do with one command: run it, or not, and whether to say so (once per window). */
export type LimitVerdict =
  | { readonly limited: false }
  | { readonly limited: true; readonly retryAfterMs: number; readonly tell: boolean };

const ALLOWED: LimitVerdict = { limited: false };

/**
 * Commands per person and clan, as token buckets (`requests` at once, refilled over `windowMs`),
 * so that one person cannot keep the bot, its clan processes and the room busy for everyone. The
 * first command over the limit is answered; the following ones are not, until a window has passed
 * since that answer, so that a flood does not make the bot flood the room in turn.
 */
export class CommandLimit {
  private readonly o: CommandLimitOptions;
  private readonly buckets: RateLimiter;
  /** Per person and clan: until when the last "slow down" answer covers further commands. */
  private readonly told = new Map<string, number>();
  private readonly maxPeople: number;

  constructor(o: CommandLimitOptions, maxPeople = 10_000) {
    this.o = o;
    this.buckets = new RateLimiter(o.requests, o.windowMs, maxPeople);
    this.maxPeople = maxPeople;
  }

  get requests(): number {
    return this.o.requests;
  }

  get windowMs(): number {
    return this.o.windowMs;
  }

  /** Counts one command of `sender` in `clan`, sent at `at` (ms). */
  check(clan: string, sender: string, level: Level | undefined, at: number): LimitVerdict {
    if (this.exempt(level)) return ALLOWED;
    const key = `${clan}\n${sender}`;
    const retryAfterMs = this.buckets.take(key, at);
    if (retryAfterMs === 0) return ALLOWED;
    const until = this.told.get(key);
    if (until !== undefined && at < until) return { limited: true, retryAfterMs, tell: false };
    if (this.told.size >= this.maxPeople) this.forgetPast(at);
    this.told.set(key, at + this.o.windowMs);
    return { limited: true, retryAfterMs, tell: true };
  }

  private exempt(level: Level | undefined): boolean {
    if (this.o.exempt === "nobody" || level === undefined) return false;
    return LEVELS.indexOf(level) >= LEVELS.indexOf(this.o.exempt);
  }

  private forgetPast(at: number): void {
    for (const [key, until] of this.told) if (until <= at) this.told.delete(key);
    for (const key of this.told.keys()) {
      if (this.told.size < this.maxPeople) break;
      this.told.delete(key);
    }
  }
}
