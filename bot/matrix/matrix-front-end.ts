import {
  ClientEvent,
  EventType,
  type Filter,
  KnownMembership,
  MatrixEventEvent,
  Method,
  MsgType,
  RelationType,
  RoomEvent,
  SyncState,
  type IEvent,
  type MatrixClient,
  type MatrixError,
  type MatrixEvent,
  type Room,
} from "matrix-js-sdk";
import type { Clock } from "../../commands/types.ts";
import type { Claim, EventClaims } from "../../storage/handled-events.ts";
import { commandLineOf } from "../addressing.ts";
import type { ClanConfig } from "../config.ts";
import type { Dispatcher } from "../dispatcher.ts";
import { RoomInviteError } from "../invite-service.ts";
import type { Logger } from "../logger.ts";
import type { Message } from "../../commands/format.ts";
import { Slots } from "../../ops/machine-queue.ts";
import { powerLevelOf } from "./power-levels.ts";
import { ReactionWaiters } from "./reaction-waiters.ts";
import { ReplyWaiters } from "./reply-waiters.ts";
import { MatrixReplyChannel, noticeContent, type Sending } from "./reply-channel.ts";
import type { Outbox } from "./outbox.ts";
import { RoomBindings } from "./room-bindings.ts";
import { undecryptableNotice } from "./undecryptable.ts";

/**
 * The event types the front end acts on (an encrypted event may turn out to be a message or a
 * reaction). Others, and the bot's own events, are passed over before any work starts: joining
 * 1,000 rooms brings some 10,000 state events in one sync, none of which the bot acts on.
 */
/** A gap is read back to this long before the last sync (clocks of bot and homeserver differ). */
const GAP_MARGIN_MS = 5 * 60_000;
/** At most this many pages of 100 events are read back through one gap. */
const GAP_MAX_PAGES = 50;

/** One "could not read your message" per person and room in this time, however many messages. */
const UNDECRYPTABLE_NOTICE_EVERY_MS = 3600_000;

const ACTED_ON = new Set<string>([EventType.RoomMessage, EventType.RoomMessageEncrypted, EventType.Reaction, EventType.RoomMember]);

export interface FrontEndDeps {
  client: MatrixClient;
  /** Everything the front end posts goes through it. */
  outbox: Outbox;
  dispatcher: Dispatcher;
  /** Which events were handled already (this run or an earlier one). */
  claims: EventClaims;
  clock: Clock;
  log: Logger;
  clans: readonly ClanConfig[];
  prefix: string;
  /** Events older than this are ignored without an answer: their handled-ids may be forgotten. */
  ignoreOlderThanMs: number;
  /** How long an encrypted message may wait for its key before the room is told it could not be read. */
  undecryptableGraceMs: number;
  /** Until when the bot had seen its rooms' events (its last sync before this start), bot clock. */
  seenUntil: number;
  /** Someone invited into a clan's room joined it (the join codes tell the room which code brought them). */
  onJoined?: (clan: string, userId: string) => Promise<void>;
}

/**
 * Matrix in, dispatcher out: joins the rooms bound to clans when invited (declining others),
 * turns new messages addressed to the bot into dispatcher calls exactly once, and keeps syncing
 * through homeserver outages (the SDK reconnects; sends are retried by the scheduler).
 */
export class MatrixFrontEnd {
  private readonly d: FrontEndDeps;
  private readonly bindings: RoomBindings;
  private readonly me: string;
  private readonly intake = new Set<Promise<void>>();
  private readonly waiters = new ReactionWaiters();
  private readonly replies = new ReplyWaiters();
  /**
   * Invites are joined and greeted a few at a time: at start a bot may be invited into a thousand
   * rooms at once, and hundreds of requests in flight (sockets, buffers, promises) pile up in memory.
   */
  private readonly invites = new Slots(32);
  /** Rooms whose invite is being answered (joined and greeted), so the start does not join them too. */
  private readonly inviting = new Set<string>();
  private closed = false;
  /** When each person was last told in a room that a message of theirs could not be read ("room|sender"). */
  private readonly toldUndecryptable = new Map<string, number>();
  private readonly graceTimers = new Set<NodeJS.Timeout>();
  /** When the last sync went through: a gap in a room's timeline reaches back to about then. */
  private lastSyncAt: number;

