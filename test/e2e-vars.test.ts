// !vars shows a machine's clan vars as `clan vars list` has them (secret values never, public ones
// only when short); !vars generate (admin, confirmed) runs `clan vars generate` and is reported like
// a deploy, with no value in the room or the log.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { EventType, RelationType, type MatrixClient } from "matrix-js-sdk";
import { waitForStatus } from "./support/deploy-helpers.ts";
import { world, type World } from "./support/e2e.ts";
import { fakeClanPath, readInvocations, type FakeClanFixture } from "../demo/fake-clan-fixture.ts";
import { say, timeline, waitForReaction, waitForReply, waitForOutcome } from "./support/matrix-wait.ts";

const LONG_PUB = `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI${"x".repeat(60)} nas`;
const FIXTURE: FakeClanFixture = {
  machines: { nas: { deploy: { targetHost: "root@nas.lan:2222" } }, laptop: { deploy: { targetHost: "root@laptop.lan" } } },
  vars: {
    nas: {
      borg: { files: { passphrase: { secret: true }, "repo.pub": { secret: false, value: "borg-pubkey-1" } } },
      "root-password": { files: { "password-hash": { secret: false, value: "$6$short" }, password: { secret: true, value: "hunter2-in-the-flake" } } },
      openssh: { files: { "ssh.id_ed25519.pub": { secret: false, value: LONG_PUB } } },
    },
  },
};
const GIT_ENV = { GIT_AUTHOR_NAME: "clanbot", GIT_AUTHOR_EMAIL: "bot@example.org", GIT_COMMITTER_NAME: "clanbot", GIT_COMMITTER_EMAIL: "bot@example.org" };

const w: World = await world({ fixture: FIXTURE, env: GIT_ENV, config: (base) => ({ ...base, commands: { confirmTimeout: "10s" } }) });
const git = (...args: string[]): string => execFileSync("git", ["-C", w.flake, ...args], { encoding: "utf8", env: { ...process.env, ...GIT_ENV } });
git("init", "-q", "-b", "main");
git("add", ".");
git("commit", "-q", "-m", "init");
const bob = await w.person("bob");
await w.alice.setPowerLevel(w.roomId, bob.getSafeUserId(), 50);

const replyText = async (client: MatrixClient, id: string): Promise<string> => (await waitForReply(client, w.roomId, id, 15_000)).getContent().body as string;

test("!vars <machine>: generator/file and whether set; secrets never, public values only when short", async () => {
  const id = await say(bob, w.roomId, "!vars nas");
  const text = await replyText(bob, id);
  assert.match(text, /nas: 5 vars\* \(4 of 5 set\)/);
  assert.match(text, /`borg\/passphrase`\s+❔ not set/);
  assert.match(text, /`borg\/repo\.pub`\s+set: `borg-pubkey-1`/);
  assert.match(text, /`root-password\/password`\s+🔒 set \(secret\)/);
  assert.match(text, /`openssh\/ssh\.id_ed25519\.pub`\s+set \(public, \d+ characters, not shown\)/);
  assert.match(text, /`!vars generate nas`/);
  assert.ok(!text.includes("hunter2") && !text.includes(LONG_PUB));
  const narrowed = await say(bob, w.roomId, "!vars nas --generator borg");
  assert.match(await replyText(bob, narrowed), /nas: 2 vars of generator borg\*/);
  const unknown = await say(bob, w.roomId, "!vars nas --generator borh");
  assert.match(await replyText(bob, unknown), /nas has no vars generator 'borh'\. Did you mean 'borg'\?/);
  assert.equal(await waitForOutcome(bob, w.roomId, unknown), "❓");
  const runs = (await readInvocations(w.clanLog)).filter((r) => r.argv[0] === "vars" && r.argv[1] === "list");
  assert.deepEqual(runs[0]?.argv, ["vars", "list", "nas", "--flake", w.flake]);
});

test("!vars generate: admins only, asks first, then runs clan vars generate like a deploy; no value in room or log", async () => {
  const refused = await say(bob, w.roomId, "!vars generate nas");
  assert.match(await replyText(bob, refused), /`!vars generate` needs the admin level/);
  const id = await say(w.alice, w.roomId, "!vars generate nas --generator borg");
  const ask = await waitForReply(w.alice, w.roomId, id);
  assert.match(ask.getContent().body as string, /Generate nas's vars\?\* This runs the borg generator for what is missing/);
  await waitForReaction(w.alice, w.roomId, ask.getId() as string, "✅");
  await w.alice.sendEvent(w.roomId, EventType.Reaction, { "m.relates_to": { rel_type: RelationType.Annotation, event_id: ask.getId() as string, key: "✅" } });
  assert.equal(await waitForOutcome(w.alice, w.roomId, id, 30_000), "✅");
  const final = await waitForStatus(w.alice, w.roomId, id, /Done after/);
  assert.match(final, /\*Vars generation #\d+\* of nas by @alice:\S+/);
  assert.match(final, /✅ \*nas\*: vars generated in/);
  const run = (await readInvocations(w.clanLog)).find((r) => r.argv[0] === "vars" && r.argv[1] === "generate");
  assert.deepEqual(run?.argv, ["vars", "generate", "nas", "--generator", "borg", "--flake", w.flake]);
  assert.match(git("log", "-1", "--format=%s"), /^vars: update via generator borg \(machine: nas\)/);
  const value = execFileSync(fakeClanPath, ["vars", "get", "nas", "borg/passphrase", "--flake", w.flake], { encoding: "utf8", env: { ...process.env, ...GIT_ENV } });
  assert.match(value, /^[0-9a-f]{32}$/);
  const everything = JSON.stringify(timeline(w.alice, w.roomId).map((e) => e.getContent()));
  assert.ok(!everything.includes(value), "the generated secret is in the room");
  const logs = readdirSync(join(w.dir, "state", "logs"), { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
  assert.ok(logs.length > 0);
  for (const f of logs) assert.ok(!readFileSync(join(f.parentPath, f.name)).includes(value), `the generated secret is in the log ${f.name}`);
  const after = await say(bob, w.roomId, "!vars nas --generator borg");
  assert.match(await replyText(bob, after), /`borg\/passphrase`\s+🔒 set \(secret\)/);
});
