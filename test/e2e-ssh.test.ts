// Machines over SSH from the room, end to end: the real bot, the test homeserver, people on
// matrix-js-sdk, and each clan machine a real sshd (test/support/fake-machine.ts).

import assert from "node:assert/strict";
import { join } from "node:path";
import { after, test } from "node:test";
import { EventType, RelationType, type MatrixClient } from "matrix-js-sdk";
import { loadBotKey } from "../ops/ssh-key.ts";
import { waitForStatus } from "./support/deploy-helpers.ts";
import { world, type World } from "./support/e2e.ts";
import type { FakeClanFixture } from "../demo/fake-clan-fixture.ts";
import { FakeMachine, freePort } from "./support/fake-machine.ts";
import { say, waitForEvent, waitForReaction, waitForReply, waitForOutcome } from "./support/matrix-wait.ts";
import { tempDir } from "./support/temp-dir.ts";

const dir = await tempDir("clanbot-e2e-ssh-");
const keyFile = join(dir, "bot-key", "id_ed25519");
const key = loadBotKey(keyFile, true);
const start = (name: string, o: Partial<Parameters<typeof FakeMachine.start>[0]> = {}) =>
  FakeMachine.start({ dir: join(dir, name), authorizedKeys: [key.publicLine], hostName: name, ...o });
const laptop = await start("laptop", { rebootDowntimeMs: 600 });
const nas = await start("nas", { generations: 3, failedUnits: ["borgbackup-job-offsite.service"] });
after(() => Promise.all([laptop.stop(), nas.stop()]));

const FIXTURE: FakeClanFixture = {
  machines: {
    laptop: { tags: ["family"], deploy: { targetHost: laptop.target } },
    nas: { tags: ["servers"], deploy: { targetHost: nas.target } },
    tv: { tags: ["family"], deploy: { targetHost: `root@127.0.0.1:${await freePort()}` } },
  },
};

const w: World = await world({
  fixture: FIXTURE,
  config: (base) => ({ ...base, ssh: { keyFile, timeout: "3s", rebootTimeout: "15s", rebootPoll: "200ms" }, commands: { confirmTimeout: "5s" } }),
});
const bob = await w.person("bob");
await w.alice.setPowerLevel(w.roomId, bob.getSafeUserId(), 50);

const outcome = (client: MatrixClient, commandId: string, timeoutMs = 20_000): Promise<string> => waitForOutcome(client, w.roomId, commandId, timeoutMs);

/** Answers the bot's question to `commandId` with the asker's ✅. */
async function confirm(client: MatrixClient, commandId: string, pattern: RegExp): Promise<void> {
  const question = await waitForReply(client, w.roomId, commandId);
  assert.match(question.getContent().body as string, pattern);
  await waitForReaction(client, w.roomId, question.getId() as string, "✅");
  await client.sendEvent(w.roomId, EventType.Reaction, { "m.relates_to": { rel_type: RelationType.Annotation, event_id: question.getId() as string, key: "✅" } });
}

const body = (e: { getContent(): Record<string, unknown> }): string => e.getContent().body as string;

