// End-to-end encryption endpoints of the test homeserver (Client-Server API "End-to-end encryption",
// v1.12 shapes, Synapse's behaviour where the spec leaves room): device and one-time keys, cross-signing
// keys and signatures, to-device messages, device list changes, devices.
import { authed, obj, str, type AuthedCtx, type Route } from "./homeserver-http.ts";
import { HsError, forbidden, notFound, randomId, type CrossSigningUsage, type Device, type Json, type Store, type User } from "./homeserver-store.ts";
import { canonicalJson, crossSigningKeyOf, verifySignature } from "./homeserver-signing.ts";
import { parseSyncToken } from "./homeserver-sync.ts";

const V3 = "/_matrix/client/v3";
const invalid = (msg: string): HsError => new HsError(400, "M_INVALID_PARAM", msg);
const isObj = (v: unknown): v is Json => v !== null && typeof v === "object" && !Array.isArray(v);

// ---- views: what /keys/query hands out ----

/** `base.signatures` with the separately uploaded signatures of `targetKeyId` merged in. */
function withSignatures(user: User, base: Json, targetKeyId: string): Json {
  const extra = user.signatures.get(targetKeyId);
  if (!extra) return structuredClone(base);
  const out = structuredClone(base);
  const signatures: Json = isObj(out["signatures"]) ? out["signatures"] : {};
  for (const [signer, sigs] of extra) signatures[signer] = { ...(isObj(signatures[signer]) ? signatures[signer] : {}), ...sigs };
  out["signatures"] = signatures;
  return out;
}

function deviceKeysView(user: User, deviceId: string, device: Device): Json | undefined {
  if (!device.deviceKeys) return undefined;
  const out = withSignatures(user, device.deviceKeys, deviceId);
  if (device.displayName !== undefined) out["unsigned"] = { device_display_name: device.displayName };
  return out;
}

function crossSigningView(user: User, usage: CrossSigningUsage): Json | undefined {
  const key = user.crossSigning[usage];
  if (!key) return undefined;
  const [, publicKey] = crossSigningKeyOf(key) ?? ["", ""];
  return withSignatures(user, key, publicKey);
}

export function oneTimeKeyCounts(device: Device | undefined): Record<string, number> {
  // Like Synapse: signed_curve25519 is always there, so clients know to upload when it is 0.
  const counts: Record<string, number> = { signed_curve25519: 0 };
  for (const id of device?.oneTimeKeys.keys() ?? []) {
    const algorithm = id.slice(0, id.indexOf(":"));
    counts[algorithm] = (counts[algorithm] ?? 0) + 1;
  }
  return counts;
}

export function unusedFallbackKeyTypes(device: Device | undefined): string[] {
  return [...(device?.fallbackKeys ?? [])].filter(([, f]) => !f.used).map(([algorithm]) => algorithm);
}

// ---- device list changes (sync's device_lists and /keys/changes) ----

function joinedRooms(store: Store, userId: string, pos = Infinity): Array<ReturnType<Store["room"]>> {
  return [...store.rooms.values()].filter((room) => store.membership(room, userId, pos).membership === "join");
}

function sharesRoom(store: Store, a: string, b: string, pos = Infinity): boolean {
  return joinedRooms(store, a, pos).some((room) => store.membership(room, b, pos).membership === "join");
}

/**
 * Users whose keys changed in (from, to] and who share a room with `userId` now (plus those who newly came to share
 * one, and `userId` itself), and users who were in a room with `userId` in that window but share none now.
 */
