import assert from "node:assert/strict";
import { after, test } from "node:test";
import { createClient, EventType, Preset } from "matrix-js-sdk";
import { MatrixReplyChannel } from "../bot/matrix/reply-channel.ts";
import { createSendScheduler } from "../bot/matrix/send-scheduler.ts";
import { humanClient, startHomeserver, stopClient } from "./support/homeserver.ts";
import { say, waitForEvent } from "./support/matrix-wait.ts";

const hs = await startHomeserver();
const botUser = await hs.createUser("clanbot", "pw-bot");
const alice = await humanClient(hs, "alice");
const bot = createClient({ baseUrl: hs.url, ...botUser, scheduler: createSendScheduler(), logger: quiet() });
after(async () => {
  bot.stopClient();
  await stopClient(alice);
  await hs.close();
});
const { room_id: roomId } = await alice.createRoom({ preset: Preset.PrivateChat, invite: [botUser.userId] });
await bot.joinRoom(roomId);

function quiet() {
  const noop = (): void => {};
  const l = { trace: noop, debug: noop, info: noop, warn: noop, error: noop, getChild: () => l };
  return l;
}

test("an answer is a notice replying to the command, and its edits replace it in place", async () => {
  const cmd = await say(alice, roomId, "!deploy laptop");
  const channel = new MatrixReplyChannel(bot, roomId, cmd);
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
  const channel = new MatrixReplyChannel(bot, roomId, cmd);
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
  await new MatrixReplyChannel(bot, roomId, cmd).react("✅");
  assert.ok(Date.now() - started >= 600, "the retries did not wait for retry_after_ms");
  const reactions = hs.roomEvents(roomId).filter((e) => e.type === EventType.Reaction && e.sender === botUser.userId);
  assert.equal(reactions.length, 1);
});
