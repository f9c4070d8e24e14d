// The test homeserver's memory: users, sessions, rooms and one global ordered stream of changes.
// Every change (event, typing, receipt, account data) takes the next stream position, so a sync
// token is just "s<position>" and "what changed since" is a comparison of numbers.
import { randomBytes } from "node:crypto";

export type Json = Record<string, unknown>;

export class HsError extends Error {
  readonly status: number;
  readonly errcode: string;
  readonly extra: Json;
  constructor(status: number, errcode: string, message: string, extra: Json = {}) {
    super(message);
    this.status = status;
    this.errcode = errcode;
    this.extra = extra;
  }
}

export const forbidden = (msg: string): HsError => new HsError(403, "M_FORBIDDEN", msg);
export const notFound = (msg: string): HsError => new HsError(404, "M_NOT_FOUND", msg);
export const badJson = (msg: string): HsError => new HsError(400, "M_BAD_JSON", msg);

export interface RoomEvent {
  event_id: string;
  type: string;
  sender: string;
  room_id: string;
  origin_server_ts: number;
  content: Json;
  state_key?: string;
  redacts?: string;
  unsigned?: Json;
}

export interface StoredEvent {
  pos: number;
  event: RoomEvent;
  /** Device that sent it with a transaction id ("user|device"), for unsigned.transaction_id. */
  txn?: { device: string; txnId: string };
  /** The state event this one replaced, so state at any earlier position can be walked back. */
  replaces?: StoredEvent;
}

interface Versioned {
  content: Json;
  pos: number;
}

export interface Room {
  id: string;
  version: string;
  events: StoredEvent[];
  state: Map<string, StoredEvent>;
  typing: Map<string, number>; // user -> expiry time
  typingPos: number;
  receipts: Map<string, { type: string; userId: string; eventId: string; ts: number; threadId?: string; pos: number }>;
  accountData: Map<string, Map<string, Versioned>>; // user -> type -> data
}

/** A to-device message waiting in a device's inbox; `pos` is its place in the stream (see homeserver-sync.ts). */
export interface ToDeviceMessage {
  pos: number;
  event: { sender: string; type: string; content: Json };
}

export interface Device {
  displayName?: string;
  /** The identity keys as last uploaded (signatures uploaded later live in `User.signatures`). */
  deviceKeys?: Json;
  /** "algorithm:keyId" -> key object, oldest first (claimed in that order). */
  oneTimeKeys: Map<string, Json>;
  /** algorithm -> the one fallback key for it. */
  fallbackKeys: Map<string, { keyId: string; key: Json; used: boolean }>;
  inbox: ToDeviceMessage[];
}

export type CrossSigningUsage = "master" | "self_signing" | "user_signing";

export interface User {
  userId: string;
  password: string;
  displayname?: string;
  avatarUrl?: string;
  accountData: Map<string, Versioned>;
  filters: Json[];
  devices: Map<string, Device>;
  crossSigning: Partial<Record<CrossSigningUsage, Json>>;
  /** Signatures uploaded through /keys/signatures/upload: target key id (device id or master public key) -> signer -> key id -> signature. */
  signatures: Map<string, Map<string, Record<string, string>>>;
  rateLimit?: { remaining: number; retryAfterMs: number };
}

/** To-device messages held back instead of delivered (a test's knob), with where they were going. */
export interface ToDeviceHold {
  to?: string;
  type?: string;
  held: Array<{ userId: string; deviceId: string; event: ToDeviceMessage["event"] }>;
}

/** A change of a user's keys at `pos`: seen by everyone sharing a room with `userId`, or only by `viewer` when set. */
export interface KeyChange {
  userId: string;
  pos: number;
  viewer?: string;
}

export interface Session {
  token: string;
  userId: string;
  deviceId: string;
}

export interface Media {
  data: Buffer;
  contentType: string;
  filename?: string;
}

export type EventInput = { type: string; sender: string; content: Json; state_key?: string; redacts?: string };