export function deviceListChanges(store: Store, userId: string, from: number, to: number): { changed: string[]; left: string[] } {
  const changed = new Set<string>();
  const candidatesLeft = new Set<string>();
  for (let i = store.keyChanges.length - 1; i >= 0; i--) {
    const c = store.keyChanges[i];
    if (!c || c.pos <= from) break;
    if (c.pos > to || (c.viewer !== undefined && c.viewer !== userId)) continue;
    if (c.userId === userId || sharesRoom(store, userId, c.userId)) changed.add(c.userId);
  }
  for (const room of store.rooms.values()) {
    const memberEvents = store.eventsBetween(room, from, to).filter((e) => e.event.type === "m.room.member");
    if (!memberEvents.length) continue;
    const meNow = store.membership(room, userId, to).membership === "join";
    const meThen = store.membership(room, userId, from).membership === "join";
    if (!meNow && !meThen) continue;
    if (meNow && !meThen) {
      for (const m of store.members(room, to)) if (m.membership === "join" && m.userId !== userId) changed.add(m.userId);
    }
    if (meThen && !meNow) for (const m of store.members(room, from)) if (m.membership === "join") candidatesLeft.add(m.userId);
    for (const e of memberEvents) {
      const target = e.event.state_key ?? "";
      if (target === userId) continue;
      const thenJoined = store.membership(room, target, from).membership === "join";
      const nowJoined = store.membership(room, target, to).membership === "join";
      if (meNow && nowJoined && !thenJoined) changed.add(target);
      // Like Synapse, also someone who joined and left within the window: "may have left" (spec).
      if (!nowJoined && (thenJoined || e.event.content["membership"] === "join")) candidatesLeft.add(target);
    }
  }
  const left = [...candidatesLeft].filter((u) => u !== userId && !sharesRoom(store, userId, u, to));
  for (const u of left) changed.delete(u);
  return { changed: [...changed].sort(), left: left.sort() };
}

// ---- /keys/upload ----

function uploadKeys(ctx: AuthedCtx): Json {
  const { store, session, body } = ctx;
  const user = store.user(session.userId);
  const device = user.devices.get(session.deviceId);
  if (!device) throw new HsError(400, "M_UNKNOWN", "To upload keys, you must pass device_id when authenticating");
  const keys = body["device_keys"] === undefined ? undefined : obj(body["device_keys"], "device_keys");
  const otks = body["one_time_keys"] === undefined ? {} : obj(body["one_time_keys"], "one_time_keys");
  const fallback = body["fallback_keys"] === undefined ? {} : obj(body["fallback_keys"], "fallback_keys");
  // Everything is checked before anything is stored: a refused upload changes nothing.
  if (keys) checkDeviceKeys(keys, session.userId, session.deviceId);
  for (const id of [...Object.keys(otks), ...Object.keys(fallback)]) {
    if (id.split(":").length !== 2) throw new HsError(400, "M_BAD_JSON", `Invalid key id '${id}'. Expected "<algorithm>:<key_id>".`);
  }
  // A second crypto store on a reused device id starts its one-time key ids afresh: on Synapse this clash is
  // the error such a client sees, so it is checked first.
  for (const [id, key] of Object.entries(otks)) {
    const existing = device.oneTimeKeys.get(id);
    if (existing !== undefined && !sameKey(existing, key)) {
      throw invalid(`One time key ${id} already exists. Old key: ${JSON.stringify(existing)}; new key: ${JSON.stringify(key)}`);
    }
  }
  const before = device.deviceKeys;
  // Synapse would overwrite the identity keys; here a different identity for a device that has one is refused,
  // so the server never holds two identities for one device.
  if (keys && before && canonicalJson(before["keys"]) !== canonicalJson(keys["keys"])) {
    throw invalid(`Device keys for ${session.userId} ${session.deviceId} already exist and differ; log in as a new device`);
  }
  if (keys) {
    device.deviceKeys = keys;
    if (before === undefined || canonicalJson(before) !== canonicalJson(keys)) store.keysChanged(session.userId);
  }
  for (const [id, key] of Object.entries(otks)) if (!device.oneTimeKeys.has(id)) device.oneTimeKeys.set(id, key as Json);
  for (const [id, key] of Object.entries(fallback)) {
    const [algorithm = "", keyId = ""] = id.split(":");
    const current = device.fallbackKeys.get(algorithm);
    // Re-uploading the same key keeps its used flag (Synapse); a new one replaces it, unused.
    if (current && current.keyId === keyId && sameKey(current.key, key)) continue;
    device.fallbackKeys.set(algorithm, { keyId, key: key as Json, used: false });
  }
  return { one_time_key_counts: oneTimeKeyCounts(device) };
}

