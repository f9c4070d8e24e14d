// An in-process Matrix homeserver for end-to-end tests (Client-Server API, one server, no federation), with
// end-to-end encryption support (keys, cross-signing, to-device, device lists: homeserver-keys.ts).
// The bot and the tests' "human" matrix-js-sdk clients talk to it over real HTTP on 127.0.0.1;
// tests steer it (pause, go down, rate-limit, a real server's latency, refused or dropped requests, held
// to-device messages) and inspect what it stored.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { accountRoutes, MAX_UPLOAD } from "./homeserver-account.ts";
import {
  accessToken,
  authenticate,
  Bytes,
  checkRateLimit,
  match,
  normalisePath,
  parseJsonBody,
  readBody,
  type Out,
  type Route,
} from "./homeserver-http.ts";
import { Conditions, type DropSpec, type FailSpec, type Latency } from "./homeserver-faults.ts";
import { keyRoutes } from "./homeserver-keys.ts";
import { roomRoutes } from "./homeserver-rooms.ts";
import { crossSigningKeyOf } from "./homeserver-signing.ts";
import { HsError, Store, type ToDeviceHold } from "./homeserver-store.ts";

export interface StoredRoomEvent {
  event_id: string;
  type: string;
  sender: string;
  content: Record<string, unknown>;
  origin_server_ts: number;
  state_key?: string;
  unsigned?: Record<string, unknown>;
}

export interface TestHomeserver {
  url: string;
  serverName: string;
  createUser(localpart: string, password: string): Promise<{ userId: string; accessToken: string; deviceId: string }>;
  /** Stops answering: requests (and answers already being prepared) are held until resume(). */
  pause(): void;
  resume(): void;
  /** Stops listening and destroys every open connection. */
  goDown(): Promise<void>;
  /** Listens again on the same port, with the same state. */
  comeBack(): Promise<void>;
  /** Injects an event server-side (auth rules still apply); returns its id. */
  sendAs(userId: string, roomId: string, type: string, content: Record<string, unknown>): string;
  roomEvents(roomId: string): StoredRoomEvent[];
  requestCount(pathPrefix?: string): number;
  /** The user's next `requests` rate-limited requests (send, state, redact, join, invite, createRoom, upload, login) get 429. */
  rateLimit(userId: string, requests: number, retryAfterMs: number): void;
  /**
   * Answers like a real server: every request waits `requestMs`, and events sent to one room are stored one after the
   * other, `sendMs` (or 1000 / `sendPerSecondPerRoom`) each. `setLatency({})` (the default) answers at once.
   * SYNAPSE_ON_TWO_CORES (homeserver-faults.ts) is Synapse on this kind of machine.
   */
  setLatency(latency: Latency): void;
  /** The next `count` (default 1) matching requests get this error (default 500 M_UNKNOWN), without being handled. */
  failNext(spec: FailSpec): void;
  /** The next `count` (default 1) matching requests have their connection closed without an answer, before or after being handled. */
  dropNext(spec: DropSpec): void;
  /** Disarms every failNext/dropNext not yet used. */
  clearFaults(): void;
  /**
   * Holds back to-device messages (room keys travel in them, as "m.room.encrypted") sent to `to` (a user id; all
   * users when absent) of `type` (all types when absent) from now on, instead of delivering them: for keys that come
   * late (release) or never (discard).
   */
  holdToDevice(match: { to?: string; type?: string }): ToDeviceHoldHandle;
  /** The user's devices as the server knows them: keys uploaded, signed by the user's self-signing key. */
  devices(userId: string): DeviceSummary[];
  /** Whether a first cross-signing key upload needs user-interactive auth too (as on servers without MSC3967). */
  requireAuthForCrossSigning(required: boolean): void;
  /** Requests that matched no endpoint ("METHOD /path"), to see what a client expected that is missing. */
  unrecognized(): string[];
  close(): Promise<void>;
}

export interface ToDeviceHoldHandle {
  /** Messages held so far. */
  count(): number;
  /** Stops holding and delivers what was held, in order. */
  release(): void;
  /** Stops holding and drops what was held; returns how many. */
  discard(): number;
}

export interface DeviceSummary {
  deviceId: string;
  displayName?: string;
  hasKeys: boolean;
  crossSigned: boolean;
}

const CORS = {
  "access-control-allow-origin": "*",
  "access-control-allow-methods": "GET, POST, PUT, DELETE, OPTIONS",
  "access-control-allow-headers": "X-Requested-With, Content-Type, Authorization",
};