const stateKeyOf = (type: string, stateKey: string): string => `${type}\u0000${stateKey}`;
export const randomId = (bytes = 12): string => randomBytes(bytes).toString("base64url");

export class Store {
  readonly serverName: string;
  head = 0;
  closed = false;
  readonly users = new Map<string, User>();
  readonly sessions = new Map<string, Session>();
  readonly rooms = new Map<string, Room>();
  readonly aliases = new Map<string, string>();
  readonly media = new Map<string, Media>();
  /** Device and cross-signing key changes, in stream order (for device_lists in /sync and /keys/changes). */
  readonly keyChanges: KeyChange[] = [];
  /** Open user-interactive auth sessions: session id -> the user it was started for. */
  readonly uiaSessions = new Map<string, { userId: string }>();
  readonly toDeviceHolds: ToDeviceHold[] = [];
  /** Without MSC3967 a first cross-signing key upload needs user-interactive auth too. */
  requireAuthForFirstCrossSigning = false;
  private readonly eventsById = new Map<string, StoredEvent>();
  private readonly listeners = new Set<() => void>();
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(serverName: string) {
    this.serverName = serverName;
  }

  // ---- change notification (wakes long-polling syncs) ----

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  bump(): number {
    this.head += 1;
    // Listeners re-check on their own; waking a sync that has nothing new just makes it wait again.
    queueMicrotask(() => {
      for (const l of [...this.listeners]) l();
    });
    return this.head;
  }

