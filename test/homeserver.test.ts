// The test homeserver, exercised the way the bot and the tests' humans use it: through matrix-js-sdk
// clients, plus raw HTTP where the exact wire behaviour matters.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ClientEvent, createClient, RoomEvent, RoomMemberEvent, SyncState, type MatrixClient, type MatrixEvent, type Room } from "matrix-js-sdk";
import { humanClient, startHomeserver, stopClient, type TestHomeserver } from "./support/homeserver.ts";

type Body = Record<string, unknown>;

async function api(hs: TestHomeserver, token: string | undefined, method: string, path: string, body?: unknown): Promise<{ status: number; json: Body }> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (token !== undefined) headers["authorization"] = `Bearer ${token}`;
  const res = await fetch(hs.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as Body };
}

/** Resolves with the first timeline event in `roomId` that `test` accepts. */
function nextMessage(client: MatrixClient, roomId: string, test: (e: MatrixEvent) => boolean, ms = 2000): Promise<MatrixEvent> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off(RoomEvent.Timeline, onEvent);
      reject(new Error(`no matching event for ${client.getUserId() ?? "?"} within ${ms} ms`));
    }, ms);
    function onEvent(event: MatrixEvent): void {
      if (event.getRoomId() !== roomId || !test(event)) return;
      clearTimeout(timer);
      client.off(RoomEvent.Timeline, onEvent);
      resolve(event);
    }
    client.on(RoomEvent.Timeline, onEvent);
  });
}

const withBody = (body: string) => (e: MatrixEvent) => e.getContent()["body"] === body;
const path = (roomId: string): string => `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}`;

