import assert from "node:assert/strict";
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { EventType, RelationType, type MatrixClient, type MatrixEvent } from "matrix-js-sdk";
import { decryptAttachment } from "../bot/matrix/media.ts";
import { world, type World } from "./support/e2e.ts";
import { eventually, isCrossSigned } from "./support/e2ee-client.ts";
import { humanClient } from "./support/homeserver.ts";
import { scanQrPng } from "./support/qr-scan.ts";
import { say, timeline, waitForEvent, waitForOutcome, waitForReaction, waitForReply } from "./support/matrix-wait.ts";

// An encrypted family room as Element makes it; alice's client, like modern Element, gives room keys
// only to devices their owner has cross-signed, and hides messages from devices that are not.
const w: World = await world({
  encrypted: true,
  config: (base) => ({
    ...base,
    matrix: { ...(base["matrix"] as object), undecryptableGrace: "2s" },
    web: { listen: "127.0.0.1:0", publicUrl: "https://join.example.org" },
    deploy: { confirmAbove: 1 },
  }),
});

/** The bot's answers to a command, as stored on the homeserver. */
const fromBot = (id: string) => onServer(w.botUserId).filter((e) => (e.content["m.relates_to"] as { "m.in_reply_to"?: { event_id?: string } } | undefined)?.["m.in_reply_to"]?.event_id === id);

/** The bot's events as they are stored on the homeserver: what anyone without the keys can read. */
const onServer = (sender: string): Array<{ type: string; content: Record<string, unknown> }> => w.hs.roomEvents(w.roomId).filter((e) => e.sender === sender);

async function download(client: MatrixClient, content: Record<string, unknown>): Promise<Uint8Array> {
  const file = content["file"] as { url: string; key: { k: string }; iv: string; hashes: { sha256: string } };
  assert.ok(file, "an attachment in an encrypted room carries its key in `file`");
  assert.equal(content["url"], undefined, "and no plain `url`");
  const [, server, id] = /^mxc:\/\/([^/]+)\/(.+)$/.exec(file.url) ?? [];
  const res = await fetch(`${w.hs.url}/_matrix/client/v1/media/download/${server}/${id}`, { headers: { authorization: `Bearer ${client.getAccessToken()}` } });
  return decryptAttachment(new Uint8Array(await res.arrayBuffer()), file);
}

const deviceOf = async (userId: string): Promise<string[]> => {
  const keys = await w.alice.getCrypto()?.getUserDeviceInfo([userId], true);
  return [...(keys?.get(userId)?.keys() ?? [])];
};

test("the bot's device is cross-signed by its own account before it answers anything", async () => {
  const devices = await deviceOf(w.botUserId);
  assert.equal(devices.length, 1);
  await eventually("alice sees the bot's device as signed by its owner", () => isCrossSigned(w.alice, w.botUserId, devices[0] as string));
});

test("a command in an encrypted room is read, and the answer is encrypted and readable by an Element-like client", async () => {
  const id = await say(w.alice, w.roomId, "!whoami");
  const reply = await waitForReply(w.alice, w.roomId, id, 15_000);
  assert.ok(!reply.isDecryptionFailure());
  assert.match(reply.getContent().body as string, /power level 100, admin/);
  assert.equal(reply.getContent().msgtype, "m.notice");
  // On the server, the bot's answers are ciphertext: nothing of them is in clear.
  const mine = onServer(w.botUserId).filter((e) => e.type.startsWith("m.room.message") || e.type === "m.room.encrypted");
  assert.ok(mine.length >= 1);
  assert.ok(mine.every((e) => e.type === "m.room.encrypted"), `the bot sent in clear: ${JSON.stringify(mine.map((e) => e.type))}`);
  assert.ok(!JSON.stringify(onServer(w.botUserId)).includes("power level 100"));
  // The relation stays in clear (spec: servers aggregate replies, edits and reactions by it).
  const wire = onServer(w.botUserId).find((e) => e.type === "m.room.encrypted" && JSON.stringify(e.content).includes(id));
  assert.deepEqual(wire?.content["m.relates_to"], { "m.in_reply_to": { event_id: id } });
});

test("a join code's QR image is an encrypted attachment that the person's client decrypts and reads", async () => {
  const id = await say(w.alice, w.roomId, "!invite --note grandma");
  const image = await waitForEvent(w.alice, w.roomId, (e) => e.getContent().msgtype === "m.image" && e.replyEventId === id, 15_000, "the QR image");
  const { text } = scanQrPng(await download(w.alice, image.getContent()));
  assert.match(text ?? "", /^https:\/\/join\.example\.org\/join\/[A-Za-z0-9_-]{43}$/);
  assert.equal(image.getContent().info?.mimetype, "image/png");
});

test("a deploy's log file is an encrypted attachment; a ✅ confirmation works on an encrypted question", async () => {
  const id = await say(w.alice, w.roomId, "!deploy laptop nas");
  const question = await waitForEvent(w.alice, w.roomId, (e) => e.replyEventId === id && /react with ✅/.test(String(e.getContent().body)), 15_000, "the question");
  await w.alice.sendEvent(w.roomId, EventType.Reaction, { "m.relates_to": { rel_type: RelationType.Annotation, event_id: question.getId() as string, key: "✅" } });
  assert.equal(await waitForOutcome(w.alice, w.roomId, id, 60_000), "✅");
  const log = await waitForEvent(w.alice, w.roomId, (e) => e.getContent().msgtype === "m.file" && e.replyEventId === id, 15_000, "the log file");
  const text = Buffer.from(await download(w.alice, log.getContent())).toString("utf8");
  assert.match(text, /\[laptop\]/);
});

