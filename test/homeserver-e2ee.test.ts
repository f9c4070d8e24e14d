// End-to-end encryption on the test homeserver: matrix-js-sdk clients with Rust crypto on both sides (one excluding
// insecure devices, as modern Element does), plus raw HTTP where the exact wire behaviour matters (keys,
// cross-signing, to-device, device lists); and the homeserver's latency and fault knobs.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ClientEvent, type MatrixClient } from "matrix-js-sdk";
import { DecryptionFailureCode } from "matrix-js-sdk/lib/crypto-api/index.js";
import { bootstrapCrossSigning, crossSigningKey, eventAsSeenBy, eventually, isCrossSigned, newSigningKey } from "./support/e2ee-client.ts";
import { SYNAPSE_ON_TWO_CORES } from "./support/homeserver-faults.ts";
import { humanClient, startHomeserver, startSynced, type HumanClientOptions, type TestHomeserver } from "./support/homeserver.ts";

type Body = Record<string, unknown>;

async function api(hs: TestHomeserver | undefined, token: string | null, method: string, path: string, body?: unknown): Promise<{ status: number; json: Body }> {
  if (!hs) throw new Error("no homeserver");
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (token) headers["authorization"] = `Bearer ${token}`;
  const res = await fetch(hs.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as Body };
}

const V3 = "/_matrix/client/v3";
/** The object at a path of keys in a JSON answer ({} where missing). */
const at = (v: unknown, ...keys: string[]): Body => keys.reduce<Body>((o, k) => (o[k] ?? {}) as Body, v as Body);

const ENCRYPTION = { type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } };

describe("test homeserver: encrypted rooms with Rust crypto on both sides", () => {
  let hs: TestHomeserver | undefined;
  const clients: MatrixClient[] = [];
  let alice: MatrixClient;
  let bob: MatrixClient;
  let roomId = "";
  let bob2: MatrixClient | undefined;

  const start = async (localpart: string, opts: HumanClientOptions): Promise<MatrixClient> => {
    if (!hs) throw new Error("no homeserver");
    const client = await humanClient(hs, localpart, { rustCrypto: true, ...opts });
    clients.push(client);
    return client;
  };

  before(async () => {
    hs = await startHomeserver();
    alice = await start("alice", { onlySignedDevices: true });
    bob = await start("bob", {});
  });

  after(async () => {
    for (const c of clients) c.stopClient();
    await hs?.close();
  });

  it("bootstraps cross-signing: a first upload without auth, or with password auth when the server asks", async () => {
    assert.equal(await bootstrapCrossSigning(alice, "pw-alice"), "without-auth");
    hs?.requireAuthForCrossSigning(true);
    try {
      assert.equal(await bootstrapCrossSigning(bob, "pw-bob"), "password");
    } finally {
      hs?.requireAuthForCrossSigning(false);
    }
    assert.ok(await alice.getCrypto()?.isCrossSigningReady());
    assert.ok(await bob.getCrypto()?.isCrossSigningReady());
    // What others see: bob's master and self-signing keys, his device signed by the latter; his user-signing key only he sees.
    const seen = await api(hs, alice.getAccessToken(), "POST", "/_matrix/client/v3/keys/query", { device_keys: { "@bob:localhost": [] } });
    assert.deepEqual(at(seen.json, "master_keys", "@bob:localhost")["usage"], ["master"]);
    assert.deepEqual(seen.json["user_signing_keys"], {});
    const [sskId] = Object.keys(at(seen.json, "self_signing_keys", "@bob:localhost", "keys"));
    const bobDevice = at(seen.json, "device_keys", "@bob:localhost", bob.getDeviceId() ?? "");
    assert.ok(sskId && at(bobDevice, "signatures", "@bob:localhost")[sskId], "bob's device carries his self-signing key's signature");
    const own = await api(hs, bob.getAccessToken(), "POST", "/_matrix/client/v3/keys/query", { device_keys: { "@bob:localhost": [] } });
    assert.ok((own.json["user_signing_keys"] as Body)["@bob:localhost"]);
  });

  it("exchanges encrypted messages both ways in a megolm room", async () => {
    const { room_id } = await alice.createRoom({ invite: ["@bob:localhost"], initial_state: [ENCRYPTION] });
    roomId = room_id;
    await eventually("bob is invited", () => bob.getRoom(roomId)?.getMyMembership() === "invite");
    await bob.joinRoom(roomId);
    await eventually("alice sees bob joined", () => alice.getRoom(roomId)?.getMember("@bob:localhost")?.membership === "join");
    assert.ok(await alice.getCrypto()?.isEncryptionEnabledInRoom(roomId));
    await eventually("alice sees bob's device cross-signed", () => isCrossSigned(alice, "@bob:localhost", bob.getDeviceId() ?? ""));

    const toBob = await alice.sendTextMessage(roomId, "hello bob, secretly");
    const stored = hs?.roomEvents(roomId).find((e) => e.event_id === toBob.event_id);
    assert.equal(stored?.type, "m.room.encrypted");
    assert.equal(stored?.content["algorithm"], "m.megolm.v1.aes-sha2");
    const atBob = await eventAsSeenBy(bob, roomId, toBob.event_id);
    assert.equal(atBob.isDecryptionFailure(), false, atBob.decryptionFailureReason ?? "");
    assert.equal(atBob.getType(), "m.room.message");
    assert.equal(atBob.getContent()["body"], "hello bob, secretly");

    const toAlice = await bob.sendTextMessage(roomId, "hello alice, secretly");
    const atAlice = await eventAsSeenBy(alice, roomId, toAlice.event_id);
    assert.equal(atAlice.isDecryptionFailure(), false, atAlice.decryptionFailureReason ?? "");
    assert.equal(atAlice.getType(), "m.room.message");
    assert.equal(atAlice.getContent()["body"], "hello alice, secretly");
  });

  it("an OnlySigned client shares no keys with a device its owner has not cross-signed, nor reads its messages", async () => {
    bob2 = await start("bob", { newDevice: true });
    const bob2Id = bob2.getDeviceId() ?? "";
    await eventually("alice tracks bob's new device", async () => {
      const devices = await alice.getCrypto()?.getUserDeviceInfo(["@bob:localhost"]);
      return devices?.get("@bob:localhost")?.has(bob2Id) ?? false;
    });
    assert.equal(await isCrossSigned(alice, "@bob:localhost", bob2Id), false);

    const sent = await alice.sendTextMessage(roomId, "only for signed devices");
    const atBob = await eventAsSeenBy(bob, roomId, sent.event_id);
    assert.equal(atBob.getContent()["body"], "only for signed devices");
    const atBob2 = await eventAsSeenBy(bob2, roomId, sent.event_id, 2000);
    assert.ok(atBob2.isDecryptionFailure(), "the unsigned device got no key");

    const fromUnsigned = await bob2.sendTextMessage(roomId, "from an unsigned device");
    const atAlice = await eventAsSeenBy(alice, roomId, fromUnsigned.event_id, 2000);
    assert.ok(atAlice.isDecryptionFailure(), `alice read it: ${JSON.stringify(atAlice.getContent())}`);
    assert.equal(atAlice.decryptionFailureReason, DecryptionFailureCode.UNSIGNED_SENDER_DEVICE);
    const atBobToo = await eventAsSeenBy(bob, roomId, fromUnsigned.event_id);
    assert.equal(atBobToo.getContent()["body"], "from an unsigned device", "a client without isolation still reads it");
  });

  it("once bob cross-signs his second device, it gets the keys of what is sent after", async () => {
    const bob2Id = bob2?.getDeviceId() ?? "";
    if (!bob2) return assert.fail("no second device");
    await eventually("bob's first device knows the second", async () => {
      const devices = await bob.getCrypto()?.getUserDeviceInfo(["@bob:localhost"]);
      return devices?.get("@bob:localhost")?.has(bob2Id) ?? false;
    });
    await bob.getCrypto()?.crossSignDevice(bob2Id);
    await eventually("alice sees the second device signed", () => isCrossSigned(alice, "@bob:localhost", bob2Id));
    const sent = await alice.sendTextMessage(roomId, "now for both of bob's devices");
    for (const device of [bob, bob2]) {
      const seen = await eventAsSeenBy(device, roomId, sent.event_id);
      assert.equal(seen.getType(), "m.room.message", seen.decryptionFailureReason ?? "");
      assert.equal(seen.getContent()["body"], "now for both of bob's devices");
    }
  });

  /** A new room alice creates with `initialState` and bob joins; resolves once alice sees him joined. */
  const roomWithBob = async (initialState: unknown[]): Promise<string> => {
    const { room_id } = await alice.createRoom({ invite: ["@bob:localhost"], initial_state: initialState as [] });
    await eventually("bob is invited", () => bob.getRoom(room_id)?.getMyMembership() === "invite");
    await bob.joinRoom(room_id);
    await eventually("alice sees bob joined", () => alice.getRoom(room_id)?.getMember("@bob:localhost")?.membership === "join");
    return room_id;
  };
  const bodyAsSeen = async (client: MatrixClient, room: string, eventId: string, ms?: number): Promise<unknown> => {
    const event = await eventAsSeenBy(client, room, eventId, ms);
    return event.isDecryptionFailure() ? `failed: ${event.decryptionFailureReason ?? "?"}` : event.getContent()["body"];
  };

  it("encrypts from the moment a room turns encryption on (m.room.encryption sent as state later)", async () => {
    const room = await roomWithBob([]);
    const plain = await alice.sendTextMessage(room, "in the clear");
    assert.equal(hs?.roomEvents(room).find((e) => e.event_id === plain.event_id)?.type, "m.room.message");
    await alice.sendStateEvent(room, "m.room.encryption" as never, ENCRYPTION.content as never, "");
    await eventually("both see the room encrypted", async () =>
      Boolean((await alice.getCrypto()?.isEncryptionEnabledInRoom(room)) && (await bob.getCrypto()?.isEncryptionEnabledInRoom(room))),
    );
    const secret = await bob.sendTextMessage(room, "now encrypted");
    assert.equal(hs?.roomEvents(room).find((e) => e.event_id === secret.event_id)?.type, "m.room.encrypted");
    assert.equal(await bodyAsSeen(alice, room, secret.event_id), "now encrypted");
  });

  it("decrypts a message whose room key arrives late, and never one whose key never comes", async () => {
    const room = await roomWithBob([ENCRYPTION]);
    const hold = hs?.holdToDevice({ to: "@bob:localhost", type: "m.room.encrypted" });
    if (!hold) return assert.fail("no homeserver");
    const late = await alice.sendTextMessage(room, "key comes late");
    await eventually("the room key is held", () => hold.count() > 0);
    assert.match(String(await bodyAsSeen(bob, room, late.event_id, 1000)), /^failed/);
    hold.release();
    assert.equal(await bodyAsSeen(bob, room, late.event_id), "key comes late");

    const room2 = await roomWithBob([ENCRYPTION]);
    const never = hs?.holdToDevice({ to: "@bob:localhost", type: "m.room.encrypted" });
    const lost = await alice.sendTextMessage(room2, "key never comes");
    await eventually("the room key is held", () => (never?.count() ?? 0) > 0);
    assert.ok((never?.discard() ?? 0) > 0);
    assert.match(String(await bodyAsSeen(bob, room2, lost.event_id, 1500)), /^failed/);
  });

  it("still works when key sharing meets a 502 or a dropped connection (the SDK retries)", async () => {
    const prefix = `${V3}/sendToDevice/m.room.encrypted/`;
    const room = await roomWithBob([ENCRYPTION]);
    const before = hs?.requestCount(prefix) ?? 0;
    hs?.failNext({ pathPrefix: prefix, status: 502, proxyPage: true });
    const first = await alice.sendTextMessage(room, "after a bad gateway");
    assert.equal(await bodyAsSeen(bob, room, first.event_id, 15_000), "after a bad gateway");
    assert.ok((hs?.requestCount(prefix) ?? 0) >= before + 2, "the key share was refused once and sent again");
    const room2 = await roomWithBob([ENCRYPTION]);
    const before2 = hs?.requestCount(prefix) ?? 0;
    hs?.dropNext({ pathPrefix: prefix, when: "after" });
    const second = await alice.sendTextMessage(room2, "after a lost answer");
    assert.equal(await bodyAsSeen(bob, room2, second.event_id, 15_000), "after a lost answer");
    assert.ok((hs?.requestCount(prefix) ?? 0) >= before2 + 2, "the key share's answer was lost once and the request repeated");
  });

  it("works at a real server's pace (SYNAPSE_ON_TWO_CORES latency)", async () => {
    hs?.setLatency(SYNAPSE_ON_TWO_CORES);
    try {
      const room = await roomWithBob([ENCRYPTION]);
      const t0 = Date.now();
      const sent = await alice.sendTextMessage(room, "slowly but surely");
      assert.ok(Date.now() - t0 >= 40, "the send took at least a send's time");
      assert.equal(await bodyAsSeen(bob, room, sent.event_id), "slowly but surely");
      const reply = await bob.sendTextMessage(room, "and back");
      assert.equal(await bodyAsSeen(alice, room, reply.event_id), "and back");
    } finally {
      hs?.setLatency({});
    }
  });

  it("shares keys from a client with lazy-loaded members, who come from GET /rooms/:roomId/members", async () => {
    const kim = await start("kim", { lazyLoadMembers: true });
    await bootstrapCrossSigning(kim, "pw-kim");
    const { room_id: room } = await kim.createRoom({ invite: ["@alice:localhost"], initial_state: [ENCRYPTION] });
    await eventually("alice is invited", () => alice.getRoom(room)?.getMyMembership() === "invite");
    await alice.joinRoom(room);
    await eventually("kim sees alice joined", () => kim.getRoom(room)?.getMember("@alice:localhost")?.membership === "join");
    const membersPath = `${V3}/rooms/${encodeURIComponent(room)}/members`;
    const before = hs?.requestCount(membersPath) ?? 0;
    const sent = await kim.sendTextMessage(room, "lazy but encrypted");
    assert.ok((hs?.requestCount(membersPath) ?? 0) > before, "kim's client asked for the members");
    assert.equal(await bodyAsSeen(alice, room, sent.event_id), "lazy but encrypted");
    const reply = await alice.sendTextMessage(room, "read you");
    assert.equal(await bodyAsSeen(kim, room, reply.event_id), "read you");
  });

  it("shows the server what the clients did: devices with keys, cross-signed or not", () => {
    const bobs = hs?.devices("@bob:localhost") ?? [];
    assert.deepEqual(bobs.map((d) => [d.deviceId, d.hasKeys, d.crossSigned]).sort(), [
      [bob.getDeviceId(), true, true],
      [bob2?.getDeviceId(), true, true],
    ].sort());
    // What the SDK asked for that this server does not have (MatrixRTC transports, MSC4143): nothing encryption needs.
    assert.deepEqual(hs?.unrecognized().filter((r) => !r.includes("/org.matrix.msc4143/rtc/transports")), []);
  });
});