describe("test homeserver", () => {
  let hs: TestHomeserver;
  let alice: MatrixClient;
  let bob: MatrixClient;
  let roomId = "";
  const token = (c: MatrixClient): string => c.getAccessToken() ?? "";

  before(async () => {
    hs = await startHomeserver();
    alice = await humanClient(hs, "alice");
    bob = await humanClient(hs, "bob");
  });

  after(async () => {
    await stopClient(alice);
    await stopClient(bob);
    await hs.close();
  });

  it("logs in by password, reusing a device id when asked", async () => {
    const first = await hs.createUser("carol", "secret");
    const client = createClient({ baseUrl: hs.url });
    const login = await client.loginRequest({
      type: "m.login.password",
      identifier: { type: "m.id.user", user: "carol" },
      password: "secret",
      device_id: first.deviceId,
    });
    assert.equal(login.user_id, "@carol:localhost");
    assert.equal(login.device_id, first.deviceId);
    assert.notEqual(login.access_token, first.accessToken);
    const whoami = await api(hs, login.access_token, "GET", "/_matrix/client/v3/account/whoami");
    assert.deepEqual(whoami.json, { user_id: "@carol:localhost", device_id: first.deviceId, is_guest: false });
    const fresh = await client.loginRequest({ type: "m.login.password", identifier: { type: "m.id.user", user: "@carol:localhost" }, password: "secret" });
    assert.notEqual(fresh.device_id, first.deviceId);
    await assert.rejects(
      client.loginRequest({ type: "m.login.password", identifier: { type: "m.id.user", user: "carol" }, password: "wrong" }),
      { errcode: "M_FORBIDDEN", httpStatus: 403 },
    );
    await assert.rejects(hs.createUser("carol", "x"), { errcode: "M_USER_IN_USE" });
  });

  it("creates a room with power levels; the invitee sees the invite over sync and joins", async () => {
    const invitedTo = new Promise<Room>((resolve) => {
      bob.on(ClientEvent.Room, (room) => {
        if (room.getMyMembership() === "invite") resolve(room);
      });
    });
    const joinSeen = (client: MatrixClient): Promise<void> =>
      new Promise((resolve) => {
        client.on(RoomMemberEvent.Membership, (_e, member) => {
          if (member.userId === "@bob:localhost" && member.membership === "join") resolve();
        });
      });
    const seenByAlice = joinSeen(alice);
    const seenByBob = joinSeen(bob);
    const created = await alice.createRoom({
      name: "Clan",
      invite: ["@bob:localhost"],
      power_level_content_override: { users: { "@alice:localhost": 100 }, events: { "m.room.topic": 50 } },
    });
    roomId = created.room_id;
    const invite = await invitedTo;
    assert.equal(invite.roomId, roomId);
    assert.equal(invite.name, "Clan");
    assert.equal(invite.currentState.getStateEvents("m.room.member", "@bob:localhost")?.getSender(), "@alice:localhost");
    await bob.joinRoom(roomId);
    await Promise.all([seenByAlice, seenByBob]);
    const pl = bob.getRoom(roomId)?.currentState.getStateEvents("m.room.power_levels", "")?.getContent();
    assert.deepEqual(pl?.["users"], { "@alice:localhost": 100 });
    assert.equal(pl?.["state_default"], 50);
  });

  it("delivers a message to the other user in real time", async () => {
    const arrived = nextMessage(bob, roomId, withBody("hello bob"), 1000);
    const start = Date.now();
    const sent = await alice.sendTextMessage(roomId, "hello bob");
    const event = await arrived;
    assert.ok(Date.now() - start < 1000);
    assert.equal(event.getId(), sent.event_id);
    assert.equal(event.getSender(), "@alice:localhost");
  });

  it("answers a repeated transaction id with the same event and stores it once", async () => {
    const url = `${path(roomId)}/send/m.room.message/txn-1`;
    const first = await api(hs, token(alice), "PUT", url, { msgtype: "m.text", body: "once" });
    const second = await api(hs, token(alice), "PUT", url, { msgtype: "m.text", body: "once" });
    assert.equal(first.status, 200);
    assert.equal(second.json["event_id"], first.json["event_id"]);
    assert.equal(hs.roomEvents(roomId).filter((e) => e.content["body"] === "once").length, 1);
    const other = await api(hs, token(alice), "PUT", `${path(roomId)}/send/m.room.message/txn-2`, { msgtype: "m.text", body: "once" });
    assert.notEqual(other.json["event_id"], first.json["event_id"]);
  });

  it("enforces power levels", async () => {
    await assert.rejects(bob.setRoomTopic(roomId, "bob was here"), { errcode: "M_FORBIDDEN", httpStatus: 403 });
    await assert.rejects(bob.kick(roomId, "@alice:localhost"), { errcode: "M_FORBIDDEN" });
    await alice.setRoomTopic(roomId, "alice was here");
    await bob.sendTextMessage(roomId, "messages need only 0");
  });

  it("stores uploaded media and serves it back", async () => {
    const data = Buffer.from("backup log\n");
    const { content_uri } = await alice.uploadContent(data, { type: "text/plain", name: "log.txt" });
    assert.match(content_uri, /^mxc:\/\/localhost\/[\w-]+$/);
    const authedUrl = bob.mxcUrlToHttp(content_uri, undefined, undefined, undefined, false, true, true);
    if (!authedUrl) return assert.fail("no download URL");
    assert.ok(authedUrl.includes("/_matrix/client/v1/media/download/"));
    const authed = await fetch(authedUrl, { headers: { authorization: `Bearer ${token(bob)}` } });
    assert.equal(authed.status, 200);
    assert.equal(authed.headers.get("content-type"), "text/plain");
    assert.deepEqual(Buffer.from(await authed.arrayBuffer()), data);
    assert.equal((await fetch(authedUrl)).status, 401);
    const legacy = await fetch(`${hs.url}/_matrix/media/v3/download/${content_uri.slice("mxc://".length)}`);
    assert.equal(await legacy.text(), "backup log\n");
    const missing = await api(hs, token(bob), "GET", "/_matrix/client/v1/media/download/localhost/nope");
    assert.equal(missing.json["errcode"], "M_NOT_FOUND");
  });

  it("redacts an event, stripping its content", async () => {
    const seen = nextMessage(bob, roomId, withBody("secret"));
    const { event_id } = await alice.sendTextMessage(roomId, "secret");
    await seen;
    const redacted = new Promise<void>((resolve) => bob.once(RoomEvent.Redaction, () => resolve()));
    await alice.redactEvent(roomId, event_id, undefined, { reason: "oops" });
    await redacted;
    assert.deepEqual(bob.getRoom(roomId)?.findEventById(event_id)?.getContent(), {});
    const stored = hs.roomEvents(roomId).find((e) => e.event_id === event_id);
    assert.deepEqual(stored?.content, {});
    const because = stored?.unsigned?.["redacted_because"] as Body | undefined;
    assert.equal(because?.["type"], "m.room.redaction");
    assert.deepEqual(because?.["content"], { reason: "oops" });
    const viaApi = await api(hs, token(bob), "GET", `${path(roomId)}/event/${encodeURIComponent(event_id)}`);
    assert.deepEqual(viaApi.json["content"], {});
  });

  it("resumes a sync from `since` without replaying, and wakes a waiting sync", async () => {
    const bobToken = token(bob);
    const initial = await api(hs, bobToken, "GET", "/_matrix/client/v3/sync?timeout=0");
    const since = String(initial.json["next_batch"]);
    const waiting = api(hs, bobToken, "GET", `/_matrix/client/v3/sync?since=${since}&timeout=10000`);
    const start = Date.now();
    await new Promise((r) => setTimeout(r, 50));
    await alice.sendTextMessage(roomId, "only this");
    const next = await waiting;
    assert.ok(Date.now() - start < 1000, "the long poll was woken by the new event");
    const joined = (next.json["rooms"] as { join: Record<string, { timeline: { events: Body[] } }> }).join;
    const bodies = joined[roomId]?.timeline.events.map((e) => (e["content"] as Body)["body"]);
    assert.deepEqual(bodies, ["only this"]);
    const quiet = await api(hs, bobToken, "GET", `/_matrix/client/v3/sync?since=${String(next.json["next_batch"])}&timeout=0`);
    assert.deepEqual((quiet.json["rooms"] as { join: Body }).join, {});
  });

  it("limits a timeline and gives a prev_batch to paginate back from", async () => {
    const since = String((await api(hs, token(bob), "GET", "/_matrix/client/v3/sync?timeout=0")).json["next_batch"]);
    for (let i = 1; i <= 8; i++) hs.sendAs("@alice:localhost", roomId, "m.room.message", { msgtype: "m.text", body: `n${i}` });
    const filter = await api(hs, token(bob), "POST", "/_matrix/client/v3/user/%40bob%3Alocalhost/filter", { room: { timeline: { limit: 3 } } });
    for (const f of [String(filter.json["filter_id"]), JSON.stringify({ room: { timeline: { limit: 3 } } })]) {
      const res = await api(hs, token(bob), "GET", `/_matrix/client/v3/sync?since=${since}&filter=${encodeURIComponent(f)}`);
      const room = (res.json["rooms"] as { join: Record<string, { timeline: { events: Body[]; limited: boolean; prev_batch: string } }> }).join[roomId];
      assert.deepEqual(room?.timeline.events.map((e) => (e["content"] as Body)["body"]), ["n6", "n7", "n8"]);
      assert.equal(room?.timeline.limited, true);
      const back = await api(hs, token(bob), "GET", `${path(roomId)}/messages?dir=b&limit=5&from=${room?.timeline.prev_batch ?? ""}`);
      assert.deepEqual((back.json["chunk"] as Body[]).map((e) => (e["content"] as Body)["body"]), ["n5", "n4", "n3", "n2", "n1"]);
      assert.equal(typeof back.json["end"], "string");
    }
  });

  it("holds requests while paused and answers them after resume", async () => {
    hs.pause();
    const arrived = nextMessage(bob, roomId, withBody("during pause"), 3000);
    let sent = false;
    const sending = alice.sendTextMessage(roomId, "during pause").then(() => (sent = true));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(sent, false, "nothing is answered while paused");
    assert.ok(!hs.roomEvents(roomId).some((e) => e.content["body"] === "during pause"));
    hs.resume();
    await sending;
    await arrived;
  });

  it("goes down and comes back; clients reconnect and catch up", async () => {
    const lost = new Promise<void>((resolve) => {
      bob.on(ClientEvent.Sync, function onSync(state) {
        if (state !== SyncState.Reconnecting && state !== SyncState.Error) return;
        bob.off(ClientEvent.Sync, onSync);
        resolve();
      });
    });
    await hs.goDown();
    await lost;
    await assert.rejects(fetch(`${hs.url}/_matrix/client/versions`));
    const arrived = nextMessage(bob, roomId, withBody("while you were away"), 15_000);
    const eventId = hs.sendAs("@alice:localhost", roomId, "m.room.message", { msgtype: "m.text", body: "while you were away" });
    await hs.comeBack();
    assert.equal((await arrived).getId(), eventId);
  });

  it("answers unknown endpoints, bad tokens and rate limits with the spec's errors", async () => {
    const unknown = await api(hs, token(bob), "GET", "/_matrix/client/v3/no/such/thing");
    assert.deepEqual([unknown.status, unknown.json["errcode"]], [404, "M_UNRECOGNIZED"]);
    const missing = await api(hs, undefined, "GET", "/_matrix/client/v3/account/whoami");
    assert.deepEqual([missing.status, missing.json["errcode"]], [401, "M_MISSING_TOKEN"]);
    const bad = await api(hs, "nope", "GET", "/_matrix/client/v3/account/whoami");
    assert.deepEqual([bad.status, bad.json["errcode"]], [401, "M_UNKNOWN_TOKEN"]);
    hs.rateLimit("@bob:localhost", 1, 250);
    const limited = await api(hs, token(bob), "PUT", `${path(roomId)}/send/m.room.message/rl-1`, { msgtype: "m.text", body: "x" });
    assert.deepEqual([limited.status, limited.json["errcode"], limited.json["retry_after_ms"]], [429, "M_LIMIT_EXCEEDED", 250]);
    const retried = await api(hs, token(bob), "PUT", `${path(roomId)}/send/m.room.message/rl-1`, { msgtype: "m.text", body: "x" });
    assert.equal(retried.status, 200);
    assert.ok(hs.requestCount("/_matrix/client/v3/sync") > 0);
  });
});