  constructor(deps: FrontEndDeps) {
    this.d = deps;
    this.me = deps.client.getSafeUserId();
    this.lastSyncAt = deps.seenUntil;
    this.bindings = new RoomBindings(deps.clans, async (alias) => (await deps.client.getRoomIdForAlias(alias)).room_id);
  }

  async start(filter: Filter): Promise<void> {
    const { client, log } = this.d;
    for (const f of await this.bindings.resolvePending()) log.warn(f, "could not resolve a clan room alias yet; will retry on invite");
    client.on(RoomEvent.Timeline, (event, room, toStartOfTimeline, removed) => {
      if (toStartOfTimeline || removed || !room || this.closed || event.getSender() === this.me || !ACTED_ON.has(event.getType())) return;
      this.track(this.onTimelineEvent(event, room));
    });
    client.on(RoomEvent.MyMembership, (room, membership) => {
      if (membership !== KnownMembership.Invite) return;
      this.inviting.add(room.roomId);
      this.track(this.invites.run(() => this.onInvite(room)).finally(() => this.inviting.delete(room.roomId)));
    });
    let lostAt: number | undefined;
    client.on(ClientEvent.Sync, (state, _prev, data) => {
      if (state === SyncState.Syncing || state === SyncState.Prepared || state === SyncState.Catchup) this.lastSyncAt = this.d.clock.now();
      if (state === SyncState.Error && lostAt === undefined) {
        lostAt = this.d.clock.now();
        log.warn({ err: data?.error?.message }, "lost the homeserver; the SDK keeps retrying");
      } else if ((state === SyncState.Syncing || state === SyncState.Catchup) && lostAt !== undefined) {
        log.info({ downMs: this.d.clock.now() - lostAt }, "homeserver is back; catching up");
        lostAt = undefined;
        this.d.outbox.reconnected();
      }
    });
    const prepared = new Promise<void>((resolve) => {
      const onSync = (state: SyncState): void => {
        if (state === SyncState.Prepared) {
          client.off(ClientEvent.Sync, onSync);
          resolve();
        }
      };
      client.on(ClientEvent.Sync, onSync);
    });
    await client.startClient({ initialSyncLimit: 50, filter, lazyLoadMembers: false, threadSupport: false });
    await prepared;
    await this.joinConfiguredRooms();
    log.info({ rooms: this.bindings.roomIds().length }, "matrix front end ready");
  }

  /**
   * Stops taking commands and lets running ones finish and store their answers. The client stays up:
   * the outbox still sends (and encrypts) with it; the caller stops it after the outbox.
   */
  async stop(graceMs = 10_000): Promise<void> {
    this.closed = true;
    for (const t of this.graceTimers) clearTimeout(t);
    this.waiters.closeAll();
    this.replies.closeAll();
    await Promise.allSettled([...this.intake]);
    await this.d.dispatcher.drain(graceMs);
  }

  private track(p: Promise<void>): void {
    const guarded = p.catch((err: unknown) => this.d.log.error({ err }, "matrix event handling failed"));
    this.intake.add(guarded);
    void guarded.finally(() => this.intake.delete(guarded));
  }

