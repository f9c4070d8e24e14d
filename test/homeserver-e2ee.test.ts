// End-to-end encryption on the test homeserver: matrix-js-sdk clients with Rust crypto on both sides, plus raw
// HTTP where the exact wire behaviour matters (keys, to-device, device lists).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type MatrixClient } from "matrix-js-sdk";
import { DecryptionFailureCode } from "matrix-js-sdk/lib/crypto-api/index.js";
import { bootstrapCrossSigning, eventAsSeenBy, eventually, isCrossSigned } from "./support/e2ee-client.ts";
import { humanClient, startHomeserver, type HumanClientOptions, type TestHomeserver } from "./support/homeserver.ts";

type Body = Record<string, unknown>;

async function api(hs: TestHomeserver | undefined, token: string | null, method: string, path: string, body?: unknown): Promise<{ status: number; json: Body }> {
  if (!hs) throw new Error("no homeserver");
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (token) headers["authorization"] = `Bearer ${token}`;
  const res = await fetch(hs.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as Body };
}

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
    const at = (v: unknown, ...keys: string[]): Body => keys.reduce<Body>((o, k) => (o[k] ?? {}) as Body, v as Body);
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
