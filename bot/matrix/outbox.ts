import { EventType, MatrixEvent, Method, type MatrixClient, type MatrixError, type Room, type UploadOpts } from "matrix-js-sdk";
import type { Clock } from "../../commands/types.ts";
import type { Db } from "../../storage/db.ts";
import { addToOutbox, markFailed, markSent, pendingPosts, sentEventOf, type NewOutboxRow, type OutboxRow } from "../../storage/outbox.ts";
import type { Logger } from "../logger.ts";

/** Between tries of a send the homeserver did not take: short, so answers resume soon after an outage. */
const RETRY_MS = [250, 500, 1000, 2000];
/** How long one send may take before it is tried again (with the same transaction id). */
const SEND_TIMEOUT_MS = 30_000;

/** A post on its way: stored, and later sent. */
export interface Post {
  readonly id: number;
  /** The event id once the homeserver took it; undefined if it refused the post for good or the bot stopped. */
  readonly sent: Promise<string | undefined>;
}

interface Waiting {
  row: OutboxRow;
  resolve: (eventId: string | undefined) => void;
}

/** What the crypto library offers for an event in an encrypted room (matrix-js-sdk's CryptoBackend). */
interface EventEncryptor {
  encryptEvent(event: MatrixEvent, room: Room): Promise<void>;
}

/**
 * Everything the bot posts goes through here: stored in SQLite first (the outbox), then sent with a
 * transaction id of its own (`cb<row id>`), tried again until the homeserver takes it, also after a
 * restart, so that nothing the bot promised a room is lost and a repeat is answered by the homeserver
 * with the first event instead of a second one. Posts of one lane (one command's answers) keep their
 * order; lanes do not wait for each other, so one slow send or a long job's edits hold back nobody
 * else's answer. A post the homeserver refuses for good (4xx) is dropped alone, never its lane.
 * Encrypted rooms: each try encrypts the content afresh (the transaction id keeps it one event).
 */
export class Outbox {
  private readonly db: Db;
  private readonly client: MatrixClient;
  private readonly clock: Clock;
  private readonly log: Logger;
  /** Makes the transaction ids of posts kept only in memory unique to this run. */
  private readonly started: number;
  private readonly lanes = new Map<string, Waiting[]>();
  private readonly sentIds = new Map<number, Promise<string | undefined>>();
  private readonly busy = new Set<Promise<void>>();
  private readonly sleepers = new Set<() => void>();
  /** Ids of posts kept in memory only (the database could not take them), counting down from -1. */
  private volatile = 0;
  private stopped = false;

  constructor(deps: { db: Db; client: MatrixClient; clock: Clock; log: Logger }) {
    this.db = deps.db;
    this.client = deps.client;
    this.clock = deps.clock;
    this.log = deps.log;
    this.started = deps.clock.now();
  }

  /** Sends what an earlier run stored but did not send. */
  async resume(): Promise<number> {
    const rows = await pendingPosts(this.db);
    for (const row of rows) this.schedule(row);
    if (rows.length) this.log.info({ posts: rows.length }, "sending what the bot had not sent before it stopped");
    return rows.length;
  }

  /**
   * Stores a post and queues it in its lane; resolves once stored (so the caller may go on: it will be
   * sent). With `once`, undefined when that post exists already.
   */
  async add(row: NewOutboxRow): Promise<Post | undefined> {
    let id: number | undefined;
    try {
      id = await addToOutbox(this.db, row, this.clock.now());
    } catch (err) {
      // The disk is full or the database is gone: the post still goes out, from memory.
      this.log.error({ err, room: row.roomId }, "cannot store a post; sending it without keeping it");
      id = --this.volatile;
    }
    if (id === undefined) return undefined;
    const sent = this.schedule({ id, roomId: row.roomId, lane: row.lane, eventType: row.eventType, content: row.content, target: row.target });
    return { id, sent };
  }

  /**
   * Uploads to the media repository, tried again like a post while the homeserver is away (not kept
   * across a restart: the bytes are in memory only). Resolves with the mxc URL.
   */
  async upload(data: Uint8Array<ArrayBuffer>, opts: UploadOpts): Promise<string> {
    for (let attempt = 0; ; attempt++) {
      try {
        return (await this.client.uploadContent(data, opts)).content_uri;
      } catch (err) {
        if (this.stopped || !retryable(err as MatrixError)) throw err;
        await this.pause(retryDelay(err as MatrixError, attempt));
      }
    }
  }

  /** The homeserver is back (a sync went through): tries waiting for their next turn go now. */
  reconnected(): void {
    for (const wake of [...this.sleepers]) wake();
  }

  /** Sends for up to `graceMs` more, then stops; what is not sent by then stays stored for the next start. */
  async stop(graceMs = 0): Promise<void> {
    const idle = Promise.allSettled([...this.busy]);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([idle, new Promise((r) => (timer = setTimeout(r, graceMs)))]);
    clearTimeout(timer);
    this.stopped = true;
    this.reconnected();
    await Promise.allSettled([...this.busy]);
  }

