// Account-level endpoints of the test homeserver: versions, login, registration, filters, account data,
// profiles, the things matrix-js-sdk fetches on start-up, sync and media.
import { authed, Bytes, checkRateLimit, obj, open, str, type AuthedCtx, type Ctx, type Route } from "./homeserver-http.ts";
import { setMembership } from "./homeserver-rooms.ts";
import { HsError, forbidden, notFound, randomId, type Json, type Store } from "./homeserver-store.ts";
import { sync } from "./homeserver-sync.ts";

const V3 = "/_matrix/client/v3";
export const MAX_UPLOAD = 50 * 1024 * 1024;

function ownUser(ctx: AuthedCtx): string {
  const userId = ctx.params["userId"] ?? "";
  if (userId !== ctx.session.userId) throw forbidden("Cannot access data of other users.");
  return userId;
}

function login(ctx: Ctx): Json {
  const { store, body } = ctx;
  if (str(body, "type", true) !== "m.login.password") throw new HsError(400, "M_UNKNOWN", "Unknown login type");
  const identifier = obj(body["identifier"], "identifier");
  let user: string;
  if (body["identifier"] !== undefined) {
    if (identifier["type"] !== "m.id.user") throw new HsError(400, "M_UNKNOWN", "Unknown login identifier type");
    user = str(identifier, "user", true);
  } else {
    user = str(body, "user", true); // the pre-1.0 form
  }
  const userId = store.userIdOf(user);
  checkRateLimit(store, userId);
  const account = store.users.get(userId);
  if (!account || account.password !== str(body, "password", true)) throw forbidden("Invalid username or password");
  const session = store.login(account, str(body, "device_id"), str(body, "initial_device_display_name"));
  return { user_id: session.userId, access_token: session.token, device_id: session.deviceId, home_server: store.serverName };
}

function register(ctx: Ctx): Json {
  const { store, body } = ctx;
  if ((ctx.query.get("kind") ?? "user") !== "user") throw new HsError(403, "M_GUEST_ACCESS_FORBIDDEN", "Guest access is disabled");
  const username = str(body, "username") ?? randomId(6).toLowerCase();
  if (store.users.has(store.userIdOf(username))) throw new HsError(400, "M_USER_IN_USE", "User ID already taken.");
  const auth = obj(body["auth"], "auth");
  if (auth["type"] !== "m.login.dummy") {
    // User-interactive auth challenge: a 401 whose body is the flows, not an error.
    throw new HsError(401, "", "", { flows: [{ stages: ["m.login.dummy"] }], params: {}, session: randomId() });
  }
  const user = store.createUser(username, str(body, "password", true));
  if (body["inhibit_login"] === true) return { user_id: user.userId };
  const session = store.login(user, str(body, "device_id"), str(body, "initial_device_display_name"));
  return { user_id: user.userId, access_token: session.token, device_id: session.deviceId };
}

function accountData(ctx: AuthedCtx, put: boolean): Json {
  const userId = ownUser(ctx);
  const type = ctx.params["type"] ?? "";
  const roomId = ctx.params["roomId"];
  if (put) {
    ctx.store.setAccountData(userId, roomId, type, ctx.body);
    return {};
  }
  const found =
    roomId === undefined
      ? ctx.store.user(userId).accountData.get(type)
      : ctx.store.room(roomId).accountData.get(userId)?.get(type);
  if (!found) throw notFound("Account data not found");
  return found.content;
}

function profileOf(store: Store, userId: string): Json {
  const u = store.users.get(userId);
  if (!u) throw notFound("Profile was not found");
  const out: Json = {};
  if (u.displayname !== undefined) out["displayname"] = u.displayname;
  if (u.avatarUrl !== undefined) out["avatar_url"] = u.avatarUrl;
  return out;
}

function setProfile(ctx: AuthedCtx, field: "displayname" | "avatar_url"): Json {
  const { store } = ctx;
  const user = store.user(ownUser(ctx));
  const value = str(ctx.body, field);
  if (field === "displayname") user.displayname = value;
  else user.avatarUrl = value;
  // Like Synapse: the new profile is announced with a fresh join event in every joined room.
  for (const room of store.rooms.values()) {
    const { membership, at } = store.membership(room, user.userId);
    if (membership !== "join") continue;
    const { displayname: _d, avatar_url: _a, ...rest } = at?.event.content ?? {};
    setMembership(store, room, user.userId, user.userId, "join", rest);
  }
  return {};
}

const emptyPushRules = { global: { override: [], content: [], room: [], sender: [], underride: [] } };

function upload(ctx: AuthedCtx): Json {
  if (ctx.raw.length > MAX_UPLOAD) throw new HsError(413, "M_TOO_LARGE", "Upload too large");
  const id = randomId(18);
  const filename = ctx.query.get("filename") ?? undefined;
  const contentType = ctx.headers["content-type"] ?? "application/octet-stream";
  ctx.store.media.set(id, filename === undefined ? { data: ctx.raw, contentType } : { data: ctx.raw, contentType, filename });
  return { content_uri: `mxc://${ctx.store.serverName}/${id}` };
}

// Spec 1.12: these types may be shown inline, everything else is served as an attachment.
const inlineTypes = /^(text\/(css|csv|plain)|image\/(jpeg|gif|png|apng|webp|avif)|video\/(mp4|webm|ogg|quicktime)|audio\/(aac|mp4|mpeg|ogg|wave|wav|x-wav|x-pn-wav|flac|x-flac))$/;