function checkDeviceKeys(keys: Json, userId: string, deviceId: string): void {
  if (keys["user_id"] !== userId) {
    throw new HsError(400, "M_BAD_JSON", "Provided `user_id` in `device_keys` does not match that of the authenticated user");
  }
  if (keys["device_id"] !== deviceId) {
    throw new HsError(400, "M_BAD_JSON", "Provided `device_id` in `device_keys` does not match that of the authenticated user device");
  }
  if (!isObj(keys["keys"]) || !Array.isArray(keys["algorithms"])) throw new HsError(400, "M_BAD_JSON", "device_keys needs keys and algorithms");
}

/** Keys match when equal apart from their signatures (another upload may sign them differently). */
function sameKey(a: unknown, b: unknown): boolean {
  if (!isObj(a) || !isObj(b)) return a === b;
  const { signatures: _a, ...restA } = a;
  const { signatures: _b, ...restB } = b;
  return canonicalJson(restA) === canonicalJson(restB);
}

// ---- /keys/query and /keys/claim ----

function queryKeys(ctx: AuthedCtx): Json {
  const { store, session } = ctx;
  const wanted = obj(ctx.body["device_keys"], "device_keys");
  const deviceKeys: Json = {};
  const master: Json = {};
  const selfSigning: Json = {};
  const userSigning: Json = {};
  for (const [userId, devices] of Object.entries(wanted)) {
    if (!Array.isArray(devices)) throw invalid("device_keys values must be lists of device ids");
    const user = store.users.get(userId);
    const out: Json = {};
    for (const [id, device] of user?.devices ?? []) {
      if (devices.length && !devices.includes(id)) continue;
      const view = user ? deviceKeysView(user, id, device) : undefined;
      if (view) out[id] = view;
    }
    deviceKeys[userId] = out;
    if (!user) continue;
    const m = crossSigningView(user, "master");
    if (m) master[userId] = m;
    const s = crossSigningView(user, "self_signing");
    if (s) selfSigning[userId] = s;
    const u = userId === session.userId ? crossSigningView(user, "user_signing") : undefined;
    if (u) userSigning[userId] = u;
  }
  return { device_keys: deviceKeys, master_keys: master, self_signing_keys: selfSigning, user_signing_keys: userSigning, failures: {} };
}

function claimKeys(ctx: AuthedCtx): Json {
  const { store } = ctx;
  const wanted = obj(ctx.body["one_time_keys"], "one_time_keys");
  const out: Json = {};
  for (const [userId, devices] of Object.entries(wanted)) {
    const byDevice: Json = {};
    for (const [deviceId, algorithm] of Object.entries(obj(devices, "one_time_keys values"))) {
      if (typeof algorithm !== "string") throw invalid("one_time_keys must map devices to an algorithm");
      const device = store.users.get(userId)?.devices.get(deviceId);
      if (!device) continue;
      const otk = [...device.oneTimeKeys].find(([id]) => id.startsWith(`${algorithm}:`));
      if (otk) {
        device.oneTimeKeys.delete(otk[0]);
        byDevice[deviceId] = { [otk[0]]: otk[1] };
        continue;
      }
      const fallback = device.fallbackKeys.get(algorithm);
      if (!fallback) continue;
      fallback.used = true;
      byDevice[deviceId] = { [`${algorithm}:${fallback.keyId}`]: fallback.key };
    }
    out[userId] = byDevice;
  }
  return { one_time_keys: out, failures: {} };
}

// ---- user-interactive auth (password only) ----

const UIA_FLOWS = [{ stages: ["m.login.password"] }];

