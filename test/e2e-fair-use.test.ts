// One person cannot slow everyone down: commands per person are limited (one answer per window, however
// many come), quick clan reads are bounded per clan, and unknown names never evaluate the flake again.

import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { FAMILY, world, type World } from "./support/e2e.ts";
import { readInvocations, type FakeClanFixture } from "../demo/fake-clan-fixture.ts";
import { isReplyTo, reactionsOn, say, timeline, waitForOutcome, waitForReaction, waitForReply } from "./support/matrix-wait.ts";

const FIXTURE: FakeClanFixture = {
  ...FAMILY,
  backups: { nas: ["borg::nas::2026-11-18T01:00:00"], laptop: [], media: [] },
  behaviour: { "backups list": { delayMs: 1000 } },
};

// 5 commands at once per person, refilled over 10 min: none comes back during the test.
const w: World = await world({
  fixture: FIXTURE,
  config: (base) => ({ ...base, commands: { rateLimit: { requests: 5, window: "10m" } } }),
});
const bob = await w.person("bob");
const carol = await w.person("carol");

const body = async (client = w.alice, id: string): Promise<string> => (await waitForReply(client, w.roomId, id)).getContent().body as string;
const clanRuns = async (): Promise<number> => (await readInvocations(w.clanLog)).filter((i) => i.program === undefined).length;

test("a viewer flooding 30 commands: 5 run, one 'slow down' with ⛔, the other 24 nothing; others in the room are answered meanwhile", async () => {
  await body(w.alice, await say(w.alice, w.roomId, "!machines")); // the inventory is read once, before the flood
  const runsBefore = await clanRuns();

  const flood: string[] = [];
  let others: string[] = [];
  for (let i = 0; i < 30; i++) {
    flood.push(await say(bob, w.roomId, i % 3 === 2 ? `!whoami` : "!machines"));
    if (i === 15) others = [await say(carol, w.roomId, "!machines"), await say(w.alice, w.roomId, "!whoami")];
  }
  const [fromCarol, fromAlice] = others as [string, string];
  assert.match(await body(carol, fromCarol), /3 machines in clan 'family'/);
  assert.match(await body(w.alice, fromAlice), /power level 100, admin/);

  const slowDown = await body(bob, flood[5] as string);
  assert.match(slowDown, /^Slow down: at most 5 commands per person in 10 min here\. I did not run this one; try again in 2 min\. Until then I skip your commands without answering each of them\.$/);
  await waitForReaction(bob, w.roomId, flood[5] as string, "⛔");
  for (const id of flood.slice(0, 5)) assert.equal(await waitForOutcome(bob, w.roomId, id), "✅");

  // Every command of the flood is in the history, the skipped ones too.
  let history = "";
  for (let attempt = 0; attempt < 20; attempt++) {
    history = await body(w.alice, await say(w.alice, w.roomId, "!history --limit 50"));
    if ((history.match(/@bob:localhost .*⛔ too many/g) ?? []).length === 25) break;
    await sleep(250);
  }
  assert.equal((history.match(/@bob:localhost .*⛔ too many/g) ?? []).length, 25, history);

  const replies = timeline(bob, w.roomId).filter((e) => flood.some((id) => isReplyTo(e, id)));
  assert.equal(replies.length, 6, "one answer per window, not one per message");
  for (const id of flood.slice(6)) assert.deepEqual(reactionsOn(bob, w.roomId, id), [], "a skipped command gets no reaction either");
  assert.equal(await clanRuns(), runsBefore, "the flood started no clan process");
});

test("200 unknown machine names cause no clan evaluation; !refresh does, once", async () => {
  const runsBefore = await clanRuns();
  const ids: string[] = [];
  for (let i = 0; i < 40; i++) {
    ids.push(await say(w.alice, w.roomId, `!status ghost-${i}a ghost-${i}b ghost-${i}c ghost-${i}d`));
    ids.push(await say(w.alice, w.roomId, `!backups phantom-${i}`));
  }
  for (const id of ids) {
    assert.match(await body(w.alice, id), /unknown machine '(ghost|phantom)-\d+[a-d]?'; known: laptop, media, nas\.[^]*!refresh \(operator\) reads it again/);
    assert.equal(await waitForOutcome(w.alice, w.roomId, id), "❌");
  }
  assert.equal(await clanRuns(), runsBefore, "an unknown name made the bot evaluate the flake");

  assert.match(await body(w.alice, await say(w.alice, w.roomId, "!refresh")), /Read the flake of clan 'family' again: 3 machines/);
  const after = (await readInvocations(w.clanLog)).slice(runsBefore);
  assert.deepEqual(after.map((i) => i.argv[0]), ["select"]);
});

test("backup lists asked for at once start at most clan.parallel (2) clan processes; the others wait their turn", async () => {
  const before = (await readInvocations(w.clanLog)).length;
  const ids: string[] = [];
  for (const client of [w.alice, carol, w.alice, carol]) ids.push(await say(client, w.roomId, "!backups nas"));
  for (const id of ids) assert.match(await body(w.alice, id), /borg::nas::2026-11-18T01:00:00/);
  const lists = (await readInvocations(w.clanLog)).slice(before).filter((i) => i.argv[0] === "backups" && i.argv[1] === "list");
  assert.equal(lists.length, 4);
  const starts = lists.map((i) => Date.parse(i.time)).sort((a, b) => a - b);
  assert.ok((starts[2] as number) - (starts[0] as number) >= 900, `the third list started ${(starts[2] as number) - (starts[0] as number)} ms after the first`);
});
