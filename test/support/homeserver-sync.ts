// GET /sync: builds the response for one session from the store's stream positions.
import { deviceListChanges, oneTimeKeyCounts, unusedFallbackKeyTypes } from "./homeserver-keys.ts";
import { HsError, notFound, type Json, type Room, type Session, type StoredEvent, type Store } from "./homeserver-store.ts";

export const token = (pos: number): string => `s${pos}`;

/** To-device messages handed out per sync (Synapse's limit); the rest come with the next one. */
export const TO_DEVICE_LIMIT = 100;

/**
 * A sync token is "s<pos>": everything up to stream position `pos` was seen. When a sync had more to-device
 * messages than it could carry it says "s<pos>_<toDevice>": to-device messages were handed out only up to
 * position `toDevice`.
 */
export function parseSyncToken(value: string | null | undefined, name: string): { pos: number; toDevice: number } | undefined {
  if (value === null || value === undefined || value === "") return undefined;
  const m = /^s(\d+)(?:_(\d+))?$/.exec(value);
  if (!m) throw new HsError(400, "M_INVALID_PARAM", `Invalid ${name} token`);
  const pos = Number(m[1]);
  return { pos, toDevice: m[2] === undefined ? pos : Math.min(Number(m[2]), pos) };
}

export function parseToken(value: string | null | undefined, name: string): number | undefined {
  return parseSyncToken(value, name)?.pos;
}

/** Formats an event for a client: age is computed now, transaction_id only for the sending device. */
export function clientEvent(se: StoredEvent, session: Session, withRoomId = true): Json {
  const { room_id, ...rest } = se.event;
  const unsigned: Json = { ...rest.unsigned, age: Date.now() - rest.origin_server_ts };
  if (se.txn && se.txn.device === `${session.userId}|${session.deviceId}`) unsigned["transaction_id"] = se.txn.txnId;
  return withRoomId ? { ...rest, room_id, unsigned } : { ...rest, unsigned };
}

const stripped = (se: StoredEvent): Json => ({
  type: se.event.type,
  state_key: se.event.state_key,
  sender: se.event.sender,
  content: se.event.content,
});

export function resolveFilter(store: Store, session: Session, filter: string | null): Json {
  if (filter === null || filter === "") return {};
  if (filter.startsWith("{")) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(filter);
    } catch {
      throw new HsError(400, "M_NOT_JSON", "Filter is not JSON");
    }
    if (parsed !== null && typeof parsed === "object" && !Array.isArray(parsed)) return parsed as Json;
    throw new HsError(400, "M_BAD_JSON", "Filter must be a JSON object");
  }
  const found = store.user(session.userId).filters[Number(filter)];
  if (!/^\d+$/.test(filter) || !found) throw notFound("No such filter");
  return found;
}

function timelineLimit(filter: Json): number {
  const room = filter["room"] as Json | undefined;
  const timeline = room?.["timeline"] as Json | undefined;
  const limit = timeline?.["limit"];
  // Synapse's default when the filter says nothing.
  return typeof limit === "number" ? Math.max(0, Math.floor(limit)) : 10;
}

interface SyncArgs {
  since: number | undefined;
  /** Position up to which to-device messages were delivered by the sync that gave `since`. */
  toDeviceSince: number | undefined;
  limit: number;
  fullState: boolean;
}