describe("test homeserver: keys, cross-signing and signatures over raw HTTP", () => {
  let hs: TestHomeserver | undefined;
  let carol: { userId: string; accessToken: string; deviceId: string };
  let dave: { userId: string; accessToken: string; deviceId: string };
  const carolDevice = newSigningKey();

  before(async () => {
    hs = await startHomeserver();
    carol = await hs.createUser("carol", "pw-carol");
    dave = await hs.createUser("dave", "pw-dave");
  });
  after(async () => {
    await hs?.close();
  });

  const deviceKeys = (curve: string): Body =>
    carolDevice.sign(
      {
        user_id: carol.userId,
        device_id: carol.deviceId,
        algorithms: ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
        keys: { [`curve25519:${carol.deviceId}`]: curve, [`ed25519:${carol.deviceId}`]: carolDevice.publicKey },
      },
      carol.userId,
      carol.deviceId,
    );

  it("stores device, one-time and fallback keys, refusing a changed identity or a reused one-time key id", async () => {
    const up = await api(hs, carol.accessToken, "POST", `${V3}/keys/upload`, {
      device_keys: deviceKeys("curveA"),
      one_time_keys: { "signed_curve25519:AAAAAQ": { key: "otk1" }, "signed_curve25519:AAAAAg": { key: "otk2" } },
      fallback_keys: { "signed_curve25519:AAAAAw": { key: "fb1", fallback: true } },
    });
    assert.deepEqual(up, { status: 200, json: { one_time_key_counts: { signed_curve25519: 2 } } });
    const again = await api(hs, carol.accessToken, "POST", `${V3}/keys/upload`, { one_time_keys: { "signed_curve25519:AAAAAQ": { key: "otk1" } } });
    assert.equal(again.status, 200, "an identical key again is fine");
    const clash = await api(hs, carol.accessToken, "POST", `${V3}/keys/upload`, { one_time_keys: { "signed_curve25519:AAAAAQ": { key: "other" } } });
    assert.equal(clash.status, 400);
    assert.equal(clash.json["errcode"], "M_INVALID_PARAM");
    assert.match(String(clash.json["error"]), /^One time key signed_curve25519:AAAAAQ already exists/);
    // A second crypto store on the same device id: new identity keys, one-time key ids counted afresh. Synapse's
    // answer is the one-time key clash; nothing of the upload is stored.
    const secondStore = await api(hs, carol.accessToken, "POST", `${V3}/keys/upload`, {
      device_keys: deviceKeys("curveB"),
      one_time_keys: { "signed_curve25519:AAAAAQ": { key: "fresh1" }, "signed_curve25519:AAAAXX": { key: "fresh2" } },
    });
    assert.equal(secondStore.status, 400);
    assert.match(String(secondStore.json["error"]), /^One time key signed_curve25519:AAAAAQ already exists/);
    const changed = await api(hs, carol.accessToken, "POST", `${V3}/keys/upload`, { device_keys: deviceKeys("curveB") });
    assert.deepEqual([changed.status, changed.json["errcode"]], [400, "M_INVALID_PARAM"], "a different identity for the device");
    const query = await api(hs, dave.accessToken, "POST", `${V3}/keys/query`, { device_keys: { [carol.userId]: [] } });
    assert.equal(at(query.json, "device_keys", carol.userId, carol.deviceId, "keys")[`curve25519:${carol.deviceId}`], "curveA");
    const notMine = await api(hs, dave.accessToken, "POST", `${V3}/keys/upload`, { device_keys: deviceKeys("curveA") });
    assert.deepEqual([notMine.status, notMine.json["errcode"]], [400, "M_BAD_JSON"]);

    const sync = await api(hs, carol.accessToken, "GET", `${V3}/sync?timeout=0`);
    assert.deepEqual(sync.json["device_one_time_keys_count"], { signed_curve25519: 2 });
    assert.deepEqual(sync.json["device_unused_fallback_key_types"], ["signed_curve25519"]);
  });

  it("answers key queries for all or listed devices and hands out each one-time key once, then the fallback key", async () => {
    const all = await api(hs, dave.accessToken, "POST", `${V3}/keys/query`, { device_keys: { [carol.userId]: [], "@nobody:localhost": [] } });
    assert.deepEqual(Object.keys(at(all.json, "device_keys", carol.userId)), [carol.deviceId]);
    assert.deepEqual(at(all.json, "device_keys", "@nobody:localhost"), {});
    assert.deepEqual(all.json["failures"], {});
    const none = await api(hs, dave.accessToken, "POST", `${V3}/keys/query`, { device_keys: { [carol.userId]: ["NOSUCH"] } });
    assert.deepEqual(at(none.json, "device_keys", carol.userId), {});

    const claim = async (): Promise<Body> => {
      const res = await api(hs, dave.accessToken, "POST", `${V3}/keys/claim`, { one_time_keys: { [carol.userId]: { [carol.deviceId]: "signed_curve25519" } } });
      return at(res.json, "one_time_keys", carol.userId, carol.deviceId);
    };
    assert.deepEqual(await claim(), { "signed_curve25519:AAAAAQ": { key: "otk1" } });
    assert.deepEqual(await claim(), { "signed_curve25519:AAAAAg": { key: "otk2" } });
    assert.deepEqual(await claim(), { "signed_curve25519:AAAAAw": { key: "fb1", fallback: true } });
    assert.deepEqual(await claim(), { "signed_curve25519:AAAAAw": { key: "fb1", fallback: true } }, "the fallback key stays");
    const sync = await api(hs, carol.accessToken, "GET", `${V3}/sync?timeout=0`);
    assert.deepEqual(sync.json["device_one_time_keys_count"], { signed_curve25519: 0 });
    assert.deepEqual(sync.json["device_unused_fallback_key_types"], []);
    const fresh = await api(hs, carol.accessToken, "POST", `${V3}/keys/upload`, { fallback_keys: { "signed_curve25519:AAAABA": { key: "fb2", fallback: true } } });
    assert.equal(fresh.status, 200);
    const after = await api(hs, carol.accessToken, "GET", `${V3}/sync?timeout=0`);
    assert.deepEqual(after.json["device_unused_fallback_key_types"], ["signed_curve25519"]);
  });

  it("takes a first cross-signing upload without auth, a replacement only with the password, and checks signatures", async () => {
    const master = newSigningKey();
    const selfSigning = newSigningKey();
    const userSigning = newSigningKey();
    const keys = {
      master_key: crossSigningKey(carol.userId, "master", master),
      self_signing_key: master.sign(crossSigningKey(carol.userId, "self_signing", selfSigning), carol.userId),
      user_signing_key: master.sign(crossSigningKey(carol.userId, "user_signing", userSigning), carol.userId),
    };
    const badlySigned = { ...keys, self_signing_key: selfSigning.sign(crossSigningKey(carol.userId, "self_signing", selfSigning), carol.userId) };
    const refused = await api(hs, carol.accessToken, "POST", `${V3}/keys/device_signing/upload`, badlySigned);
    assert.deepEqual([refused.status, refused.json["errcode"]], [400, "M_INVALID_SIGNATURE"]);
    assert.deepEqual(await api(hs, carol.accessToken, "POST", `${V3}/keys/device_signing/upload`, keys), { status: 200, json: {} });
    assert.equal((await api(hs, carol.accessToken, "POST", `${V3}/keys/device_signing/upload`, keys)).status, 200, "the same keys again need no auth");

    const newMaster = newSigningKey();
    const replacement = { master_key: crossSigningKey(carol.userId, "master", newMaster) };
    const challenge = await api(hs, carol.accessToken, "POST", `${V3}/keys/device_signing/upload`, replacement);
    assert.equal(challenge.status, 401);
    assert.deepEqual(challenge.json["flows"], [{ stages: ["m.login.password"] }]);
    assert.deepEqual(challenge.json["params"], {});
    const session = String(challenge.json["session"]);
    const auth = (password: string): Body => ({ type: "m.login.password", identifier: { type: "m.id.user", user: "carol" }, password, session });
    const wrong = await api(hs, carol.accessToken, "POST", `${V3}/keys/device_signing/upload`, { ...replacement, auth: auth("nope") });
    assert.deepEqual([wrong.status, wrong.json["errcode"], wrong.json["session"]], [401, "M_FORBIDDEN", session]);
    const right = await api(hs, carol.accessToken, "POST", `${V3}/keys/device_signing/upload`, { ...replacement, auth: auth("pw-carol") });
    assert.deepEqual(right, { status: 200, json: {} });
    const seen = await api(hs, dave.accessToken, "POST", `${V3}/keys/query`, { device_keys: { [carol.userId]: [] } });
    assert.deepEqual(at(seen.json, "master_keys", carol.userId, "keys"), { [`ed25519:${newMaster.publicKey}`]: newMaster.publicKey });

    // Back to the first identity (with auth), then signatures of carol's device and of dave's master key.
    const { session: _s, ...authWithoutSession } = auth("pw-carol");
    const back = await api(hs, carol.accessToken, "POST", `${V3}/keys/device_signing/upload`, { ...keys, auth: authWithoutSession });
    assert.equal(back.status, 200);
    const stored = at(seen.json, "device_keys", carol.userId, carol.deviceId);
    const { unsigned: _u, ...device } = stored;
    const signedDevice = selfSigning.sign(device, carol.userId);
    const forged = newSigningKey().sign(device, carol.userId, selfSigning.publicKey);
    const daveMaster = newSigningKey();
    await api(hs, dave.accessToken, "POST", `${V3}/keys/device_signing/upload`, { master_key: crossSigningKey(dave.userId, "master", daveMaster) });
    const signedDave = userSigning.sign(crossSigningKey(dave.userId, "master", daveMaster), carol.userId);
    const bad = await api(hs, carol.accessToken, "POST", `${V3}/keys/signatures/upload`, { [carol.userId]: { [carol.deviceId]: forged } });
    assert.equal(at(bad.json, "failures", carol.userId, carol.deviceId)["errcode"], "M_INVALID_SIGNATURE");
    const good = await api(hs, carol.accessToken, "POST", `${V3}/keys/signatures/upload`, {
      [carol.userId]: { [carol.deviceId]: signedDevice },
      [dave.userId]: { [daveMaster.publicKey]: signedDave },
    });
    assert.deepEqual(good, { status: 200, json: { failures: {} } });
    const byDave = await api(hs, dave.accessToken, "POST", `${V3}/keys/query`, { device_keys: { [carol.userId]: [] } });
    const sigs = at(byDave.json, "device_keys", carol.userId, carol.deviceId, "signatures", carol.userId);
    assert.deepEqual(Object.keys(sigs).sort(), [`ed25519:${carol.deviceId}`, `ed25519:${selfSigning.publicKey}`].sort());
    assert.deepEqual(byDave.json["user_signing_keys"], {}, "only carol sees her user-signing key");
    const byCarol = await api(hs, carol.accessToken, "POST", `${V3}/keys/query`, { device_keys: { [dave.userId]: [], [carol.userId]: [] } });
    assert.ok(at(byCarol.json, "master_keys", dave.userId, "signatures", carol.userId)[`ed25519:${userSigning.publicKey}`]);
    assert.ok(at(byCarol.json, "user_signing_keys", carol.userId)["keys"]);
  });

  it("has no key backup: GET /room_keys/version is 404 M_NOT_FOUND", async () => {
    const res = await api(hs, carol.accessToken, "GET", `${V3}/room_keys/version`);
    assert.deepEqual([res.status, res.json["errcode"], res.json["error"]], [404, "M_NOT_FOUND", "No current backup version"]);
  });
});

