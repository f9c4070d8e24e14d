import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { MatrixEvent } from "matrix-js-sdk";
import { waitForStatus } from "./support/deploy-helpers.ts";
import { world, type World } from "./support/e2e.ts";
import { groupGone, processesInGroup, readInvocations, type FakeClanFixture } from "../demo/fake-clan-fixture.ts";
import { reactionsOn, say, timeline, waitForEvent, waitForOutcome, waitForReaction, waitForReply } from "./support/matrix-wait.ts";

const FIXTURE: FakeClanFixture = {
  machines: { nas: { deploy: { targetHost: "root@nas.lan" } }, media: { deploy: { targetHost: "root@media.lan" } } },
  backups: { nas: [], media: [] },
  behaviour: { "backups create": { perMachine: { media: { hang: true } } } },
};

const w: World = await world({ fixture: FIXTURE });

const posts = (pattern: RegExp): MatrixEvent[] =>
  timeline(w.alice, w.roomId).filter((e) => e.getSender() === w.botUserId && pattern.test((e.getContent().body as string | undefined) ?? ""));

test("schedules survive a restart; a run that fell due while the bot was down runs once at start-up, marked late", async () => {
  // Once a day, at a second a few seconds from now (UTC): the bot is stopped over it.
  const at = new Date(Date.now() + 6000);
  const cron = `${at.getUTCSeconds()} ${at.getUTCMinutes()} ${at.getUTCHours()} * * *`;
  const id = await say(w.alice, w.roomId, `!schedule backup nas "${cron}" --tz UTC`);
  assert.match((await waitForReply(w.alice, w.roomId, id)).getContent().body as string, /Schedule #1: backups of nas/);
  await w.bot.stop("SIGTERM");
  while (Date.now() < at.getTime() + 2000) await sleep(200);

  w.bot = await w.startBot();
  const late = await waitForEvent(w.alice, w.roomId, (e) => e.getSender() === w.botUserId && /^🟢 Backup of \*nas\*/.test(e.getContent().body as string), 20_000, "the late run");
  assert.match(late.getContent().body as string, /_#\d+, schedule #1; late: it was due \d+ s ago, while the bot was down\._$/);
  await sleep(3000);
  assert.equal(posts(/Backup of \*nas\*/).length, 1, "the missed run ran more than once");
  const creates = (await readInvocations(w.clanLog)).filter((i) => i.argv[1] === "create");
  assert.equal(creates.length, 1);
  const list = await say(w.alice, w.roomId, "!schedules");
  assert.match((await waitForReply(w.alice, w.roomId, list)).getContent().body as string, /#1\s+nas\s+.*in (23|24) h/);
});

test("a bot killed during a backup marks it interrupted on restart, stops its leftover clan processes, and tells the command once", async () => {
  const id = await say(w.alice, w.roomId, "!backup media");
  await waitForStatus(w.alice, w.roomId, id, /Backup #\d+/);
  let create;
  while (!(create = (await readInvocations(w.clanLog)).find((i) => i.argv[1] === "create" && i.argv[2] === "media"))) await sleep(50);
  await sleep(300);
  assert.equal(await w.bot.stop("SIGKILL"), "SIGKILL");
  assert.ok(processesInGroup(create.pgid as number).length > 0, "the clan process should outlive the killed bot");

  w.bot = await w.startBot();
  const told = await waitForEvent(w.alice, w.roomId, (e) => e.replyEventId === id && /was interrupted/.test(e.getContent().body as string), 20_000, "the interrupted backup");
  assert.match(told.getContent().body as string, /⚠️ Backup #\d+ of \*media\* \(every provider\) by @alice:\S+ was interrupted: the bot stopped while it ran\. Nothing was run again; `!backup media` starts a new one\./);
  await waitForReaction(w.alice, w.roomId, id, "❌");
  assert.ok(await groupGone(create.pgid as number, 15_000), "the leftover clan process group was not stopped");

  await w.bot.stop("SIGTERM");
  w.bot = await w.startBot();
  await w.bot.waitForLog(/matrix front end ready/, 20_000);
  const marker = await say(w.alice, w.roomId, "!whoami");
  assert.equal(await waitForOutcome(w.alice, w.roomId, marker), "✅");
  assert.equal(posts(/was interrupted/).length, 1, "the interrupted backup was told more than once");
  assert.deepEqual(reactionsOn(w.alice, w.roomId, id), ["👀", "❌"]);
  const all = await say(w.alice, w.roomId, "!backups");
  assert.match((await waitForReply(w.alice, w.roomId, all)).getContent().body as string, /media\s+never\s+⚠️ interrupted/);
});