  later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    t.unref();
    this.timers.add(t);
  }

  dispose(): void {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const l of [...this.listeners]) l();
  }

  // ---- users and sessions ----

  userIdOf(localpartOrId: string): string {
    return localpartOrId.startsWith("@") ? localpartOrId : `@${localpartOrId}:${this.serverName}`;
  }

  createUser(localpart: string, password: string): User {
    if (!/^[a-z0-9._=\-/+]+$/.test(localpart)) {
      throw new HsError(400, "M_INVALID_USERNAME", "User ID can only contain characters a-z, 0-9, or '=_-./+'");
    }
    const userId = this.userIdOf(localpart);
    if (this.users.has(userId)) throw new HsError(400, "M_USER_IN_USE", "User ID already taken.");
    const user: User = {
      userId,
      password,
      displayname: localpart,
      accountData: new Map(),
      filters: [],
      devices: new Map(),
      crossSigning: {},
      signatures: new Map(),
    };
    this.users.set(userId, user);
    return user;
  }

  login(user: User, deviceId?: string, displayName?: string): Session {
    const id = deviceId ?? randomId(6).toUpperCase();
    if (!user.devices.has(id)) {
      const device: Device = { oneTimeKeys: new Map(), fallbackKeys: new Map(), inbox: [] };
      if (displayName !== undefined) device.displayName = displayName;
      user.devices.set(id, device);
    }
    const session: Session = { token: `syt_${randomId(24)}`, userId: user.userId, deviceId: id };
    this.sessions.set(session.token, session);
    return session;
  }

  user(userId: string): User {
    const u = this.users.get(userId);
    if (!u) throw notFound("User not found");
    return u;
  }

  /** Deletes a device with its keys, messages and access tokens (logout does this, as in Synapse). */
  deleteDevice(userId: string, deviceId: string): void {
    for (const [t, s] of this.sessions) if (s.userId === userId && s.deviceId === deviceId) this.sessions.delete(t);
    const user = this.users.get(userId);
    const device = user?.devices.get(deviceId);
    if (!user || !device) return;
    user.devices.delete(deviceId);
    user.signatures.delete(deviceId);
    if (device.deviceKeys) this.keysChanged(userId);
  }

  /** Puts a to-device message in a device's inbox, unless a hold catches it. */
  deliverToDevice(userId: string, deviceId: string, event: ToDeviceMessage["event"]): void {
    const hold = this.toDeviceHolds.find((h) => (h.to === undefined || h.to === userId) && (h.type === undefined || h.type === event.type));
    if (hold) {
      hold.held.push({ userId, deviceId, event });
      return;
    }
    const device = this.users.get(userId)?.devices.get(deviceId);
    device?.inbox.push({ pos: this.bump(), event });
  }

  keysChanged(userId: string, viewer?: string): void {
    const change: KeyChange = { userId, pos: this.bump() };
    if (viewer !== undefined) change.viewer = viewer;
    this.keyChanges.push(change);
  }

  // ---- events ----

  event(eventId: string): StoredEvent | undefined {
    return this.eventsById.get(eventId);
  }

  room(roomId: string): Room {
    const r = this.rooms.get(roomId);
    if (!r) throw notFound(`Unknown room ${roomId}`);
    return r;
  }

  newRoom(version: string): Room {
    const room: Room = {
      id: `!${randomId(12)}:${this.serverName}`,
      version,
      events: [],
      state: new Map(),
      typing: new Map(),
      typingPos: 0,
      receipts: new Map(),
      accountData: new Map(),
    };
    this.rooms.set(room.id, room);
    return room;
  }

  /** Appends without any authorisation: callers check first (see `send`). */
  append(room: Room, input: EventInput, txn?: StoredEvent["txn"]): StoredEvent {
    const event: RoomEvent = {
      event_id: `$${randomId(32)}`,
      type: input.type,
      sender: input.sender,
      room_id: room.id,
      origin_server_ts: Date.now(),
      content: input.content,
      unsigned: {},
    };
    if (input.redacts !== undefined) event.redacts = input.redacts;
    const stored: StoredEvent = { pos: this.bump(), event };
    if (txn) stored.txn = txn;
    if (input.state_key !== undefined) {
      event.state_key = input.state_key;
      const key = stateKeyOf(input.type, input.state_key);
      const prev = room.state.get(key);
      if (prev) {
        stored.replaces = prev;
        event.unsigned = { prev_content: prev.event.content, prev_sender: prev.event.sender, replaces_state: prev.event.event_id };
      }
      room.state.set(key, stored);
    }
    room.events.push(stored);
    this.eventsById.set(event.event_id, stored);
    return stored;
  }

  /** Authorises (auth rules, power levels) then appends. */
  send(room: Room, input: EventInput, txn?: StoredEvent["txn"]): StoredEvent {
    authorise(room, input, (id) => this.event(id));
    if (input.type === "m.room.redaction" && input.redacts !== undefined) {
      const stored = this.append(room, input, txn);
      const target = this.event(input.redacts);
      if (target && target.event.room_id === room.id) redactInPlace(target.event, stored.event);
      return stored;
    }
    return this.append(room, input, txn);
  }

  // ---- state ----

  stateEvent(room: Room, type: string, stateKey: string): StoredEvent | undefined {
    return room.state.get(stateKeyOf(type, stateKey));
  }

  /** State after the event at `pos` (or after everything when `pos` >= head). */
  stateAt(room: Room, pos: number): StoredEvent[] {
    const out: StoredEvent[] = [];
    for (const current of room.state.values()) {
      let e: StoredEvent | undefined = current;
      while (e && e.pos > pos) e = e.replaces;
      if (e) out.push(e);
    }
    return out.sort((a, b) => a.pos - b.pos);
  }

  membership(room: Room, userId: string, pos = Infinity): { membership: string; at?: StoredEvent } {
    let e = this.stateEvent(room, "m.room.member", userId);
    while (e && e.pos > pos) e = e.replaces;
    const m = e?.event.content["membership"];
    return e && typeof m === "string" ? { membership: m, at: e } : { membership: "leave" };
  }

  /** Highest position the user may see: all history while joined, up to their departure after leaving. */
  visibleUpTo(room: Room, userId: string): number {
    const { membership, at } = this.membership(room, userId);
    if (membership === "join") return Infinity;
    for (let e = at?.replaces; e; e = e.replaces) if (e.event.content["membership"] === "join") return at?.pos ?? -1;
    throw forbidden(`User ${userId} not in room ${room.id}`);
  }

  /** Events with from < pos <= to, in order. */
  eventsBetween(room: Room, from: number, to: number): StoredEvent[] {
    const start = firstAfter(room.events, from);
    const end = firstAfter(room.events, to);
    return room.events.slice(start, end);
  }

  members(room: Room, pos = Infinity): Array<{ userId: string; membership: string; content: Json }> {
    return this.stateAt(room, pos)
      .filter((e) => e.event.type === "m.room.member")
      .map((e) => ({ userId: e.event.state_key ?? "", membership: String(e.event.content["membership"]), content: e.event.content }));
  }

  setAccountData(userId: string, roomId: string | undefined, type: string, content: Json): void {
    if (roomId === undefined) {
      this.user(userId).accountData.set(type, { content, pos: this.bump() });
      return;
    }
    const room = this.room(roomId);
    const mine = room.accountData.get(userId) ?? new Map<string, Versioned>();
    room.accountData.set(userId, mine);
    mine.set(type, { content, pos: this.bump() });
  }
}