describe("test homeserver: to-device messages and device lists over raw HTTP", () => {
  let hs: TestHomeserver | undefined;
  type Login = { userId: string; accessToken: string; deviceId: string };
  let erin: Login;
  let erin2: Login;
  let frank: Login;
  let gina: Login;

  before(async () => {
    hs = await startHomeserver();
    erin = await hs.createUser("erin", "pw-erin");
    frank = await hs.createUser("frank", "pw-frank");
    gina = await hs.createUser("gina", "pw-gina");
    const login = await api(hs, null, "POST", `${V3}/login`, { type: "m.login.password", identifier: { type: "m.id.user", user: "erin" }, password: "pw-erin" });
    erin2 = { userId: erin.userId, accessToken: String(login.json["access_token"]), deviceId: String(login.json["device_id"]) };
  });
  after(async () => {
    await hs?.close();
  });

  const sync = async (who: Login, since?: string, timeout = 0): Promise<Body> =>
    (await api(hs, who.accessToken, "GET", `${V3}/sync?timeout=${timeout}${since === undefined ? "" : `&since=${since}`}`)).json;
  const toDevice = (body: Body): Body[] => at(body, "to_device")["events"] as Body[];
  const send = (from: Login, txn: string, messages: Body): Promise<{ status: number; json: Body }> =>
    api(hs, from.accessToken, "PUT", `${V3}/sendToDevice/org.example.ping/${txn}`, { messages });

  it("delivers to-device messages in order, to one device or all ('*'), once per transaction id", async () => {
    const start = String((await sync(erin)).next_batch);
    const start2 = String((await sync(erin2)).next_batch);
    assert.deepEqual(await send(frank, "t1", { [erin.userId]: { [erin.deviceId]: { n: 1 } } }), { status: 200, json: {} });
    await send(frank, "t1", { [erin.userId]: { [erin.deviceId]: { n: 1 } } });
    await send(frank, "t2", { [erin.userId]: { "*": { n: 2 } } });
    const got = await sync(erin, start);
    assert.deepEqual(toDevice(got), [
      { sender: frank.userId, type: "org.example.ping", content: { n: 1 } },
      { sender: frank.userId, type: "org.example.ping", content: { n: 2 } },
    ]);
    assert.deepEqual(toDevice(await sync(erin2, start2)), [{ sender: frank.userId, type: "org.example.ping", content: { n: 2 } }]);

    // Not acknowledged until a sync comes with a `since` past them: a client resuming from an older token gets them again.
    assert.equal(toDevice(await sync(erin, start)).length, 2);
    const next = String(got.next_batch);
    assert.deepEqual(toDevice(await sync(erin, next)), []);
    assert.deepEqual(toDevice(await sync(erin, start)), [], "gone once acknowledged");
  });

  it("gives at most 100 to-device messages a sync, the rest in the next", async () => {
    const start = String((await sync(gina)).next_batch);
    const messages: Body = {};
    for (let i = 0; i < 150; i++) {
      messages[gina.userId] = { [gina.deviceId]: { n: i } };
      await send(frank, `bulk-${i}`, messages);
    }
    const first = await sync(gina, start);
    assert.deepEqual(toDevice(first).map((e) => at(e, "content")["n"]), Array.from({ length: 100 }, (_, i) => i));
    const second = await sync(gina, String(first.next_batch), 5000);
    assert.deepEqual(toDevice(second).map((e) => at(e, "content")["n"]), Array.from({ length: 50 }, (_, i) => 100 + i));
    assert.deepEqual(toDevice(await sync(gina, String(second.next_batch))), []);
  });

  it("wakes a waiting sync for a to-device message and for a device list change", async () => {
    const since = String((await sync(erin)).next_batch);
    const waiting = sync(erin, since, 10_000);
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, 50));
    await send(frank, "wake", { [erin.userId]: { [erin.deviceId]: { wake: true } } });
    assert.equal(toDevice(await waiting).length, 1);
    assert.ok(Date.now() - t0 < 2000);

    // erin and frank share a room: frank's new keys reach erin's waiting sync as device_lists.changed.
    const { json } = await api(hs, erin.accessToken, "POST", `${V3}/createRoom`, { invite: [frank.userId, gina.userId], initial_state: [ENCRYPTION] });
    const roomId = String(json["room_id"]);
    const beforeJoin = String((await sync(erin)).next_batch);
    await api(hs, frank.accessToken, "POST", `${V3}/join/${encodeURIComponent(roomId)}`, {});
    const joined = await sync(erin, beforeJoin);
    assert.deepEqual(at(joined, "device_lists")["changed"], [frank.userId], "a user who newly shares a room");
    const since2 = String(joined.next_batch);
    const waiting2 = sync(erin, since2, 10_000);
    await new Promise((r) => setTimeout(r, 50));
    await api(hs, frank.accessToken, "POST", `${V3}/keys/upload`, {
      device_keys: { user_id: frank.userId, device_id: frank.deviceId, algorithms: [], keys: { [`ed25519:${frank.deviceId}`]: "k" } },
    });
    assert.deepEqual(at(await waiting2, "device_lists"), { changed: [frank.userId], left: [] });
    await api(hs, gina.accessToken, "POST", `${V3}/keys/upload`, {
      device_keys: { user_id: gina.userId, device_id: gina.deviceId, algorithms: [], keys: { [`ed25519:${gina.deviceId}`]: "g" } },
    });
    assert.deepEqual(at(await sync(erin, since2), "device_lists")["changed"], [frank.userId], "gina is only invited: not tracked");

    await api(hs, frank.accessToken, "POST", `${V3}/rooms/${encodeURIComponent(roomId)}/leave`, {});
    const left = await sync(erin, since2);
    assert.deepEqual(at(left, "device_lists"), { changed: [], left: [frank.userId] });
    const changes = await api(hs, erin.accessToken, "GET", `${V3}/keys/changes?from=${beforeJoin}&to=${String(left.next_batch)}`);
    assert.deepEqual(changes.json, { changed: [], left: [frank.userId] });
    const changesBeforeLeave = await api(hs, erin.accessToken, "GET", `${V3}/keys/changes?from=${beforeJoin}&to=${since2}`);
    assert.deepEqual(changesBeforeLeave.json["changed"], [frank.userId]);
  });

  it("answers members and joined_members, also at a sync token", async () => {
    const { json } = await api(hs, erin.accessToken, "POST", `${V3}/createRoom`, { invite: [gina.userId] });
    const roomId = encodeURIComponent(String(json["room_id"]));
    const token = String((await sync(erin)).next_batch);
    await api(hs, gina.accessToken, "POST", `${V3}/join/${roomId}`, {});
    const now = await api(hs, erin.accessToken, "GET", `${V3}/rooms/${roomId}/members?not_membership=leave`);
    const members = (now.json["chunk"] as Body[]).map((e) => [e["state_key"], at(e, "content")["membership"]]);
    assert.deepEqual(members.sort(), [[erin.userId, "join"], [gina.userId, "join"]]);
    const then = await api(hs, erin.accessToken, "GET", `${V3}/rooms/${roomId}/members?at=${token}&membership=invite`);
    assert.deepEqual((then.json["chunk"] as Body[]).map((e) => e["state_key"]), [gina.userId]);
    const joined = await api(hs, gina.accessToken, "GET", `${V3}/rooms/${roomId}/joined_members`);
    assert.deepEqual(Object.keys(at(joined.json, "joined")).sort(), [erin.userId, gina.userId]);
  });

  it("deletes a device with its keys and messages on logout, and tells those who share a room", async () => {
    await api(hs, erin2.accessToken, "POST", `${V3}/keys/upload`, {
      device_keys: { user_id: erin.userId, device_id: erin2.deviceId, algorithms: [], keys: { [`ed25519:${erin2.deviceId}`]: "e2" } },
    });
    await send(frank, "for-erin2", { [erin.userId]: { [erin2.deviceId]: { n: 1 } } });
    const since = String((await sync(gina)).next_batch);
    assert.deepEqual(await api(hs, erin2.accessToken, "POST", `${V3}/logout`, {}), { status: 200, json: {} });
    assert.deepEqual(at(await sync(gina, since), "device_lists")["changed"], [erin.userId]);
    const keys = await api(hs, gina.accessToken, "POST", `${V3}/keys/query`, { device_keys: { [erin.userId]: [] } });
    assert.deepEqual(at(keys.json, "device_keys", erin.userId), {}, "erin's other device never uploaded keys");
    assert.equal((await api(hs, erin2.accessToken, "GET", `${V3}/account/whoami`)).status, 401);
    assert.deepEqual(hs?.devices(erin.userId).map((d) => d.deviceId), [erin.deviceId]);
  });
});