test("a person who joins later, and a second device of a person, read the bot's answers sent after", async () => {
  const bob = await w.person("bob");
  const id = await say(bob, w.roomId, "!whoami");
  const reply = await waitForReply(bob, w.roomId, id, 15_000);
  assert.match(reply.getContent().body as string, /power level 0/);
  const bob2 = await humanClient(w.hs, "bob", { rustCrypto: true, onlySignedDevices: true, newDevice: true });
  try {
    const bob2Device = bob2.getDeviceId() as string;
    await eventually("bob's first device to see his second", async () => {
      const devices = await bob.getCrypto()?.getUserDeviceInfo([bob.getSafeUserId()], true);
      return devices?.get(bob.getSafeUserId())?.has(bob2Device) === true;
    });
    await bob.getCrypto()?.crossSignDevice(bob2Device);
    await eventually("the room's encryption to reach bob's second device", async () => (await bob2.getCrypto()?.isEncryptionEnabledInRoom(w.roomId)) === true);
    // bob asks from his first device; the bot's answer is read on the second one too.
    const id2 = await say(bob, w.roomId, "!whoami");
    const reply2 = await waitForReply(bob2, w.roomId, id2, 15_000);
    assert.ok(!reply2.isDecryptionFailure());
    assert.match(reply2.getContent().body as string, /power level 0/);
  } finally {
    bob2.stopClient();
  }
});

test("a message that cannot be decrypted gets one notice, not one per message", async () => {
  const mallory = await w.person("mallory");
  const bogus = {
    algorithm: "m.megolm.v1.aes-sha2",
    sender_key: "c2VuZGVyIGtleSB0aGF0IG5vYm9keSBoYXMgZXZlciBzZWVu",
    session_id: "bm8gc3VjaCBzZXNzaW9u",
    device_id: "NOPE",
    ciphertext: "AwgAEnB5bm90IGEgcmVhbCBjaXBoZXJ0ZXh0",
  };
  const ids = [1, 2, 3].map(() => w.hs.sendAs(mallory.getSafeUserId(), w.roomId, "m.room.encrypted", bogus));
  const notice = await waitForEvent(w.alice, w.roomId, (e) => /could not read an encrypted message from/.test(String(e.getContent().body)), 20_000, "the notice");
  assert.match(String(notice.getContent().body), /@mallory:/);
  assert.ok(ids.includes(notice.replyEventId as string));
  // Later messages of the same person within the hour: no more notices.
  await new Promise((r) => setTimeout(r, 4000));
  const notices = timeline(w.alice, w.roomId).filter((e: MatrixEvent) => /could not read an encrypted message/.test(String(e.getContent().body)));
  assert.equal(notices.length, 1);
});

test("a command whose key comes late is answered when the key comes, without a notice", async () => {
  // A new megolm session for alice's next message: its key travels to the bot in a to-device message, held back a while.
  const held = w.hs.holdToDevice({ to: w.botUserId, type: "m.room.encrypted" });
  await w.alice.getCrypto()?.forceDiscardSession(w.roomId);
  const id = await say(w.alice, w.roomId, "!whoami");
  await eventually("the room key to be held back", () => held.count() > 0);
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(fromBot(id).length, 0, "answered before its key came");
  held.release();
  const reply = await waitForReply(w.alice, w.roomId, id, 15_000);
  assert.match(reply.getContent().body as string, /power level 100/);
  await new Promise((r) => setTimeout(r, 2500));
  const aboutAlice = timeline(w.alice, w.roomId).filter((e) => /could not read an encrypted message from .*@alice:/.test(String(e.getContent().body)));
  assert.equal(aboutAlice.length, 0);
});

test("restarts keep the device: after a kill -9, commands sent while the bot was down are answered, from the same device", async () => {
  const before = await deviceOf(w.botUserId);
  await w.bot.stop("SIGKILL");
  const id = await say(w.alice, w.roomId, "!whoami");
  const bot = await w.startBot();
  const reply = await waitForReply(w.alice, w.roomId, id, 30_000);
  assert.ok(!reply.isDecryptionFailure());
  assert.deepEqual(await deviceOf(w.botUserId), before);
  // A clean stop and start too.
  await bot.stop("SIGTERM");
  const id2 = await say(w.alice, w.roomId, "!whoami");
  w.bot = await w.startBot();
  await waitForReply(w.alice, w.roomId, id2, 30_000);
  assert.deepEqual(await deviceOf(w.botUserId), before);
});

test("the crypto store and its keys are private files; a second bot on the same state refuses to start", async () => {
  const dir = join(w.dir, "state", "crypto");
  for (const name of await readdir(dir)) {
    if (name.endsWith("-shm") || name.endsWith("-wal")) continue;
    assert.equal((await stat(join(dir, name))).mode & 0o777, 0o600, `${name} is not 0600`);
  }
  const second = await w.startBot();
  const exited = new Promise<number | null>((resolve) => second.proc.once("exit", (code) => resolve(code)));
  await second.waitForLog(/in use by another clanbot process/, 30_000);
  assert.equal(await exited, 1);
});