function firstAfter(events: StoredEvent[], pos: number): number {
  let lo = 0;
  let hi = events.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((events[mid]?.pos ?? Infinity) <= pos) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// ---- auth rules (a simplified room version 10: membership transitions and power levels) ----

function powerLevels(room: Room): Json {
  const pl = room.state.get(stateKeyOf("m.room.power_levels", ""));
  if (pl) return pl.event.content;
  const create = room.state.get(stateKeyOf("m.room.create", ""));
  // Without a power levels event the creator has 100 and everyone else 0 (spec, m.room.power_levels).
  return { users: create ? { [create.event.sender]: 100 } : {}, state_default: 0 };
}

const num = (v: unknown, dflt: number): number => (typeof v === "number" || typeof v === "string" ? Number(v) : dflt);
const asObj = (v: unknown): Json => (v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Json) : {});

export function userLevel(room: Room, userId: string): number {
  const pl = powerLevels(room);
  return num(asObj(pl["users"])[userId], num(pl["users_default"], 0));
}

function requiredLevel(room: Room, type: string, isState: boolean): number {
  const pl = powerLevels(room);
  const dflt = isState ? num(pl["state_default"], 50) : num(pl["events_default"], 0);
  return num(asObj(pl["events"])[type], dflt);
}

function authorise(room: Room, ev: EventInput, lookup: (id: string) => StoredEvent | undefined): void {
  const senderM = room.state.get(stateKeyOf("m.room.member", ev.sender))?.event.content["membership"];
  if (ev.type === "m.room.create") throw forbidden("Room already created");
  if (ev.type === "m.room.member") return authoriseMember(room, ev, senderM);
  if (senderM !== "join") throw forbidden(`User ${ev.sender} not in room ${room.id}`);
  const level = userLevel(room, ev.sender);
  const isState = ev.state_key !== undefined;
  const needed = requiredLevel(room, ev.type, isState);
  if (level < needed) {
    throw forbidden(`You don't have permission to post that to the room. user_level (${level}) < send_level (${needed})`);
  }
  if (isState && ev.state_key?.startsWith("@") && ev.state_key !== ev.sender) {
    throw forbidden("You are not allowed to set others' state");
  }
  if (ev.type === "m.room.power_levels") authorisePowerLevels(room, ev, level);
  if (ev.type === "m.room.redaction" && ev.redacts !== undefined) {
    const target = lookup(ev.redacts);
    const own = target !== undefined && target.event.sender === ev.sender;
    if (!own && level < num(powerLevels(room)["redact"], 50)) throw forbidden("You don't have permission to redact events");
  }
}

