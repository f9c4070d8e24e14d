import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { test } from "node:test";
import { FAMILY, world } from "./support/e2e.ts";
import { say, waitForEvent, waitForReaction, waitForReply } from "./support/matrix-wait.ts";
import { commitFlake, updateRuns, waitForStatus } from "./support/deploy-helpers.ts";
import { groupGone } from "../demo/fake-clan-fixture.ts";

test("the homeserver stops answering for 30 s: the bot keeps running and answers what was sent meanwhile", async () => {
  const w = await world();
  const first = await say(w.alice, w.roomId, "!whoami");
  await waitForReply(w.alice, w.roomId, first);

  w.hs.pause();
  // Sent during the outage: the person's client waits with it, like the bot's requests.
  const pending = say(w.alice, w.roomId, "!machines");
  await sleep(30_000);
  assert.equal(w.bot.proc.exitCode, null, "the bot exited during the outage");
  w.hs.resume();
  const id = await pending;
  const reply = await waitForReply(w.alice, w.roomId, id, 20_000);
  assert.match(reply.getContent().body as string, /3 machines in clan 'family'/);
});

test("the homeserver goes away and comes back: commands sent meanwhile are answered", async () => {
  const w = await world();
  const first = await say(w.alice, w.roomId, "!whoami");
  await waitForReply(w.alice, w.roomId, first);

  await w.hs.goDown();
  await sleep(3000);
  // Arrives on the server while it is unreachable for the bot (as from another homeserver).
  const id = w.hs.sendAs(w.alice.getSafeUserId(), w.roomId, "m.room.message", { msgtype: "m.text", body: "!history" });
  await sleep(5000);
  assert.equal(w.bot.proc.exitCode, null, "the bot exited while the homeserver was away");
  await w.hs.comeBack();
  const reply = await waitForReply(w.alice, w.roomId, id, 60_000);
  assert.match(reply.getContent().body as string, /!whoami/);
  await w.bot.waitForLog(/homeserver is back/, 5000);
});

test("a deploy that ends while the homeserver is away: its result, ✅ and log come once, within seconds of the server's return", async () => {
  const w = await world({ fixture: { ...FAMILY, behaviour: { "machines update": { delayMs: 3000 } } } });
  commitFlake(w.flake);
  const id = await say(w.alice, w.roomId, "!deploy laptop");
  await waitForStatus(w.alice, w.roomId, id, /laptop\*: building/);
  const run = (await updateRuns(w.clanLog)).at(-1);
  assert.ok(run?.pgid);
  await w.hs.goDown();
  // The deploy ends meanwhile (its clan process is gone); the bot keeps what it owes the room.
  assert.ok(await groupGone(run.pgid, 20_000), "the deploy did not end while the homeserver was away");
  await sleep(2000);
  const back = Date.now();
  await w.hs.comeBack();
  await waitForReaction(w.alice, w.roomId, id, "✅", 30_000);
  const log = await waitForEvent(w.alice, w.roomId, (e) => e.replyEventId === id && e.getContent().msgtype === "m.file", 30_000, "the deploy log");
  assert.ok(Date.now() - back < 10_000, `the answers came ${Date.now() - back} ms after the homeserver was back`);
  assert.match(log.getContent().body as string, /deploy/);
  await sleep(3000);
  const fromBot = w.hs.roomEvents(w.roomId).filter((e) => e.sender === w.botUserId);
  const on = (pred: (e: (typeof fromBot)[number]) => boolean) => fromBot.filter(pred).length;
  assert.equal(on((e) => e.type === "m.reaction" && (e.content["m.relates_to"] as { event_id?: string; key?: string }).event_id === id && (e.content["m.relates_to"] as { key?: string }).key === "✅"), 1);
  assert.equal(on((e) => e.content["msgtype"] === "m.file"), 1);
});
