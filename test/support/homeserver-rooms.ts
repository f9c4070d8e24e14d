// Room endpoints of the test homeserver: creation, membership, sending, state, history, receipts, typing, aliases.
import { authed, obj, str, type AuthedCtx, type Route } from "./homeserver-http.ts";
import { HsError, forbidden, notFound, type Json, type Room, type Store, type StoredEvent } from "./homeserver-store.ts";
import { clientEvent, parseToken, token } from "./homeserver-sync.ts";

const V3 = "/_matrix/client/v3";
const USER_ID = /^@[^:]+:.+$/;

function profile(store: Store, userId: string): Json {
  const u = store.users.get(userId);
  const out: Json = {};
  if (u?.displayname !== undefined) out["displayname"] = u.displayname;
  if (u?.avatarUrl !== undefined) out["avatar_url"] = u.avatarUrl;
  return out;
}

export function setMembership(store: Store, room: Room, sender: string, target: string, membership: string, extra: Json = {}): StoredEvent {
  const content: Json = { membership, ...extra };
  if (membership === "join" || membership === "invite") Object.assign(content, profile(store, target));
  return store.send(room, { type: "m.room.member", sender, state_key: target, content });
}

function resolveRoom(store: Store, idOrAlias: string): Room {
  if (!idOrAlias.startsWith("#")) return store.room(idOrAlias);
  const id = store.aliases.get(idOrAlias);
  if (!id) throw notFound(`Room alias ${idOrAlias} not found`);
  return store.room(id);
}

function targetUser(body: Json): string {
  const userId = str(body, "user_id", true);
  if (!USER_ID.test(userId)) throw new HsError(400, "M_INVALID_PARAM", "Invalid user_id");
  return userId;
}

function reasonOf(body: Json): Json {
  const reason = str(body, "reason");
  return reason === undefined ? {} : { reason };
}

const txnOf = (ctx: AuthedCtx): { device: string; txnId: string } => ({
  device: `${ctx.session.userId}|${ctx.session.deviceId}`,
  txnId: ctx.params["txnId"] ?? "",
});

function createRoom(ctx: AuthedCtx): Json {
  const { store, body } = ctx;
  const creator = ctx.session.userId;
  const version = str(body, "room_version") ?? "10";
  if (version !== "10") throw new HsError(400, "M_UNSUPPORTED_ROOM_VERSION", `Room version ${version} is not supported`);
  const preset = str(body, "preset") ?? (str(body, "visibility") === "public" ? "public_chat" : "private_chat");
  if (!["private_chat", "public_chat", "trusted_private_chat"].includes(preset)) throw new HsError(400, "M_INVALID_PARAM", "Unknown preset");
  const invites = body["invite"] ?? [];
  if (!Array.isArray(invites) || !invites.every((u): u is string => typeof u === "string" && USER_ID.test(u))) {
    throw new HsError(400, "M_INVALID_PARAM", "invite must be a list of user ids");
  }
  const initialState = body["initial_state"] ?? [];
  if (!Array.isArray(initialState)) throw badJsonList("initial_state");
  const aliasName = str(body, "room_alias_name");
  const alias = aliasName === undefined ? undefined : `#${aliasName}:${store.serverName}`;
  if (alias !== undefined && store.aliases.has(alias)) throw new HsError(400, "M_ROOM_IN_USE", "Room alias already taken");

  const room = store.newRoom(version);
  const add = (type: string, content: Json, stateKey = ""): void => {
    store.append(room, { type, sender: creator, content, state_key: stateKey });
  };
  add("m.room.create", { ...obj(body["creation_content"], "creation_content"), creator, room_version: version });
  add("m.room.member", { membership: "join", ...profile(store, creator) }, creator);
  // Synapse's defaults (the spec leaves them to the server); invite is 0 in private rooms.
  const users: Json = { [creator]: 100 };
  if (preset === "trusted_private_chat") for (const u of invites) users[u] = 100;
  add("m.room.power_levels", {
    users,
    users_default: 0,
    events: {
      "m.room.name": 50,
      "m.room.power_levels": 100,
      "m.room.history_visibility": 100,
      "m.room.canonical_alias": 50,
      "m.room.avatar": 50,
      "m.room.tombstone": 100,
      "m.room.server_acl": 100,
      "m.room.encryption": 100,
    },
    events_default: 0,
    state_default: 50,
    ban: 50,
    kick: 50,
    redact: 50,
    invite: preset === "public_chat" ? 50 : 0,
    historical: 100,
    ...obj(body["power_level_content_override"], "power_level_content_override"),
  });
  if (alias !== undefined) {
    store.aliases.set(alias, room.id);
    add("m.room.canonical_alias", { alias });
  }
  add("m.room.join_rules", { join_rule: preset === "public_chat" ? "public" : "invite" });
  add("m.room.history_visibility", { history_visibility: "shared" });
  add("m.room.guest_access", { guest_access: preset === "public_chat" ? "forbidden" : "can_join" });
  for (const s of initialState) {
    const ev = obj(s, "initial_state event");
    add(str(ev, "type", true), obj(ev["content"], "content"), str(ev, "state_key") ?? "");
  }
  const name = str(body, "name");
  if (name !== undefined) add("m.room.name", { name });
  const topic = str(body, "topic");
  if (topic !== undefined) add("m.room.topic", { topic });
  const direct = body["is_direct"] === true ? { is_direct: true } : {};
  for (const u of invites) setMembership(store, room, creator, u, "invite", direct);
  return { room_id: room.id };
}

