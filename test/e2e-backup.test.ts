import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { EventType, RelationType, type MatrixClient } from "matrix-js-sdk";
import { editsOf, waitForStatus } from "./support/deploy-helpers.ts";
import { world, type World } from "./support/e2e.ts";
import { processesInGroup, readInvocations, type FakeClanFixture, type FakeClanInvocation } from "../demo/fake-clan-fixture.ts";
import { reactionsOn, say, waitForEvent, waitForReaction, waitForReply, waitForOutcome } from "./support/matrix-wait.ts";

const OLD = "borg::nas::2026-11-19T01:00:00";

const FIXTURE: FakeClanFixture = {
  machines: {
    nas: { tags: ["servers"], deploy: { targetHost: "root@nas.lan:2222" } },
    laptop: { deploy: { targetHost: "root@laptop.lan" } },
    media: { tags: ["servers"], deploy: { targetHost: "root@media.lan" } },
  },
  backups: { nas: ["borg::nas::2026-11-18T01:00:00", OLD], laptop: [], media: [] },
  behaviour: {
    "backups create": { delayMs: 1500, perMachine: { laptop: { fail: true }, media: { hang: true } } },
    "machines update": { delayMs: 2500, generateVars: false },
  },
};

const w: World = await world({
  fixture: FIXTURE,
  config: (base) => ({ ...base, backup: { timeout: "4s" }, commands: { confirmTimeout: "3s" } }),
});
const bob = await w.person("bob");
await w.alice.setPowerLevel(w.roomId, bob.getSafeUserId(), 50);

const outcome = (client: MatrixClient, commandId: string, timeoutMs = 20_000): Promise<string> => waitForOutcome(client, w.roomId, commandId, timeoutMs);
const replyText = async (client: MatrixClient, commandId: string): Promise<string> => (await waitForReply(client, w.roomId, commandId)).getContent().body as string;
const runs = async (what: string, machine: string): Promise<FakeClanInvocation[]> =>
  (await readInvocations(w.clanLog)).filter((i) => i.argv[0] === "backups" && i.argv[1] === what && i.argv[2] === machine);

test("!backup nas runs clan backups create, edits one status message, and ends with ✅, the duration and the newest archive", async () => {
  const id = await say(w.alice, w.roomId, "!backup nas");
  assert.equal(await outcome(w.alice, id), "✅");
  const final = await waitForStatus(w.alice, w.roomId, id, /Done in/);
  assert.match(final, /^\*Backup #\d+\* of nas \(every provider\) by @alice:\S+\n\n✅ Done in \d+ s\. Newest archive: `borg::nas::\d{4}-\d\d-\d\dT[\d:-]+`\.$/);
  const archive = /Newest archive: `([^`]+)`/.exec(final)?.[1] as string;
  const [create] = await runs("create", "nas");
  assert.deepEqual(create?.argv, ["backups", "create", "nas", "--flake", w.flake]);
  assert.equal(create?.env.NO_COLOR, "1");
  assert.equal(create?.stdinIsTTY, false);
  assert.deepEqual(reactionsOn(w.alice, w.roomId, id), ["👀", "✅"]);

  const list = await say(bob, w.roomId, "!backups nas");
  const listed = await replyText(bob, list);
  assert.match(listed, /^\*nas\*: 3 archives, the newest made \d+ (ms|s) ago\./);
  assert.ok(listed.includes(`• \`${archive}\``), listed);
  assert.ok(listed.indexOf(archive) < listed.indexOf(OLD), "the newest first");
  assert.match(listed, /Last successful backup by the bot: \d+ (ms|s) ago \(#\d+\)\./);

  const all = await say(bob, w.roomId, "!backups");
  const table = await replyText(bob, all);
  assert.match(table, new RegExp(`nas\\s+\\d+ (ms|s) ago \\(#\\d+\\)\\s+\`${archive}\`\\s+✅ ok`));
  assert.match(table, /laptop\s+never/);
});