export function buildSync(store: Store, session: Session, args: SyncArgs): { body: Json; empty: boolean } {
  const head = store.head;
  const { since } = args;
  const user = store.user(session.userId);
  const join: Json = {};
  const invite: Json = {};
  const leave: Json = {};
  for (const room of store.rooms.values()) {
    const now = store.membership(room, user.userId);
    const then = since === undefined ? "leave" : store.membership(room, user.userId, since).membership;
    if (now.membership === "join") {
      const newlyJoined = since === undefined || then !== "join";
      const j = joinedRoom(store, room, session, newlyJoined ? undefined : since, args, head);
      if (j) join[room.id] = j;
    } else if (now.membership === "invite" && now.at && (since === undefined || now.at.pos > since)) {
      invite[room.id] = { invite_state: { events: inviteState(store, room, now.at) } };
    } else if (since !== undefined && now.at && now.at.pos > since && (then === "join" || then === "invite")) {
      const events = then === "join" ? store.eventsBetween(room, since, now.at.pos) : [now.at];
      const timeline = events.slice(-Math.max(args.limit, 1));
      leave[room.id] = {
        state: { events: [] },
        timeline: {
          events: timeline.map((e) => clientEvent(e, session, false)),
          limited: timeline.length < events.length,
          prev_batch: token((timeline[0]?.pos ?? now.at.pos) - 1),
        },
        account_data: { events: [] },
      };
    }
  }
  const accountData = [...user.accountData].filter(([, v]) => v.pos > (since ?? -1)).map(([type, v]) => ({ type, content: v.content }));
  const toDevice = toDeviceMessages(store, session, args.toDeviceSince, head);
  // Synapse sends no device list changes on an initial sync: the client asks for every key it needs anyway.
  const deviceLists = since === undefined ? { changed: [], left: [] } : deviceListChanges(store, user.userId, since, head);
  const device = user.devices.get(session.deviceId);
  const empty =
    !Object.keys(join).length &&
    !Object.keys(invite).length &&
    !Object.keys(leave).length &&
    !accountData.length &&
    !toDevice.events.length &&
    !deviceLists.changed.length &&
    !deviceLists.left.length;
  return {
    body: {
      next_batch: toDevice.upTo === undefined ? token(head) : `${token(head)}_${toDevice.upTo}`,
      rooms: { join, invite, leave, knock: {} },
      account_data: { events: accountData },
      presence: { events: [] },
      to_device: { events: toDevice.events },
      device_lists: deviceLists,
      device_one_time_keys_count: oneTimeKeyCounts(device),
      device_unused_fallback_key_types: unusedFallbackKeyTypes(device),
    },
    empty,
  };
}

/**
 * Like Synapse: messages stay in the device's inbox until a sync's `since` shows the client got the answer that
 * carried them, so a client that resumes from an older token gets them again; at most TO_DEVICE_LIMIT a sync.
 * `upTo` is set when some were left for the next sync.
 */
function toDeviceMessages(store: Store, session: Session, acked: number | undefined, head: number): { events: Json[]; upTo?: number } {
  const device = store.users.get(session.userId)?.devices.get(session.deviceId);
  if (!device) return { events: [] };
  if (acked !== undefined) device.inbox = device.inbox.filter((m) => m.pos > acked);
  const pending = device.inbox.filter((m) => m.pos <= head);
  const batch = pending.slice(0, TO_DEVICE_LIMIT);
  const events = batch.map((m) => ({ ...m.event }));
  const last = batch[batch.length - 1];
  return batch.length < pending.length && last ? { events, upTo: last.pos } : { events };
}

function joinedRoom(store: Store, room: Room, session: Session, since: number | undefined, args: SyncArgs, head: number): Json | null {
  const after = since ?? -1;
  const all = store.eventsBetween(room, after, head);
  const timeline = args.limit > 0 ? all.slice(-args.limit) : [];
  const limited = timeline.length < all.length;
  const startPos = timeline[0] ? timeline[0].pos - 1 : head;
  let state: StoredEvent[] = [];
  if (since === undefined || args.fullState) {
    state = store.stateAt(room, startPos);
  } else if (limited) {
    // Only what changed in the gap the client did not get to see.
    const before = new Set(store.stateAt(room, since));
    state = store.stateAt(room, startPos).filter((e) => !before.has(e));
  }
  const ephemeral = ephemeralEvents(room, session.userId, after);
  const mine = room.accountData.get(session.userId) ?? new Map<string, { content: Json; pos: number }>();
  const accountData = [...mine].filter(([, v]) => v.pos > after).map(([type, v]) => ({ type, content: v.content }));
  if (since !== undefined && !args.fullState && !timeline.length && !state.length && !ephemeral.length && !accountData.length) {
    return null;
  }
  return {
    summary: summary(store, room, session.userId),
    state: { events: state.map((e) => clientEvent(e, session, false)) },
    timeline: { events: timeline.map((e) => clientEvent(e, session, false)), limited, prev_batch: token(startPos) },
    ephemeral: { events: ephemeral },
    account_data: { events: accountData },
    unread_notifications: { notification_count: unreadCount(store, room, session.userId), highlight_count: 0 },
  };
}

