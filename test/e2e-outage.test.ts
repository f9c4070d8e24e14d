import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { test } from "node:test";
import { world } from "./support/e2e.ts";
import { say, waitForReply } from "./support/matrix-wait.ts";

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