  private schedule(row: OutboxRow): Promise<string | undefined> {
    const sent = new Promise<string | undefined>((resolve) => {
      const lane = this.lanes.get(row.lane);
      if (lane) {
        lane.push({ row, resolve });
        return;
      }
      this.lanes.set(row.lane, [{ row, resolve }]);
      const run = this.drain(row.lane);
      this.busy.add(run);
      void run.finally(() => this.busy.delete(run));
    });
    this.sentIds.set(row.id, sent);
    void sent.finally(() => this.sentIds.delete(row.id));
    return sent;
  }

  private async drain(lane: string): Promise<void> {
    const queue = this.lanes.get(lane) as Waiting[];
    while (queue.length) {
      const w = queue[0] as Waiting;
      let eventId: string | undefined;
      try {
        eventId = await this.send(w.row);
      } catch (err) {
        this.log.error({ err, post: w.row.id }, "could not send a post");
      }
      queue.shift();
      w.resolve(eventId);
    }
    this.lanes.delete(lane);
  }

  /** The event id of a post: from this run's sends, or stored by an earlier one. */
  private async eventOf(id: number): Promise<string | undefined> {
    return (await this.sentIds.get(id)) ?? (id > 0 ? sentEventOf(this.db, id) : undefined);
  }

  /** Records what became of a post; a database that cannot take it is logged (the next start sends it again, as the same event). */
  private async record(id: number, eventId: string | undefined): Promise<void> {
    if (id < 0) return;
    try {
      if (eventId === undefined) await markFailed(this.db, id);
      else await markSent(this.db, id, eventId);
    } catch (err) {
      this.log.error({ err, post: id }, "cannot record a sent post");
    }
  }

  private async send(row: OutboxRow): Promise<string | undefined> {
    let content = row.content;
    if (row.target !== undefined) {
      const target = await this.eventOf(row.target);
      if (target === undefined) {
        this.log.warn({ post: row.id, target: row.target }, "a post relates to one that was never sent; dropping it");
        await this.record(row.id, undefined);
        return undefined;
      }
      content = withTarget(row.eventType, content, target);
    }
    for (let attempt = 0; !this.stopped; attempt++) {
      try {
        const { type, body } = await this.wire(row, content);
        const txnId = row.id > 0 ? `cb${row.id}` : `cbv${this.started}.${-row.id}`;
        const path = `/rooms/${encodeURIComponent(row.roomId)}/send/${encodeURIComponent(type)}/${txnId}`;
        const res = await this.client.http.authedRequest<{ event_id: string }>(Method.Put, path, undefined, body, { localTimeoutMs: SEND_TIMEOUT_MS });
        await this.record(row.id, res.event_id);
        return res.event_id;
      } catch (err) {
        const e = err as MatrixError;
        if (!retryable(e)) {
          const status = e.httpStatus;
          this.log.error({ post: row.id, room: row.roomId, type: row.eventType, status, errcode: e.errcode, err: e.message }, "the homeserver refused a post");
          await this.record(row.id, undefined);
          return undefined;
        }
        if (attempt === 2) this.log.warn({ post: row.id, room: row.roomId, err: e.message }, "a post is not getting through; trying again");
        await this.pause(retryDelay(e, attempt));
      }
    }
    return undefined;
  }

  /** The event as it goes on the wire: encrypted in an encrypted room (reactions stay in clear, as clients send them). */
  private async wire(row: OutboxRow, content: Record<string, unknown>): Promise<{ type: string; body: Record<string, unknown> }> {
    const room = this.client.getRoom(row.roomId);
    // A room the client has not synced yet might be encrypted: wait for it rather than post in clear.
    if (!room) throw new Error(`room ${row.roomId} is not known to the client yet`);
    if (!room.hasEncryptionStateEvent() || row.eventType === EventType.Reaction) return { type: row.eventType, body: content };
    const crypto = this.client.getCrypto() as unknown as EventEncryptor | undefined;
    if (!crypto) throw new Error("the room is encrypted but the crypto is not running");
    const event = new MatrixEvent({ type: row.eventType, content, room_id: row.roomId, sender: this.client.getSafeUserId() });
    await crypto.encryptEvent(event, room);
    return { type: event.getWireType(), body: event.getWireContent() };
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.sleepers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.sleepers.add(done);
    });
  }
}

/** Whether trying again may help: the homeserver was away, overloaded or rate-limiting; not a refusal it means. */
function retryable(e: MatrixError): boolean {
  const status = e.httpStatus;
  return status === undefined || status >= 500 || status === 429 || status === 408;
}

function retryDelay(e: MatrixError, attempt: number): number {
  const retryAfter = e.data?.["retry_after_ms"];
  return typeof retryAfter === "number" ? retryAfter : (RETRY_MS[Math.min(attempt, RETRY_MS.length - 1)] as number);
}

/** Points a relation at the target's event: an edit (m.replace) or a reaction (m.annotation). */
function withTarget(eventType: string, content: Record<string, unknown>, eventId: string): Record<string, unknown> {
  const rel = content["m.relates_to"] as Record<string, unknown> | undefined;
  if (!rel) throw new Error(`a ${eventType} post names a target but has no m.relates_to`);
  return { ...content, "m.relates_to": { ...rel, event_id: eventId } };
}
