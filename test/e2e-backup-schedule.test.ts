import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { MatrixClient, MatrixEvent } from "matrix-js-sdk";
import { world, type World } from "./support/e2e.ts";
import { writeFixture, type FakeClanFixture } from "../demo/fake-clan-fixture.ts";
import { say, timeline, waitForEvent, waitForOutcome, waitForReply } from "./support/matrix-wait.ts";

const FIXTURE: FakeClanFixture = {
  machines: {
    nas: { tags: ["servers"], deploy: { targetHost: "root@nas.lan" } },
    laptop: { deploy: { targetHost: "root@laptop.lan" } },
    media: { tags: ["servers"], deploy: { targetHost: "root@media.lan" } },
  },
  backups: { nas: [], laptop: [], media: [] },
  behaviour: { "backups create": { perMachine: { laptop: { fail: true } } } },
};

// Seconds-level crons, and a short maxAge so that the overdue watch can be seen at work.
const w: World = await world({
  fixture: FIXTURE,
  config: (base) => ({ ...base, backup: { minInterval: "1s", maxAge: "4s", watchInterval: "500ms" } }),
});
const bob = await w.person("bob");
await w.alice.setPowerLevel(w.roomId, bob.getSafeUserId(), 50);

const replyText = async (client: MatrixClient, commandId: string): Promise<string> => (await waitForReply(client, w.roomId, commandId)).getContent().body as string;

/** The bot's own posts (not replies to a command) whose text matches. */
const notices = (pattern: RegExp): MatrixEvent[] =>
  timeline(w.alice, w.roomId).filter((e) => e.getSender() === w.botUserId && e.replyEventId === undefined && pattern.test((e.getContent().body as string | undefined) ?? ""));

const nextNotice = (pattern: RegExp, after: number, timeoutMs = 10_000): Promise<MatrixEvent> =>
  waitForEvent(w.alice, w.roomId, (e) => e.getSender() === w.botUserId && e.replyEventId === undefined && e.getTs() > after && pattern.test(e.getContent().body as string), timeoutMs, `a notice matching ${pattern}`);