function ephemeralEvents(room: Room, userId: string, after: number): Json[] {
  const out: Json[] = [];
  const now = Date.now();
  const typing = [...room.typing].filter(([, until]) => until > now).map(([u]) => u);
  if (room.typingPos > after && (after >= 0 || typing.length)) out.push({ type: "m.typing", content: { user_ids: typing } });
  const content: Record<string, Record<string, Record<string, Json>>> = {};
  for (const r of room.receipts.values()) {
    if (r.pos <= after || (r.type === "m.read.private" && r.userId !== userId)) continue;
    const byType = (content[r.eventId] ??= {});
    const byUser = (byType[r.type] ??= {});
    byUser[r.userId] = r.threadId === undefined ? { ts: r.ts } : { ts: r.ts, thread_id: r.threadId };
  }
  if (Object.keys(content).length) out.push({ type: "m.receipt", content });
  return out;
}

function summary(store: Store, room: Room, userId: string): Json {
  const members = store.members(room);
  const joined = members.filter((m) => m.membership === "join");
  const invited = members.filter((m) => m.membership === "invite");
  const heroes = [...joined, ...invited].map((m) => m.userId).filter((u) => u !== userId).sort().slice(0, 5);
  return { "m.heroes": heroes, "m.joined_member_count": joined.length, "m.invited_member_count": invited.length };
}

const notifying = new Set(["m.room.message", "m.room.encrypted", "m.sticker"]);

function unreadCount(store: Store, room: Room, userId: string): number {
  const receipt = room.receipts.get(`m.read\u0000${userId}`) ?? room.receipts.get(`m.read.private\u0000${userId}`);
  const readPos = receipt ? (store.event(receipt.eventId)?.pos ?? -1) : -1;
  const joinedPos = store.membership(room, userId).at?.pos ?? -1;
  return store
    .eventsBetween(room, Math.max(readPos, joinedPos), Infinity)
    .filter((e) => e.event.sender !== userId && notifying.has(e.event.type) && e.event.state_key === undefined).length;
}

function inviteState(store: Store, room: Room, invite: StoredEvent): Json[] {
  const types = ["m.room.create", "m.room.name", "m.room.avatar", "m.room.topic", "m.room.join_rules", "m.room.canonical_alias", "m.room.encryption"];
  const out = types.flatMap((t) => {
    const e = store.stateEvent(room, t, "");
    return e ? [stripped(e)] : [];
  });
  const inviter = store.stateEvent(room, "m.room.member", invite.event.sender);
  if (inviter) out.push(stripped(inviter));
  out.push(stripped(invite));
  return out;
}

/** Long-polls: answers at once on an initial or full-state sync, otherwise when something new arrives or time runs out. */
export async function sync(store: Store, session: Session, query: URLSearchParams, signal: AbortSignal): Promise<Json> {
  const since = parseSyncToken(query.get("since"), "since");
  const args: SyncArgs = {
    since: since?.pos,
    toDeviceSince: since?.toDevice,
    limit: timelineLimit(resolveFilter(store, session, query.get("filter"))),
    fullState: query.get("full_state") === "true",
  };
  if (args.since !== undefined && args.since > store.head) throw new HsError(400, "M_INVALID_PARAM", "since token is from the future");
  const deadline = Date.now() + Math.max(0, Number(query.get("timeout") ?? 0) || 0);
  for (;;) {
    const { body, empty } = buildSync(store, session, args);
    if (!empty || args.since === undefined || args.fullState || Date.now() >= deadline || signal.aborted || store.closed) return body;
    await waitForChange(store, deadline - Date.now(), signal);
  }
}

function waitForChange(store: Store, ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      off();
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    const off = store.onChange(done);
    signal.addEventListener("abort", done);
  });
}
