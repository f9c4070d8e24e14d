// !secret set in an encrypted direct chat: the bot asks for the value, the person's next message goes
// to `clan vars set` on stdin and is redacted, and the value is nowhere else: not in a room event, a
// log line, the audit, or any file of the bot's state. Refused in a shared room and an unencrypted one;
// a value typed on the command line is redacted at once.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { KnownMembership, Preset, type MatrixClient } from "matrix-js-sdk";
import { world, type World } from "./support/e2e.ts";
import { eventually } from "./support/e2ee-client.ts";
import { fakeClanPath, readInvocations, type FakeClanFixture } from "../demo/fake-clan-fixture.ts";
import { say, timeline, waitForEvent, waitForOutcome, waitForReply } from "./support/matrix-wait.ts";
import { openDatabase } from "../storage/db.ts";

const FIXTURE: FakeClanFixture = {
  machines: { nas: { deploy: { targetHost: "root@nas.lan:2222" } } },
  vars: { nas: { borg: { files: { passphrase: { secret: true }, "repo.pub": { secret: false, value: "borg-pubkey-1" } } } } },
};
const GIT_ENV = { GIT_AUTHOR_NAME: "clanbot", GIT_AUTHOR_EMAIL: "bot@example.org", GIT_COMMITTER_NAME: "clanbot", GIT_COMMITTER_EMAIL: "bot@example.org" };
const VALUE = "correct-horse-battery-4711-Zq";
const TYPO_VALUE = "typed-on-the-command-line-0815";

const w: World = await world({ encrypted: true, fixture: FIXTURE, env: GIT_ENV });
const git = (...args: string[]): string => execFileSync("git", ["-C", w.flake, ...args], { encoding: "utf8", env: { ...process.env, ...GIT_ENV } });
git("init", "-q", "-b", "main");
git("add", ".");
git("commit", "-q", "-m", "init");

async function directChat(client: MatrixClient, encrypted: boolean): Promise<string> {
  const { room_id: roomId } = await client.createRoom({
    is_direct: true,
    preset: Preset.TrustedPrivateChat,
    invite: [w.botUserId],
    ...(encrypted ? { initial_state: [{ type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } }] } : {}),
  });
  await waitForEvent(
    client,
    roomId,
    (e) => e.getType() === "m.room.member" && e.getStateKey() === w.botUserId && e.getContent().membership === KnownMembership.Join,
    20_000,
    "the bot to join the direct chat",
  );
  if (encrypted) await eventually("the chat's encryption to reach the client", async () => (await client.getCrypto()?.isEncryptionEnabledInRoom(roomId)) === true);
  return roomId;
}

const text = async (roomId: string, id: string): Promise<string> => (await waitForReply(w.alice, roomId, id, 20_000)).getContent().body as string;

test("refused in the shared clan room, with how to open the right chat; a value on the command line is redacted at once", async () => {
  const id = await say(w.alice, w.roomId, "!secret set nas borg/passphrase");
  assert.match(await text(w.roomId, id), /This room is shared: a value sent here would be seen by everyone in it.*Open a direct chat with me/);
  assert.equal(await waitForOutcome(w.alice, w.roomId, id), "⛔");
  // Without the power to redact, the bot says so.
  const kept = await say(w.alice, w.roomId, `!secret set nas borg/passphrase ${TYPO_VALUE}`);
  assert.match(await text(w.roomId, kept), /Never type the value on the command line\. I could not remove your message: delete it yourself/);
  await w.alice.redactEvent(w.roomId, kept);
  await w.alice.setPowerLevel(w.roomId, w.botUserId, 50);
  const typo = await say(w.alice, w.roomId, `!secret set nas borg/passphrase ${TYPO_VALUE}`);
  assert.match(await text(w.roomId, typo), /Never type the value on the command line\. I removed your message/);
  assert.equal(await waitForOutcome(w.alice, w.roomId, typo), "⛔");
  const stored = w.hs.roomEvents(w.roomId).find((e) => e.event_id === typo);
  assert.deepEqual(stored?.content, {}, "the message with the value is redacted on the server");
});

