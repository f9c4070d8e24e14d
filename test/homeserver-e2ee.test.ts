// End-to-end encryption on the test homeserver: matrix-js-sdk clients with Rust crypto on both sides, plus raw
// HTTP where the exact wire behaviour matters (keys, to-device, device lists).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type MatrixClient } from "matrix-js-sdk";
import { DecryptionFailureCode } from "matrix-js-sdk/lib/crypto-api/index.js";
import { bootstrapCrossSigning, crossSigningKey, eventAsSeenBy, eventually, isCrossSigned, newSigningKey } from "./support/e2ee-client.ts";
import { humanClient, startHomeserver, type HumanClientOptions, type TestHomeserver } from "./support/homeserver.ts";

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
    const changed = await api(hs, carol.accessToken, "POST", `${V3}/keys/upload`, { device_keys: deviceKeys("curveB") });
    assert.equal(changed.status, 400);
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
