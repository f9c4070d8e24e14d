// The bot against clan as it is in 26.05 and after, end to end (the fake clan follows clan-core's
// source; each machine a real sshd): `!deploy all` picks what clan would update (a machine that
// must be updated by name left out, one with no route said and skipped), a deploy blocked by switch
// inhibitors is "switched at next boot", a machine reachable only over a clan network is found
// there, and a backup of a machine the bot pinned passes clan's host key check.

import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, test } from "node:test";
import { EventType, RelationType, type MatrixClient } from "matrix-js-sdk";
import { loadBotKey } from "../ops/ssh-key.ts";
import { waitForStatus } from "./support/deploy-helpers.ts";
import { world, type World } from "./support/e2e.ts";
import { readInvocations, type FakeClanFixture } from "../demo/fake-clan-fixture.ts";
import { FakeMachine, freePort } from "./support/fake-machine.ts";
import { say, waitForEvent, waitForOutcome, waitForReaction, waitForReply } from "./support/matrix-wait.ts";
import { tempDir } from "./support/temp-dir.ts";

const dir = await tempDir("clanbot-e2e-real-clan-");
const keyFile = join(dir, "bot-key", "id_ed25519");
const key = loadBotKey(keyFile, true);
const start = (name: string) => FakeMachine.start({ dir: join(dir, name), authorizedKeys: [key.publicLine], hostName: name });
const [laptop, overlay, nas] = await Promise.all([start("laptop"), start("overlay"), start("nas")]);
after(() => Promise.all([laptop.stop(), overlay.stop(), nas.stop()]));
const hostKey = async (m: FakeMachine): Promise<string> => (await m.hostKeyLine()).split(" ").slice(1).join(" ");
const deadPort = await freePort();

const FIXTURE: FakeClanFixture = {
  machines: {
    laptop: { tags: ["family"], deploy: { targetHost: laptop.target } },
    // No deploy.targetHost: reachable over the clan's wireguard network only (its internet address does not answer).
    overlay: { tags: ["family"] },
    nas: { tags: ["servers"], requireExplicitUpdate: true, deploy: { targetHost: nas.target }, hostKeyKnown: false, hostKey: await hostKey(nas) },
    lost: { tags: ["family"] },
  },
  networks: {
    internet: { peers: { overlay: { hosts: ["127.0.0.1"], port: deadPort, down: true } } },
    wg: { service: "wireguard", peers: { overlay: { hosts: ["127.0.0.1"], port: overlay.port } } },
  },
  generations: {
    overlay: [
      { generation: 1, date: "2026-11-01 10:00:00", nixosVersion: "25.11.20260815.5e2a59a", kernelVersion: "6.12.40" },
      { generation: 2, date: "2026-11-20 01:00:00", nixosVersion: "25.11.20260815.5e2a59a", kernelVersion: "6.12.41", current: true },
    ],
  },
  backups: { nas: ["nas-backup::borg@backup:.::nas-nas-backup-2026-11-19T01:00:00"] },
  behaviour: { default: { generateVars: false }, "machines update": { delayMs: 200, fail: ["laptop"], failPhase: "inhibitors" } },
};

const w: World = await world({
  fixture: FIXTURE,
  config: (base) => ({ ...base, ssh: { keyFile, timeout: "3s" }, commands: { confirmTimeout: "10s" } }),
});

const body = (e: { getContent(): Record<string, unknown> }): string => e.getContent().body as string;
const outcome = (client: MatrixClient, id: string, timeoutMs = 30_000): Promise<string> => waitForOutcome(client, w.roomId, id, timeoutMs);
const runs = async (...words: string[]) => (await readInvocations(w.clanLog)).filter((i) => words.every((word, n) => i.argv[n] === word));

async function confirm(id: string, pattern: RegExp): Promise<void> {
  const question = await waitForEvent(w.alice, w.roomId, (e) => e.replyEventId === id && pattern.test(body(e)), 20_000, "the question");
  await waitForReaction(w.alice, w.roomId, question.getId() as string, "✅");
  await w.alice.sendEvent(w.roomId, EventType.Reaction, { "m.relates_to": { rel_type: RelationType.Annotation, event_id: question.getId() as string, key: "✅" } });
}

test("a machine reachable only over a clan network is found there by priority, not reported as having no target", async () => {
  const id = await say(w.alice, w.roomId, "!status overlay lost");
  const reply = body(await waitForReply(w.alice, w.roomId, id, 30_000));
  assert.match(reply, /\*overlay\* +🟢 up .*25\.11 \(5e2a59a\), state 25\.11/);
  assert.match(reply, /\*lost\* +— no target/);
  assert.match(reply, /\*lost\*: no way to reach it: no inventory deploy\.targetHost, no clan network has it as a peer/);
  assert.match(reply, /First contact with overlay: I pinned its host key\./);
});

