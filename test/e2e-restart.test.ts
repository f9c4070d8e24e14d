import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { test } from "node:test";
import { world } from "./support/e2e.ts";
import { reactionsOn, say, timeline, waitForReaction, waitForReply } from "./support/matrix-wait.ts";

/** clan runs for commands: the bot's start-up question of which VM backend applies (`clan vms --help`) is none. */
async function clanInvocations(path: string): Promise<string[][]> {
  const text = await readFile(path, "utf8").catch(() => "");
  return text
    .split("\n")
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { argv: string[] }).argv)
    // What the bot asks its clan at start: which subcommands it has (VMs, dry runs).
    .filter((argv) => !["vms --help", "machines build --help"].includes(argv.join(" ")));
}

test("after a crash the bot answers what was sent while it was down, once, and never old commands again", async () => {
  const w = await world();
  const before = await say(w.alice, w.roomId, "!whoami");
  await waitForReaction(w.alice, w.roomId, before, "✅");
  assert.equal(await w.bot.stop("SIGKILL"), "SIGKILL");

  const whileDown = await say(w.alice, w.roomId, "!machines");
  w.bot = await w.startBot();
  const reply = await waitForReply(w.alice, w.roomId, whileDown, 20_000);
  assert.match(reply.getContent().body as string, /3 machines in clan 'family'/);

  // A marker sent after the restart is answered after everything the bot would replay.
  const marker = await say(w.alice, w.roomId, "!whoami");
  await waitForReaction(w.alice, w.roomId, marker, "✅");
  await w.bot.stop("SIGTERM");
  w.bot = await w.startBot();
  await w.bot.waitForLog(/matrix front end ready/, 20_000);
  const marker2 = await say(w.alice, w.roomId, "!whoami");
  await waitForReaction(w.alice, w.roomId, marker2, "✅");

  const repliesTo = (id: string): number => timeline(w.alice, w.roomId).filter((e) => e.replyEventId === id).length;
  assert.equal(repliesTo(before), 1, "the command from before the crash was answered again");
  assert.equal(repliesTo(whileDown), 1);
  assert.equal(repliesTo(marker), 1);
  assert.deepEqual(reactionsOn(w.alice, w.roomId, before), ["👀", "✅"]);
});

test("a command older than matrix.maxCommandAge is answered with its age and not run", async () => {
  const w = await world();
  await w.bot.stop("SIGTERM");
  const old = await say(w.alice, w.roomId, "!refresh");
  await sleep(3000);
  w.bot = await w.startBot({ ...w.config, matrix: { ...(w.config["matrix"] as object), maxCommandAge: "2s" } });
  const reply = await waitForReply(w.alice, w.roomId, old, 20_000);
  assert.match(reply.getContent().body as string, /I did not run `!refresh`: it was sent \d+ s ago, while I was away.*older than 2 s.*Send it again/);
  await waitForReaction(w.alice, w.roomId, old, "⛔");
  const ran = await clanInvocations(w.clanLog);
  assert.equal(ran.length, 0, `clan ran for an expired command: ${JSON.stringify(ran)}`);
});

test("commands sent while the bot was down are answered even when more chat than one sync brings came after them", async () => {
  const w = await world();
  const first = await say(w.alice, w.roomId, "!whoami");
  await waitForReaction(w.alice, w.roomId, first, "✅");
  assert.equal(await w.bot.stop("SIGKILL"), "SIGKILL");
  const commands: string[] = [];
  for (let i = 0; i < 30; i++) commands.push(await say(w.alice, w.roomId, `!whoami`));
  for (let i = 0; i < 150; i++) await say(w.alice, w.roomId, `chat line ${i}`);
  w.bot = await w.startBot();
  await w.bot.waitForLog(/read back through a gap/, 30_000);
  for (const id of commands) await waitForReply(w.alice, w.roomId, id, 30_000);
  const repliesTo = (id: string): number => w.hs.roomEvents(w.roomId).filter((e) => e.sender === w.botUserId && (e.content["m.relates_to"] as { "m.in_reply_to"?: { event_id?: string } } | undefined)?.["m.in_reply_to"]?.event_id === id).length;
  for (const id of [first, ...commands]) assert.equal(repliesTo(id), 1, `${id} was answered ${repliesTo(id)} times`);
});
