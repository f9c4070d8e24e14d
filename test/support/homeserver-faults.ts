// Timing and faults of the test homeserver: a real server's per-request delay and per-room send rate, and
// requests refused or dropped on demand, so tests and benchmarks see what clients meet on a real Synapse.
import { setTimeout as sleep } from "node:timers/promises";

/** A fixed number of milliseconds, or a [min, max] range drawn uniformly for each request. */
export type Millis = number | readonly [number, number];

export interface Latency {
  /** Delay before any request is handled (network, parsing, database), requests in parallel. */
  requestMs?: Millis;
  /**
   * Time one event takes to be stored in a room (sends, state, redactions, membership). A room's events are
   * stored one after the other, as Synapse's event persister does, so sends to one room queue behind each other.
   * A createRoom costs its six first events.
   */
  sendMs?: Millis;
  /** Alternative to sendMs: events a room stores per second (sendMs = 1000 / this). */
  sendPerSecondPerRoom?: number;
}

/**
 * DESIGN.md, "Environment facts": a send to Synapse 1.67 on this kind of machine (2 cores) takes 40-80 ms and a
 * room's events are stored one after the other. Other requests are not measured there; 5-15 ms is assumed.
 */
export const SYNAPSE_ON_TWO_CORES: Latency = { requestMs: [5, 15], sendMs: [40, 80] };

export interface RequestMatch {
  /** Matches requests whose path (r0 read as v3) starts with this; "" matches all. */
  pathPrefix?: string;
  /** Matches only this HTTP method. */
  method?: string;
  /** How many matching requests are affected (default 1; Infinity until clearFaults()). */
  count?: number;
}

export interface FailSpec extends RequestMatch {
  /** Default 500. */
  status?: number;
  /** Default "M_UNKNOWN". */
  errcode?: string;
  error?: string;
  retryAfterMs?: number;
  /** Answer with a reverse proxy's HTML error page instead of a Matrix error (as nginx does for 502/504). */
  proxyPage?: boolean;
}

export interface DropSpec extends RequestMatch {
  /**
   * "before" (default): the connection is closed before the request is handled: nothing happened.
   * "after": the request is handled (an event is stored) and the connection closed instead of answering.
   */
  when?: "before" | "after";
}

export type Fault = { kind: "fail"; spec: FailSpec } | { kind: "drop"; spec: DropSpec };

// Endpoints that add an event to an existing room, with where the room id sits in the path.
const ROOM_EVENT = /^\/_matrix\/client\/v3\/rooms\/([^/]+)\/(send|state|redact|join|invite|leave|kick|ban|unban)(\/|$)/;
const JOIN = /^\/_matrix\/client\/v3\/join\/([^/]+)$/;
const CREATE_ROOM = "/_matrix/client/v3/createRoom";
const CREATE_ROOM_EVENTS = 6;

function draw(ms: Millis | undefined): number {
  if (ms === undefined) return 0;
  if (typeof ms === "number") return ms;
  const [min, max] = ms;
  return min + Math.random() * (max - min);
}

export class Conditions {
  private latency: Latency = {};
  private readonly faults: Array<{ fault: Fault; left: number }> = [];
  /** Per room: when its event queue is free again. */
  private readonly roomQueues = new Map<string, Promise<void>>();

  setLatency(latency: Latency): void {
    this.latency = { ...latency };
  }

  addFault(fault: Fault): void {
    this.faults.push({ fault, left: fault.spec.count ?? 1 });
  }

  clearFaults(): void {
    this.faults.length = 0;
  }

  /** The fault for this request, if one is armed for it (each use counts down). */
  take(method: string, path: string): Fault | undefined {
    const i = this.faults.findIndex(({ fault: { spec } }) => path.startsWith(spec.pathPrefix ?? "") && (spec.method === undefined || spec.method === method));
    const armed = this.faults[i];
    if (!armed) return undefined;
    armed.left -= 1;
    if (armed.left <= 0) this.faults.splice(i, 1);
    return armed.fault;
  }

  /** Waits as a real server would before handling this request: room events in their room's queue, others alone. */
  async delay(method: string, path: string): Promise<void> {
    const { requestMs, sendMs, sendPerSecondPerRoom } = this.latency;
    const perEvent = sendMs ?? (sendPerSecondPerRoom ? 1000 / sendPerSecondPerRoom : undefined);
    if (perEvent !== undefined && method === "POST" && path === CREATE_ROOM) {
      // A new room's first events (create, creator's join, power levels, join rules, history visibility, guest
      // access) are stored one after the other too; nobody else can be in its queue yet.
      const ms = draw(requestMs) + Array.from({ length: CREATE_ROOM_EVENTS }, () => draw(perEvent)).reduce((a, b) => a + b, 0);
      await sleep(ms, undefined, { ref: false });
      return;
    }
    const room = method === "GET" ? undefined : (ROOM_EVENT.exec(path)?.[1] ?? JOIN.exec(path)?.[1]);
    if (room === undefined || perEvent === undefined) {
      const ms = draw(requestMs);
      if (ms > 0) await sleep(ms, undefined, { ref: false });
      return;
    }
    const key = decodeURIComponent(room);
    const turn = (this.roomQueues.get(key) ?? Promise.resolve()).then(() => sleep(draw(perEvent), undefined, { ref: false }));
    this.roomQueues.set(key, turn);
    await turn;
    if (this.roomQueues.get(key) === turn) this.roomQueues.delete(key);
  }
}
