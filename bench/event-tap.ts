// Sub-millisecond server-side timestamps for every event the test homeserver stores.
//
// `origin_server_ts` is Date.now(), whole milliseconds: too coarse for latencies of a few ms. The
// homeserver runs in this process, so wrapping its Store's append (an exported class) gives the
// moment each event is stored on the same monotonic clock, plus a push notification for awaiting
// answers without polling or a syncing client of our own. The wrapper runs inside the homeserver's
// request handling, so it only records and resolves waiters: no I/O, no copying of room history.
import { Store, type StoredEvent } from "../test/support/homeserver-store.ts";

export interface TappedEvent {
  id: string;
  roomId: string;
  type: string;
  sender: string;
  stateKey: string | undefined;
  content: Record<string, unknown>;
  /** performance.now() when the homeserver stored it. */
  at: number;
  /** The homeserver's origin_server_ts (ms), for cross-checking. */
  ts: number;
  /** The event this one relates to: reaction/edit target, or the event a reply answers. */
  relatesTo: string | undefined;
}

type Waiter = { match: (e: TappedEvent) => boolean; resolve: (e: TappedEvent) => void };

function relationTarget(content: Record<string, unknown>): string | undefined {
  const rel = content["m.relates_to"] as { event_id?: unknown; "m.in_reply_to"?: { event_id?: unknown } } | undefined;
  if (!rel || typeof rel !== "object") return undefined;
  const direct = rel.event_id;
  if (typeof direct === "string") return direct;
  const reply = rel["m.in_reply_to"]?.event_id;
  return typeof reply === "string" ? reply : undefined;
}

export class EventTap {
  private readonly byId = new Map<string, TappedEvent>();
  private readonly related = new Map<string, TappedEvent[]>();
  private waiters: Waiter[] = [];
  private readonly watchers = new Set<(e: TappedEvent) => void>();

  record(stored: StoredEvent, at: number): void {
    const ev = stored.event;
    const e: TappedEvent = {
      id: ev.event_id,
      roomId: ev.room_id,
      type: ev.type,
      sender: ev.sender,
      stateKey: ev.state_key,
      content: ev.content,
      at,
      ts: ev.origin_server_ts,
      relatesTo: relationTarget(ev.content),
    };
    this.byId.set(e.id, e);
    if (e.relatesTo !== undefined) {
      const list = this.related.get(e.relatesTo);
      if (list) list.push(e);
      else this.related.set(e.relatesTo, [e]);
    }
    for (const w of this.watchers) w(e);
    if (this.waiters.length) {
      const still: Waiter[] = [];
      for (const w of this.waiters) {
        if (w.match(e)) w.resolve(e);
        else still.push(w);
      }
      this.waiters = still;
    }
  }

  get(eventId: string): TappedEvent | undefined {
    return this.byId.get(eventId);
  }

  relatedTo(eventId: string): readonly TappedEvent[] {
    return this.related.get(eventId) ?? [];
  }

  /** Calls `fn` for every event stored from now on; returns the unsubscribe function. */
  watch(fn: (e: TappedEvent) => void): () => void {
    this.watchers.add(fn);
    return () => this.watchers.delete(fn);
  }

  /** The first event relating to `eventId` that matches (already stored, or the next one to be), or undefined after `timeoutMs`. */
  waitRelated(eventId: string, match: (e: TappedEvent) => boolean, timeoutMs: number): Promise<TappedEvent | undefined> {
    const seen = this.relatedTo(eventId).find(match);
    if (seen) return Promise.resolve(seen);
    return this.waitFor((e) => e.relatesTo === eventId && match(e), timeoutMs);
  }

  /** The next event stored that matches, or undefined after `timeoutMs`. */
  waitFor(match: (e: TappedEvent) => boolean, timeoutMs: number): Promise<TappedEvent | undefined> {
    return new Promise((resolve) => {
      const waiter: Waiter = {
        match,
        resolve: (e) => {
          clearTimeout(timer);
          resolve(e);
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve(undefined);
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }
}

let active: EventTap | undefined;
let installed = false;

/** Starts recording into a fresh tap (the previous one stops receiving); installs the wrapper once. */
export function tapHomeserver(): EventTap {
  if (!installed) {
    installed = true;
    const append = Store.prototype.append;
    Store.prototype.append = function (this: Store, ...args: Parameters<Store["append"]>): StoredEvent {
      const stored = append.apply(this, args);
      active?.record(stored, performance.now());
      return stored;
    };
  }
  active = new EventTap();
  return active;
}

export const isReaction = (key: string) => (e: TappedEvent): boolean =>
  e.type === "m.reaction" && (e.content["m.relates_to"] as { key?: unknown } | undefined)?.key === key;

/** A reply, plain or encrypted (an encrypted event keeps its relation in clear). */
export const isReply = (e: TappedEvent): boolean =>
  (e.type === "m.room.message" || e.type === "m.room.encrypted") &&
  typeof (e.content["m.relates_to"] as { "m.in_reply_to"?: unknown } | undefined)?.["m.in_reply_to"] === "object";