const PROXY_REASONS: Record<number, string> = { 502: "Bad Gateway", 503: "Service Temporarily Unavailable", 504: "Gateway Time-out" };

class Homeserver implements TestHomeserver {
  readonly serverName: string;
  url = "";
  private readonly store: Store;
  private readonly routes: Route[] = [...accountRoutes, ...roomRoutes, ...keyRoutes];
  private readonly txns = new Map<string, Out>();
  private readonly counts = new Map<string, number>();
  private readonly unknown: string[] = [];
  private readonly conditions = new Conditions();
  private readonly sockets = new Set<Socket>();
  private server: Server | undefined;
  private port = 0;
  private paused = false;
  private held: Array<() => void> = [];

  constructor(serverName: string) {
    this.serverName = serverName;
    this.store = new Store(serverName);
  }

  async listen(port: number): Promise<void> {
    const server = createServer((req, res) => this.onRequest(req, res));
    server.on("connection", (socket) => {
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => {
        server.off("error", reject);
        resolve();
      });
    });
    const address = server.address();
    if (address === null || typeof address === "string") throw new Error("test homeserver: no TCP address");
    this.port = address.port;
    this.url = `http://127.0.0.1:${this.port}`;
    this.server = server;
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? "/", "http://test");
    this.counts.set(url.pathname, (this.counts.get(url.pathname) ?? 0) + 1);
    const run = (): void => void this.dispatch(req, res, url);
    if (this.paused) this.held.push(run);
    else run();
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const abort = new AbortController();
    res.on("close", () => abort.abort());
    try {
      if (req.method === "OPTIONS") return this.write(res, 204, {}, "");
      const path = normalisePath(url.pathname);
      const method = req.method ?? "GET";
      const fault = this.conditions.take(method, path);
      if (fault?.kind === "drop" && fault.spec.when !== "after") return void req.socket.destroy();
      if (fault?.kind === "fail") return this.writeFault(res, fault.spec);
      const parts = path.split("/");
      let known = false;
      for (const route of this.routes) {
        const params = match(route, parts);
        if (!params) continue;
        known = true;
        if (route.method !== method) continue;
        const session = authenticate(this.store, accessToken(req, url.searchParams), route.auth);
        if (route.limited && session) checkRateLimit(this.store, session.userId);
        const raw = method === "GET" ? Buffer.alloc(0) : await readBody(req, MAX_UPLOAD + 1);
        const body = route.raw ? {} : parseJsonBody(raw);
        await this.conditions.delay(method, path);
        const txnKey = route.txn && session ? `${session.userId}|${session.deviceId}|${path}` : undefined;
        let out = txnKey === undefined ? undefined : this.txns.get(txnKey);
        if (out === undefined) {
          const ctx = { store: this.store, path, params, query: url.searchParams, body, raw, headers: req.headers, session, signal: abort.signal };
          out = await route.handle(ctx);
          if (txnKey !== undefined) this.txns.set(txnKey, out);
        }
        if (fault) return void req.socket.destroy(); // a drop "after": handled, never answered
        if (out instanceof Bytes) return this.write(res, 200, out.headers, out.data);
        return this.write(res, 200, { "content-type": "application/json" }, JSON.stringify(out));
      }
      // Spec: unknown endpoints are 404 M_UNRECOGNIZED, known ones with the wrong method 405.
      this.unknown.push(`${method} ${url.pathname}`);
      throw new HsError(known ? 405 : 404, "M_UNRECOGNIZED", "Unrecognized request");
    } catch (e) {
      const err = e instanceof HsError ? e : new HsError(500, "M_UNKNOWN", `Internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      // A user-interactive auth challenge is a 401 without an errcode.
      const body = err.errcode ? { errcode: err.errcode, error: err.message, ...err.extra } : err.extra;
      const headers: Record<string, string> = { "content-type": "application/json" };
      const retry = err.extra["retry_after_ms"];
      if (typeof retry === "number") headers["retry-after"] = String(Math.ceil(retry / 1000));
      this.write(res, err.status, headers, JSON.stringify(body));
    }
  }

  private writeFault(res: ServerResponse, spec: FailSpec): void {
    const status = spec.status ?? 500;
    if (spec.proxyPage) {
      const reason = PROXY_REASONS[status] ?? "Error";
      const page = `<html>\r\n<head><title>${status} ${reason}</title></head>\r\n<body>\r\n<center><h1>${status} ${reason}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n`;
      return this.write(res, status, { "content-type": "text/html" }, page);
    }
    const body: Record<string, unknown> = { errcode: spec.errcode ?? "M_UNKNOWN", error: spec.error ?? "Injected failure" };
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (spec.retryAfterMs !== undefined) {
      body["retry_after_ms"] = spec.retryAfterMs;
      headers["retry-after"] = String(Math.ceil(spec.retryAfterMs / 1000));
    }
    this.write(res, status, headers, JSON.stringify(body));
  }

  private write(res: ServerResponse, status: number, headers: Record<string, string>, body: string | Buffer): void {
    const send = (): void => {
      if (res.destroyed || res.writableEnded) return;
      res.writeHead(status, { ...CORS, ...headers });
      res.end(body);
    };
    if (this.paused) this.held.push(send);
    else send();
  }

  async createUser(localpart: string, password: string): Promise<{ userId: string; accessToken: string; deviceId: string }> {
    const session = this.store.login(this.store.createUser(localpart, password));
    return { userId: session.userId, accessToken: session.token, deviceId: session.deviceId };
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    const held = this.held;
    this.held = [];
    for (const run of held) run();
  }

  async goDown(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    this.held = [];
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  async comeBack(): Promise<void> {
    if (!this.server) await this.listen(this.port);
  }

  sendAs(userId: string, roomId: string, type: string, content: Record<string, unknown>): string {
    return this.store.send(this.store.room(roomId), { type, sender: userId, content }).event.event_id;
  }

  roomEvents(roomId: string): StoredRoomEvent[] {
    return structuredClone(this.store.room(roomId).events.map((e) => e.event));
  }

  requestCount(pathPrefix = ""): number {
    let n = 0;
    for (const [path, count] of this.counts) if (path.startsWith(pathPrefix)) n += count;
    return n;
  }

  rateLimit(userId: string, requests: number, retryAfterMs: number): void {
    this.store.user(userId).rateLimit = { remaining: requests, retryAfterMs };
  }

  setLatency(latency: Latency): void {
    this.conditions.setLatency(latency);
  }

  failNext(spec: FailSpec): void {
    this.conditions.addFault({ kind: "fail", spec });
  }

  dropNext(spec: DropSpec): void {
    this.conditions.addFault({ kind: "drop", spec });
  }

  clearFaults(): void {
    this.conditions.clearFaults();
  }

  holdToDevice(match: { to?: string; type?: string }): ToDeviceHoldHandle {
    const hold: ToDeviceHold = { held: [] };
    if (match.to !== undefined) hold.to = match.to;
    if (match.type !== undefined) hold.type = match.type;
    this.store.toDeviceHolds.push(hold);
    const stop = (): ToDeviceHold["held"] => {
      const i = this.store.toDeviceHolds.indexOf(hold);
      if (i >= 0) this.store.toDeviceHolds.splice(i, 1);
      return hold.held.splice(0);
    };
    return {
      count: () => hold.held.length,
      release: () => {
        for (const m of stop()) this.store.deliverToDevice(m.userId, m.deviceId, m.event);
      },
      discard: () => stop().length,
    };
  }

  devices(userId: string): DeviceSummary[] {
    const user = this.store.user(userId);
    const ssk = user.crossSigning.self_signing ? crossSigningKeyOf(user.crossSigning.self_signing) : undefined;
    return [...user.devices].map(([deviceId, d]) => {
      const sigs = { ...(d.deviceKeys?.["signatures"] as Record<string, Record<string, string>> | undefined)?.[userId], ...user.signatures.get(deviceId)?.get(userId) };
      const out: DeviceSummary = { deviceId, hasKeys: d.deviceKeys !== undefined, crossSigned: ssk !== undefined && sigs[ssk[0]] !== undefined };
      if (d.displayName !== undefined) out.displayName = d.displayName;
      return out;
    });
  }

  requireAuthForCrossSigning(required: boolean): void {
    this.store.requireAuthForFirstCrossSigning = required;
  }

  unrecognized(): string[] {
    return [...this.unknown];
  }

  async close(): Promise<void> {
    await this.goDown();
    this.store.dispose();
  }
}

export async function startHomeserver(opts: { port?: number; serverName?: string; latency?: Latency } = {}): Promise<TestHomeserver> {
  const hs = new Homeserver(opts.serverName ?? "localhost");
  if (opts.latency) hs.setLatency(opts.latency);
  await hs.listen(opts.port ?? 0);
  return hs;
}

export { SYNAPSE_ON_TWO_CORES, type DropSpec, type FailSpec, type Latency } from "./homeserver-faults.ts";

// The tests' human users: matrix-js-sdk clients (kept in their own file, exported from here as before).
export { humanClient, startSynced, stopClient, type HumanClientOptions } from "./homeserver-client.ts";
