/**
 * Requests per key (a client address, a person in a clan), as token buckets: `requests` at once, refilled evenly over `windowMs`.
 * Full buckets are forgotten when the table grows, so a flood of addresses cannot grow memory for ever.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly requests: number;
  private readonly perMs: number;
  private readonly maxAddresses: number;

  constructor(requests: number, windowMs: number, maxAddresses = 10_000) {
    this.requests = requests;
    this.perMs = requests / windowMs;
    this.maxAddresses = maxAddresses;
  }

  /** Takes one request from the address's bucket: 0 when allowed, else the ms until the next one is. */
  take(address: string, now: number): number {
    let bucket = this.buckets.get(address);
    if (!bucket) {
      if (this.buckets.size >= this.maxAddresses) this.forgetFull(now);
      bucket = { tokens: this.requests, at: now };
      this.buckets.set(address, bucket);
    }
    // Times may come from elsewhere (a message's server time) and go back a little: never refill backwards.
    bucket.tokens = Math.min(this.requests, bucket.tokens + Math.max(0, now - bucket.at) * this.perMs);
    bucket.at = Math.max(bucket.at, now);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.ceil((1 - bucket.tokens) / this.perMs);
  }

  private forgetFull(now: number): void {
    for (const [address, b] of this.buckets) {
      if (b.tokens + (now - b.at) * this.perMs >= this.requests) this.buckets.delete(address);
    }
    // Still full of active addresses: drop the oldest, so a new address is never refused for lack of room.
    for (const address of this.buckets.keys()) {
      if (this.buckets.size < this.maxAddresses) break;
      this.buckets.delete(address);
    }
  }
}