  /** `alreadyClaimed`: the event's claim was stored by an earlier run, which then died before recording it. */
  private async onTimelineEvent(event: MatrixEvent, room: Room, alreadyClaimed = false): Promise<void> {
    const { client, clock } = this.d;
    // A plain event goes on without waiting, so that a new command's 👀 leaves within the SDK's own
    // handling of the sync; an encrypted one waits for its decryption (the SDK has started it).
    if (event.isEncrypted()) {
      await client.decryptEventIfNeeded(event);
      if (event.isDecryptionFailure()) return this.onUndecryptable(event, room);
    }
    if (event.isRedacted()) return;
    if (event.getType() === EventType.Reaction) return this.onReaction(event);
    if (event.getType() === EventType.RoomMember) return this.onMember(event, room);
    if (event.getType() !== EventType.RoomMessage) return;
    const sender = event.getSender() as string;
    // A clan's room, or a direct chat with someone of a clan's room: their level is the clan room's.
    const where = this.placeOf(room, sender);
    if (!where) return;
    const { clan, levelRoom } = where;
    const content = event.getContent();
    if (content["m.relates_to"]?.rel_type === RelationType.Replace) return; // an edit must not run a command again
    const eventId = event.getId();
    if (!eventId || eventId.startsWith("~")) return;
    const sentAt = event.getTs();
    const joinedAt = this.myJoinTime(room);
    if (joinedAt === undefined || sentAt < joinedAt) return; // before the bot was here: not meant for it
    if (clock.now() - sentAt > this.d.ignoreOlderThanMs) return;
    const body = typeof content.body === "string" ? content.body : "";
    const isMedia = content.msgtype === MsgType.Image || content.msgtype === MsgType.File;
    const line = content.msgtype === MsgType.Text ? commandLineOf(stripReplyFallback(body), { prefix: this.d.prefix, names: this.namesIn(room) }) : undefined;
    // A request of the bot (a photo for !install) takes the sender's next image or non-command text; a
    // request for a secret takes any text, even one that looks like a command (it is never run or shown).
    const wanted = this.replies.wants(room.roomId, sender);
    if ((line === undefined || (wanted && this.replies.takesAnyText(room.roomId, sender))) && (isMedia || content.msgtype === MsgType.Text) && wanted) {
      if (await this.claimStored(eventId, clan, sentAt)) this.replies.offer(room.roomId, sender, event);
      return;
    }
    if (line === undefined) return; // notices come from bots; files and images are not commands
    const pending: Claim | Promise<Claim> = alreadyClaimed ? { fresh: true, stored: Promise.resolve() } : this.d.claims.claim(eventId, clan, sentAt, clock.now());
    // Awaited only when it is not decided at once (an event from before the claims in memory).
    const claim: Claim = pending instanceof Promise ? await pending : pending;
    if (!claim.fresh) return;
    // Not awaited: the dispatcher tracks running commands itself, and a deploy may run for an hour.
    void this.d.dispatcher.dispatch(
      {
        clan,
        room: room.roomId,
        eventId,
        sentAt,
        sender: { id: sender, name: room.getMember(sender)?.name ?? sender, powerLevel: powerLevelOf(levelRoom, sender) },
        powerLevelNow: () => powerLevelOf(levelRoom, sender),
        line,
        claimed: claim.stored,
        place: { encrypted: room.hasEncryptionStateEvent(), direct: where.direct },
      },
      new MatrixReplyChannel(this.sending, room.roomId, eventId, this.waiters, this.replies),
    );
  }

  /**
   * An encrypted message the bot cannot read yet: its key may still come (a to-device message behind
   * the room event); then it is handled as if it had just arrived. If it has not come after the grace
   * time, the room hears once (per person, per hour) that a message could not be read and why.
   */
  private onUndecryptable(event: MatrixEvent, room: Room): void {
    const clan = this.bindings.clanOf(room.roomId);
    const eventId = event.getId();
    const sentAt = event.getTs();
    const joinedAt = this.myJoinTime(room);
    if (!clan || !eventId || eventId.startsWith("~") || joinedAt === undefined || sentAt < joinedAt) return;
    if (this.d.clock.now() - sentAt > this.d.ignoreOlderThanMs) return;
    const onDecrypted = (): void => {
      clearTimeout(timer);
      this.graceTimers.delete(timer);
      if (!this.closed && !event.isDecryptionFailure()) this.track(this.onTimelineEvent(event, room));
    };
    event.once(MatrixEventEvent.Decrypted, onDecrypted);
    const timer = setTimeout(() => {
      this.graceTimers.delete(timer);
      event.off(MatrixEventEvent.Decrypted, onDecrypted);
      if (!this.closed) this.track(this.tellUndecryptable(event, room, clan, eventId));
    }, Math.max(0, sentAt + this.d.undecryptableGraceMs - this.d.clock.now()));
    this.graceTimers.add(timer);
  }

  private async tellUndecryptable(event: MatrixEvent, room: Room, clan: string, eventId: string): Promise<void> {
    const sender = event.getSender() as string;
    const key = `${room.roomId}|${sender}`;
    const now = this.d.clock.now();
    if (now - (this.toldUndecryptable.get(key) ?? -Infinity) < UNDECRYPTABLE_NOTICE_EVERY_MS) return;
    // Taken before anything is awaited: the messages of a flood reach this point together.
    this.toldUndecryptable.set(key, now);
    // A restart replays the event: the notice is claimed like a command, under its own id.
    if (!(await this.claimStored(`${eventId}#undecryptable`, clan, event.getTs()))) return;
    this.d.log.warn({ room: room.roomId, sender, eventId, reason: event.decryptionFailureReason }, "cannot decrypt a message");
    const name = room.getMember(sender)?.name ?? sender;
    await new MatrixReplyChannel(this.sending, room.roomId, eventId).reply(undecryptableNotice(name, sender, event.decryptionFailureReason));
  }

