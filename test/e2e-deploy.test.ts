import assert from "node:assert/strict";
import { gunzipSync } from "node:zlib";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { EventType, RelationType, type MatrixClient } from "matrix-js-sdk";
import { commitFlake, download, editsOf, updateRuns, waitForStatus, waitForStatusMessage } from "./support/deploy-helpers.ts";
import { world, type World } from "./support/e2e.ts";
import { fakeNixPath, processesInGroup, readInvocations, writeFixture, type FakeClanFixture } from "../demo/fake-clan-fixture.ts";
import { reactionsOn, say, timeline, waitForEvent, waitForReaction, waitForReply, waitForOutcome } from "./support/matrix-wait.ts";

const FIXTURE: FakeClanFixture = {
  machines: {
    laptop: { description: "Dad's laptop", tags: ["family"], deploy: { targetHost: "root@laptop.lan" } },
    nas: { tags: ["servers"], deploy: { targetHost: "root@nas.lan:2222" } },
    media: { tags: ["servers"], deploy: { targetHost: "root@media.lan" } },
    printer: { tags: ["office"], deploy: { targetHost: "root@printer.lan" } },
  },
  behaviour: {
    "machines update": {
      delayMs: 2500,
      outputLines: 5,
      perMachine: { nas: { fail: true }, media: { hang: true } },
    },
    "nix build": { delayMs: 300 },
  },
};

const w: World = await world({
  fixture: FIXTURE,
  config: (base) => ({
    ...base,
    nix: { command: fakeNixPath },
    deploy: { timeout: "6s" },
    commands: { confirmTimeout: "3s" },
  }),
});
const revision = commitFlake(w.flake);
const bob = await w.person("bob");
await w.alice.setPowerLevel(w.roomId, bob.getSafeUserId(), 50);
const carol = await w.person("carol");

const outcome = (client: MatrixClient, commandId: string, timeoutMs = 20_000): Promise<string> => waitForOutcome(client, w.roomId, commandId, timeoutMs);

const fileReply = (commandId: string) =>
  waitForEvent(w.alice, w.roomId, (e) => e.getContent().msgtype === "m.file" && e.replyEventId === commandId, 10_000, "the log file");

test("!deploy laptop runs clan for that machine, edits one status message at most every 2 s, and ends with ✅, revision and the log", async () => {
  const id = await say(w.alice, w.roomId, "!deploy laptop");
  assert.equal(await outcome(w.alice, id), "✅");
  const final = await waitForStatus(w.alice, w.roomId, id, /Done after/);
  assert.match(final, new RegExp(`\\*Deploy #\\d+\\* of laptop by @alice:\\S+ at revision \`${revision}\``));
  assert.match(final, /✅ \*laptop\*: done in \d+ s/);

  const runs = await updateRuns(w.clanLog);
  assert.equal(runs.length, 1);
  assert.deepEqual(runs[0]?.argv.slice(0, 4), ["machines", "update", "laptop", "--target-host"]);
  // The route the bot takes too, with its key and the host keys it pinned for clan's ssh (none yet: accept-new).
  assert.match(runs[0]?.argv[4] ?? "", /^root@laptop\.lan:22\?UserKnownHostsFile=\/.*\/family-laptop&IdentityFile=\/.*id_ed25519&IdentitiesOnly=yes$/);
  assert.deepEqual(runs[0]?.argv.slice(5), ["--host-key-check", "accept-new", "--flake", w.flake]);
  assert.equal(runs[0]?.env.NO_COLOR, "1");
  assert.equal(runs[0]?.stdinIsTTY, false);

  const status = await waitForStatusMessage(w.alice, w.roomId, id);
  const times = [status, ...editsOf(w.alice, w.roomId, status.getId() as string)].map((e) => e.getTs());
  assert.ok(times.length >= 2, "the status message was never edited");
  for (let i = 1; i < times.length; i++) {
    assert.ok((times[i] as number) - (times[i - 1] as number) >= 1990, `edits ${i - 1} and ${i} came ${(times[i] as number) - (times[i - 1] as number)} ms apart`);
  }

  const file = await fileReply(id);
  assert.equal(file.getContent().body, `deploy-${/#(\d+)/.exec(final)?.[1]}.log`);
  const log = (await download(w.alice, w.hs.url, file)).toString("utf8");
  assert.match(log, /\[laptop\] activating the configuration/);
  assert.match(log, /\[laptop\] clanbot: exit status 0 after/);
  assert.deepEqual(reactionsOn(w.alice, w.roomId, id), ["👀", "✅"]);
});

