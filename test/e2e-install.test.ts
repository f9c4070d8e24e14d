// !install end to end: a person sends a photo of the installer's QR code from their phone (an
// m.image uploaded with matrix-js-sdk), the bot reads it, takes the photo out of the room, finds the
// installer's sshd, and runs the fake clan's `machines install` with the JSON in a 0600 file.

import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { EventType, MsgType, RelationType, type MatrixClient } from "matrix-js-sdk";
import { loadBotKey } from "../ops/ssh-key.ts";
import { download, waitForStatus } from "./support/deploy-helpers.ts";
import { world, type World } from "./support/e2e.ts";
import { readInvocations, type FakeClanFixture } from "../demo/fake-clan-fixture.ts";
import { FakeMachine } from "./support/fake-machine.ts";
import { say, timeline, waitForEvent, waitForReply, waitForOutcome } from "./support/matrix-wait.ts";
import { qrPhoto } from "./support/photo.ts";
import { tempDir } from "./support/temp-dir.ts";

const PASSWORD = "scabbed-defender-headlock";
const dir = await tempDir("clanbot-e2e-install-");
const keyFile = join(dir, "bot-key", "id_ed25519");
const key = loadBotKey(keyFile, true);
// The installer: something that answers SSH on the address its QR code gives.
const installer = await FakeMachine.start({ dir: join(dir, "installer"), authorizedKeys: [key.publicLine], plain: true });
after(() => installer.stop());
const code = JSON.stringify({ pass: PASSWORD, tor: null, addrs: ["127.0.0.9", "127.0.0.1"] });

const FIXTURE: FakeClanFixture = {
  machines: { newpc: { tags: ["family"] }, laptop: { tags: ["family"] } },
  // Exit statuses as clan really ends an install from a QR code (see the fake's header).
  behaviour: { "machines install": { delayMs: 200, qrCodeExitBug: true, unreachable: ["127.0.0.9"] } },
};

const w: World = await world({
  fixture: FIXTURE,
  config: (base) => ({ ...base, ssh: { keyFile, timeout: "3s" }, install: { replyTimeout: "20s", installerPort: installer.port } }),
});

const outcome = (client: MatrixClient, commandId: string, timeoutMs = 30_000): Promise<string> => waitForOutcome(client, w.roomId, commandId, timeoutMs);

/** What a phone app does with a photo: upload it, then post it as m.image. */
async function sendPhoto(client: MatrixClient, jpeg: Buffer, width: number, height: number): Promise<string> {
  const { content_uri } = await client.uploadContent(new Uint8Array(jpeg), { name: "IMG_2043.jpg", type: "image/jpeg" });
  const { event_id } = await client.sendEvent(w.roomId, EventType.RoomMessage, {
    msgtype: MsgType.Image,
    body: "IMG_2043.jpg",
    url: content_uri,
    info: { mimetype: "image/jpeg", size: jpeg.byteLength, w: width, h: height },
  });
  return event_id;
}

const installRuns = async () => (await readInvocations(w.clanLog)).filter((i) => i.argv[0] === "machines" && i.argv[1] === "install");
const everythingSaid = (): string => timeline(w.alice, w.roomId).map((e) => JSON.stringify(e.getContent())).join("\n");
const bodyOf = (e: { getContent(): Record<string, unknown> }): string => e.getContent().body as string;