/** Spec "User-interactive authentication API": challenges with a 401 until `auth` proves the password. */
export function requirePassword(ctx: AuthedCtx): void {
  const { store, session } = ctx;
  const auth = ctx.body["auth"];
  if (!isObj(auth)) {
    const id = randomId();
    store.uiaSessions.set(id, { userId: session.userId });
    throw new HsError(401, "", "", { flows: UIA_FLOWS, params: {}, session: id });
  }
  const sessionId = str(auth, "session");
  if (sessionId !== undefined && store.uiaSessions.get(sessionId)?.userId !== session.userId) {
    throw new HsError(400, "M_INVALID_PARAM", `Unknown session ID: ${sessionId}`);
  }
  const id = sessionId ?? randomId();
  store.uiaSessions.set(id, { userId: session.userId });
  const challenge = { flows: UIA_FLOWS, params: {}, session: id, completed: [] };
  if (auth["type"] !== "m.login.password") throw new HsError(401, "M_UNRECOGNIZED", "Unrecognised login type", challenge);
  const identifier = isObj(auth["identifier"]) ? auth["identifier"] : {};
  const user = typeof identifier["user"] === "string" ? identifier["user"] : str(auth, "user");
  if (identifier["type"] !== undefined && identifier["type"] !== "m.id.user") throw new HsError(401, "M_UNKNOWN", "Unknown login identifier type", challenge);
  if (user === undefined || store.userIdOf(user) !== session.userId) throw forbidden("Requested user does not match the logged-in user");
  if (str(auth, "password") !== store.user(session.userId).password) throw new HsError(401, "M_FORBIDDEN", "Invalid username or password", challenge);
  store.uiaSessions.delete(id);
}

// ---- cross-signing keys and signatures ----

const SIGNING_FIELDS: Array<[string, CrossSigningUsage]> = [
  ["master_key", "master"],
  ["self_signing_key", "self_signing"],
  ["user_signing_key", "user_signing"],
];

function checkCrossSigningKey(key: Json, userId: string, usage: CrossSigningUsage, master?: [string, string]): void {
  const usages = key["usage"];
  if (key["user_id"] !== userId || !Array.isArray(usages) || !usages.includes(usage) || !crossSigningKeyOf(key)) {
    throw invalid(`Invalid ${usage} key`);
  }
  if (master && !verifySignature(key, userId, master[0], master[1])) {
    throw new HsError(400, "M_INVALID_SIGNATURE", `Invalid signature on ${usage} key`);
  }
}

function uploadSigningKeys(ctx: AuthedCtx): Json {
  const { store, session, body } = ctx;
  const user = store.user(session.userId);
  const uploads = SIGNING_FIELDS.flatMap(([field, usage]) => (body[field] === undefined ? [] : [[usage, obj(body[field], field)] as const]));
  // Resending exactly the keys already there is a no-op without auth (Synapse).
  if (uploads.every(([usage, key]) => canonicalJson(user.crossSigning[usage] ?? null) === canonicalJson(key))) return {};
  // MSC3967: the first upload (no master key yet) needs no auth; replacing keys does.
  if (user.crossSigning.master !== undefined || store.requireAuthForFirstCrossSigning) requirePassword(ctx);
  const newKeys = new Map(uploads);
  const masterKey = newKeys.get("master") ?? user.crossSigning.master;
  if (!masterKey) throw new HsError(400, "M_MISSING_PARAM", "No master key available");
  checkCrossSigningKey(masterKey, session.userId, "master");
  const master = crossSigningKeyOf(masterKey);
  for (const usage of ["self_signing", "user_signing"] as const) {
    const key = newKeys.get(usage);
    if (key) checkCrossSigningKey(key, session.userId, usage, master);
  }
  for (const [usage, key] of newKeys) user.crossSigning[usage] = key;
  if (newKeys.has("master") || newKeys.has("self_signing")) store.keysChanged(session.userId);
  // Only the user is told about a new user-signing key.
  else if (newKeys.has("user_signing")) store.keysChanged(session.userId, session.userId);
  return {};
}

const failure = (status: number, errcode: string, message: string): Json => ({ status, errcode, message });