  /**
   * More events came in a room than one sync brings (the bot was down or away while the room was busy):
   * reads back from `from` to about the bot's last sync and handles what it missed, oldest first, so
   * that commands sent meanwhile are not lost behind the chat that followed them. Already handled
   * events are passed over as always.
   */
  catchUp(roomId: string, from: string): void {
    if (this.closed || !this.bindings.clanOf(roomId)) return;
    this.track(this.readGap(roomId, from, this.lastSyncAt - GAP_MARGIN_MS));
  }

  private async readGap(roomId: string, from: string, floor: number): Promise<void> {
    const { client, log } = this.d;
    const room = client.getRoom(roomId);
    if (!room) return;
    const map = client.getEventMapper();
    const missed: MatrixEvent[] = [];
    const types: string[] = [EventType.RoomMessage, EventType.RoomMessageEncrypted];
    const filter = JSON.stringify({ types });
    let token: string | undefined = from;
    for (let page = 0; token !== undefined && page < GAP_MAX_PAGES && !this.closed; page++) {
      const res: { chunk: IEvent[]; end?: string } = await client.http.authedRequest(Method.Get, `/rooms/${encodeURIComponent(roomId)}/messages`, {
        dir: "b",
        from: token,
        limit: "100",
        filter,
      });
      const newer = res.chunk.filter((e) => e.origin_server_ts >= floor);
      missed.push(...newer.filter((e) => e.sender !== this.me && types.includes(e.type)).map((e) => map({ ...e, room_id: roomId })));
      token = newer.length === res.chunk.length && res.chunk.length > 0 ? res.end : undefined;
    }
    log.info({ room: roomId, events: missed.length }, "read back through a gap in the room's timeline");
    for (const event of missed.reverse()) await this.onTimelineEvent(event, room);
  }

  /**
   * Runs a read-only command again that the bot had taken but not answered when it stopped: its
   * message was claimed then, so it is dispatched as it is, answering the original message. Resolves
   * once it is answered.
   */
  async rerun(c: { clan: string; room: string; eventId?: string; sender: string; startedAt: number }, line: string): Promise<void> {
    const room = this.d.client.getRoom(c.room);
    if (!room || !c.eventId || this.bindings.clanOf(c.room) !== c.clan) return;
    this.d.log.info({ room: c.room, event: c.eventId, line }, "answering a read-only command that was not answered before the bot stopped");
    await this.d.dispatcher.dispatch(
      {
        clan: c.clan,
        room: c.room,
        eventId: c.eventId,
        sentAt: c.startedAt,
        sender: { id: c.sender, name: room.getMember(c.sender)?.name ?? c.sender, powerLevel: powerLevelOf(room, c.sender) },
        line,
        claimed: Promise.resolve(),
      },
      new MatrixReplyChannel(this.sending, c.room, c.eventId, this.waiters, this.replies),
    );
  }

  /**
   * Events an earlier run claimed but did not record (it died between storing the claim and the
   * command's audit row): read again from the homeserver, and handled if they are commands.
   */
  async recoverUnrecorded(claims: ReadonlyArray<{ eventId: string; clan: string }>): Promise<void> {
    const { client, log } = this.d;
    const map = client.getEventMapper();
    for (const c of claims) {
      const roomId = this.bindings.roomOf(c.clan);
      const room = roomId === undefined ? undefined : client.getRoom(roomId);
      if (!room) continue;
      try {
        const raw = await client.http.authedRequest<IEvent>(Method.Get, `/rooms/${encodeURIComponent(room.roomId)}/event/${encodeURIComponent(c.eventId)}`);
        if (raw.sender === this.me) continue;
        await this.onTimelineEvent(map({ ...raw, room_id: room.roomId }), room, true);
      } catch (err) {
        log.warn({ event: c.eventId, err: (err as Error).message }, "could not read again an event claimed before a crash");
      }
    }
  }