test("a photo of the installer's QR code installs the machine; the password goes to clan in a 0600 file and nowhere else", async () => {
  const id = await say(w.alice, w.roomId, "!install newpc");
  const ask = await waitForReply(w.alice, w.roomId, id);
  assert.match(bodyOf(ask), /Installing newpc\.[\s\S]*send me a photo of that QR code within 20 s/);

  // Photographed at an angle, a little blurred.
  const photo = qrPhoto(code, { width: 2000, height: 1500, moduleSize: 10, angleDeg: 14, blur: 2, quality: 70 });
  const photoId = await sendPhoto(w.alice, photo.jpeg, photo.width, photo.height);
  const read = await waitForEvent(w.alice, w.roomId, (e) => e.replyEventId === id && /Read the installer's code/.test(bodyOf(e)), 20_000, "the code to be read");
  // The bot has power level 0 here: it may not redact alice's message, and says so.
  assert.match(bodyOf(read), /it answers at 127\.0\.0\.1\. Installing newpc there now\. I could not remove your message .* please delete it yourself/);

  const final = await waitForStatus(w.alice, w.roomId, id, /Done after|Failed after/, 30_000);
  assert.match(final, /\*Install #\d+\* of newpc by @alice:\S+/);
  assert.match(final, /✅ \*newpc\*: installed in \d+ (ms|s)/);
  assert.equal(await outcome(w.alice, id), "✅");
  const done = await waitForEvent(w.alice, w.roomId, (e) => e.replyEventId === id && /newpc is installed/.test(bodyOf(e)), 10_000, "the closing note");
  assert.ok(done);

  const [run] = await installRuns();
  assert.ok(run?.install, "clan machines install did not run");
  assert.deepEqual(run.argv.slice(0, 4), ["machines", "install", "newpc", "-j"]);
  // The bot's key, for installers that take keys only; no --host-key-check, which clan ignores on install.
  assert.deepEqual(run.argv.slice(5), ["-i", keyFile, "--yes", "--flake", w.flake]);
  assert.equal(run.install.jsonSource, "file");
  assert.equal(run.install.jsonFile?.modeOctal, "0600");
  assert.equal(run.install.passwordSource, "json-file");
  assert.equal(run.install.passwordOnCommandLine, false);
  assert.equal(run.install.target, "root@127.0.0.1", "the address that answered comes first");
  assert.ok(!run.argv.join(" ").includes(PASSWORD));
  assert.equal(existsSync(run.install.jsonFile?.absolutePath ?? ""), false, "the JSON file was left behind");

  // Not in any message, not in the bot's log, not in the attached deploy log (clan prints it; the bot masks it).
  assert.ok(!everythingSaid().includes(PASSWORD));
  assert.ok(!w.bot.log.join("\n").includes(PASSWORD));
  const logs = readdirSync(join(w.dir, "state", "logs", "family")).filter((f) => f.startsWith("install-") || f.startsWith("deploy-"));
  assert.ok(logs.every((f) => !f.endsWith(".json")), `left behind: ${logs.join(", ")}`);
  const file = await waitForEvent(w.alice, w.roomId, (e) => e.getContent().msgtype === "m.file" && e.replyEventId === id, 10_000, "the install log");
  const log = (await download(w.alice, w.hs.url, file)).toString("utf8");
  assert.ok(!log.includes(PASSWORD));
  assert.match(log, /reachable via .*\*\*\*\*\*\*\*\*/, "clan's line with the password is in the log, masked");
  assert.match(log, /### Done! ###/);
  assert.ok(photoId);
});

test("with the power to redact, the bot takes pasted installer JSON out of the room at once", async () => {
  await w.alice.setPowerLevel(w.roomId, w.botUserId, 50);
  const id = await say(w.alice, w.roomId, "!install laptop");
  await waitForReply(w.alice, w.roomId, id);
  const pasted = await say(w.alice, w.roomId, "```json\n" + code + "\n```");
  await waitForEvent(w.alice, w.roomId, (e) => e.getType() === EventType.RoomRedaction && e.event.redacts === pasted, 20_000, "the pasted JSON to be redacted");
  const read = await waitForEvent(w.alice, w.roomId, (e) => e.replyEventId === id && /Read the installer's code/.test(bodyOf(e)), 20_000, "the code to be read");
  assert.doesNotMatch(bodyOf(read), /could not remove/);
  assert.equal(await outcome(w.alice, id), "✅");
});

test("a photo with no QR code in it: a clear answer, the photo removed, nothing installed", async () => {
  const before = (await installRuns()).length;
  const id = await say(w.alice, w.roomId, "!install newpc");
  await waitForReply(w.alice, w.roomId, id);
  const blank = qrPhoto(code, { width: 1200, height: 900, centre: [5, 5] });
  const photoId = await sendPhoto(w.alice, blank.jpeg, blank.width, blank.height);
  const answer = await waitForEvent(w.alice, w.roomId, (e) => e.replyEventId === id && /could not use that/.test(bodyOf(e)), 20_000, "the refusal");
  assert.match(bodyOf(answer), /I could not use that: I found no QR code in the image\. Nothing was installed\./);
  assert.equal(await outcome(w.alice, id), "❌");
  await waitForEvent(w.alice, w.roomId, (e) => e.getType() === EventType.RoomRedaction && e.event.redacts === photoId, 10_000, "the photo to be redacted");
  assert.equal((await installRuns()).length, before);
});

test("!install needs admin, and a command typed while the bot waits for the photo still runs as a command", async () => {
  const bob = await w.person("bob");
  const refused = await say(bob, w.roomId, "!install newpc");
  assert.match(bodyOf(await waitForReply(bob, w.roomId, refused)), /needs the admin level/);
  const id = await say(w.alice, w.roomId, "!install newpc");
  await waitForReply(w.alice, w.roomId, id);
  const other = await say(w.alice, w.roomId, "!whoami");
  assert.ok(await waitForReply(w.alice, w.roomId, other));
  const photo = qrPhoto(JSON.stringify({ wifi: "home" }), { moduleSize: 8 });
  await sendPhoto(w.alice, photo.jpeg, photo.width, photo.height);
  const answer = await waitForEvent(w.alice, w.roomId, (e) => e.replyEventId === id && /could not use that/.test(bodyOf(e)), 20_000, "the refusal");
  assert.match(bodyOf(answer), /not a clan installer's code/);
});

test("!install with root@host asks for ✅ first (it erases disks), then passes the target to clan as given", async () => {
  const before = (await installRuns()).length;
  const id = await say(w.alice, w.roomId, "!install newpc root@installer.lan:2222");
  const question = await waitForReply(w.alice, w.roomId, id);
  assert.match(bodyOf(question), /Install newpc to root@installer\.lan:2222\?\* This erases the disks/);
  await waitForEvent(w.alice, w.roomId, (e) => e.getType() === EventType.Reaction && e.getContent()["m.relates_to"]?.event_id === question.getId(), 10_000, "the bot's ✅ to tap");
  await w.alice.sendEvent(w.roomId, EventType.Reaction, { "m.relates_to": { rel_type: RelationType.Annotation, event_id: question.getId() as string, key: "✅" } });
  assert.equal(await outcome(w.alice, id), "✅");
  const runs = (await installRuns()).slice(before);
  assert.equal(runs.length, 1);
  // One argv word, `--target-host=...`: whatever the target is, clan never reads it as an option.
  assert.deepEqual(runs[0]?.argv.slice(0, 4), ["machines", "install", "newpc", "--target-host=root@installer.lan:2222"]);
  assert.equal(runs[0]?.install?.targetSource, "target-host");

  const bad = await say(w.alice, w.roomId, "!install newpc root@-oProxyCommand=x");
  assert.match(bodyOf(await waitForReply(w.alice, w.roomId, bad)), /That is not an SSH target: .*no valid host/);
  const help = await say(w.alice, w.roomId, "!install newpc -- --help");
  assert.match(bodyOf(await waitForReply(w.alice, w.roomId, help)), /That is not an SSH target: .*no valid host/);
  assert.equal((await installRuns()).length, before + 1);
});
