import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { EventType, KnownMembership, Preset } from "matrix-js-sdk";
import { makeFlake } from "../demo/fake-clan-fixture.ts";
import { world, type World } from "./support/e2e.ts";
import { reactionsOn, say, timeline, waitForEvent, waitForReaction, waitForReply } from "./support/matrix-wait.ts";

// One world for the file: hooks registered by world() (teardown) then belong to the file, not to a hook.
const w: World = await world();

test("invited into its clan room, the bot greets, and answers !help within 2 s listing the commands", async () => {
  const greeting = await waitForEvent(w.alice, w.roomId, (e) => e.getSender() === w.botUserId && e.getType() === EventType.RoomMessage);
  assert.match(greeting.getContent().body as string, /clanbot for clan 'family'.*!help/);

  const sent = Date.now();
  const id = await say(w.alice, w.roomId, "!help");
  const reply = await waitForReply(w.alice, w.roomId, id, 2000);
  assert.ok(Date.now() - sent < 2000, "the reply took longer than 2 s");
  const c = reply.getContent();
  assert.equal(c.msgtype, "m.notice");
  assert.equal(c.format, "org.matrix.custom.html");
  for (const cmd of ["!help", "!machines", "!history", "!whoami", "!refresh"]) {
    assert.match(c.body as string, new RegExp(cmd), `help does not list ${cmd}`);
    assert.match(c.formatted_body as string, new RegExp(`<code>${cmd}`));
  }
  await waitForReaction(w.alice, w.roomId, id, "✅");
  assert.deepEqual(reactionsOn(w.alice, w.roomId, id), ["👀", "✅"]);
});

test("!machines lists the fixture's machines with their tags and target hosts", async () => {
  const id = await say(w.alice, w.roomId, "!machines");
  const reply = await waitForReply(w.alice, w.roomId, id);
  const body = reply.getContent().body as string;
  assert.match(body, /3 machines in clan 'family'/);
  assert.match(body, /`laptop`\s+Dad's laptop\s+family\s+`root@laptop\.lan`/);
  assert.match(body, /`nas`\s+Storage in the basement\s+servers, storage\s+`root@nas\.lan:2222`/);
  assert.match(body, /`media`\s+servers\s+—/);
  assert.match(reply.getContent().formatted_body as string, /<table>.*<td><code>nas<\/code><\/td>/);
});

test("the bot answers when addressed by name, and ignores talk about it", async () => {
  const id = await say(w.alice, w.roomId, "clanbot: whoami");
  const reply = await waitForReply(w.alice, w.roomId, id);
  assert.match(reply.getContent().body as string, /power level 100, admin/);
  const chatter = await say(w.alice, w.roomId, "clanbot is nice");
  const marker = await say(w.alice, w.roomId, "!whoami");
  await waitForReply(w.alice, w.roomId, marker);
  assert.equal(timeline(w.alice, w.roomId).filter((e) => e.replyEventId === chatter).length, 0);
});

test("a power level 0 user asking for an operator command is refused with ⛔, a reason, and an audit entry", async () => {
  const bob = await w.person("bob");
  const id = await say(bob, w.roomId, "!refresh");
  const reply = await waitForReply(bob, w.roomId, id);
  assert.match(reply.getContent().body as string, /!refresh` needs the operator level \(power level 50 in this room\); you have power level 0/);
  await waitForReaction(bob, w.roomId, id, "⛔");
  assert.ok(!reactionsOn(bob, w.roomId, id).includes("👀"), "a refused command must not look taken");

  const hist = await say(w.alice, w.roomId, "!history");
  const body = (await waitForReply(w.alice, w.roomId, hist)).getContent().body as string;
  assert.match(body, /@bob:localhost\s+`!refresh`\s+.*⛔ refused/);
});

test("unknown commands and bad flags get a clear answer", async () => {
  const typo = await say(w.alice, w.roomId, "!machnes");
  assert.match((await waitForReply(w.alice, w.roomId, typo)).getContent().body as string, /Did you mean `!machines`\?/);
  const flag = await say(w.alice, w.roomId, "!history --limit lots");
  assert.match((await waitForReply(w.alice, w.roomId, flag)).getContent().body as string, /`--limit` of !history takes a whole number, not 'lots'/);
  await waitForReaction(w.alice, w.roomId, flag, "❓");
});

test("a broken flake gives a clear error, and the bot keeps answering", async () => {
  const { room_id: broken } = await w.alice.createRoom({ name: "Shop", preset: Preset.PrivateChat });
  const flake = await makeFlake(join(w.dir, "shop"), { machines: {}, broken: "error: syntax error, unexpected '}' at /flake.nix:12:1" });
  await w.bot.stop();
  const config = { ...w.config, clans: [...(w.config["clans"] as object[]), { name: "shop", room: broken, flake }] };
  w.bot = await w.startBot(config);
  await w.alice.invite(broken, w.botUserId);
  await waitForEvent(w.alice, broken, (e) => e.getStateKey() === w.botUserId && e.getContent().membership === KnownMembership.Join, 20_000);
  const id = await say(w.alice, broken, "!machines");
  const reply = await waitForReply(w.alice, broken, id);
  assert.match(reply.getContent().body as string, /Reading the clan's machines failed: `clan select` exited with status 1/);
  assert.match(reply.getContent().body as string, /syntax error, unexpected '}'/);
  await waitForReaction(w.alice, broken, id, "❌");
  const again = await say(w.alice, broken, "!whoami");
  await waitForReply(w.alice, broken, again);
});

test("an invite to a room no clan is bound to is declined", async () => {
  const { room_id: other } = await w.alice.createRoom({ name: "Random", preset: Preset.PrivateChat, invite: [w.botUserId] });
  const leave = await waitForEvent(
    w.alice,
    other,
    (e) => e.getStateKey() === w.botUserId && e.getContent().membership === KnownMembership.Leave,
    15_000,
    "the bot to decline",
  );
  assert.match(leave.getContent().reason as string, /only joins the rooms its configuration binds to a clan/);
});

test("after a long chat (more events than the bot keeps of a room's timeline) it still knows names, power levels and its join", async () => {
  for (let i = 0; i < 60; i++) await say(w.alice, w.roomId, `chatter ${i}`);
  const id = await say(w.alice, w.roomId, "clanbot: whoami");
  assert.match((await waitForReply(w.alice, w.roomId, id)).getContent().body as string, /power level 100, admin/);
  const again = await say(w.alice, w.roomId, "!whoami");
  await waitForReaction(w.alice, w.roomId, again, "✅");
});
