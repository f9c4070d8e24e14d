// Every command gets exactly one outcome, whatever happens to the bot: 300 commands at 10 a second
// while the bot is killed (kill -9) ten times at random moments and started again at once.
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { test } from "node:test";
import { commitFlake, updateRuns } from "./support/deploy-helpers.ts";
import { FAMILY, world } from "./support/e2e.ts";
import { say } from "./support/matrix-wait.ts";

const COMMANDS = 300;
const PER_SECOND = 10;
const KILLS = 10;

test("300 commands at 10 a second through ten kill -9s: each answered exactly once, no deploy run twice", { timeout: 240_000 }, async () => {
  const w = await world({ fixture: { ...FAMILY, behaviour: { "machines update": { delayMs: 1500 } } } });
  commitFlake(w.flake);
  const duration = (COMMANDS / PER_SECOND) * 1000;
  // Kill moments spread over the run, at random within their tenth of it.
  const killAt = Array.from({ length: KILLS }, (_, i) => ((i + Math.random() * 0.8) * duration) / KILLS);
  const started = Date.now();
  const killer = (async () => {
    for (const at of killAt) {
      await sleep(Math.max(0, at - (Date.now() - started)));
      await w.bot.stop("SIGKILL");
      w.bot = await w.startBot();
    }
  })();
  const sent: Array<{ id: string; deploy: boolean }> = [];
  for (let i = 0; i < COMMANDS; i++) {
    await sleep(Math.max(0, (i * 1000) / PER_SECOND - (Date.now() - started)));
    const deploy = i % 30 === 15;
    sent.push({ id: await say(w.alice, w.roomId, deploy ? "!deploy laptop" : "!whoami"), deploy });
  }
  await killer;

  const fromBot = () => w.hs.roomEvents(w.roomId).filter((e) => e.sender === w.botUserId);
  const repliesTo = (id: string) =>
    fromBot().filter((e) => e.type === "m.room.message" && (e.content["m.relates_to"] as { "m.in_reply_to"?: { event_id?: string } } | undefined)?.["m.in_reply_to"]?.event_id === id);
  const outcomesOn = (id: string) =>
    fromBot().filter((e) => {
      const r = e.content["m.relates_to"] as { rel_type?: string; event_id?: string; key?: string } | undefined;
      return e.type === "m.reaction" && r?.event_id === id && ["✅", "❌", "⛔", "❓"].includes(r.key ?? "");
    });
  const answered = (c: { id: string; deploy: boolean }): boolean => (c.deploy ? outcomesOn(c.id).length > 0 : repliesTo(c.id).length > 0);
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline && !sent.every(answered)) await sleep(500);
  // Time for anything that would come twice to come.
  await sleep(3000);

  const lost = sent.filter((c) => !answered(c));
  assert.deepEqual(lost.map((c) => c.id), [], `${lost.length} of ${COMMANDS} commands got no outcome`);
  for (const c of sent) {
    if (c.deploy) assert.equal(outcomesOn(c.id).length, 1, `deploy ${c.id} has ${outcomesOn(c.id).length} outcomes`);
    else assert.equal(repliesTo(c.id).length, 1, `${c.id} was answered ${repliesTo(c.id).length} times`);
  }
  // No deploy ran twice: one `clan machines update` at most per deploy command.
  const runs = await updateRuns(w.clanLog);
  assert.ok(runs.length <= sent.filter((c) => c.deploy).length, `${runs.length} clan runs for ${sent.filter((c) => c.deploy).length} deploys`);
});