test("a failing backup ends with ❌, the duration and the error's last lines", async () => {
  const id = await say(w.alice, w.roomId, "!backup laptop");
  assert.equal(await outcome(w.alice, id), "❌");
  const final = await waitForStatus(w.alice, w.roomId, id, /Failed after/);
  assert.match(final, /❌ Failed after \d+ s \(exit status 1\)\.\n\nLast lines from laptop:\n\n```\n[\s\S]*Job for borgbackup-job-laptop\.service failed/);
});

test("a second backup of a machine is refused while one runs; !cancel stops it, others' only for admins", async () => {
  const before = (await runs("create", "nas")).length;
  const id = await say(w.alice, w.roomId, "!backup nas");
  const backupId = /#(\d+)/.exec(await waitForStatus(w.alice, w.roomId, id, /Backup #\d+/))?.[1];
  while ((await runs("create", "nas")).length === before) await sleep(50);
  const second = await say(bob, w.roomId, "!backup nas");
  assert.match(await replyText(bob, second), new RegExp(`A backup of nas is running already: #${backupId} by @alice:\\S+, asked for \\d+ (ms|s) ago\\. Backups of one machine never overlap; !cancel ${backupId} stops that one\\.`));
  assert.equal(await outcome(bob, second), "⛔");
  const notTheirs = await say(bob, w.roomId, "!cancel nas");
  assert.match(await replyText(bob, notTheirs), /was started by @alice:\S+; only they or an admin/);
  const cancel = await say(w.alice, w.roomId, "!cancel nas");
  assert.match(await replyText(w.alice, cancel), new RegExp(`🚫 Cancelled #${backupId} for nas\\.`));
  assert.equal(await outcome(w.alice, id), "❌");
  assert.match(await waitForStatus(w.alice, w.roomId, id, /Cancelled/), /🚫 Cancelled by @alice:\S+ after \d+ (ms|s)\./);
  assert.equal((await runs("create", "nas")).length, before + 1, "the refused backup ran");
});

test("a hanging backup is stopped at backup.timeout, with its processes", async () => {
  const id = await say(w.alice, w.roomId, "!backup media");
  assert.equal(await outcome(w.alice, id, 30_000), "❌");
  assert.match(await waitForStatus(w.alice, w.roomId, id, /Timed out/), /⏱️ Timed out: stopped after 4 s\./);
  const [create] = await runs("create", "media");
  assert.deepEqual(processesInGroup(create?.pgid as number), []);
});

test("a backup waits while its machine is deployed, and says behind what", async () => {
  const deploy = await say(w.alice, w.roomId, "!deploy nas");
  await waitForStatus(w.alice, w.roomId, deploy, /nas\*: building/);
  const id = await say(bob, w.roomId, "!backup nas");
  assert.match(await waitForStatus(w.alice, w.roomId, id, /queued/), /⏳ queued, next behind #\d+ by @alice:\S+ \(deploying it since \d+ (ms|s) ago\)/);
  assert.equal(await outcome(w.alice, deploy), "✅");
  assert.equal(await outcome(w.alice, id), "✅");
  const deployed = (await readInvocations(w.clanLog)).filter((i) => i.argv[0] === "machines" && i.argv[2] === "nas").at(-1);
  const backedUp = (await runs("create", "nas")).at(-1);
  assert.ok(Date.parse(backedUp?.time as string) - Date.parse(deployed?.time as string) >= 2400, "the backup ran while the deploy did");
});

test("!restore is for admins, asks first, runs nothing without the asker's ✅, and with it restores like a deploy", async () => {
  const refused = await say(bob, w.roomId, `!restore nas ${OLD}`);
  assert.match(await replyText(bob, refused), /`!restore` needs the admin level/);
  assert.equal(await outcome(bob, refused), "⛔");

  const unconfirmed = await say(w.alice, w.roomId, `!restore nas ${OLD}`);
  const question = await waitForReply(w.alice, w.roomId, unconfirmed);
  assert.match(question.getContent().body as string, new RegExp(`Restore nas from ${OLD}\\?\\* This replaces the data of every backed-up service on nas`));
  assert.equal(await outcome(w.alice, unconfirmed), "❌");
  await waitForEvent(
    w.alice,
    w.roomId,
    () => editsOf(w.alice, w.roomId, question.getId() as string).some((e) => /not confirmed within 3 s: nothing was restored/.test(e.getContent().body as string)),
    5000,
    "the question to say it timed out",
  );

  const unknown = await say(w.alice, w.roomId, "!restore nas borg::nas::2026-11-19T01:00:01");
  assert.match(await replyText(w.alice, unknown), new RegExp(`nas has no archive 'borg::nas::2026-11-19T01:00:01' from borgbackup\\. Did you mean '${OLD}'\\?`));
  assert.equal((await runs("restore", "nas")).length, 0, "something was restored");

  const id = await say(w.alice, w.roomId, `!restore nas ${OLD} --service data`);
  const ask = await waitForReply(w.alice, w.roomId, id);
  await waitForReaction(w.alice, w.roomId, ask.getId() as string, "✅");
  // Someone else's ✅ is not the asker's.
  await bob.sendEvent(w.roomId, EventType.Reaction, { "m.relates_to": { rel_type: RelationType.Annotation, event_id: ask.getId() as string, key: "✅" } });
  await sleep(500);
  assert.equal((await runs("restore", "nas")).length, 0, "bob's ✅ confirmed alice's restore");
  await w.alice.sendEvent(w.roomId, EventType.Reaction, { "m.relates_to": { rel_type: RelationType.Annotation, event_id: ask.getId() as string, key: "✅" } });
  assert.equal(await outcome(w.alice, id), "✅");
  const final = await waitForStatus(w.alice, w.roomId, id, /Done after/);
  assert.match(final, new RegExp(`\\*Restore #\\d+\\* of nas by @alice:\\S+: \`${OLD}\` from borgbackup, data`));
  assert.match(final, /✅ \*nas\*: restored in \d+ (ms|s)/);
  const [restore] = await runs("restore", "nas");
  assert.deepEqual(restore?.argv, ["backups", "restore", "nas", "borgbackup", OLD, "--service", "data", "--flake", w.flake]);
  const history = await say(bob, w.roomId, "!deploys nas");
  assert.match(await replyText(bob, history), /#\d+\s+nas \(restore\)\s+@alice:\S+/);
});