  /** An invited person's join, seen once (restarts replay the timeline). */
  private async onMember(event: MatrixEvent, room: Room): Promise<void> {
    const { onJoined } = this.d;
    const clan = this.bindings.clanOf(room.roomId);
    const userId = event.getStateKey();
    const eventId = event.getId();
    if (!onJoined || !clan || !userId || !eventId || eventId.startsWith("~")) return;
    if (event.getContent()["membership"] !== KnownMembership.Join || event.getPrevContent()["membership"] !== KnownMembership.Invite) return;
    if (await this.claimStored(eventId, clan, event.getTs())) await onJoined(clan, userId);
  }

  /** Claims an event and waits until the claim is stored: for what need not answer at once. */
  private async claimStored(eventId: string, clan: string, sentAt: number): Promise<boolean> {
    const claim = await this.d.claims.claim(eventId, clan, sentAt, this.d.clock.now());
    if (claim.fresh) await claim.stored;
    return claim.fresh;
  }

  /** Reactions answer questions (confirmations); they are never commands. */
  private onReaction(event: MatrixEvent): void {
    const rel = event.getContent()["m.relates_to"] as { rel_type?: string; event_id?: string; key?: string } | undefined;
    if (rel?.rel_type !== RelationType.Annotation || !rel.event_id || typeof rel.key !== "string") return;
    this.waiters.offer(rel.event_id, event.getSender() as string, rel.key);
  }

  private get sending(): Sending {
    return { outbox: this.d.outbox, client: this.d.client };
  }

  /**
   * Posts in a clan's room (not in answer to a command), or as a reply to `replyTo` with a ❌ on it.
   * Resolves once the post is stored (it is sent from the outbox). With `once`, a post made before
   * under the same key is not made again.
   */
  async post(clan: string, message: Message, replyTo: string | undefined, once?: string): Promise<void> {
    const roomId = this.bindings.roomOf(clan);
    if (!roomId) throw new Error(`the room of clan ${clan} is not known yet`);
    if (replyTo) {
      const channel = new MatrixReplyChannel(this.sending, roomId, replyTo);
      await channel.reply(message, once);
      await channel.react("❌", once && `${once}:❌`);
    } else {
      await this.d.outbox.add({ roomId, lane: `notice:${roomId}`, eventType: EventType.RoomMessage, content: noticeContent(message), ...(once ? { once } : {}) });
    }
  }

  /** Invites a user into the clan's room; the homeserver's refusal (already there, banned...) is a RoomInviteError. */
  async invite(clan: string, userId: string, reason: string): Promise<void> {
    const roomId = this.bindings.roomOf(clan);
    if (!roomId) throw new Error(`the room of clan ${clan} is not known yet`);
    try {
      await this.d.client.invite(roomId, userId, reason);
    } catch (err) {
      const status = (err as MatrixError).httpStatus;
      if (status !== undefined && status >= 400 && status < 500 && status !== 429) {
        throw new RoomInviteError(`the homeserver refused: ${(err as MatrixError).data?.error ?? (err as Error).message}`);
      }
      throw err;
    }
  }

  private myJoinTime(room: Room): number | undefined {
    const member = room.currentState.getMember(this.me);
    if (member?.membership !== KnownMembership.Join) return undefined;
    return member.events.member?.getTs();
  }

  /**
   * Which clan a message belongs to: the clan bound to the room; or, in a room no clan is bound to
   * (a direct chat), the clan whose room the sender is in (the first in the config when several).
   * `direct`: only the sender and the bot are in the room (joined or invited).
   */
  private placeOf(room: Room, sender: string): { clan: string; levelRoom: Room; direct: boolean } | undefined {
    const bound = this.bindings.clanOf(room.roomId);
    if (bound) return { clan: bound, levelRoom: room, direct: false };
    const home = this.clanRoomsOf(sender)[0];
    if (!home) return undefined;
    const present = room.getMembers().filter((m) => m.membership === KnownMembership.Join || m.membership === KnownMembership.Invite);
    const direct = present.length === 2 && present.some((m) => m.userId === this.me) && present.some((m) => m.userId === sender);
    return { clan: home.clan, levelRoom: home.room, direct };
  }

  /** The clan rooms `userId` has joined, in the config's order. */
  private clanRoomsOf(userId: string): Array<{ clan: string; room: Room }> {
    const out: Array<{ clan: string; room: Room }> = [];
    for (const roomId of this.bindings.roomIds()) {
      const room = this.d.client.getRoom(roomId);
      const clan = this.bindings.clanOf(roomId);
      if (room && clan && room.getMember(userId)?.membership === KnownMembership.Join) out.push({ clan, room });
    }
    return out;
  }

