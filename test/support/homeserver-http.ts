// Routing for the test homeserver: route declarations, matching, authentication, bodies, errors.
import type { IncomingHttpHeaders, IncomingMessage } from "node:http";
import { HsError, type Json, type Session, type Store } from "./homeserver-store.ts";

export interface Ctx {
  store: Store;
  path: string;
  params: Record<string, string>;
  query: URLSearchParams;
  body: Json;
  raw: Buffer;
  headers: IncomingHttpHeaders;
  session: Session | undefined;
  signal: AbortSignal;
}
export interface AuthedCtx extends Ctx {
  session: Session;
}

/** A non-JSON answer (media downloads). */
export class Bytes {
  readonly data: Buffer;
  readonly headers: Record<string, string>;
  constructor(data: Buffer, headers: Record<string, string>) {
    this.data = data;
    this.headers = headers;
  }
}

export type Out = Json | Json[] | Bytes;

export interface Route {
  method: string;
  segments: string[];
  auth: boolean;
  /** Counts against `rateLimit` (the actions Synapse rate-limits: sending, joining, inviting, uploading). */
  limited: boolean;
  /** PUT with a transaction id: a repeat from the same device answers the first answer again. */
  txn: boolean;
  raw: boolean;
  handle(ctx: Ctx): Out | Promise<Out>;
}

interface RouteOpts {
  limited?: boolean;
  txn?: boolean;
  raw?: boolean;
}

function declare(method: string, path: string, auth: boolean, handle: Route["handle"], opts: RouteOpts): Route {
  const { limited = false, txn = false, raw = false } = opts;
  return { method, segments: path.split("/"), auth, limited, txn, raw, handle };
}

export function authed(method: string, path: string, handle: (ctx: AuthedCtx) => Out | Promise<Out>, opts: RouteOpts = {}): Route {
  return declare(method, path, true, (ctx) => {
    const { session } = ctx;
    if (!session) throw new HsError(401, "M_MISSING_TOKEN", "Missing access token");
    return handle({ ...ctx, session });
  }, opts);
}

export function open(method: string, path: string, handle: (ctx: Ctx) => Out | Promise<Out>, opts: RouteOpts = {}): Route {
  return declare(method, path, false, handle, opts);
}

/** Matches "/a/:b/c/:d?" patterns; a trailing optional parameter may be absent (then ""). */
export function match(route: Route, parts: string[]): Record<string, string> | undefined {
  const segs = route.segments;
  const last = segs[segs.length - 1] ?? "";
  const optional = last.endsWith("?");
  if (parts.length !== segs.length && !(optional && parts.length === segs.length - 1)) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < segs.length; i++) {
    const seg = segs[i] ?? "";
    const part = parts[i];
    if (seg.startsWith(":")) {
      let value: string;
      try {
        value = decodeURIComponent(part ?? "");
      } catch {
        return undefined; // malformed escapes can match nothing
      }
      params[seg.slice(1).replace(/\?$/, "")] = value;
    } else if (seg !== part) {
      return undefined;
    }
  }
  return params;
}

/** r0 and v3 are the same API; routes are declared once, with v3. */
export function normalisePath(pathname: string): string {
  return pathname.replace(/^\/_matrix\/(client|media)\/r0\//, "/_matrix/$1/v3/");
}

export function accessToken(req: IncomingMessage, query: URLSearchParams): string | undefined {
  const header = req.headers.authorization;
  if (header?.startsWith("Bearer ")) return header.slice(7);
  return query.get("access_token") ?? undefined;
}

export function authenticate(store: Store, token: string | undefined, required: boolean): Session | undefined {
  if (token === undefined) {
    if (required) throw new HsError(401, "M_MISSING_TOKEN", "Missing access token");
    return undefined;
  }
  const session = store.sessions.get(token);
  if (!session && required) throw new HsError(401, "M_UNKNOWN_TOKEN", "Invalid access token passed.", { soft_logout: false });
  return session;
}

export function checkRateLimit(store: Store, userId: string): void {
  const limit = store.users.get(userId)?.rateLimit;
  if (!limit || limit.remaining <= 0) return;
  limit.remaining -= 1;
  throw new HsError(429, "M_LIMIT_EXCEEDED", "Too Many Requests", { retry_after_ms: limit.retryAfterMs });
}

export async function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += buf.length;
    if (size > maxBytes) throw new HsError(413, "M_TOO_LARGE", "Request too large");
    chunks.push(buf);
  }
  return Buffer.concat(chunks);
}

export function parseJsonBody(raw: Buffer): Json {
  if (raw.length === 0) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString("utf8"));
  } catch {
    throw new HsError(400, "M_NOT_JSON", "Content not JSON.");
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) throw new HsError(400, "M_BAD_JSON", "Content must be a JSON object.");
  return parsed as Json;
}

// ---- small validators for handlers ----

export function str(body: Json, key: string, required: true): string;
export function str(body: Json, key: string, required?: false): string | undefined;
export function str(body: Json, key: string, required = false): string | undefined {
  const v = body[key];
  if (v === undefined || v === null) {
    if (required) throw new HsError(400, "M_MISSING_PARAM", `Missing ${key}`);
    return undefined;
  }
  if (typeof v !== "string") throw new HsError(400, "M_BAD_JSON", `${key} must be a string`);
  return v;
}

export function obj(v: unknown, what: string): Json {
  if (v === undefined) return {};
  if (v === null || typeof v !== "object" || Array.isArray(v)) throw new HsError(400, "M_BAD_JSON", `${what} must be an object`);
  return v as Json;
}