describe("test homeserver: to-device messages for a client that was stopped", () => {
  let hs: TestHomeserver | undefined;
  const clients: MatrixClient[] = [];

  before(async () => {
    hs = await startHomeserver();
  });
  after(async () => {
    for (const c of clients) c.stopClient();
    await hs?.close();
  });

  it("delivers what was sent while the client was stopped when it resumes from its saved token", async () => {
    if (!hs) return assert.fail("no homeserver");
    const hank = await humanClient(hs, "hank");
    clients.push(hank);
    const ivy = await humanClient(hs, "ivy");
    clients.push(ivy);
    const received: Body[] = [];
    ivy.on(ClientEvent.ToDeviceEvent, (e) => received.push({ type: e.getType(), sender: e.getSender(), content: e.getContent() }));
    ivy.stopClient();
    const savedToken = ivy.store.getSyncToken();
    assert.ok(savedToken, "the client keeps its sync token across a stop");
    // The memory store claims no saved sync, so a restart would sync from scratch; a persistent store (as the bot's)
    // hands back its last token, and the SDK then resumes from it.
    ivy.store.getSavedSyncToken = () => Promise.resolve(savedToken);
    for (const n of [1, 2, 3]) {
      await hank.sendToDevice("org.example.ping", new Map([[ivy.getSafeUserId(), new Map([[ivy.getDeviceId() ?? "", { n }]])]]));
    }
    const sinces: Array<string | null> = [];
    const realFetch = globalThis.fetch;
    globalThis.fetch = (input, init) => {
      const url = new URL(input instanceof Request ? input.url : String(input));
      if (url.pathname.endsWith("/sync")) sinces.push(url.searchParams.get("since"));
      return realFetch(input, init);
    };
    try {
      await startSynced(ivy);
      await eventually("ivy got the three messages", () => received.length >= 3, 5000);
    } finally {
      globalThis.fetch = realFetch;
    }
    assert.equal(sinces[0], savedToken, "the restarted client resumed from its saved token");
    assert.deepEqual(received, [1, 2, 3].map((n) => ({ type: "org.example.ping", sender: hank.getSafeUserId(), content: { n } })));
  });
});

