// How the bot's device comes to be trusted, and what happens when its crypto state is lost: with a
// password it becomes a new device signed by the same cross-signing identity; with an access token
// alone it says what to do. A room that turns encryption on after the bot joined works from then on.
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { EventType, type MatrixClient } from "matrix-js-sdk";
import { world, type World } from "./support/e2e.ts";
import { eventually, isCrossSigned } from "./support/e2ee-client.ts";
import { say, waitForReply } from "./support/matrix-wait.ts";

const w: World = await world({ cryptoClients: true });

/** What anyone can see of the bot's account on the homeserver: its devices and cross-signing master key. */
async function published(): Promise<{ devices: string[]; master: string[] }> {
  const res = await fetch(`${w.hs.url}/_matrix/client/v3/keys/query`, {
    method: "POST",
    headers: { authorization: `Bearer ${w.alice.getAccessToken()}`, "content-type": "application/json" },
    body: JSON.stringify({ device_keys: { [w.botUserId]: [] } }),
  });
  const body = (await res.json()) as { device_keys: Record<string, Record<string, unknown>>; master_keys?: Record<string, { keys: Record<string, string> }> };
  return { devices: Object.keys(body.device_keys[w.botUserId] ?? {}), master: Object.values(body.master_keys?.[w.botUserId]?.keys ?? {}) };
}

async function login(password: string): Promise<{ accessToken: string; deviceId: string }> {
  const res = await fetch(`${w.hs.url}/_matrix/client/v3/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ type: "m.login.password", identifier: { type: "m.id.user", user: "clanbot" }, password }),
  });
  const body = (await res.json()) as { access_token: string; device_id: string };
  return { accessToken: body.access_token, deviceId: body.device_id };
}

async function answered(client: MatrixClient): Promise<void> {
  const id = await say(client, w.roomId, "!whoami");
  const reply = await waitForReply(client, w.roomId, id, 30_000);
  assert.ok(!reply.isDecryptionFailure());
  assert.match(reply.getContent().body as string, /power level 100/);
}

const cryptoDir = join(w.dir, "state", "crypto");
const withToken = (accessToken: string): Record<string, unknown> => {
  const { password: _password, ...matrix } = w.config["matrix"] as Record<string, unknown>;
  return { ...w.config, matrix: { ...matrix, accessToken } };
};

test("a room that turns encryption on after the bot joined: answers in clear before, encrypted after", async () => {
  await answered(w.alice);
  await w.alice.sendStateEvent(w.roomId, EventType.RoomEncryption, { algorithm: "m.megolm.v1.aes-sha2" });
  await eventually("alice's client to encrypt in the room", async () => (await w.alice.getCrypto()?.isEncryptionEnabledInRoom(w.roomId)) === true);
  await answered(w.alice);
  const last = w.hs.roomEvents(w.roomId).filter((e) => e.sender === w.botUserId && (e.type === "m.room.message" || e.type === "m.room.encrypted")).at(-1);
  assert.equal(last?.type, "m.room.encrypted");
});

test("a lost crypto store with a password: a new device, signed by the same cross-signing identity; the old device is logged out", async () => {
  const before = await published();
  assert.equal(before.devices.length, 1);
  await w.bot.stop("SIGKILL");
  await rm(join(cryptoDir, "store.sqlite3"));
  w.bot = await w.startBot();
  await w.bot.waitForLog(/the crypto store of this device is gone; logging in as a new device/, 30_000);
  await w.bot.waitForLog(/matrix front end ready/, 30_000);
  const after = await published();
  assert.equal(after.devices.length, 1);
  assert.notEqual(after.devices[0], before.devices[0]);
  assert.deepEqual(after.master, before.master, "the bot's identity changed: people would have to verify it again");
  await eventually("the new device to be signed", () => isCrossSigned(w.alice, w.botUserId, after.devices[0] as string));
  await answered(w.alice);
});

test("an access token of a new device: it is signed with the kept keys; if its store is lost, the bot stops and says what to do", async () => {
  const before = await published();
  await w.bot.stop("SIGTERM");
  const token = await login("pw-bot");
  let bot = await w.startBot(withToken(token.accessToken));
  w.bot = bot;
  await bot.waitForLog(/the crypto store belongs to another device; setting it aside/, 30_000);
  await bot.waitForLog(/signed this device with the kept cross-signing keys/, 30_000);
  await bot.waitForLog(/matrix front end ready/, 30_000);
  assert.deepEqual((await published()).master, before.master);
  await eventually("the token's device to be signed", () => isCrossSigned(w.alice, w.botUserId, token.deviceId));
  await answered(w.alice);

  await bot.stop("SIGKILL");
  await rm(join(cryptoDir, "store.sqlite3"));
  bot = await w.startBot(withToken(token.accessToken));
  w.bot = bot;
  const exited = new Promise<number | null>((resolve) => bot.proc.once("exit", (code) => resolve(code)));
  const line = await bot.waitForLog(/the crypto store of device .* is gone/, 30_000);
  assert.match(line, new RegExp(`device ${token.deviceId}`));
  assert.match(line, /access token for a new device/);
  assert.equal(await exited, 1);
});

test("with a token alone on a homeserver that wants a password for new cross-signing keys, the bot stops and says so", async () => {
  await w.bot.stop("SIGKILL");
  // Everything of the bot's encryption is gone, the kept keys too: new ones need the password.
  await rm(cryptoDir, { recursive: true, force: true });
  w.hs.requireAuthForCrossSigning(true);
  const token = await login("pw-bot");
  const bot = await w.startBot(withToken(token.accessToken));
  w.bot = bot;
  const exited = new Promise<number | null>((resolve) => bot.proc.once("exit", (code) => resolve(code)));
  await bot.waitForLog(/wants the bot's password to publish its cross-signing keys: set matrix.password/, 30_000);
  assert.equal(await exited, 1);
});
