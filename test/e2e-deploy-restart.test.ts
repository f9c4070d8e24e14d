import assert from "node:assert/strict";
import { test } from "node:test";
import { commitFlake, updateRuns, waitForStatus } from "./support/deploy-helpers.ts";
import { FAMILY, world } from "./support/e2e.ts";
import { groupGone, processesInGroup } from "../demo/fake-clan-fixture.ts";
import { reactionsOn, say, timeline, waitForEvent, waitForReaction, waitForReply } from "./support/matrix-wait.ts";

test("a bot killed during a deploy marks it interrupted on restart, stops its leftover clan processes, tells the room once, and re-runs nothing", async () => {
  const w = await world({ fixture: { ...FAMILY, behaviour: { "machines update": { perMachine: { nas: { hang: true } } } } } });
  commitFlake(w.flake);
  const id = await say(w.alice, w.roomId, "!deploy nas");
  await waitForStatus(w.alice, w.roomId, id, /nas\*: building/);
  const run = (await updateRuns(w.clanLog)).at(-1);
  assert.ok(run?.pgid);

  assert.equal(await w.bot.stop("SIGKILL"), "SIGKILL");
  assert.ok(processesInGroup(run.pgid).length > 0, "the clan process should outlive the killed bot (it is in its own process group)");

  w.bot = await w.startBot();
  const notice = await waitForEvent(
    w.alice,
    w.roomId,
    (e) => e.getSender() === w.botUserId && /was interrupted/.test((e.getContent().body as string | undefined) ?? ""),
    20_000,
    "the interrupted deploy to be told",
  );
  assert.match(
    notice.getContent().body as string,
    /⚠️ \*Deploy #\d+\* of nas by @alice:\S+ \(started \d+ s ago\) was interrupted: the bot stopped while it ran\.[\s\S]*nothing was run again[\s\S]*`!deploy nas`/,
  );
  assert.equal(notice.replyEventId, id);
  await waitForReaction(w.alice, w.roomId, id, "❌");
  assert.ok(await groupGone(run.pgid, 15_000), "the leftover clan process group was not stopped");

  const history = await say(w.alice, w.roomId, "!deploys");
  assert.match((await waitForReply(w.alice, w.roomId, history)).getContent().body as string, /#\d+\s+nas\s+@alice:\S+\s+.*⚠️ interrupted/);
  assert.equal((await updateRuns(w.clanLog)).length, 1, "the interrupted deploy was run again");

  // The machine is free again: a new deploy starts at once instead of waiting behind the dead one.
  const again = await say(w.alice, w.roomId, "!deploy nas");
  await waitForStatus(w.alice, w.roomId, again, /nas\*: building/);
  const cancel = await say(w.alice, w.roomId, "!cancel nas");
  await waitForReaction(w.alice, w.roomId, cancel, "✅", 20_000);

  await w.bot.stop("SIGTERM");
  w.bot = await w.startBot();
  await w.bot.waitForLog(/matrix front end ready/, 20_000);
  const marker = await say(w.alice, w.roomId, "!whoami");
  await waitForReaction(w.alice, w.roomId, marker, "✅");
  const told = timeline(w.alice, w.roomId).filter((e) => e.getSender() === w.botUserId && /was interrupted/.test((e.getContent().body as string | undefined) ?? ""));
  assert.equal(told.length, 1, "the room was told about the interrupted deploy more than once");
  assert.deepEqual(reactionsOn(w.alice, w.roomId, id), ["👀", "❌"]);
});

test("stopping the bot with SIGTERM during a deploy cancels it cleanly and says so", async () => {
  const w = await world({ fixture: { ...FAMILY, behaviour: { "machines update": { perMachine: { nas: { hang: true } } } } } });
  const id = await say(w.alice, w.roomId, "!deploy nas");
  await waitForStatus(w.alice, w.roomId, id, /nas\*: building/);
  const run = (await updateRuns(w.clanLog)).at(-1);
  await w.bot.stop("SIGTERM");
  const final = await waitForStatus(w.alice, w.roomId, id, /Cancelled/, 5000);
  assert.match(final, /🚫 \*nas\*: cancelled by the bot shutting down/);
  assert.deepEqual(reactionsOn(w.alice, w.roomId, id), ["👀", "❌"]);
  assert.deepEqual(processesInGroup(run?.pgid as number), []);
});