const badJsonList = (what: string): HsError => new HsError(400, "M_BAD_JSON", `${what} must be a list`);

function join(ctx: AuthedCtx): Json {
  const room = resolveRoom(ctx.store, ctx.params["room"] ?? "");
  if (ctx.store.membership(room, ctx.session.userId).membership !== "join") {
    setMembership(ctx.store, room, ctx.session.userId, ctx.session.userId, "join", reasonOf(ctx.body));
  }
  return { room_id: room.id };
}

function messages(ctx: AuthedCtx): Json {
  const { store, query, session } = ctx;
  const room = store.room(ctx.params["roomId"] ?? "");
  const maxPos = Math.min(store.visibleUpTo(room, session.userId), store.head);
  const dir = query.get("dir");
  if (dir !== "b" && dir !== "f") throw new HsError(400, "M_INVALID_PARAM", "dir must be 'b' or 'f'");
  const limit = Math.min(Math.max(Number.parseInt(query.get("limit") ?? "10", 10) || 10, 0), 1000);
  const from = parseToken(query.get("from"), "from") ?? (dir === "b" ? store.head : 0);
  const to = parseToken(query.get("to"), "to");
  const candidates =
    dir === "b"
      ? store.eventsBetween(room, to ?? -1, Math.min(from, maxPos)).reverse()
      : store.eventsBetween(room, from, Math.min(to ?? Infinity, maxPos));
  const chunk = candidates.slice(0, limit);
  const last = chunk[chunk.length - 1];
  const out: Json = { chunk: chunk.map((e) => clientEvent(e, session)), start: token(from) };
  // Spec: `end` is omitted when there is nothing further to paginate.
  if (last && candidates.length > chunk.length) out["end"] = token(dir === "b" ? last.pos - 1 : last.pos);
  return out;
}

function visibleEvent(ctx: AuthedCtx): { room: Room; se: StoredEvent; maxPos: number } {
  const room = ctx.store.room(ctx.params["roomId"] ?? "");
  const maxPos = ctx.store.visibleUpTo(room, ctx.session.userId);
  const se = ctx.store.event(ctx.params["eventId"] ?? "");
  if (!se || se.event.room_id !== room.id || se.pos > maxPos) throw notFound("Event not found.");
  return { room, se, maxPos };
}

function context(ctx: AuthedCtx): Json {
  const { store, session } = ctx;
  const { room, se, maxPos } = visibleEvent(ctx);
  const limit = Math.min(Math.max(Number.parseInt(ctx.query.get("limit") ?? "10", 10) || 0, 0), 100);
  const nBefore = Math.floor(limit / 2);
  const before = nBefore ? store.eventsBetween(room, -1, se.pos - 1).slice(-nBefore).reverse() : [];
  const after = store.eventsBetween(room, se.pos, Math.min(maxPos, store.head)).slice(0, limit - nBefore);
  const lastPos = after[after.length - 1]?.pos ?? se.pos;
  return {
    event: clientEvent(se, session),
    events_before: before.map((e) => clientEvent(e, session)),
    events_after: after.map((e) => clientEvent(e, session)),
    start: token((before[before.length - 1]?.pos ?? se.pos) - 1),
    end: token(lastPos),
    state: store.stateAt(room, lastPos).map((e) => clientEvent(e, session)),
  };
}

function stateVisible(ctx: AuthedCtx): { room: Room; state: StoredEvent[] } {
  const room = ctx.store.room(ctx.params["roomId"] ?? "");
  return { room, state: ctx.store.stateAt(room, ctx.store.visibleUpTo(room, ctx.session.userId)) };
}