describe("test homeserver: latency and faults", () => {
  let hs: TestHomeserver | undefined;
  let jo: { userId: string; accessToken: string; deviceId: string };
  const rooms: string[] = [];

  before(async () => {
    hs = await startHomeserver();
    jo = await hs.createUser("jo", "pw-jo");
    for (let i = 0; i < 3; i++) rooms.push(String((await api(hs, jo.accessToken, "POST", `${V3}/createRoom`, {})).json["room_id"]));
  });
  after(async () => {
    await hs?.close();
  });

  let txn = 0;
  const sendTo = (roomId: string, body = "x"): Promise<{ status: number; json: Body }> =>
    api(hs, jo.accessToken, "PUT", `${V3}/rooms/${encodeURIComponent(roomId)}/send/m.room.message/t${++txn}`, { msgtype: "m.text", body });
  const timed = async <T>(f: () => Promise<T>): Promise<[T, number]> => {
    const t0 = performance.now();
    const out = await f();
    return [out, performance.now() - t0];
  };

  it("answers at once by default", async () => {
    const [, ms] = await timed(() => sendTo(rooms[0] ?? ""));
    assert.ok(ms < 40, `a send took ${ms} ms`);
  });

  it("delays every request, and stores a room's events one after the other", async () => {
    const [room0 = "", room1 = "", room2 = ""] = rooms;
    hs?.setLatency({ requestMs: 60, sendMs: 80 });
    try {
      const [, whoami] = await timed(() => api(hs, jo.accessToken, "GET", `${V3}/account/whoami`));
      assert.ok(whoami >= 59, `whoami took ${whoami} ms`);
      const [, one] = await timed(() => sendTo(room0));
      assert.ok(one >= 79, `one send took ${one} ms`);
      const [sameRoom, serial] = await timed(() => Promise.all([1, 2, 3, 4].map((n) => sendTo(room1, `s${n}`))));
      assert.ok(serial >= 4 * 80 - 1, `four sends to one room took ${serial} ms`);
      assert.ok(sameRoom.every((r) => r.status === 200));
      const bodies = hs?.roomEvents(room1).filter((e) => e.type === "m.room.message").map((e) => e.content["body"]);
      assert.deepEqual(bodies, ["s1", "s2", "s3", "s4"], "stored in the order they came");
      const [, parallel] = await timed(() => Promise.all([room0, room1, room2].map((r) => sendTo(r))));
      assert.ok(parallel < 2 * 80, `sends to three rooms took ${parallel} ms: rooms do not wait for each other`);
      const [, created] = await timed(() => api(hs, jo.accessToken, "POST", `${V3}/createRoom`, {}));
      assert.ok(created >= 60 + 6 * 80 - 1, `createRoom took ${created} ms: a new room's six first events`);
      hs?.setLatency({ sendPerSecondPerRoom: 20 });
      const [, rate] = await timed(() => Promise.all([1, 2, 3, 4, 5].map(() => sendTo(room2))));
      assert.ok(rate >= 5 * 50 - 1 && rate < 1000, `five sends at 20/s took ${rate} ms`);
    } finally {
      hs?.setLatency({});
    }
  });

  it("fails the next matching requests with the status and errcode asked for", async () => {
    const room = rooms[0] ?? "";
    hs?.failNext({ pathPrefix: `${V3}/rooms/`, method: "PUT", status: 500, count: 2 });
    const whoami = await api(hs, jo.accessToken, "GET", `${V3}/account/whoami`);
    assert.equal(whoami.status, 200, "other requests are not affected");
    assert.deepEqual(await sendTo(room), { status: 500, json: { errcode: "M_UNKNOWN", error: "Injected failure" } });
    assert.equal((await sendTo(room)).status, 500);
    assert.equal((await sendTo(room)).status, 200);
    hs?.failNext({ pathPrefix: `${V3}/rooms/`, status: 400, errcode: "M_BAD_JSON", error: "nope" });
    assert.deepEqual(await sendTo(room), { status: 400, json: { errcode: "M_BAD_JSON", error: "nope" } });
    hs?.failNext({ pathPrefix: `${V3}/sync`, status: 502, proxyPage: true });
    const res = await fetch(`${hs?.url ?? ""}${V3}/sync?timeout=0`, { headers: { authorization: `Bearer ${jo.accessToken}` } });
    assert.equal(res.status, 502);
    assert.match(await res.text(), /502 Bad Gateway/);
    const stored = hs?.roomEvents(room).length;
    hs?.failNext({ status: 429, errcode: "M_LIMIT_EXCEEDED", retryAfterMs: 1500 });
    const limited = await sendTo(room);
    assert.deepEqual([limited.status, limited.json["retry_after_ms"]], [429, 1500]);
    assert.equal(hs?.roomEvents(room).length, stored, "a failed request changes nothing");
  });

  it("drops connections without an answer, before or after handling the request", async () => {
    const room = rooms[2] ?? "";
    const count = (): number => hs?.roomEvents(room).length ?? 0;
    const before = count();
    hs?.dropNext({ pathPrefix: `${V3}/rooms/`, method: "PUT" });
    await assert.rejects(sendTo(room, "dropped before"));
    assert.equal(count(), before, "nothing stored");
    hs?.dropNext({ pathPrefix: `${V3}/rooms/`, when: "after" });
    const url = `${V3}/rooms/${encodeURIComponent(room)}/send/m.room.message/drop-after`;
    await assert.rejects(api(hs, jo.accessToken, "PUT", url, { msgtype: "m.text", body: "stored, never answered" }));
    assert.equal(count(), before + 1, "handled although never answered");
    const retried = await api(hs, jo.accessToken, "PUT", url, { msgtype: "m.text", body: "stored, never answered" });
    assert.equal(retried.status, 200);
    assert.equal(count(), before + 1, "the retry with the same transaction id is answered with the same event");
    hs?.dropNext({ pathPrefix: `${V3}/rooms/`, count: 5 });
    hs?.clearFaults();
    assert.equal((await sendTo(room)).status, 200);
  });

  it("keeps pause and rate limits working together with latency", async () => {
    hs?.setLatency({ requestMs: 20 });
    try {
      hs?.rateLimit(jo.userId, 1, 100);
      assert.equal((await sendTo(rooms[0] ?? "")).status, 429);
      hs?.pause();
      const held = sendTo(rooms[0] ?? "");
      await new Promise((r) => setTimeout(r, 100));
      hs?.resume();
      assert.equal((await held).status, 200);
    } finally {
      hs?.setLatency({});
    }
  });
});