/** Stores one signature of `targetKeyId` (of `target`) by `signer`'s key `signerKeyId`, checked against `stored`. */
function addSignature(target: User, targetKeyId: string, stored: Json, signed: Json, signer: string, signerKey: [string, string]): Json | undefined {
  const strip = ({ signatures: _s, unsigned: _u, ...rest }: Json): string => canonicalJson(rest);
  if (strip(stored) !== strip(signed)) return failure(400, "M_UNKNOWN", "Key does not match");
  if (!verifySignature(signed, signer, signerKey[0], signerKey[1])) return failure(400, "M_INVALID_SIGNATURE", "Invalid signature");
  const bySigner = target.signatures.get(targetKeyId) ?? new Map<string, Record<string, string>>();
  target.signatures.set(targetKeyId, bySigner);
  const sig = ((signed["signatures"] as Json)[signer] as Json)[signerKey[0]] as string;
  bySigner.set(signer, { ...bySigner.get(signer), [signerKey[0]]: sig });
  return undefined;
}

function uploadSignatures(ctx: AuthedCtx): Json {
  const { store, session } = ctx;
  const me = store.user(session.userId);
  const failures: Record<string, Json> = {};
  const fail = (userId: string, keyId: string, f: Json): void => {
    failures[userId] = { ...failures[userId], [keyId]: f };
  };
  const changedUsers = new Set<string>();
  for (const [userId, keys] of Object.entries(ctx.body)) {
    for (const [keyId, value] of Object.entries(obj(keys, "signed keys"))) {
      const signed = obj(value, "signed key");
      const target = store.users.get(userId);
      if (!target) {
        fail(userId, keyId, failure(404, "M_NOT_FOUND", "Unknown user"));
        continue;
      }
      const masterKey = target.crossSigning.master;
      const master = masterKey ? crossSigningKeyOf(masterKey) : undefined;
      let result: Json | undefined;
      if (userId === session.userId && master && keyId === master[1] && masterKey) {
        // The own master key, signed by one of the user's devices.
        const signerKeyId = Object.keys(isObj(signed["signatures"]) && isObj(signed["signatures"][userId]) ? signed["signatures"][userId] : {}).find(
          (k) => k.startsWith("ed25519:") && k !== master[0],
        );
        const signingDevice = signerKeyId ? me.devices.get(signerKeyId.slice("ed25519:".length))?.deviceKeys : undefined;
        const devicePublic = signingDevice && isObj(signingDevice["keys"]) ? signingDevice["keys"][signerKeyId ?? ""] : undefined;
        result =
          signerKeyId && typeof devicePublic === "string"
            ? addSignature(target, keyId, masterKey, signed, userId, [signerKeyId, devicePublic])
            : failure(400, "M_INVALID_SIGNATURE", "Invalid signature");
      } else if (userId === session.userId) {
        // One of the user's own devices, signed by their self-signing key.
        const ssk = me.crossSigning.self_signing ? crossSigningKeyOf(me.crossSigning.self_signing) : undefined;
        const device = me.devices.get(keyId)?.deviceKeys;
        if (!ssk) result = failure(404, "M_NOT_FOUND", `No self_signing key found for ${userId}`);
        else if (!device) result = failure(404, "M_NOT_FOUND", "Unknown device");
        else result = addSignature(target, keyId, device, signed, userId, ssk);
      } else {
        // Another user's master key, signed by the uploader's user-signing key.
        const usk = me.crossSigning.user_signing ? crossSigningKeyOf(me.crossSigning.user_signing) : undefined;
        if (!usk) result = failure(404, "M_NOT_FOUND", `No user_signing key found for ${session.userId}`);
        else if (!master || !masterKey || keyId !== master[1]) result = failure(404, "M_NOT_FOUND", "Unknown device");
        else result = addSignature(target, keyId, masterKey, signed, session.userId, usk);
      }
      if (result) fail(userId, keyId, result);
      else changedUsers.add(userId);
    }
  }
  for (const userId of changedUsers) {
    // A signature of someone else's master key concerns only the signer (Synapse's "user signature" stream).
    if (userId === session.userId) store.keysChanged(userId);
    else store.keysChanged(userId, session.userId);
  }
  return { failures };
}

