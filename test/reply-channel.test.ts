import assert from "node:assert/strict";
import { after, test } from "node:test";
import { createClient, EventType, Preset } from "matrix-js-sdk";
import { join } from "node:path";
import { Outbox } from "../bot/matrix/outbox.ts";
import { MatrixReplyChannel } from "../bot/matrix/reply-channel.ts";
import { createLogger } from "../bot/logger.ts";
import { openDatabase } from "../storage/db.ts";
import { migrate } from "../storage/migrations.ts";
import { humanClient, startHomeserver, startSynced, stopClient } from "./support/homeserver.ts";
import { say, waitForEvent } from "./support/matrix-wait.ts";
import { tempDir } from "./support/temp-dir.ts";

const hs = await startHomeserver();
const humans: Array<Awaited<ReturnType<typeof humanClient>>> = [];
const outboxes: Outbox[] = [];
after(async () => {
  await Promise.all(outboxes.map((o) => o.stop()));
  bot.stopClient();
  await Promise.all(humans.map(stopClient));
  await hs.close();
});
const botUser = await hs.createUser("clanbot", "pw-bot");
const alice = await humanClient(hs, "alice");
humans.push(alice);
const bot = createClient({ baseUrl: hs.url, ...botUser, logger: quiet() });
const dbPath = join(await tempDir(), "state.sqlite3");
const db = await openDatabase(dbPath);
await migrate(db);
const log = createLogger("silent");
const newOutbox = (): Outbox => {
  const o = new Outbox({ db, client: bot, clock: Date, log });
  outboxes.push(o);
  return o;
};
const sending = { outbox: newOutbox(), client: bot };
const { room_id: roomId } = await alice.createRoom({ preset: Preset.PrivateChat, invite: [botUser.userId] });
await bot.joinRoom(roomId);
// As in the bot: its client syncs, and so knows each room's state (whether it is encrypted).
await startSynced(bot);

function quiet() {
  const noop = (): void => {};
  const l = { trace: noop, debug: noop, info: noop, warn: noop, error: noop, getChild: () => l };
  return l;
}

test("an answer is a notice replying to the command, and its edits replace it in place", async () => {
  const cmd = await say(alice, roomId, "!deploy laptop");
  const channel = new MatrixReplyChannel(sending, roomId, cmd);
  const sent = await channel.reply({ text: "laptop: building", html: "<b>laptop</b>: building" });
  const answer = await waitForEvent(alice, roomId, (e) => e.replyEventId === cmd);
  assert.deepEqual(
    { msgtype: answer.getContent().msgtype, body: answer.getContent().body, html: answer.getContent().formatted_body },
    { msgtype: "m.notice", body: "laptop: building", html: "<b>laptop</b>: building" },
  );
  await sent.edit({ text: "laptop: done", html: "<b>laptop</b>: done" });
  const edit = await waitForEvent(alice, roomId, (e) => e.getContent()["m.relates_to"]?.rel_type === "m.replace");
  assert.equal(edit.getContent()["m.relates_to"]?.event_id, answer.getId());
  assert.deepEqual(edit.getContent()["m.new_content"], {
    msgtype: "m.notice",
    body: "laptop: done",
    format: "org.matrix.custom.html",
    formatted_body: "<b>laptop</b>: done",
  });
  assert.equal(edit.getContent().body, "* laptop: done");
});