function putState(ctx: AuthedCtx): Json {
  const { store, session, body } = ctx;
  const room = store.room(ctx.params["roomId"] ?? "");
  const type = ctx.params["type"] ?? "";
  const stateKey = ctx.params["stateKey"] ?? "";
  if (type === "m.room.member") {
    const membership = str(body, "membership", true);
    const { membership: _m, ...extra } = body;
    return { event_id: setMembership(store, room, session.userId, stateKey, membership, extra).event.event_id };
  }
  const current = store.stateEvent(room, type, stateKey);
  // Like Synapse, re-sending identical state is a no-op that answers the existing event.
  if (current && current.event.sender === session.userId && JSON.stringify(current.event.content) === JSON.stringify(body)) {
    return { event_id: current.event.event_id };
  }
  return { event_id: store.send(room, { type, sender: session.userId, content: body, state_key: stateKey }).event.event_id };
}

function receipt(store: Store, room: Room, userId: string, type: string, eventId: string, threadId?: string): void {
  if (type === "m.fully_read") {
    store.setAccountData(userId, room.id, "m.fully_read", { event_id: eventId });
    return;
  }
  if (type !== "m.read" && type !== "m.read.private") throw new HsError(400, "M_INVALID_PARAM", `Unknown receipt type ${type}`);
  const key = threadId === undefined || threadId === "main" ? `${type}\u0000${userId}` : `${type}\u0000${userId}\u0000${threadId}`;
  const r = { type, userId, eventId, ts: Date.now(), pos: store.bump() };
  room.receipts.set(key, threadId === undefined ? r : { ...r, threadId });
}

function joinedRoomOf(ctx: AuthedCtx): Room {
  const room = ctx.store.room(ctx.params["roomId"] ?? "");
  if (ctx.store.membership(room, ctx.session.userId).membership !== "join") throw forbidden(`User ${ctx.session.userId} not in room ${room.id}`);
  return room;
}

function typing(ctx: AuthedCtx): Json {
  const { store, session, body } = ctx;
  if (ctx.params["userId"] !== session.userId) throw forbidden("Cannot set another user's typing state");
  const room = joinedRoomOf(ctx);
  if (body["typing"] === true) {
    const timeout = Math.min(typeof body["timeout"] === "number" ? body["timeout"] : 30_000, 120_000);
    const until = Date.now() + timeout;
    room.typing.set(session.userId, until);
    store.later(timeout, () => {
      if (room.typing.get(session.userId) !== until) return;
      room.typing.delete(session.userId);
      room.typingPos = store.bump();
    });
  } else {
    room.typing.delete(session.userId);
  }
  room.typingPos = store.bump();
  return {};
}

function membershipAction(membership: string, ownAction: boolean): (ctx: AuthedCtx) => Json {
  return (ctx) => {
    const room = ctx.store.room(ctx.params["roomId"] ?? "");
    const target = ownAction ? ctx.session.userId : targetUser(ctx.body);
    setMembership(ctx.store, room, ctx.session.userId, target, membership, reasonOf(ctx.body));
    return {};
  };
}