test("!deploy all: requireExplicitUpdate left out and an unreachable machine skipped, said; inhibitors: switched at next boot", async () => {
  const id = await say(w.alice, w.roomId, "!deploy all");
  const note = await waitForEvent(w.alice, w.roomId, (e) => e.replyEventId === id && /Left out/.test(body(e)), 20_000, "the note");
  assert.match(body(note), /Left out, as clan does: nas \(requireExplicitUpdate: deploy it by name\)\. Skipped: lost: no way to reach it/);
  await confirm(id, /Deploy all 2 machines\?\* laptop, overlay/);
  const final = await waitForStatus(w.alice, w.roomId, id, /Done after|Failed after/, 30_000);
  assert.match(final, /🔁 \*laptop\*: switched at next boot: reboot needed/);
  assert.match(final, /✅ \*overlay\*: done in/);
  assert.match(final, /laptop runs the old system until it reboots: .*An admin can `!reboot laptop`\./);
  assert.equal(await outcome(w.alice, id), "✅");
  // overlay: clan is given the route the bot found, the bot's key and the host key it pinned (strictly checked).
  const [run] = await runs("machines", "update", "overlay");
  assert.match(run?.argv[4] ?? "", new RegExp(`^root@127\\.0\\.0\\.1:${overlay.port}\\?UserKnownHostsFile=.*&IdentityFile=${keyFile.replace(/[.]/g, "\\.")}&IdentitiesOnly=yes$`));
  assert.deepEqual(run?.argv.slice(5, 7), ["--host-key-check", "strict"]);
  assert.equal((await runs("machines", "update", "nas")).length, 0);
  assert.equal((await runs("machines", "update", "lost")).length, 0);
});

test("!status shows the pending reboot once the new system is the boot default", async () => {
  await laptop.addGeneration(3);
  await laptop.setProfile(3);
  const id = await say(w.alice, w.roomId, "!status laptop");
  const reply = body(await waitForReply(w.alice, w.roomId, id, 30_000));
  assert.match(reply, /\*laptop\* +🟢 up .* gen 3 +⚠️ pending/);
  assert.match(reply, /laptop has a new system waiting for the next boot\. An admin can `!reboot laptop`/);
});

test("a backup of a machine the bot pinned passes clan's host key check (no --host-key-check in clan backups)", async () => {
  const first = await say(w.alice, w.roomId, "!backup nas");
  assert.equal(await outcome(w.alice, first), "❌", "clan's ssh does not know nas yet");
  assert.match(await waitForStatus(w.alice, w.roomId, first, /Failed after/, 20_000), /Host key verification failed/);
  const status = await say(w.alice, w.roomId, "!status nas");
  assert.match(body(await waitForReply(w.alice, w.roomId, status, 30_000)), /First contact with nas: I pinned its host key\./);
  const knownHosts = await readFile(join(w.dir, "clan-ssh", "known_hosts"), "utf8");
  assert.ok(knownHosts.includes(`[127.0.0.1]:${nas.port} ${await hostKey(nas)}`), knownHosts);
  const second = await say(w.alice, w.roomId, "!backup nas");
  assert.equal(await outcome(w.alice, second), "✅");
  const done = await waitForStatus(w.alice, w.roomId, second, /Done in/, 20_000);
  assert.match(done, /nas-backup::borg@backup:\.::nas-nas-backup-\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}/);
});

test("!generations lists clan's generations; !rollback <machine> <generation> goes to that one", async () => {
  const id = await say(w.alice, w.roomId, "!generations overlay");
  const reply = body(await waitForReply(w.alice, w.roomId, id, 30_000));
  assert.match(reply, /overlay: 2 generations\*, running 2\./);
  assert.match(reply, /!rollback overlay 1/);
  const [gen] = await runs("machines", "generations", "overlay");
  assert.deepEqual(gen?.argv.slice(3, 4), ["--target-host"]);
  const rb = await say(w.alice, w.roomId, "!rollback overlay 1");
  await confirm(rb, /Roll overlay back to generation 1\?/);
  const final = await waitForStatus(w.alice, w.roomId, rb, /Done after|Failed after/, 30_000);
  assert.match(final, /✅ \*overlay\*: rolled back to generation 1 in/);
  assert.match((await overlay.calls()).join("\n"), /nix-env --profile \/nix\/var\/nix\/profiles\/system --switch-generation 1/);
});