test("a failed deploy ends with ❌ and the last lines of clan's output, and the whole log attached", async () => {
  const id = await say(w.alice, w.roomId, "!deploy nas");
  assert.equal(await outcome(w.alice, id), "❌");
  const final = await waitForStatus(w.alice, w.roomId, id, /Failed after/);
  assert.match(final, /❌ \*nas\*: failed after \d+ s \(exit status 1\)/);
  assert.match(final, /Last lines from nas:\n\n```\n[\s\S]*injected build failure[\s\S]*1 hosts failed with an error\. Check the logs above\n```/);
  const file = await fileReply(id);
  const log = (await download(w.alice, w.hs.url, file)).toString("utf8");
  assert.match(log, /\[nas\] error: builder for .* failed with exit code 1/);
  // The status is the only answer: no second error message.
  const replies = timeline(w.alice, w.roomId).filter((e) => e.replyEventId === id && e.getContent().msgtype === "m.notice");
  assert.equal(replies.length, 1);
});

test("a second deploy of the same machine waits in line, says behind whom, and runs after the first", async () => {
  const first = await say(w.alice, w.roomId, "!deploy laptop");
  await waitForStatus(w.alice, w.roomId, first, /laptop\*: (building|activating)/);
  const second = await say(bob, w.roomId, "!deploy laptop");
  const queued = await waitForStatus(w.alice, w.roomId, second, /queued/);
  assert.match(queued, /⏳ \*laptop\*: queued, next behind #\d+ by @alice:\S+ \(deploying it since \d+ (ms|s) ago\)/);
  assert.equal(await outcome(w.alice, first), "✅");
  assert.equal(await outcome(w.alice, second), "✅");
  const laptopRuns = (await updateRuns(w.clanLog)).filter((r) => r.argv[2] === "laptop").slice(-2);
  const gap = Date.parse(laptopRuns[1]?.time as string) - Date.parse(laptopRuns[0]?.time as string);
  assert.ok(gap >= 2400, `the second deploy started ${gap} ms after the first, before it ended`);
});

test("a clan that would prompt on stdin fails at once instead of hanging", async () => {
  // clan runs the vars generators of every machine first: one that prompts stops every deploy.
  const prompting = structuredClone(FIXTURE);
  prompting.behaviour = { ...prompting.behaviour, "machines update": { ...prompting.behaviour?.["machines update"], hangOnStdin: ["printer"] } };
  await writeFixture(w.flake, prompting);
  try {
    const started = Date.now();
    const id = await say(w.alice, w.roomId, "!deploy printer");
    assert.equal(await outcome(w.alice, id), "❌");
    assert.ok(Date.now() - started < 5000, "the prompting deploy took too long to fail");
    assert.match(await waitForStatus(w.alice, w.roomId, id, /Failed/), /Inappropriate ioctl for device/);
  } finally {
    await writeFixture(w.flake, FIXTURE);
  }
});

test("a deploy that runs past deploy.timeout is stopped, with its processes, and reported", async () => {
  const id = await say(w.alice, w.roomId, "!deploy media");
  assert.equal(await outcome(w.alice, id, 30_000), "❌");
  const final = await waitForStatus(w.alice, w.roomId, id, /Timed out/);
  assert.match(final, /⏱️ \*media\*: timed out, stopped after 6 s/);
  const run = (await updateRuns(w.clanLog)).filter((r) => r.argv[2] === "media").at(-1);
  assert.deepEqual(processesInGroup(run?.pgid as number), []);
});

test("!cancel stops a running deploy and its whole process group; the status says by whom; others need admin", async () => {
  const id = await say(w.alice, w.roomId, "!deploy media");
  await waitForStatus(w.alice, w.roomId, id, /media\*: building/);
  const deployId = /#(\d+)/.exec(await waitForStatus(w.alice, w.roomId, id, /#\d+/))?.[1];
  const run = (await updateRuns(w.clanLog)).filter((r) => r.argv[2] === "media").at(-1);
  assert.ok(run?.pgid && processesInGroup(run.pgid).length > 0, "the clan process group should be running");

  const notTheirs = await say(bob, w.roomId, `!cancel #${deployId}`);
  assert.match((await waitForReply(bob, w.roomId, notTheirs)).getContent().body as string, /was started by @alice:\S+; only they or an admin/);
  assert.equal(await outcome(bob, notTheirs), "⛔");

  const cancel = await say(w.alice, w.roomId, `!cancel ${deployId}`);
  assert.match((await waitForReply(w.alice, w.roomId, cancel, 15_000)).getContent().body as string, new RegExp(`Cancelled #${deployId}`));
  assert.equal(await outcome(w.alice, id), "❌");
  const final = await waitForStatus(w.alice, w.roomId, id, /Cancelled/);
  assert.match(final, /🚫 \*media\*: cancelled by @alice:\S+ after \d+ s/);
  assert.match(final, /🚫 Cancelled by @alice:\S+ after/);
  assert.deepEqual(processesInGroup(run.pgid), []);
});

test("!deploy all asks first: another user's ✅ does nothing, the asker's ✅ starts it", async () => {
  const before = (await updateRuns(w.clanLog)).length;
  const id = await say(w.alice, w.roomId, "!deploy all");
  const question = await waitForReply(w.alice, w.roomId, id);
  assert.match(question.getContent().body as string, /Deploy all 4 machines\?.*laptop, media, nas, printer[\s\S]*react with ✅ to this message within 3 s/);
  await waitForReaction(w.alice, w.roomId, question.getId() as string, "✅"); // the bot's own, to tap on
  await bob.sendEvent(w.roomId, EventType.Reaction, { "m.relates_to": { rel_type: RelationType.Annotation, event_id: question.getId() as string, key: "✅" } });
  await sleep(1000);
  assert.equal((await updateRuns(w.clanLog)).length, before, "bob's ✅ must not confirm alice's deploy");
  await w.alice.sendEvent(w.roomId, EventType.Reaction, { "m.relates_to": { rel_type: RelationType.Annotation, event_id: question.getId() as string, key: "✅" } });
  const status = await waitForStatus(w.alice, w.roomId, id, /\*Deploy #\d+\* of laptop, media, nas, printer/);
  assert.ok(status);
  assert.equal(await outcome(w.alice, id, 30_000), "❌");
  const ran = (await updateRuns(w.clanLog)).slice(before).map((r) => r.argv[2]).sort();
  assert.deepEqual(ran, ["laptop", "media", "nas", "printer"]);
});

test("an unconfirmed !deploy all times out and runs nothing", async () => {
  const before = (await updateRuns(w.clanLog)).length;
  const id = await say(w.alice, w.roomId, "!deploy all");
  const question = await waitForReply(w.alice, w.roomId, id);
  assert.equal(await outcome(w.alice, id), "❌");
  await waitForEvent(
    w.alice,
    w.roomId,
    () => editsOf(w.alice, w.roomId, question.getId() as string).some((e) => /not confirmed within 3 s: nothing was deployed/.test(e.getContent().body as string)),
    5000,
    "the question to say it timed out",
  );
  assert.equal((await updateRuns(w.clanLog)).length, before);
});

test("injection attempts and unknown machines are refused before anything runs", async () => {
  const before = await readInvocations(w.clanLog);
  const cases: Array<[string, RegExp]> = [
    ['!deploy "laptop; touch /tmp/x"', /unknown machine 'laptop; touch \/tmp\/x'; known: laptop, media, nas, printer\./],
    ["!deploy ../etc", /unknown machine '\.\.\/etc'; known: laptop, media, nas, printer\./],
    ["!deploy --flake=/", /!deploy has no flag `--flake`/],
    ["!deploy laptp", /unknown machine 'laptp'; known: .* Did you mean 'laptop'\?/],
    ["!deploy tag:srevers", /No machine has the tag 'srevers'.* Did you mean 'tag:servers'\?/],
  ];
  for (const [line, expected] of cases) {
    const id = await say(w.alice, w.roomId, line);
    assert.match((await waitForReply(w.alice, w.roomId, id)).getContent().body as string, expected);
    assert.equal(await outcome(w.alice, id), "❓");
  }
  const after = (await readInvocations(w.clanLog)).slice(before.length);
  // At most the inventory was read (when the cached read had expired): unknown names never evaluate the flake again.
  for (const run of after) assert.equal(run.argv[0], "select", `unexpected clan run: ${JSON.stringify(run.argv)}`);
});

test("!deploy --dry-run builds the system with clan machines build (this clan has it) and reports its store path", async () => {
  const id = await say(w.alice, w.roomId, "!deploy laptop --dry-run");
  assert.equal(await outcome(w.alice, id), "✅");
  const final = await waitForStatus(w.alice, w.roomId, id, /Done after/);
  assert.match(final, /\*Dry run #\d+\* of laptop/);
  assert.match(final, /✅ \*laptop\*: built in \d+ (ms|s): `\/nix\/store\/[0-9a-z]{32}-nixos-system-laptop-25\.11\.20260815\.5e2a59a`/);
  const build = (await readInvocations(w.clanLog)).filter((i) => i.argv[0] === "machines" && i.argv[1] === "build").at(-1);
  assert.deepEqual(build?.argv, ["machines", "build", "laptop", "--no-link", "--flake", w.flake]);
});

test("locks: a locked machine is refused to others, shown in !locks, and only its holder or an admin unlocks it", async () => {
  const lock = await say(bob, w.roomId, "!lock laptop router firmware update --for 2h");
  assert.match((await waitForReply(bob, w.roomId, lock)).getContent().body as string, /🔒 laptop is locked by you for 2 h \(router firmware update\)/);
  const deploy = await say(w.alice, w.roomId, "!deploy laptop");
  assert.match(
    (await waitForReply(w.alice, w.roomId, deploy)).getContent().body as string,
    /laptop is locked by @bob:\S+ for another (2 h|1 h 59 min) \(router firmware update\)\. Nothing was deployed\./,
  );
  assert.equal(await outcome(w.alice, deploy), "⛔");
  const locks = await say(carol, w.roomId, "!locks");
  assert.match((await waitForReply(carol, w.roomId, locks)).getContent().body as string, /laptop\s+@bob:\S+\s+router firmware update/);
  const carolUnlock = await say(carol, w.roomId, "!unlock laptop");
  assert.equal(await outcome(carol, carolUnlock), "⛔"); // a viewer: not even operator
  const unlock = await say(w.alice, w.roomId, "!unlock laptop");
  assert.match((await waitForReply(w.alice, w.roomId, unlock)).getContent().body as string, /🔓 laptop is unlocked \(it was locked by @bob:\S+\)/);
});

test("a viewer cannot deploy; !deploys lists what ran with who, revision and result", async () => {
  const refused = await say(carol, w.roomId, "!deploy laptop");
  assert.match((await waitForReply(carol, w.roomId, refused)).getContent().body as string, /needs the operator level/);
  const id = await say(carol, w.roomId, "!deploys nas");
  const body = (await waitForReply(carol, w.roomId, id)).getContent().body as string;
  assert.match(body, /The last 2 deploys of nas, newest first:/);
  assert.match(body, new RegExp(`#\\d+\\s+laptop, media, nas, printer\\s+@alice:\\S+\\s+\\d+ s ago\\s+\`${revision}\`\\s+❌ failed`));
  assert.match(body, new RegExp(`#\\d+\\s+nas\\s+@alice:\\S+\\s+\\d+ s ago\\s+\`${revision}\`\\s+❌ failed\\s+\\d+ (ms|s)`));
});