function aliasParam(ctx: AuthedCtx): string {
  const alias = ctx.params["alias"] ?? "";
  if (!/^#[^:]+:.+$/.test(alias)) throw new HsError(400, "M_INVALID_PARAM", "Invalid room alias");
  return alias;
}

export const roomRoutes: Route[] = [
  authed("POST", `${V3}/createRoom`, createRoom, { limited: true }),
  authed("POST", `${V3}/join/:room`, join, { limited: true }),
  authed("POST", `${V3}/rooms/:room/join`, join, { limited: true }),
  authed("POST", `${V3}/rooms/:roomId/invite`, membershipAction("invite", false), { limited: true }),
  authed("POST", `${V3}/rooms/:roomId/leave`, membershipAction("leave", true)),
  authed("POST", `${V3}/rooms/:roomId/kick`, membershipAction("leave", false), { limited: true }),
  authed("POST", `${V3}/rooms/:roomId/ban`, membershipAction("ban", false), { limited: true }),
  authed("POST", `${V3}/rooms/:roomId/unban`, membershipAction("leave", false), { limited: true }),
  authed("POST", `${V3}/rooms/:roomId/forget`, () => ({})),
  authed("GET", `${V3}/joined_rooms`, ({ store, session }) => ({
    joined_rooms: [...store.rooms.values()].filter((r) => store.membership(r, session.userId).membership === "join").map((r) => r.id),
  })),
  authed(
    "PUT",
    `${V3}/rooms/:roomId/send/:type/:txnId`,
    (ctx) => {
      const room = ctx.store.room(ctx.params["roomId"] ?? "");
      const input = { type: ctx.params["type"] ?? "", sender: ctx.session.userId, content: ctx.body };
      return { event_id: ctx.store.send(room, input, txnOf(ctx)).event.event_id };
    },
    { limited: true, txn: true },
  ),
  authed(
    "PUT",
    `${V3}/rooms/:roomId/redact/:eventId/:txnId`,
    (ctx) => {
      const room = ctx.store.room(ctx.params["roomId"] ?? "");
      const input = { type: "m.room.redaction", sender: ctx.session.userId, content: reasonOf(ctx.body), redacts: ctx.params["eventId"] ?? "" };
      return { event_id: ctx.store.send(room, input, txnOf(ctx)).event.event_id };
    },
    { limited: true, txn: true },
  ),
  authed("PUT", `${V3}/rooms/:roomId/state/:type/:stateKey?`, putState, { limited: true }),
  authed("GET", `${V3}/rooms/:roomId/state/:type/:stateKey?`, (ctx) => {
    const { state } = stateVisible(ctx);
    const found = state.find((e) => e.event.type === ctx.params["type"] && e.event.state_key === (ctx.params["stateKey"] ?? ""));
    if (!found) throw notFound("Event not found.");
    return found.event.content;
  }),
  // The one endpoint whose answer is a bare JSON array.
  authed("GET", `${V3}/rooms/:roomId/state`, (ctx) => stateVisible(ctx).state.map((e) => clientEvent(e, ctx.session))),
  authed("GET", `${V3}/rooms/:roomId/members`, (ctx) => {
    const room = ctx.store.room(ctx.params["roomId"] ?? "");
    const at = parseToken(ctx.query.get("at"), "at") ?? Infinity;
    const pos = Math.min(at, ctx.store.visibleUpTo(room, ctx.session.userId));
    const only = ctx.query.get("membership");
    const not = ctx.query.get("not_membership");
    const chunk = ctx.store
      .stateAt(room, pos)
      .filter((e) => e.event.type === "m.room.member")
      .filter((e) => (only === null || e.event.content["membership"] === only) && (not === null || e.event.content["membership"] !== not));
    return { chunk: chunk.map((e) => clientEvent(e, ctx.session)) };
  }),
  authed("GET", `${V3}/rooms/:roomId/joined_members`, (ctx) => {
    const room = joinedRoomOf(ctx);
    const joined: Json = {};
    for (const m of ctx.store.members(room).filter((x) => x.membership === "join")) {
      joined[m.userId] = { display_name: m.content["displayname"] ?? null, avatar_url: m.content["avatar_url"] ?? null };
    }
    return { joined };
  }),
  authed("GET", `${V3}/rooms/:roomId/messages`, messages),
  authed("GET", `${V3}/rooms/:roomId/event/:eventId`, (ctx) => clientEvent(visibleEvent(ctx).se, ctx.session)),
  authed("GET", `${V3}/rooms/:roomId/context/:eventId`, context),
  authed("POST", `${V3}/rooms/:roomId/receipt/:receiptType/:eventId`, (ctx) => {
    const room = joinedRoomOf(ctx);
    const thread = str(ctx.body, "thread_id");
    receipt(ctx.store, room, ctx.session.userId, ctx.params["receiptType"] ?? "", ctx.params["eventId"] ?? "", thread);
    return {};
  }),
  authed("POST", `${V3}/rooms/:roomId/read_markers`, (ctx) => {
    const room = joinedRoomOf(ctx);
    for (const type of ["m.fully_read", "m.read", "m.read.private"]) {
      const eventId = str(ctx.body, type);
      if (eventId !== undefined) receipt(ctx.store, room, ctx.session.userId, type, eventId);
    }
    return {};
  }),
  authed("PUT", `${V3}/rooms/:roomId/typing/:userId`, typing),
  authed("GET", `${V3}/directory/room/:alias`, (ctx) => {
    const id = ctx.store.aliases.get(aliasParam(ctx));
    if (!id) throw notFound(`Room alias ${ctx.params["alias"] ?? ""} not found`);
    return { room_id: id, servers: [ctx.store.serverName] };
  }),
  authed("PUT", `${V3}/directory/room/:alias`, (ctx) => {
    const alias = aliasParam(ctx);
    if (!alias.endsWith(`:${ctx.store.serverName}`)) throw new HsError(400, "M_INVALID_PARAM", "Alias must be on this server");
    if (ctx.store.aliases.has(alias)) throw new HsError(409, "M_UNKNOWN", `Room alias ${alias} already exists`);
    ctx.store.aliases.set(alias, ctx.store.room(str(ctx.body, "room_id", true)).id);
    return {};
  }),
  authed("DELETE", `${V3}/directory/room/:alias`, (ctx) => {
    if (!ctx.store.aliases.delete(aliasParam(ctx))) throw notFound("Room alias not found");
    return {};
  }),
];
