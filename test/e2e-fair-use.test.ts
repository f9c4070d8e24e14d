// One person cannot slow everyone down: commands per person are limited (one answer per window, however
// many come), quick clan reads are bounded per clan, and unknown names never evaluate the flake again.

import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { FAMILY, world, type World } from "./support/e2e.ts";
import type { StoredRoomEvent } from "./support/homeserver.ts";
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
/** The bot's first event relating to `id` that `pick` takes, as stored on the homeserver (waits up to 20 s). */
async function stored(id: string, pick: (e: StoredRoomEvent) => string | undefined): Promise<string> {
  for (const deadline = Date.now() + 20_000; Date.now() < deadline; await sleep(50)) {
    for (const e of w.hs.roomEvents(w.roomId)) {
      if (e.sender !== w.botUserId) continue;
      const found = pick(e);
      if (found !== undefined) return found;
    }
  }
  throw new Error(`nothing from the bot about ${id} in 20 s`);
}
const storedAnswer = (id: string) =>
  stored(id, (e) => ((e.content["m.relates_to"] as { "m.in_reply_to"?: { event_id?: string } } | undefined)?.["m.in_reply_to"]?.event_id === id ? String(e.content["body"]) : undefined));
const storedOutcome = (id: string) =>
  stored(id, (e) => {
    const r = e.content["m.relates_to"] as { event_id?: string; key?: string } | undefined;
    return e.type === "m.reaction" && r?.event_id === id && r.key !== "👀" ? r.key : undefined;
  });
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
  // The burst ran: read-only commands, so each answer is its outcome.
  for (const id of flood.slice(0, 5)) assert.match(await body(bob, id), /machines in clan 'family'|power level 0/);

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
  // 80 commands and their answers come faster than a person's client syncs them all (its timeline has gaps):
  // the answers are read where they are stored.
  for (const id of ids) {
    const [reply, outcome] = await Promise.all([storedAnswer(id), storedOutcome(id)]);
    assert.match(reply, /unknown machine '(ghost|phantom)-\d+[a-d]?'; known: laptop, media, nas\.[^]*!refresh \(operator\) reads it again/);
    assert.equal(outcome, "❓");
  }
  assert.equal(await clanRuns(), runsBefore, `an unknown name made the bot run clan: ${JSON.stringify((await readInvocations(w.clanLog)).slice(runsBefore).map((i) => i.argv))}`);

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