test("images are uploaded and posted with their size and dimensions; files as m.file", async () => {
  const cmd = await say(alice, roomId, "!invite");
  const channel = new MatrixReplyChannel(sending, roomId, cmd);
  const png = Buffer.from("89504e470d0a1a0a0000000d49484452", "hex");
  await channel.replyFile({ name: "invite.png", mimetype: "image/png", data: png, image: { width: 330, height: 330 } });
  await channel.replyFile({ name: "deploy.log.gz", mimetype: "application/gzip", data: Buffer.from("log") });
  const image = await waitForEvent(alice, roomId, (e) => e.getContent().msgtype === "m.image");
  assert.deepEqual(image.getContent().info, { mimetype: "image/png", size: png.byteLength, w: 330, h: 330 });
  assert.equal(image.replyEventId, cmd);
  const url = image.getContent().url as string;
  assert.match(url, /^mxc:\/\//);
  const [server, id] = url.slice("mxc://".length).split("/");
  const download = await fetch(`${hs.url}/_matrix/client/v1/media/download/${server}/${id}`, {
    headers: { authorization: `Bearer ${botUser.accessToken}` },
  });
  assert.deepEqual(Buffer.from(await download.arrayBuffer()), png);
  const file = await waitForEvent(alice, roomId, (e) => e.getContent().msgtype === "m.file");
  assert.deepEqual([file.getContent().body, file.getContent().info?.mimetype], ["deploy.log.gz", "application/gzip"]);
});

test("a rate-limited answer is retried after the server's delay and stored once", async () => {
  const cmd = await say(alice, roomId, "!help");
  hs.rateLimit(botUser.userId, 2, 300);
  const started = Date.now();
  await new MatrixReplyChannel(sending, roomId, cmd).react("✅");
  await waitForEvent(alice, roomId, (e) => e.getType() === EventType.Reaction && e.getSender() === botUser.userId && e.getContent()["m.relates_to"]?.event_id === cmd);
  assert.ok(Date.now() - started >= 600, "the retries did not wait for retry_after_ms");
  const reactions = hs.roomEvents(roomId).filter((e) => e.type === EventType.Reaction && e.sender === botUser.userId);
  assert.equal(reactions.length, 1);
});

const botMessages = (body: string) =>
  hs.roomEvents(roomId).filter((e) => e.sender === botUser.userId && e.type === EventType.RoomMessage && e.content["body"] === body);

test("what was stored but not sent when the bot stopped is sent by the next start, once", async () => {
  const cmd = await say(alice, roomId, "!status");
  await hs.goDown();
  const first = newOutbox();
  await new MatrixReplyChannel({ outbox: first, client: bot }, roomId, cmd).reply({ text: "stored while away", html: "stored while away" });
  await new Promise((r) => setTimeout(r, 300));
  await first.stop();
  await hs.comeBack();
  assert.equal(botMessages("stored while away").length, 0);
  const next = newOutbox();
  assert.equal(await next.resume(), 1);
  await waitForEvent(alice, roomId, (e) => e.getContent().body === "stored while away");
  await next.stop(2000);
  assert.equal(botMessages("stored while away").length, 1);
});

test("a post the homeserver took but whose answer was lost is not posted twice by the next start", async () => {
  const cmd = await say(alice, roomId, "!status");
  hs.pause();
  const first = newOutbox();
  await new MatrixReplyChannel({ outbox: first, client: bot }, roomId, cmd).reply({ text: "answer lost", html: "answer lost" });
  await new Promise((r) => setTimeout(r, 200));
  // The bot dies with the send in flight; the homeserver stores the event after all.
  const stopping = first.stop();
  hs.resume();
  await stopping;
  const next = newOutbox();
  await next.resume();
  await next.stop(2000);
  await waitForEvent(alice, roomId, (e) => e.getContent().body === "answer lost");
  assert.equal(botMessages("answer lost").length, 1);
});

test("an edit waits for the message it edits, also when the homeserver is away in between", async () => {
  const cmd = await say(alice, roomId, "!deploy nas");
  hs.rateLimit(botUser.userId, 3, 200);
  const sent = await new MatrixReplyChannel(sending, roomId, cmd).reply({ text: "nas: queued", html: "nas: queued" });
  await sent.edit({ text: "nas: done", html: "nas: done" });
  const edit = await waitForEvent(alice, roomId, (e) => e.getContent()["m.new_content"]?.body === "nas: done");
  const original = botMessages("nas: queued")[0];
  assert.equal(edit.getContent()["m.relates_to"]?.event_id, original?.event_id);
});

test("a post the homeserver refuses (a 4xx) is dropped alone: the same command's next answers and other commands' go out", async () => {
  const cmd = await say(alice, roomId, "!deploy laptop");
  const other = await say(alice, roomId, "!whoami");
  // Synapse's answer to a second identical reaction: 400 M_DUPLICATE_ANNOTATION.
  hs.failNext({ pathPrefix: `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.reaction/`, status: 400, errcode: "M_DUPLICATE_ANNOTATION" });
  const channel = new MatrixReplyChannel(sending, roomId, cmd);
  await channel.react("❌");
  await channel.reply({ text: "after the refused one", html: "after the refused one" });
  await new MatrixReplyChannel(sending, roomId, other).reply({ text: "someone else's answer", html: "someone else's answer" });
  await waitForEvent(alice, roomId, (e) => e.getContent().body === "after the refused one");
  await waitForEvent(alice, roomId, (e) => e.getContent().body === "someone else's answer");
});

test("answers resume within a second or two of the homeserver's return, not after a long backoff", async () => {
  const cmd = await say(alice, roomId, "!status");
  await hs.goDown();
  await new MatrixReplyChannel(sending, roomId, cmd).reply({ text: "after the outage", html: "after the outage" });
  // Long enough for any exponential backoff to grow well past the outbox's 2 s ceiling.
  await new Promise((r) => setTimeout(r, 8000));
  await hs.comeBack();
  const back = Date.now();
  // Seen on the server (a person's client has its own reconnection delay).
  while (botMessages("after the outage").length === 0 && Date.now() - back < 10_000) await new Promise((r) => setTimeout(r, 20));
  assert.equal(botMessages("after the outage").length, 1);
  assert.ok(Date.now() - back < 3000, `the answer came ${Date.now() - back} ms after the homeserver was back`);
});
