import { randomBytes, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Clock, Log } from "../../commands/types.ts";
import type { InviteService, JoinOffer } from "../invite-service.ts";
import { invalidPage, invitedPage, joinPage, messagePage, STYLE_HASH } from "./join-pages.ts";
import { RateLimiter } from "./rate-limiter.ts";

export interface JoinServerOptions {
  readonly invites: Pick<InviteService, "offer" | "redeem">;
  readonly clock: Clock;
  readonly log: Log;
  readonly host: string;
  readonly port: number;
  /** `web.publicUrl`: its origin is the only one form posts may come from. */
  readonly publicUrl: string;
  readonly trustProxy: boolean;
  readonly rateLimit: { readonly requests: number; readonly windowMs: number };
  /** How long a client may take for its headers, and for its whole request (tests shorten them). */
  readonly limits?: { readonly headersMs: number; readonly requestMs: number };
}

/** A phone on a poor connection sends a small form in well under these; a slow-loris client is cut. */
const HEADERS_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 15_000;

const JOIN_PATH = /^\/join\/([^/?#]{1,200})$/;
const CHECK_COOKIE = "clanbot_check";
const MAX_FORM_BYTES = 4096;

/**
 * The join page: GET shows a code's invitation and a form, POST redeems it. No JavaScript, strict headers,
 * one rate limit per client address over all join requests, and a double-submit check (a SameSite cookie
 * that must match the form) against posts from other sites. Tokens appear only in URLs, never in logs.
 */
export class JoinServer {
  private readonly o: JoinServerOptions;
  private readonly server: Server;
  private readonly limiter: RateLimiter;
  private readonly origin: string;
  private readonly headers: Record<string, string>;

  constructor(options: JoinServerOptions) {
    this.o = options;
    this.limiter = new RateLimiter(options.rateLimit.requests, options.rateLimit.windowMs);
    this.origin = new URL(options.publicUrl).origin;
    const https = this.origin.startsWith("https:");
    this.headers = {
      "content-security-policy": `default-src 'none'; style-src '${STYLE_HASH}'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`,
      "x-content-type-options": "nosniff",
      "x-frame-options": "DENY",
      // The page's URL holds the token: it must not leak to the sites it links to. (Not no-referrer:
      // browsers then send `Origin: null` with the form, and the origin check could not tell.)
      "referrer-policy": "same-origin",
      "cache-control": "no-store",
      "permissions-policy": "camera=(), microphone=(), geolocation=()",
      "cross-origin-opener-policy": "same-origin",
      "cross-origin-resource-policy": "same-origin",
      ...(https ? { "strict-transport-security": "max-age=31536000" } : {}),
    };
    const headersMs = options.limits?.headersMs ?? HEADERS_TIMEOUT_MS;
    const requestMs = options.limits?.requestMs ?? REQUEST_TIMEOUT_MS;
    const handler = (req: IncomingMessage, res: ServerResponse): void => {
      this.handle(req, res).catch((err: unknown) => {
        // A client that went away or was cut for being slow is everyday noise on a public page, not a failure.
        if (req.destroyed || res.destroyed) {
          this.o.log.info({ err: errorWithoutUrl(err) }, "a join page client went away or was too slow");
          return;
        }
        this.o.log.error({ err: errorWithoutUrl(err) }, "the join page failed");
        if (!res.headersSent) this.send(res, 500, messagePage("Something went wrong", "Please try again in a moment."));
        else res.destroy();
      });
    };
    this.server = createServer(
      {
        headersTimeout: headersMs,
        requestTimeout: requestMs,
        // Node checks those limits only this often (30 s by default): without it a slow client holds on for ~30 s.
        connectionsCheckingInterval: Math.min(1_000, headersMs / 2),
      },
      handler,
    );
  }

  async listen(): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(this.o.port, this.o.host, () => {
        this.server.off("error", reject);
        resolve();
      });
    });
    return this.server.address() as AddressInfo;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? "/").split("?")[0] as string;
    if (path === "/healthz") return this.send(res, 200, "ok\n", "text/plain; charset=utf-8");
    const match = JOIN_PATH.exec(path);
    if (!match) return this.send(res, 404, messagePage("Not found", "There is nothing here."));
    const wait = this.limiter.take(this.clientAddress(req), this.o.clock.now());
    if (wait > 0) {
      res.setHeader("retry-after", String(Math.ceil(wait / 1000)));
      return this.send(res, 429, messagePage("Too many attempts", "Please wait a minute, then open the link again."));
    }
    const token = match[1] as string;
    if (req.method === "GET" || req.method === "HEAD") return this.show(res, token);
    if (req.method === "POST") return this.redeem(req, res, token);
    res.setHeader("allow", "GET, HEAD, POST");
    return this.send(res, 405, messagePage("Not allowed", "Open the link from your invitation."));
  }

  private async show(res: ServerResponse, token: string): Promise<void> {
    const offer = await this.o.invites.offer(token);
    if (!offer) return this.send(res, 404, invalidPage());
    this.form(res, token, offer);
  }

  /** The form, with a fresh check cookie; again with the problem when a post was not accepted. */
  private form(res: ServerResponse, token: string, offer: JoinOffer, problem?: { reason: string; typed: string }): void {
    const check = randomBytes(18).toString("base64url");
    const secure = this.origin.startsWith("https:") ? "; Secure" : "";
    res.setHeader("set-cookie", `${CHECK_COOKIE}=${check}; Path=/join/; Max-Age=3600; HttpOnly; SameSite=Strict${secure}`);
    this.send(res, problem ? 400 : 200, joinPage(offer, `/join/${token}`, check, this.o.clock.now(), problem));
  }

  private async redeem(req: IncomingMessage, res: ServerResponse, token: string): Promise<void> {
    const form = await readForm(req);
    if (!form) return this.send(res, 400, messagePage("Not understood", "Please open the link again and use the form."));
    if (!this.sameSite(req, form.get("check"))) {
      return this.send(res, 403, messagePage("Form not accepted", "This form was not sent from the join page. Please open the link again."));
    }
    const typed = (form.get("user") ?? "").slice(0, 300);
    const result = await this.o.invites.redeem(token, typed);
    switch (result.kind) {
      case "invalid":
        return this.send(res, 404, invalidPage());
      case "bad-user-id":
      case "refused":
        return this.form(res, token, result.offer, { reason: result.reason, typed });
      case "invited":
        return this.send(res, 200, invitedPage(result.clan, result.userId, result.roomLink));
    }
  }

  /** The post carries the cookie the page set (another site's form cannot) and, when the browser says, our origin. */
  private sameSite(req: IncomingMessage, check: string | null): boolean {
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== this.origin && origin !== `http://${req.headers.host}`) return false;
    if (req.headers["sec-fetch-site"] === "cross-site") return false;
    const cookie = cookieValue(req.headers.cookie, CHECK_COOKIE);
    if (!cookie || !check || cookie.length !== check.length) return false;
    return timingSafeEqual(Buffer.from(cookie), Buffer.from(check));
  }

  private clientAddress(req: IncomingMessage): string {
    if (this.o.trustProxy) {
      const forwarded = req.headers["x-forwarded-for"];
      const last = (Array.isArray(forwarded) ? forwarded.join(",") : (forwarded ?? "")).split(",").pop()?.trim();
      if (last) return last;
    }
    return req.socket.remoteAddress ?? "unknown";
  }

  private send(res: ServerResponse, status: number, body: string, type = "text/html; charset=utf-8"): void {
    res.writeHead(status, { ...this.headers, "content-type": type, "content-length": Buffer.byteLength(body) });
    res.end(body);
  }
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams | undefined> {
  if (!(req.headers["content-type"] ?? "").startsWith("application/x-www-form-urlencoded")) return undefined;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_FORM_BYTES) return undefined;
    chunks.push(chunk as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString("utf8"));
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** Errors may quote the request URL, which holds a token: only the kind and message without URLs are logged. */
function errorWithoutUrl(err: unknown): { name: string; message: string } {
  const e = err instanceof Error ? err : new Error(String(err));
  return { name: e.name, message: e.message.replace(/\/join\/[^\s"']+/g, "/join/…") };
}
