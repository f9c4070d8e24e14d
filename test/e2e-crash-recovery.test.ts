// Commands the bot was running when it was killed: a read-only one is answered after the restart, once;
// one that changes things is never run again, and its room is told once (also after more restarts).
import assert from "node:assert/strict";
import { test } from "node:test";
import { FAMILY, world, type World } from "./support/e2e.ts";
import { fakeNixPath } from "../demo/fake-clan-fixture.ts";
import { say, waitForEvent, waitForReaction, waitForReply } from "./support/matrix-wait.ts";
import { killVmsAfter } from "./support/vm-helpers.ts";

const w: World = await world({
  fixture: { ...FAMILY, behaviour: { select: { delayMs: 3000 }, "nix build": { delayMs: 60_000 } } },
  config: (base) => ({ ...base, nix: { command: fakeNixPath }, vm: { max: 2, startGrace: "1s" } }),
});
killVmsAfter(w.clanLog);

const fromBot = (id: string) =>
  w.hs
    .roomEvents(w.roomId)
    .filter((e) => e.sender === w.botUserId && e.type === "m.room.message" && (e.content["m.relates_to"] as { "m.in_reply_to"?: { event_id?: string } } | undefined)?.["m.in_reply_to"]?.event_id === id);

test("a read-only command cut short by a kill -9 is answered after the restart, once", async () => {
  const id = await say(w.alice, w.roomId, "!machines");
  // Taken (👀 shows once the answer takes more than a moment), not answered yet: the inventory read is slow.
  await waitForReaction(w.alice, w.roomId, id, "👀", 10_000);
  assert.equal(await w.bot.stop("SIGKILL"), "SIGKILL");
  assert.equal(fromBot(id).length, 0);
  w.bot = await w.startBot();
  const reply = await waitForReply(w.alice, w.roomId, id, 30_000);
  assert.match(reply.getContent().body as string, /3 machines in clan 'family'/);
  await w.bot.stop("SIGTERM");
  w.bot = await w.startBot();
  await w.bot.waitForLog(/matrix front end ready/, 30_000);
  const marker = await say(w.alice, w.roomId, "!whoami");
  await waitForReply(w.alice, w.roomId, marker, 15_000);
  assert.equal(fromBot(id).length, 1);
});

test("a command that changes things, cut short, is not run again; its room is told once", async () => {
  const id = await say(w.alice, w.roomId, "!vm run media");
  await waitForReaction(w.alice, w.roomId, id, "👀", 10_000);
  await w.bot.waitForLog(/nix.*build|building/i, 15_000).catch(() => undefined);
  assert.equal(await w.bot.stop("SIGKILL"), "SIGKILL");
  w.bot = await w.startBot();
  const told = await waitForEvent(w.alice, w.roomId, (e) => e.replyEventId === id && /cut short when I stopped/.test(String(e.getContent().body)), 30_000, "the notice");
  assert.match(String(told.getContent().body), /did not run it again/);
  await waitForReaction(w.alice, w.roomId, id, "❌", 10_000);
  await w.bot.stop("SIGKILL");
  w.bot = await w.startBot();
  await w.bot.waitForLog(/matrix front end ready/, 30_000);
  const marker = await say(w.alice, w.roomId, "!whoami");
  await waitForReply(w.alice, w.roomId, marker, 15_000);
  assert.equal(fromBot(id).filter((e) => /cut short/.test(String(e.content["body"]))).length, 1);
  const vmRuns = (await import("node:fs/promises")).readFile(w.clanLog, "utf8");
  assert.equal((await vmRuns).split("\n").filter((l) => l.includes("system.build.vm")).length <= 1, true, "the VM build was started again");
});
