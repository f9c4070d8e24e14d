import type { Clock } from "../commands/types.ts";

interface Entry<K> {
  readonly key: K;
  readonly at: number;
  /** Replaced or deleted: left in the heap until it surfaces. */
  stale: boolean;
}

export interface ScheduleTimerOptions<K> {
  clock: Clock;
  /** Everything that came due, earliest first; each key is out of the timer until it is `set` again. */
  onDue(due: readonly { key: K; at: number }[]): void;
  /**
   * The longest the timer sleeps: it wakes up at least this often to look at the clock again, so a
   * wall clock that jumps (NTP, a suspended host) is noticed, and a far slot never overflows setTimeout.
   */
  maxSleepMs?: number;
}

/**
 * One timer for any number of keys, each due at a time: a binary heap ordered by due time, and a
 * single setTimeout armed for the earliest. Whatever is due when it fires is handed over at once,
 * in one call; a thousand schedules due at the same second cost one wake-up.
 */
export class ScheduleTimer<K> {
  private readonly o: ScheduleTimerOptions<K>;
  private readonly maxSleepMs: number;
  private heap: Entry<K>[] = [];
  private readonly live = new Map<K, Entry<K>>();
  private timer: NodeJS.Timeout | undefined;
  private armedFor = Number.POSITIVE_INFINITY;
  private closed = false;

  constructor(o: ScheduleTimerOptions<K>) {
    this.o = o;
    this.maxSleepMs = o.maxSleepMs ?? 60_000;
  }

  get size(): number {
    return this.live.size;
  }

  /** When `key` is due next, if it is in the timer. */
  dueAt(key: K): number | undefined {
    return this.live.get(key)?.at;
  }

  /** Puts `key` in (or moves it) to be due at `at`. */
  set(key: K, at: number): void {
    this.unset(key);
    const entry: Entry<K> = { key, at, stale: false };
    this.live.set(key, entry);
    this.push(entry);
    if (at < this.armedFor) this.arm();
  }

  delete(key: K): void {
    this.unset(key);
  }

  /** Hands everything due by now to onDue; the timer calls it, tests may too. Returns how many were due. */
  fireDue(): number {
    const now = this.o.clock.now();
    const due: { key: K; at: number }[] = [];
    for (let top = this.heap[0]; top !== undefined && (top.stale || top.at <= now); top = this.heap[0]) {
      this.pop();
      if (top.stale) continue;
      this.live.delete(top.key);
      due.push({ key: top.key, at: top.at });
    }
    if (due.length) this.o.onDue(due);
    this.arm();
    return due.length;
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private unset(key: K): void {
    const old = this.live.get(key);
    if (!old) return;
    old.stale = true;
    this.live.delete(key);
    // Stale entries surface one by one; rebuild when they would outnumber the live ones.
    if (this.heap.length > 64 && this.heap.length > 2 * this.live.size) this.rebuild();
  }

  private arm(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.armedFor = Number.POSITIVE_INFINITY;
    while (this.heap[0]?.stale) this.pop();
    const top = this.heap[0];
    if (this.closed || !top) return;
    const wait = Math.min(Math.max(top.at - this.o.clock.now(), 0), this.maxSleepMs);
    this.armedFor = top.at;
    // A timer may fire a millisecond before the clock says the slot has come: fireDue then finds
    // nothing due and arms again for what is left.
    this.timer = setTimeout(() => this.fireDue(), wait);
    this.timer.unref();
  }

  private rebuild(): void {
    this.heap = [...this.live.values()];
    for (let i = (this.heap.length >> 1) - 1; i >= 0; i--) this.down(i);
  }

  private push(e: Entry<K>): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((h[parent] as Entry<K>).at <= e.at) break;
      h[i] = h[parent] as Entry<K>;
      i = parent;
    }
    h[i] = e;
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop();
    if (last === undefined || h.length === 0) return;
    h[0] = last;
    this.down(0);
  }

  private down(start: number): void {
    const h = this.heap;
    const e = h[start] as Entry<K>;
    let i = start;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) break;
      const r = l + 1;
      const child = r < h.length && (h[r] as Entry<K>).at < (h[l] as Entry<K>).at ? r : l;
      if ((h[child] as Entry<K>).at >= e.at) break;
      h[i] = h[child] as Entry<K>;
      i = child;
    }
    h[i] = e;
  }
}