function download(ctx: Ctx): Bytes {
  const media = ctx.params["serverName"] === ctx.store.serverName ? ctx.store.media.get(ctx.params["mediaId"] ?? "") : undefined;
  if (!media) throw notFound("Not found");
  const name = ctx.params["fileName"] || media.filename;
  const base = media.contentType.split(";")[0]?.trim() ?? "";
  const disposition = (inlineTypes.test(base) ? "inline" : "attachment") + (name ? `; filename*=utf-8''${encodeURIComponent(name)}` : "");
  return new Bytes(media.data, {
    "content-type": media.contentType,
    "content-disposition": disposition,
    "content-security-policy": "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; style-src 'unsafe-inline'; media-src 'self'; object-src 'self';",
    "cross-origin-resource-policy": "cross-origin",
  });
}

const mediaConfig = (): Json => ({ "m.upload.size": MAX_UPLOAD });
const versions = Array.from({ length: 12 }, (_, i) => `v1.${i + 1}`);

export const accountRoutes: Route[] = [
  open("GET", "/_matrix/client/versions", () => ({ versions, unstable_features: {} })),
  open("GET", `${V3}/login`, () => ({ flows: [{ type: "m.login.password" }] })),
  open("POST", `${V3}/login`, login),
  open("POST", `${V3}/register`, register),
  open("GET", `${V3}/register/available`, (ctx) => {
    const username = ctx.query.get("username") ?? "";
    if (!/^[a-z0-9._=\-/+]+$/.test(username)) throw new HsError(400, "M_INVALID_USERNAME", "Invalid username");
    if (ctx.store.users.has(ctx.store.userIdOf(username))) throw new HsError(400, "M_USER_IN_USE", "User ID already taken.");
    return { available: true };
  }),
  // Like Synapse, logging out deletes the device, its keys and its to-device messages.
  authed("POST", `${V3}/logout`, (ctx) => {
    ctx.store.deleteDevice(ctx.session.userId, ctx.session.deviceId);
    return {};
  }),
  authed("POST", `${V3}/logout/all`, (ctx) => {
    for (const id of [...ctx.store.user(ctx.session.userId).devices.keys()]) ctx.store.deleteDevice(ctx.session.userId, id);
    return {};
  }),
  authed("GET", `${V3}/account/whoami`, (ctx) => ({ user_id: ctx.session.userId, device_id: ctx.session.deviceId, is_guest: false })),
  authed("GET", `${V3}/sync`, (ctx) => sync(ctx.store, ctx.session, ctx.query, ctx.signal)),
  authed("POST", `${V3}/user/:userId/filter`, (ctx) => {
    const filters = ctx.store.user(ownUser(ctx)).filters;
    filters.push(ctx.body);
    return { filter_id: String(filters.length - 1) };
  }),
  authed("GET", `${V3}/user/:userId/filter/:filterId`, (ctx) => {
    const id = ctx.params["filterId"] ?? "";
    const found = /^\d+$/.test(id) ? ctx.store.user(ownUser(ctx)).filters[Number(id)] : undefined;
    if (!found) throw notFound("No such filter");
    return found;
  }),
  authed("GET", `${V3}/user/:userId/account_data/:type`, (ctx) => accountData(ctx, false)),
  authed("PUT", `${V3}/user/:userId/account_data/:type`, (ctx) => accountData(ctx, true)),
  authed("GET", `${V3}/user/:userId/rooms/:roomId/account_data/:type`, (ctx) => accountData(ctx, false)),
  authed("PUT", `${V3}/user/:userId/rooms/:roomId/account_data/:type`, (ctx) => accountData(ctx, true)),
  open("GET", `${V3}/profile/:userId`, (ctx) => profileOf(ctx.store, ctx.params["userId"] ?? "")),
  open("GET", `${V3}/profile/:userId/:field`, (ctx) => {
    const field = ctx.params["field"] ?? "";
    const value = profileOf(ctx.store, ctx.params["userId"] ?? "")[field];
    if (value === undefined) throw notFound("Profile field not found");
    return { [field]: value };
  }),
  authed("PUT", `${V3}/profile/:userId/displayname`, (ctx) => setProfile(ctx, "displayname")),
  authed("PUT", `${V3}/profile/:userId/avatar_url`, (ctx) => setProfile(ctx, "avatar_url")),
  authed("GET", `${V3}/pushrules/`, () => emptyPushRules),
  authed("GET", `${V3}/pushrules`, () => emptyPushRules),
  authed("GET", `${V3}/capabilities`, () => ({
    capabilities: {
      "m.room_versions": { default: "10", available: { "10": "stable" } },
      "m.change_password": { enabled: false },
      "m.set_displayname": { enabled: true },
      "m.set_avatar_url": { enabled: true },
      "m.3pid_changes": { enabled: false },
    },
  })),
  authed("GET", `${V3}/presence/:userId/status`, (ctx) => {
    profileOf(ctx.store, ctx.params["userId"] ?? ""); // 404 for unknown users
    return { presence: "online", currently_active: true };
  }),
  authed("PUT", `${V3}/presence/:userId/status`, (ctx) => {
    ownUser(ctx);
    return {};
  }),
  authed("POST", "/_matrix/media/v3/upload", upload, { raw: true, limited: true }),
  authed("GET", "/_matrix/media/v3/config", mediaConfig),
  authed("GET", "/_matrix/client/v1/media/config", mediaConfig),
  open("GET", "/_matrix/media/v3/download/:serverName/:mediaId/:fileName?", download),
  authed("GET", "/_matrix/client/v1/media/download/:serverName/:mediaId/:fileName?", download),
  // No thumbnailer: the original is a valid (if large) answer for images.
  open("GET", "/_matrix/media/v3/thumbnail/:serverName/:mediaId", download),
  authed("GET", "/_matrix/client/v1/media/thumbnail/:serverName/:mediaId", download),
];
