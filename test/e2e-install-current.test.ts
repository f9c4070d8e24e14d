// !install with the current clan installer: its QR code has "pass": null and IPv6 addresses, and its
// sshd lets root in by key only (the fake machine refuses passwords). The bot tries the addresses in a
// sensible order, checks its key gets in, and gives clan the addresses in brackets and its key (-i).

import assert from "node:assert/strict";
import { join } from "node:path";
import { after, test } from "node:test";
import { loadBotKey } from "../ops/ssh-key.ts";
import { waitForStatus } from "./support/deploy-helpers.ts";
import { world, type World } from "./support/e2e.ts";
import { readInvocations, type FakeClanFixture } from "../demo/fake-clan-fixture.ts";
import { FakeMachine } from "./support/fake-machine.ts";
import { say, waitForEvent, waitForOutcome, waitForReply } from "./support/matrix-wait.ts";
import { tempDir } from "./support/temp-dir.ts";

const dir = await tempDir("clanbot-e2e-install-current-");
const keyFile = join(dir, "bot-key", "id_ed25519");
const key = loadBotKey(keyFile, true);
const other = loadBotKey(join(dir, "other-key", "id_ed25519"), true);
// Two installers on the same port number cannot be: one takes the bot's key, the other only another key.
const installer = await FakeMachine.start({ dir: join(dir, "installer"), authorizedKeys: [key.publicLine], plain: true, listen: ["127.0.0.1", "::1"] });
after(() => installer.stop());

const FIXTURE: FakeClanFixture = {
  machines: { newpc: { tags: ["family"] }, oldpc: { tags: ["family"] } },
  behaviour: {
    "machines install": { delayMs: 100, qrCodeExitBug: true, keyOnly: true, authorizedKeys: [key.publicLine], unreachable: ["127.0.0.9", "[2001:db8::5]"] },
  },
};

const w: World = await world({
  fixture: FIXTURE,
  config: (base) => ({ ...base, ssh: { keyFile, timeout: "3s" }, install: { replyTimeout: "20s", installerPort: installer.port } }),
});

const bodyOf = (e: { getContent(): Record<string, unknown> }): string => e.getContent().body as string;
const installRuns = async () => (await readInvocations(w.clanLog)).filter((i) => i.argv[0] === "machines" && i.argv[1] === "install");

test("a key-only installer with IPv6 and IPv4 addresses: the one that answers, in brackets, and the bot's key", async () => {
  const id = await say(w.alice, w.roomId, "!install newpc");
  const ask = await waitForReply(w.alice, w.roomId, id);
  assert.match(bodyOf(ask), /must let me in with my SSH key/);
  // The current installer's code: no password; a global IPv6 address that does not answer here, ::1 that does, an IPv4 that does not.
  await say(w.alice, w.roomId, JSON.stringify({ pass: null, tor: null, addrs: ["2001:db8::5", "::1", "127.0.0.9"] }));
  const read = await waitForEvent(w.alice, w.roomId, (e) => e.replyEventId === id && /Read the installer's code/.test(bodyOf(e)), 20_000, "the code to be read");
  assert.match(bodyOf(read), /it answers at ::1\. Installing newpc there now\./);
  const final = await waitForStatus(w.alice, w.roomId, id, /Done after|Failed after/, 30_000);
  assert.match(final, /✅ \*newpc\*: installed in/);
  assert.equal(await waitForOutcome(w.alice, w.roomId, id, 10_000), "✅");
  const [run] = await installRuns();
  assert.ok(run?.install);
  assert.deepEqual(run.argv.slice(5), ["-i", keyFile, "--yes", "--flake", w.flake]);
  assert.equal(run.install.target, "root@::1");
  assert.deepEqual(run.install.addrs, ["[::1]", "[2001:db8::5]", "127.0.0.9"], "clan refuses bare IPv6 addresses: every one in brackets");
  assert.equal(run.install.hasPassword, false);
});

test("an installer that does not have the bot's key: said before clan runs, with how to put the key there", async () => {
  const refusing = await FakeMachine.start({ dir: join(dir, "refusing"), authorizedKeys: [other.publicLine], plain: true });
  after(() => refusing.stop());
  await w.bot.stop("SIGTERM");
  w.bot = await w.startBot({ ...w.config, install: { replyTimeout: "20s", installerPort: refusing.port } });
  const before = (await installRuns()).length;
  const id = await say(w.alice, w.roomId, "!install oldpc");
  await waitForReply(w.alice, w.roomId, id, 30_000);
  await say(w.alice, w.roomId, JSON.stringify({ pass: null, tor: null, addrs: ["127.0.0.1"] }));
  const answer = await waitForEvent(w.alice, w.roomId, (e) => e.replyEventId === id && /does not let me in with my SSH key/.test(bodyOf(e)), 20_000, "the refusal");
  assert.ok(bodyOf(answer).includes(key.publicLine), "the key to put there");
  assert.match(bodyOf(answer), /clan flash write --ssh-pubkey/);
  assert.equal(await waitForOutcome(w.alice, w.roomId, id, 10_000), "❌");
  assert.equal((await installRuns()).length, before, "clan did not run");
});