// ---- to-device messages ----

function sendToDevice(ctx: AuthedCtx): Json {
  const { store, session } = ctx;
  const type = ctx.params["type"] ?? "";
  const messages = obj(ctx.body["messages"], "messages");
  for (const [userId, byDevice] of Object.entries(messages)) {
    const user = store.users.get(userId);
    for (const [deviceId, content] of Object.entries(obj(byDevice, "messages values"))) {
      if (!user) continue;
      const targets = deviceId === "*" ? [...user.devices.keys()] : user.devices.has(deviceId) ? [deviceId] : [];
      for (const target of targets) store.deliverToDevice(userId, target, { sender: session.userId, type, content: obj(content, "message content") });
    }
  }
  return {};
}

// ---- devices ----

function deviceInfo(deviceId: string, device: Device): Json {
  return { device_id: deviceId, display_name: device.displayName ?? null, last_seen_ip: "127.0.0.1", last_seen_ts: Date.now() };
}

function ownDevice(ctx: AuthedCtx): [string, Device] {
  const id = ctx.params["deviceId"] ?? "";
  const device = ctx.store.user(ctx.session.userId).devices.get(id);
  if (!device) throw notFound("No device found");
  return [id, device];
}

export const keyRoutes: Route[] = [
  authed("POST", `${V3}/keys/upload`, uploadKeys),
  authed("POST", `${V3}/keys/query`, queryKeys),
  authed("POST", `${V3}/keys/claim`, claimKeys),
  authed("POST", `${V3}/keys/device_signing/upload`, uploadSigningKeys),
  authed("POST", `${V3}/keys/signatures/upload`, uploadSignatures),
  authed("GET", `${V3}/keys/changes`, (ctx) => {
    const from = parseSyncToken(ctx.query.get("from"), "from");
    const to = parseSyncToken(ctx.query.get("to"), "to");
    if (!from || !to) throw new HsError(400, "M_MISSING_PARAM", "Missing from or to");
    return deviceListChanges(ctx.store, ctx.session.userId, from.pos, Math.min(to.pos, ctx.store.head));
  }),
  authed("PUT", `${V3}/sendToDevice/:type/:txnId`, sendToDevice, { txn: true }),
  // No server-side key backup: what Synapse answers when none was ever created.
  authed("GET", `${V3}/room_keys/version`, () => {
    throw notFound("No current backup version");
  }),
  authed("GET", `${V3}/room_keys/version/:version`, () => {
    throw notFound("Unknown backup version");
  }),
  authed("GET", `${V3}/devices`, (ctx) => ({
    devices: [...ctx.store.user(ctx.session.userId).devices].map(([id, d]) => deviceInfo(id, d)),
  })),
  authed("GET", `${V3}/devices/:deviceId`, (ctx) => deviceInfo(...ownDevice(ctx))),
  authed("PUT", `${V3}/devices/:deviceId`, (ctx) => {
    const [, device] = ownDevice(ctx);
    const name = str(ctx.body, "display_name");
    if (name !== undefined && name !== device.displayName) {
      device.displayName = name;
      if (device.deviceKeys) ctx.store.keysChanged(ctx.session.userId);
    }
    return {};
  }),
  authed("DELETE", `${V3}/devices/:deviceId`, (ctx) => {
    const [id] = ownDevice(ctx);
    requirePassword(ctx);
    ctx.store.deleteDevice(ctx.session.userId, id);
    return {};
  }),
  authed("POST", `${V3}/delete_devices`, (ctx) => {
    const ids = ctx.body["devices"];
    if (!Array.isArray(ids) || !ids.every((d) => typeof d === "string")) throw new HsError(400, "M_BAD_JSON", "devices must be a list");
    requirePassword(ctx);
    for (const id of ids) ctx.store.deleteDevice(ctx.session.userId, id);
    return {};
  }),
];