async function schedule(line: string): Promise<number> {
  const id = await say(w.alice, w.roomId, line);
  const text = await replyText(w.alice, id);
  assert.equal(await waitForOutcome(w.alice, w.roomId, id), "✅", text);
  return Number(/Schedule #(\d+)/.exec(text)?.[1]);
}

async function unschedule(n: number): Promise<void> {
  const id = await say(w.alice, w.roomId, `!unschedule ${n}`);
  assert.match(await replyText(w.alice, id), new RegExp(`Schedule #${n} is removed`));
}

test("a cron expression or time zone that does not parse, or a machine that is not there, is refused with the reason; only admins schedule", async () => {
  const cases: Array<[string, RegExp]> = [
    ['!schedule backup nas "61 1 * * *"', /I cannot use that schedule: '61' is not a valid minute\./],
    ["!schedule backup nas 0 1 * *", /a cron expression has 5 fields .* '0 1 \* \*' has 4/],
    ['!schedule backup nas "0 1 * * *" --tz Mars/Olympus', /'Mars\/Olympus' is not a time zone I know/],
    ['!schedule backup nas "0 1 * * *" --notify sometimes', /--notify takes always or failures, not 'sometimes'/],
    ['!schedule backup nsa "0 1 * * *"', /unknown machine 'nsa'; known: laptop, media, nas\. Did you mean 'nas'\?/],
    ['!schedule deploy nas "0 1 * * *"', /Only backups can be scheduled, not 'deploy'/],
  ];
  for (const [line, expected] of cases) {
    const id = await say(w.alice, w.roomId, line);
    assert.match(await replyText(w.alice, id), expected);
    assert.equal(await waitForOutcome(w.alice, w.roomId, id), "❓");
  }
  const byOperator = await say(bob, w.roomId, '!schedule backup nas "0 1 * * *"');
  assert.match(await replyText(bob, byOperator), /`!schedule` needs the admin level/);
  const list = await say(bob, w.roomId, "!schedules");
  assert.match(await replyText(bob, list), /No backups are scheduled in this clan/);
});

test("a schedule runs at its times and posts each run's 🟢 in the room; !schedules lists it with its next run; !unschedule stops it", async () => {
  const since = Date.now();
  const n = await schedule('!schedule backup tag:servers "*/2 * * * * *" --tz UTC --provider borgbackup');
  const nas = await nextNotice(/^🟢 Backup of \*nas\* \(borgbackup\) done in/, since);
  assert.match(nas.getContent().body as string, new RegExp(`newest archive \`nas-backup::borg@backup:\\.::nas-nas-backup-[^\`]+\`\\.\\n\\n_#\\d+, schedule #${n}\\._$`));
  await nextNotice(/^🟢 Backup of \*media\* \(borgbackup\) done in/, since);
  const list = await say(bob, w.roomId, "!schedules");
  assert.match(await replyText(bob, list), new RegExp(`#${n}\\s+the machines tagged servers\\s+\`\\*/2 \\* \\* \\* \\* \\*\` UTC\\s+in \\d+ (ms|s) \\(\\w+ \\d+ \\w+ [\\d:]+\\)\\s+always\\s+borgbackup\\s+@alice:\\S+`));
  // It keeps firing: a second 🟢 for nas.
  await waitForEvent(w.alice, w.roomId, () => notices(/^🟢 Backup of \*nas\*/).length >= 2, 10_000, "a second run");
  await unschedule(n);
  await sleep(1000);
  const count = notices(/^🟢 Backup of \*nas\*/).length;
  await sleep(3000);
  assert.equal(notices(/^🟢 Backup of \*nas\*/).length, count, "the schedule ran after it was removed");
});

test("--notify failures: a failed run is told with its error, then the first success as recovered, and later successes not at all", async () => {
  const since = Date.now();
  const n = await schedule('!schedule backup laptop "*/2 * * * * *" --notify failures');
  const failed = await nextNotice(/^🔴 Backup of \*laptop\*/, since);
  assert.match(failed.getContent().body as string, /failed after \d+ (ms|s) \(exit status 1\)\.[\s\S]*Job for borgbackup-job-laptop\.service failed/);
  await writeFixture(w.flake, { ...FIXTURE, behaviour: {} });
  const recovered = await nextNotice(/^🟢 Backups of \*laptop\* work again/, since);
  assert.match(recovered.getContent().body as string, /The run before \(#\d+ \d+ (ms|s) ago\) had failed\./);
  await sleep(4500);
  assert.equal(notices(/^🟢 Backups? of \*laptop\*/).length, 1, "a success after the recovery was told");
  await unschedule(n);
  await writeFixture(w.flake, FIXTURE);
});

test("a machine without a successful backup for backup.maxAge gets one 🔴 alert, not one per look, and one 🟢 when a backup works", async () => {
  const since = Date.now();
  // Once a day: it will not run during the test, so media goes overdue after backup.maxAge (4 s).
  const n = await schedule('!schedule backup media "0 3 * * *"');
  const alert = await nextNotice(/^🔴 No successful backup of \*media\*/, since, 15_000);
  assert.match(alert.getContent().body as string, /for \d+ s: more than backup\.maxAge \(4 s\)\.[\s\S]*`!backup media` tries now/);
  await sleep(3000); // six more looks
  assert.equal(notices(/^🔴 No successful backup of \*media\*/).length, 1, "the alert was repeated");
  const id = await say(w.alice, w.roomId, "!backup media");
  assert.equal(await waitForOutcome(w.alice, w.roomId, id), "✅");
  const clear = await nextNotice(/^🟢 \*media\* is backed up again/, since);
  assert.match(clear.getContent().body as string, /\(#\d+\): archive `[^`]+`, after the alert \d+ s ago\./);
  await unschedule(n);
  const status = await say(bob, w.roomId, "!backups");
  assert.match(await replyText(bob, status), /media\s+\d+ (ms|s) ago \(#\d+\)/);
});