test("!status: one table for all machines, the unreachable one explained, host keys pinned on first contact", async () => {
  const id = await say(w.alice, w.roomId, "!status");
  const reply = body(await waitForReply(w.alice, w.roomId, id, 20_000));
  assert.match(reply, /^3 machines: 2 up, 1 not\./);
  assert.match(reply, /\*laptop\* +🟢 up .* 25\.11 \(5e2a59a\), state 25\.11 +`[0-9a-z]{8}` gen 2 +no +none +\d+% of [\d.]+ GB +not deployed by me/);
  assert.match(reply, /\*nas\* +🟢 up .* gen 3 +no +⚠️ 1: borgbackup-job-offsite\.service/);
  assert.match(reply, /\*tv\* +🔴 unreachable/);
  assert.match(reply, /\*tv\* \(root@127\.0\.0\.1:\d+\): cannot connect to 127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
  assert.match(reply, /First contact with laptop, nas: I pinned their host keys\./);
  assert.equal(await outcome(w.alice, id), "✅");
});

test("!sshkey shows the bot's public key and where it goes", async () => {
  const id = await say(w.alice, w.roomId, "!sshkey");
  const reply = body(await waitForReply(w.alice, w.roomId, id));
  assert.ok(reply.includes(key.publicLine), reply);
  assert.match(reply, /allowedKeys\."clanbot"/);
  assert.ok(!reply.includes("PRIVATE"));
});

test("!rollback needs admin; confirmed, it activates the previous generation, reports it, and shows in !deploys", async () => {
  const refused = await say(bob, w.roomId, "!rollback nas");
  assert.match(body(await waitForReply(bob, w.roomId, refused)), /needs the admin level/);
  assert.equal(await outcome(bob, refused), "⛔");

  const id = await say(w.alice, w.roomId, "!rollback nas");
  await confirm(w.alice, id, /Roll nas back to its previous system generation\?/);
  const gen2 = await nas.generationPath(2);
  const final = await waitForStatus(w.alice, w.roomId, id, /Done after/, 20_000);
  assert.match(final, new RegExp(`✅ \\*nas\\*: rolled back to generation 2 in \\d+ (ms|s): \`${gen2}\``));
  assert.equal(await outcome(w.alice, id), "✅");
  assert.equal(await nas.currentSystem(), gen2);
  assert.deepEqual(await nas.calls(), [
    "systemctl --failed --no-legend --plain",
    "nix-env --profile /nix/var/nix/profiles/system --rollback",
    `switch-to-configuration switch (${gen2})`,
  ]);

  const list = await say(w.alice, w.roomId, "!deploys nas");
  assert.match(body(await waitForReply(w.alice, w.roomId, list)), /#\d+ +nas \(rollback\) +@alice:\S+ .*✅ ok/);
  const status = await say(w.alice, w.roomId, "!status nas");
  assert.match(body(await waitForReply(w.alice, w.roomId, status, 20_000)), /\*nas\* +🟢 up .* gen 2 .* as deployed \(#\d+\)/);
});

test("!reboot: confirmed by the asker, waits for the new boot and tells the downtime", async () => {
  const id = await say(w.alice, w.roomId, "!reboot laptop");
  await confirm(w.alice, id, /Reboot laptop\?/);
  const done = await waitForEvent(
    w.alice,
    w.roomId,
    (e) => /laptop rebooted: it was down for \d+ (ms|s)/.test(((e.getContent()["m.new_content"] as { body?: string } | undefined)?.body ?? "") as string),
    30_000,
    "the reboot to be reported",
  );
  assert.ok(done);
  assert.equal(await outcome(w.alice, id), "✅");
  assert.equal(laptop.reboots, 1);
});

test("a changed host key: !status refuses to log in and says how to trust it; !trust takes the new key", async () => {
  const oldFp = await laptop.hostKeyFingerprint();
  await laptop.rotateHostKey();
  const newFp = await laptop.hostKeyFingerprint();
  const id = await say(w.alice, w.roomId, "!status laptop");
  const reply = body(await waitForReply(w.alice, w.roomId, id, 20_000));
  assert.match(reply, /\*laptop\* +🔑 host key changed/);
  assert.ok(reply.includes(`it was ${oldFp}, it is now ${newFp}`), reply);
  assert.match(reply, /an admin accepts the new key with `!trust laptop`/);

  const trust = await say(w.alice, w.roomId, "!trust laptop");
  assert.equal(body(await waitForReply(w.alice, w.roomId, trust)), `🔑 I now trust laptop's host key ${newFp} instead of ${oldFp}.`);
  const again = await say(w.alice, w.roomId, "!status laptop");
  assert.match(body(await waitForReply(w.alice, w.roomId, again, 20_000)), /\*laptop\* +🟢 up/);
});