test("refused in an unencrypted direct chat", async () => {
  const dm = await directChat(w.alice, false);
  const id = await say(w.alice, dm, "!secret set nas borg/passphrase");
  assert.match(await text(dm, id), /This chat is not encrypted: the homeserver would keep the value in clear/);
  assert.equal(await waitForOutcome(w.alice, dm, id), "⛔");
});

test("in an encrypted direct chat: asked, passed on stdin, redacted, committed; the value is nowhere else", async () => {
  const dm = await directChat(w.alice, true);
  const id = await say(w.alice, dm, "!secret set nas borg/passphrase");
  const ask = await text(dm, id);
  assert.match(ask, /Send me the value of borg\/passphrase for nas\* as your next message here/);
  const valueEvent = await say(w.alice, dm, VALUE);
  assert.equal(await waitForOutcome(w.alice, dm, id, 30_000), "✅");
  const answers = timeline(w.alice, dm).filter((e) => e.getSender() === w.botUserId && e.getType() === "m.room.message");
  const done = answers.map((e) => e.getContent().body as string).find((b) => /Set borg\/passphrase of nas/.test(b)) ?? "";
  const head = git("rev-parse", "--short=12", "HEAD").trim();
  assert.match(done, /Set borg\/passphrase of nas; clan committed it: `[0-9a-f]+/);
  assert.ok(done.includes(head.slice(0, 7)), `the answer names clan's commit ${head}: ${done}`);
  assert.match(git("log", "-1", "--format=%s"), /^vars: update borg\/passphrase for machine nas/);
  // The fake clan got it on stdin: it is now the var's value; it never was an argument.
  const got = execFileSync(fakeClanPath, ["vars", "get", "nas", "borg/passphrase", "--flake", w.flake], { encoding: "utf8" });
  assert.equal(got, VALUE);
  const runs = (await readInvocations(w.clanLog)).filter((r) => r.argv[0] === "vars" && r.argv[1] === "set");
  assert.deepEqual(runs.map((r) => r.argv), [["vars", "set", "nas", "borg/passphrase", "--flake", w.flake]]);
  // The message is redacted.
  await eventually("the value's message to be redacted", async () => JSON.stringify(w.hs.roomEvents(dm).find((e) => e.event_id === valueEvent)?.content) === "{}");
  // Nowhere: room events (all rooms, as stored and as alice's client shows them), the bot's log, the audit, the state.
  for (const room of [w.roomId, dm]) {
    assert.ok(!JSON.stringify(w.hs.roomEvents(room)).includes(VALUE), `in the events of ${room}`);
    assert.ok(!JSON.stringify(timeline(w.alice, room).map((e) => [e.getContent(), e.getOriginalContent()])).includes(VALUE), `shown in ${room}`);
  }
  for (const secret of [VALUE, TYPO_VALUE]) {
    assert.ok(!w.bot.log.some((l) => l.includes(secret)), "in the bot's log");
    assert.ok(!JSON.stringify(await readInvocations(w.clanLog)).includes(secret), "in the clan invocations");
  }
  const db = await openDatabase(join(w.dir, "state", "clanbot.sqlite3"));
  const lines = (await db.all<{ line: string }>("SELECT line FROM audit WHERE command = 'secret'")).map((r) => r.line);
  await db.close();
  assert.deepEqual(lines.slice(-1), ["!secret set nas borg/passphrase"]);
  assert.ok(lines.every((l) => !l.includes(TYPO_VALUE)), "the value typed on a command line is in the audit");
  await w.bot.stop("SIGTERM");
  const files = readdirSync(join(w.dir, "state"), { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
  assert.ok(files.length > 5);
  for (const f of files) {
    const data = readFileSync(join(f.parentPath, f.name));
    for (const secret of [VALUE, TYPO_VALUE]) {
      assert.ok(!data.includes(Buffer.from(secret)) && !data.includes(Buffer.from(secret, "utf16le")), `${secret} in ${join(f.parentPath, f.name)}`);
    }
  }
});