  private namesIn(room: Room): string[] {
    const localpart = this.me.slice(1, this.me.indexOf(":"));
    const display = room.getMember(this.me)?.name;
    return [...new Set([this.me, display, localpart].filter((n): n is string => !!n))];
  }

  private async onInvite(room: Room): Promise<void> {
    const { client, log } = this.d;
    if (!this.bindings.clanOf(room.roomId) && this.bindings.hasUnresolved) await this.bindings.resolvePending();
    const clan = this.bindings.clanOf(room.roomId);
    const inviter = room.getMember(this.me)?.events.member?.getSender();
    // Only a direct chat (the invite says is_direct, as clients mark "start a chat") from someone of a clan's room.
    const direct = room.getMember(this.me)?.events.member?.getContent()["is_direct"] === true;
    const home = !clan && direct && inviter ? this.clanRoomsOf(inviter)[0] : undefined;
    if (!clan && home && inviter) {
      // A direct chat from someone of a clan's room (for !secret set): it belongs to their clan.
      await this.join(room.roomId);
      log.info({ room: room.roomId, clan: home.clan, inviter }, "joined a direct chat with a member of a clan room");
      const invite = room.getMember(this.me)?.events.member?.getId() ?? room.roomId;
      const text = `Hello! I am clanbot for clan '${home.clan}'. Commands work here as in the clan's room, with your level there; secrets (${this.d.prefix}secret set) only here, in an encrypted chat with just the two of us.`;
      await this.d.outbox.add({
        roomId: room.roomId,
        lane: `notice:${room.roomId}`,
        eventType: EventType.RoomMessage,
        content: noticeContent({ text, html: text.replace(/&/g, "&amp;").replace(/</g, "&lt;") }),
        once: `greeting:${invite}`,
      });
      return;
    }
    if (!clan) {
      log.info({ room: room.roomId, inviter }, "declining an invite to a room no clan is bound to");
      await client.http.authedRequest(Method.Post, `/rooms/${encodeURIComponent(room.roomId)}/leave`, undefined, {
        reason: "clanbot only joins the rooms its configuration binds to a clan, and direct chats with people of those rooms.",
      });
      return;
    }
    await this.join(room.roomId);
    log.info({ room: room.roomId, clan, inviter }, "joined a clan room");
    // Once per invite: a restart that replays the invite (the saved sync still shows it) does not greet again.
    const invite = room.getMember(this.me)?.events.member?.getId() ?? room.roomId;
    await this.post(
      clan,
      {
        text: `Hello! I am clanbot for clan '${clan}'. Type ${this.d.prefix}help to see what I can do.`,
        html: `Hello! I am clanbot for clan <strong>${clan}</strong>. Type <code>${this.d.prefix}help</code> to see what I can do.`,
      },
      undefined,
      `greeting:${invite}`,
    );
  }

  /**
   * Joins a room by its id. Not the SDK's joinRoom: that builds a whole Room (and a SyncApi) for its
   * return value, which the bot does not use; the room in the client's store is updated by the sync.
   */
  private async join(roomId: string): Promise<void> {
    await this.d.client.http.authedRequest(Method.Post, `/join/${encodeURIComponent(roomId)}`, undefined, {});
  }

  /**
   * At start: join the clan rooms the bot is not in (an invite not being answered already: one
   * the SDK did not announce, say). At the first start in 1,000 rooms, all of them are invites.
   */
  private async joinConfiguredRooms(): Promise<void> {
    const { client, log } = this.d;
    for (const roomId of this.bindings.roomIds()) {
      const membership = client.getRoom(roomId)?.getMyMembership();
      if (membership === KnownMembership.Join || this.inviting.has(roomId)) continue;
      try {
        await this.join(roomId);
        log.info({ room: roomId }, "joined a clan room at start");
      } catch (err) {
        log.warn({ room: roomId, err: (err as Error).message }, "not in a clan room and cannot join it: invite the bot");
      }
    }
  }
}

/** Replies carry a quote of the original ("> <@a:b> text") before the new text; commands are in the new text. */
function stripReplyFallback(body: string): string {
  if (!body.startsWith("> ")) return body;
  const lines = body.split("\n");
  let i = 0;
  while (i < lines.length && (lines[i] as string).startsWith("> ")) i++;
  return lines.slice(i).join("\n").replace(/^\n/, "");
}