function authoriseMember(room: Room, ev: EventInput, senderM: unknown): void {
  const target = ev.state_key ?? "";
  const targetM = room.state.get(stateKeyOf("m.room.member", target))?.event.content["membership"];
  const membership = ev.content["membership"];
  const pl = powerLevels(room);
  const level = userLevel(room, ev.sender);
  const outranks = level > userLevel(room, target);
  switch (membership) {
    case "join": {
      if (ev.sender !== target) throw forbidden("Cannot force another user to join.");
      if (targetM === "ban") throw forbidden("You are banned from this room");
      const rule = room.state.get(stateKeyOf("m.room.join_rules", ""))?.event.content["join_rule"];
      if (targetM !== "invite" && targetM !== "join" && rule !== "public") throw forbidden("You are not invited to this room.");
      return;
    }
    case "invite":
      if (senderM !== "join") throw forbidden(`User ${ev.sender} not in room ${room.id}`);
      if (targetM === "join") throw forbidden(`${target} is already in the room.`);
      if (targetM === "ban") throw forbidden(`${target} is banned from the room`);
      if (level < num(pl["invite"], 0)) throw forbidden("You don't have permission to invite users");
      return;
    case "leave":
      if (ev.sender === target) {
        if (targetM !== "join" && targetM !== "invite" && targetM !== "knock") throw forbidden(`User ${target} not in room ${room.id}`);
        return;
      }
      if (senderM !== "join") throw forbidden(`User ${ev.sender} not in room ${room.id}`);
      if (targetM === "ban") {
        if (level < num(pl["ban"], 50)) throw forbidden("You don't have permission to unban");
        return;
      }
      if (level < num(pl["kick"], 50) || !outranks) throw forbidden("You don't have permission to kick");
      return;
    case "ban":
      if (senderM !== "join") throw forbidden(`User ${ev.sender} not in room ${room.id}`);
      if (level < num(pl["ban"], 50) || !outranks) throw forbidden("You don't have permission to ban");
      return;
    default:
      throw badJson(`Unsupported membership ${String(membership)}`);
  }
}

function authorisePowerLevels(room: Room, ev: EventInput, level: number): void {
  const old = powerLevels(room);
  const next = ev.content;
  const check = (what: string, before: unknown, after: unknown, dflt: number): void => {
    if (before === after) return;
    if (num(before, dflt) > level || num(after, dflt) > level) throw forbidden(`You don't have permission to change ${what}`);
  };
  for (const key of ["users_default", "events_default", "state_default", "ban", "redact", "kick", "invite"]) {
    check(key, old[key], next[key], 0);
  }
  for (const map of ["events", "notifications"]) {
    const a = asObj(old[map]);
    const b = asObj(next[map]);
    for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) check(`${map}.${k}`, a[k], b[k], 0);
  }
  const a = asObj(old["users"]);
  const b = asObj(next["users"]);
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
    if (a[k] === b[k]) continue;
    // A user may lower their own level, never touch someone at or above their own.
    if (k !== ev.sender && num(a[k], 0) >= level && a[k] !== undefined) throw forbidden(`You don't have permission to change ${k}'s level`);
    check(`users.${k}`, a[k], b[k], 0);
  }
}

// ---- redaction (spec "Redactions", room version 10 algorithm) ----

const keptContent: Record<string, string[]> = {
  "m.room.member": ["membership", "join_authorised_via_users_server"],
  "m.room.create": ["creator"],
  "m.room.join_rules": ["join_rule", "allow"],
  "m.room.power_levels": ["ban", "events", "events_default", "kick", "redact", "state_default", "users", "users_default"],
  "m.room.history_visibility": ["history_visibility"],
};

function redactInPlace(target: RoomEvent, redaction: RoomEvent): void {
  const keep = keptContent[target.type] ?? [];
  target.content = Object.fromEntries(Object.entries(target.content).filter(([k]) => keep.includes(k)));
  const { replaces_state, prev_sender } = target.unsigned ?? {};
  const because: Json = { ...redaction, unsigned: {} };
  target.unsigned = { redacted_because: because };
  if (replaces_state !== undefined) target.unsigned["replaces_state"] = replaces_state;
  if (prev_sender !== undefined) target.unsigned["prev_sender"] = prev_sender;
}
