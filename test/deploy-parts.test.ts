// The parts a deploy is made of, each on its own: reading clan's output, the queues, the throttled
// status message, the log on disk and as an attachment, and the status text (output as bytes:
// output-bytes.test.ts).
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { gunzipSync } from "node:zlib";
import { formatDeployStatus } from "../commands/deploy-format.ts";
import type { DeployState, MachinePhase, MachineRun } from "../commands/deploy-types.ts";
import type { Message } from "../commands/format.ts";
import { ThrottledEdits } from "../commands/throttled-edits.ts";
import type { Log, SentMessage } from "../commands/types.ts";
import { OutputTail, phaseAfter, systemPathIn } from "../ops/deploy-output.ts";
import { packLog } from "../ops/log-attachment.ts";
import { LogFile } from "../ops/log-file.ts";
import { MachineQueue, Slots } from "../ops/machine-queue.ts";
import { tempDir } from "./support/temp-dir.ts";

/** Whether a promise has settled by the time pending I/O and timers of this turn have run. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  await delay(0);
  return done;
}

// ---------------------------------------------------------------------------------------------
// ops/deploy-output.ts: what clan's output says about a machine

const SYSTEM = "/nix/store/wyxh543rx800zrp1zz0l89nscibd7frx-nixos-system-laptop-25.11.20260815.5e2a59a";
const SOURCE_UPLOAD = "[laptop] copying path '/nix/store/v7j3k1l385m38h2hk881j95d09nvpd9r-source' to 'ssh-ng://root@laptop.lan'...";
const SYSTEM_COPY = `[laptop] $ nix --extra-experimental-features nix-command flakes copy --to ssh-ng://root@laptop.lan --no-check-sigs ${SYSTEM}`;
const SET_PROFILE = `[laptop] $ nix-env -p /nix/var/nix/profiles/system --set ${SYSTEM}`;
const SWITCH =
  `[laptop] $ systemd-run -E LOCALE_ARCHIVE -E NIXOS_INSTALL_BOOTLOADER= --collect --no-ask-password --pipe --quiet ` +
  `--service-type=exec --unit=nixos-rebuild-switch-to-configuration --wait -- ${SYSTEM}/bin/switch-to-configuration switch`;

test("uploading the flake source is not copying the system: the machine stays building", () => {
  assert.equal(phaseAfter("building", SOURCE_UPLOAD), "building");
  assert.equal(phaseAfter("building", "[laptop] building '/nix/store/0a1b2c3d4e5f6g7h8i9j0k1l2m3n4p5q-etc.drv'..."), "building");
});

test("a nix copy of the built system moves building to copying", () => {
  assert.equal(phaseAfter("building", SYSTEM_COPY), "copying");
  assert.equal(phaseAfter("building", `[laptop] copying path '${SYSTEM}' to 'ssh-ng://root@laptop.lan'...`), "copying");
});

test("setting the system profile or running switch-to-configuration moves to activating", () => {
  assert.equal(phaseAfter("copying", SET_PROFILE), "activating");
  assert.equal(phaseAfter("copying", SWITCH), "activating");
  // Forward by more than one step is still forward (a machine that had nothing to copy).
  assert.equal(phaseAfter("building", SET_PROFILE), "activating");
});

test("the phase never moves back: a copy line after activating keeps it activating", () => {
  assert.equal(phaseAfter("activating", SYSTEM_COPY), "activating");
  assert.equal(phaseAfter("activating", SOURCE_UPLOAD), "activating");
  assert.equal(phaseAfter("copying", SOURCE_UPLOAD), "copying");
});

test("queued and ended machines keep their phase whatever the output says", () => {
  const unmoved: MachinePhase[] = ["queued", "done", "failed", "cancelled", "timed-out", "skipped", "interrupted"];
  for (const phase of unmoved) {
    for (const line of [SYSTEM_COPY, SET_PROFILE, SWITCH]) assert.equal(phaseAfter(phase, line), phase, `${phase} after ${line}`);
  }
});

test("a whole deploy's output goes building, copying, activating in that order", () => {
  const output = [
    "[laptop] $ nix --extra-experimental-features nix-command flakes archive --to ssh-ng://root@laptop.lan --json",
    SOURCE_UPLOAD,
    "[laptop] building '/nix/store/0a1b2c3d4e5f6g7h8i9j0k1l2m3n4p5q-nixos-system-laptop.drv'...",
    SYSTEM_COPY,
    `[laptop] copying path '${SYSTEM}' to 'ssh-ng://root@laptop.lan'...`,
    SET_PROFILE,
    SWITCH,
    "[laptop] activating the configuration...",
    SYSTEM_COPY,
  ];
  const seen: MachinePhase[] = ["building"];
  for (const line of output) {
    const next = phaseAfter(seen.at(-1) ?? "building", line);
    if (next !== seen.at(-1)) seen.push(next);
  }
  assert.deepEqual(seen, ["building", "copying", "activating"]);
});

test("systemPathIn finds the system in the nix-env profile line and in a bare store path line", () => {
  assert.equal(systemPathIn(SET_PROFILE), SYSTEM);
  assert.equal(systemPathIn(`[laptop] ${SYSTEM}`), SYSTEM);
  assert.equal(systemPathIn(`${SYSTEM}\r`), SYSTEM);
});

test("systemPathIn finds nothing in derivations, indented lines or other output", () => {
  assert.equal(systemPathIn("[laptop] /nix/store/0a1b2c3d4e5f6g7h8i9j0k1l2m3n4p5q-nixos-system-laptop-25.11.drv"), undefined);
  assert.equal(systemPathIn(`[laptop]   ${SYSTEM}`), undefined);
  assert.equal(systemPathIn(`  ${SYSTEM}`), undefined);
  assert.equal(systemPathIn(SYSTEM_COPY), undefined);
  assert.equal(systemPathIn(SWITCH), undefined);
  assert.equal(systemPathIn("[laptop] /nix/store/tooshort-nixos-system-laptop"), undefined);
});

test("OutputTail keeps only the last lines", () => {
  const tail = new OutputTail(3, 100);
  for (const line of ["one", "two", "three", "four", "five"]) tail.push(line);
  assert.deepEqual(tail.get(), ["three", "four", "five"]);
});

test("OutputTail cuts long lines and marks the cut", () => {
  const tail = new OutputTail(5, 10);
  tail.push("0123456789abcdefghij");
  tail.push("0123456789");
  assert.deepEqual(tail.get(), ["0123456789…", "0123456789"]);
});

test("OutputTail leaves out blank lines", () => {
  const tail = new OutputTail(10, 100);
  for (const line of ["error: build failed", "", "   ", "\t", "see the log"]) tail.push(line);
  assert.deepEqual(tail.get(), ["error: build failed", "see the log"]);
});

// ---------------------------------------------------------------------------------------------
// ops/machine-queue.ts: one deploy per machine, a bounded number at once

test("MachineQueue grants the first at once and the others only when the holder leaves, in order", async () => {
  const queue = new MachineQueue<string>();
  const a = queue.enter("laptop", "#1");
  const b = queue.enter("laptop", "#2");
  const c = queue.enter("laptop", "#3");
  assert.equal(await settled(a.granted), true);
  assert.equal(await settled(b.granted), false);
  assert.equal(await settled(c.granted), false);

  a.leave();
  assert.equal(await settled(b.granted), true);
  assert.equal(await settled(c.granted), false);

  b.leave();
  assert.equal(await settled(c.granted), true);
});

test("MachineQueue tells each ticket its position and who holds the machine", () => {
  const queue = new MachineQueue<string>();
  const a = queue.enter("laptop", "#1");
  const b = queue.enter("laptop", "#2");
  const c = queue.enter("laptop", "#3");
  assert.deepEqual([a.position(), b.position(), c.position()], [0, 1, 2]);
  assert.deepEqual([a.holder(), b.holder(), c.holder()], ["#1", "#1", "#1"]);
  assert.deepEqual(queue.owners("laptop"), ["#1", "#2", "#3"]);

  a.leave();
  assert.deepEqual([b.position(), c.position()], [0, 1]);
  assert.deepEqual([b.holder(), c.holder()], ["#2", "#2"]);
  assert.deepEqual(queue.owners("laptop"), ["#2", "#3"]);
});

test("MachineQueue keeps machines apart: a deploy of another machine does not wait", async () => {
  const queue = new MachineQueue<string>();
  queue.enter("laptop", "#1");
  const server = queue.enter("server", "#2");
  assert.equal(await settled(server.granted), true);
  assert.equal(server.position(), 0);
});

test("leaving a waiting place grants nothing and moves those behind it up", async () => {
  const queue = new MachineQueue<string>();
  const a = queue.enter("laptop", "#1");
  const b = queue.enter("laptop", "#2");
  const c = queue.enter("laptop", "#3");
  b.leave();
  assert.equal(await settled(c.granted), false);
  assert.equal(c.position(), 1);
  assert.equal(c.holder(), "#1");
  assert.deepEqual(queue.owners("laptop"), ["#1", "#3"]);
  a.leave();
  assert.equal(await settled(c.granted), true);
});

test("MachineQueue reports every change of a machine's line", () => {
  const changes: string[] = [];
  const queue = new MachineQueue<string>((machine) => changes.push(machine));
  const a = queue.enter("laptop", "#1");
  const b = queue.enter("laptop", "#2");
  const s = queue.enter("server", "#3");
  b.leave();
  a.leave();
  s.leave();
  assert.deepEqual(changes, ["laptop", "laptop", "server"]);
  assert.deepEqual(queue.owners("laptop"), []);
});

test("leaving twice is harmless: it neither removes nor grants anyone else", async () => {
  const changes: string[] = [];
  const queue = new MachineQueue<string>((machine) => changes.push(machine));
  const a = queue.enter("laptop", "#1");
  const b = queue.enter("laptop", "#2");
  const c = queue.enter("laptop", "#3");
  a.leave();
  a.leave();
  assert.deepEqual(queue.owners("laptop"), ["#2", "#3"]);
  assert.equal(await settled(b.granted), true);
  assert.equal(await settled(c.granted), false);
  assert.equal(c.position(), 1);
  assert.deepEqual(changes, ["laptop"]);
});

test("Slots never lets more than its size run at once, and uses all of them", async () => {
  const slots = new Slots(3);
  let running = 0;
  let peak = 0;
  await Promise.all(
    Array.from({ length: 12 }, async (_, i) => {
      const release = await slots.acquire();
      running++;
      peak = Math.max(peak, running);
      await delay(5 + (i % 4) * 3);
      running--;
      release();
    }),
  );
  assert.equal(peak, 3);
  assert.equal(slots.inUse, 0);
});

test("Slots hands freed slots to waiters in the order they asked", async () => {
  const slots = new Slots(1);
  const hold = await slots.acquire();
  const order: string[] = [];
  const waiters = ["a", "b", "c", "d"].map(async (name) => {
    const release = await slots.acquire();
    order.push(name);
    await delay(1);
    release();
  });
  hold();
  await Promise.all(waiters);
  assert.deepEqual(order, ["a", "b", "c", "d"]);
  assert.equal(slots.inUse, 0);
});

test("Slots.run gives its slot back when the task fails, so the next task runs", async () => {
  const slots = new Slots(1);
  await assert.rejects(slots.run(async () => Promise.reject(new Error("join refused"))), /join refused/);
  assert.equal(slots.inUse, 0);
  assert.equal(await slots.run(async () => "greeted"), "greeted");
  assert.equal(slots.inUse, 0);
});

test("an aborted waiter is refused and does not take the slot it was waiting for", { timeout: 5_000 }, async () => {
  const slots = new Slots(1);
  const hold = await slots.acquire();
  const abort = new AbortController();
  const aborted = slots.acquire(abort.signal);
  const next = slots.acquire();
  abort.abort(new Error("deploy cancelled"));
  await assert.rejects(aborted, /deploy cancelled/);

  hold();
  const release = await next;
  assert.equal(slots.inUse, 1);
  release();
  assert.equal(slots.inUse, 0);
});

test("asking for a slot with an already aborted signal is refused at once", async () => {
  const slots = new Slots(1);
  const hold = await slots.acquire();
  await assert.rejects(slots.acquire(AbortSignal.abort(new Error("too late"))), /too late/);
  hold();
  assert.equal(slots.inUse, 0);
  const again = await slots.acquire();
  assert.equal(slots.inUse, 1);
  again();
});

test("giving a slot back twice frees it only once", async () => {
  const slots = new Slots(2);
  const a = await slots.acquire();
  await slots.acquire();
  a();
  a();
  assert.equal(slots.inUse, 1);
});

// ---------------------------------------------------------------------------------------------
// commands/throttled-edits.ts: one status message, edited at a bounded rate

const GAP_MS = 200;
// Node counts a timer from the event loop's cached time, in whole milliseconds, so measured with
// Date.now a timer may fire a millisecond "early"; that is clock granularity, not a broken throttle.
const CLOCK_SLACK_MS = 2;

function msg(s: string): Message {
  return { text: s, html: s };
}

interface Edit {
  readonly html: string;
  readonly at: number;
}

/** A status message that remembers when each edit was asked for, and when it was done. */
function recordingMessage(opts: { editMs?: number; failFirst?: number } = {}): SentMessage & { edits: Edit[]; done: string[] } {
  const edits: Edit[] = [];
  const done: string[] = [];
  let failures = opts.failFirst ?? 0;
  return {
    edits,
    done,
    async edit(m: Message) {
      edits.push({ html: m.html, at: Date.now() });
      if (opts.editMs) await delay(opts.editMs);
      if (failures > 0) {
        failures--;
        throw new Error("M_LIMIT_EXCEEDED");
      }
      done.push(m.html);
    },
  };
}

function recordingLog(): Log & { warnings: { fields: Record<string, unknown>; msg: string }[] } {
  const warnings: { fields: Record<string, unknown>; msg: string }[] = [];
  return {
    warnings,
    info: () => undefined,
    warn: (fields, m) => void warnings.push({ fields, msg: m }),
    error: () => undefined,
  };
}

test("a burst of status changes becomes a few edits, never closer than the gap, ending with the last text", async () => {
  const message = recordingMessage();
  const created = Date.now();
  const edits = new ThrottledEdits(message, msg("started"), { gapMs: GAP_MS, now: Date.now, log: recordingLog() });
  for (let i = 1; i <= 60; i++) {
    edits.show(msg(`step ${i}`));
    await delay(10);
  }
  const burstMs = Date.now() - created;
  await delay(GAP_MS * 2);

  const at = message.edits.map((e) => e.at);
  assert.ok(at.length >= 2, `some edits went out: ${at.length}`);
  assert.ok(at.length <= Math.ceil(burstMs / GAP_MS) + 1, `${at.length} edits for a ${burstMs} ms burst`);
  assert.ok((at[0] ?? 0) - created >= GAP_MS - CLOCK_SLACK_MS, `the first edit came ${(at[0] ?? 0) - created} ms after the message`);
  for (let i = 1; i < at.length; i++) {
    const gap = (at[i] ?? 0) - (at[i - 1] ?? 0);
    assert.ok(gap >= GAP_MS - CLOCK_SLACK_MS, `edits ${i - 1} and ${i} came ${gap} ms apart`);
  }
  assert.equal(message.edits.at(-1)?.html, "step 60");
  assert.equal(edits.count, at.length);
});

test("while an edit is on its way, later changes fold into the next edit", async () => {
  const message = recordingMessage({ editMs: 300 });
  const edits = new ThrottledEdits(message, msg("started"), { gapMs: GAP_MS, now: Date.now, log: recordingLog() });
  edits.show(msg("building"));
  await delay(GAP_MS + 50);
  assert.deepEqual(message.edits.map((e) => e.html), ["building"]);
  edits.show(msg("copying"));
  edits.show(msg("activating"));
  await delay(650);
  assert.deepEqual(message.edits.map((e) => e.html), ["building", "activating"]);
  // The gap counts from when the first edit was stored (sent + 300 ms), not from when it was sent.
  assert.ok((message.edits[1]?.at ?? 0) - (message.edits[0]?.at ?? 0) >= 300 + GAP_MS - CLOCK_SLACK_MS);
});

test("a text that is already shown is not sent again", async () => {
  const message = recordingMessage();
  const edits = new ThrottledEdits(message, msg("started"), { gapMs: GAP_MS, now: Date.now, log: recordingLog() });
  edits.show(msg("started"));
  await delay(GAP_MS + 50);
  assert.equal(message.edits.length, 0);

  edits.show(msg("building"));
  await delay(GAP_MS + 50);
  edits.show(msg("building"));
  await delay(GAP_MS + 50);
  // Changed and changed back before the edit went out: nothing to send.
  edits.show(msg("copying"));
  edits.show(msg("building"));
  await delay(GAP_MS + 50);
  await edits.finish(msg("building"));
  assert.deepEqual(message.edits.map((e) => e.html), ["building"]);
  assert.equal(edits.count, 1);
});

test("finish sends the final text after the gap and resolves once the edit is done", async () => {
  const message = recordingMessage({ editMs: 50 });
  const created = Date.now();
  const edits = new ThrottledEdits(message, msg("started"), { gapMs: GAP_MS, now: Date.now, log: recordingLog() });
  edits.show(msg("building"));
  await edits.finish(msg("✅ Done"));
  assert.deepEqual(message.done, ["✅ Done"]);
  assert.deepEqual(message.edits.map((e) => e.html), ["✅ Done"]);
  assert.ok((message.edits[0]?.at ?? 0) - created >= GAP_MS - CLOCK_SLACK_MS, "the final edit kept the gap too");
  await delay(GAP_MS + 50);
  assert.equal(message.edits.length, 1, "the superseded text did not go out after the final one");
});

test("finish waits for an edit on its way, then sends the final text", async () => {
  const message = recordingMessage({ editMs: 150 });
  const edits = new ThrottledEdits(message, msg("started"), { gapMs: GAP_MS, now: Date.now, log: recordingLog() });
  edits.show(msg("building"));
  await delay(GAP_MS + 20);
  assert.deepEqual(message.edits.map((e) => e.html), ["building"]);
  await edits.finish(msg("❌ Failed"));
  assert.deepEqual(message.done, ["building", "❌ Failed"]);
  assert.ok((message.edits[1]?.at ?? 0) - (message.edits[0]?.at ?? 0) >= GAP_MS - CLOCK_SLACK_MS);
});

test("a failed edit is logged and the next change still goes out", async () => {
  const message = recordingMessage({ failFirst: 1 });
  const log = recordingLog();
  const edits = new ThrottledEdits(message, msg("started"), { gapMs: GAP_MS, now: Date.now, log });
  edits.show(msg("building"));
  await delay(GAP_MS + 50);
  assert.equal(log.warnings.length, 1);
  assert.equal(log.warnings[0]?.fields.err, "M_LIMIT_EXCEEDED");

  edits.show(msg("copying"));
  await delay(GAP_MS + 50);
  await edits.finish(msg("✅ Done"));
  assert.deepEqual(message.done, ["copying", "✅ Done"]);
  assert.equal(log.warnings.length, 1);
});

// ---------------------------------------------------------------------------------------------
// ops/log-attachment.ts: the log as a file in the room

test("a small log is attached as plain text, byte for byte", async () => {
  const path = join(await tempDir(), "deploy-7.log");
  const content = Buffer.from("# clanbot deploy #7 of laptop\n[laptop] building…\n[laptop] ✅ done\n");
  await writeFile(path, content);
  const file = await packLog(path);
  assert.equal(file.mimetype, "text/plain");
  assert.equal(file.name, "deploy-7.log");
  assert.deepEqual(Buffer.from(file.data), content);
  assert.equal(file.truncatedFrom, undefined);
});

test("an empty log is attached as an empty text file", async () => {
  const path = join(await tempDir(), "deploy-8.log");
  await writeFile(path, "");
  const file = await packLog(path);
  assert.equal(file.mimetype, "text/plain");
  assert.equal(file.data.length, 0);
});

test("a log larger than plainMax is attached gzipped, and unpacks to the whole log", async () => {
  const path = join(await tempDir(), "deploy-9.log");
  const content = Buffer.from(
    Array.from({ length: 20_000 }, (_, i) => `[laptop] building '/nix/store/${String(i).padStart(32, "0")}-pkg-${i}.drv'...\n`).join(""),
  );
  await writeFile(path, content);
  const file = await packLog(path, { plainMax: 64 * 1024 });
  assert.equal(file.mimetype, "application/gzip");
  assert.equal(file.name, "deploy-9.log.gz");
  assert.ok(file.data.length < content.length);
  assert.deepEqual(gunzipSync(file.data), content);
  assert.equal(file.truncatedFrom, undefined);
});

test("a log that does not fit even gzipped is cut to its end, and says how big it was", async () => {
  const path = join(await tempDir(), "deploy-10.log");
  const content = randomBytes(200_000);
  await writeFile(path, content);
  const sendMax = 50_000;
  const file = await packLog(path, { plainMax: 1000, sendMax });
  assert.equal(file.truncatedFrom, content.length);
  assert.equal(file.mimetype, "application/gzip");
  assert.ok(file.data.length <= sendMax, `${file.data.length} bytes sent`);
  const end = gunzipSync(file.data);
  assert.ok(end.length >= sendMax / 4, `a useful part of the end: ${end.length} bytes`);
  assert.deepEqual(end, content.subarray(content.length - end.length));
});

// ---------------------------------------------------------------------------------------------
// ops/log-file.ts: the deploy log on disk

test("logged lines are in the file once flushed, and all of them once closed", async () => {
  const path = join(await tempDir(), "deploy-11.log");
  const log = new LogFile(path, { flushMs: 60_000 });
  log.line("# clanbot deploy #11");
  log.line("[laptop] building");
  log.flush();
  assert.equal(await readFile(path, "utf8"), "# clanbot deploy #11\n[laptop] building\n");
  log.line("[laptop] done ✅");
  log.close();
  assert.equal(await readFile(path, "utf8"), "# clanbot deploy #11\n[laptop] building\n[laptop] done ✅\n");
  log.line("after close");
  assert.equal(await readFile(path, "utf8"), "# clanbot deploy #11\n[laptop] building\n[laptop] done ✅\n");
});

test("logged lines reach the disk within flushMs without being asked", async () => {
  const path = join(await tempDir(), "deploy-12.log");
  const log = new LogFile(path, { flushMs: 30 });
  log.line("[laptop] building");
  await delay(200);
  assert.equal(await readFile(path, "utf8"), "[laptop] building\n");
  log.close();
});

test("the log file is private (0600) and its missing directories are created", async () => {
  const dir = join(await tempDir(), "logs", "clan-a");
  const path = join(dir, "deploy-13.log");
  const log = new LogFile(path);
  log.line("secret-ish output");
  log.close();
  assert.equal((await stat(path)).mode & 0o777, 0o600);
  assert.ok((await stat(dir)).isDirectory());
  assert.equal(await readFile(path, "utf8"), "secret-ish output\n");
});

test("megabytes of output are written as they come, with only a bounded part held back", async () => {
  const path = join(await tempDir(), "deploy-14.log");
  const chunkBytes = 64 * 1024;
  const log = new LogFile(path, { chunkBytes, flushMs: 60_000 });
  const line = `[laptop] ${"x".repeat(990)}`;
  const count = 8 * 1024;
  for (let i = 0; i < count; i++) log.line(line);
  const written = count * (line.length + 1);
  assert.equal(log.length, written);
  const onDisk = (await stat(path)).size;
  assert.ok(written - onDisk < chunkBytes, `${written - onDisk} bytes not yet on disk`);
  log.close();
  const content = await readFile(path, "utf8");
  assert.equal(content.length, written);
  assert.equal(content, `${line}\n`.repeat(count));
});

// ---------------------------------------------------------------------------------------------
// commands/deploy-format.ts: the status message

const NOW = Date.UTC(2026, 7, 15, 12, 0, 0);

function run(machine: string, phase: MachinePhase, extra: Partial<MachineRun> = {}): MachineRun {
  return { machine, phase, tail: [], ...extra };
}

function deploy(extra: Partial<DeployState> & Pick<DeployState, "machines">): DeployState {
  return { id: 42, kind: "switch", sender: "@bob:example.org", revision: "5e2a59a", startedAt: NOW - 90_000, result: "running", ...extra };
}

test("a machine waiting behind another deploy shows its place, that deploy and who started it", () => {
  const since = NOW - 3 * 60_000;
  const s = deploy({
    machines: [
      run("laptop", "queued", { waiting: { kind: "machine", position: 1, deployId: 41, sender: "@alice:example.org", since, activity: "deploying it" } }),
      run("server", "queued", { waiting: { kind: "machine", position: 2, deployId: 40, sender: "@carol:example.org", since, activity: "deploying it" } }),
    ],
  });
  const { text } = formatDeployStatus(s, NOW);
  assert.match(text, /Deploy #42/);
  assert.match(text, /laptop\*: queued, next behind #41 by @alice:example\.org \(deploying it since 3 min ago\)/);
  assert.match(text, /server\*: queued, 2nd in line behind #40 by @carol:example\.org/);
  assert.doesNotMatch(text, /attached/);
});

test("a failed deploy shows ❌ Failed, the last lines in a code block, and that the log is attached", () => {
  const tail = ["error: builder for '/nix/store/0a1b2c3d4e5f6g7h8i9j0k1l2m3n4p5q-etc.drv' failed with exit code 1", "<script>alert(1)</script>"];
  const s = deploy({
    result: "failed",
    finishedAt: NOW,
    machines: [run("laptop", "failed", { startedAt: NOW - 60_000, finishedAt: NOW, exitCode: 1, tail })],
  });
  const { text, html } = formatDeployStatus(s, NOW);
  assert.match(text, /❌ \*laptop\*: failed after 1 min \(exit status 1\)/);
  assert.match(text, /❌ Failed after 1 min 30 s\./);
  assert.ok(text.includes(`Last lines from laptop:\n\n\`\`\`\n${tail.join("\n")}\n\`\`\``), text);
  assert.match(text, /The whole log is attached\./);
  assert.ok(html.includes("<pre><code>"), html);
  assert.match(html, /The whole log is attached\./);
});

test("output in the status message is escaped in HTML", () => {
  const s = deploy({
    result: "failed",
    finishedAt: NOW,
    machines: [run("laptop", "failed", { startedAt: NOW - 1000, finishedAt: NOW, tail: ["<script>alert('x')</script> & <b>"] })],
  });
  const { html } = formatDeployStatus(s, NOW);
  assert.doesNotMatch(html, /<script>/);
  assert.doesNotMatch(html, /<b>/);
  assert.ok(html.includes("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &lt;b&gt;"), html);
});

test("a dry run shows the system it built", () => {
  const s = deploy({
    kind: "dry-run",
    result: "ok",
    finishedAt: NOW,
    machines: [run("laptop", "done", { startedAt: NOW - 45_000, finishedAt: NOW, storePath: SYSTEM })],
  });
  const { text, html } = formatDeployStatus(s, NOW);
  assert.match(text, /Dry run #42/);
  assert.ok(text.includes(`laptop*: built in 45 s: \`${SYSTEM}\``), text);
  assert.ok(html.includes(`<code>${SYSTEM}</code>`), html);
  assert.match(text, /✅ Done/);
  assert.doesNotMatch(text, /attached/);
});

test("a cancelled deploy says who cancelled it", () => {
  const s = deploy({
    result: "cancelled",
    cancelledBy: "@alice:example.org",
    finishedAt: NOW,
    machines: [run("laptop", "cancelled", { startedAt: NOW - 20_000, finishedAt: NOW, note: "cancelled by @alice:example.org" })],
  });
  const { text } = formatDeployStatus(s, NOW);
  assert.match(text, /🚫 Cancelled by @alice:example\.org after 1 min 30 s\./);
  assert.match(text, /🚫 \*laptop\*: cancelled by @alice:example\.org after 20 s/);
});

test("!deploy: machines clan cannot reach are left out with a word when a tag or all picked them, refused when named; requireExplicitUpdate ones only by name", async () => {
  const { leaveOut } = await import("../commands/deploy.ts");
  const { Refusal } = await import("../commands/errors.ts");
  const ctx = {
    signal: new AbortController().signal,
    clan: { updatePlan: async () => ({ explicitOnly: new Set(["vault"]), noRoute: new Set(["garden"]) }) },
  } as unknown as Parameters<typeof leaveOut>[0];
  const picked = await leaveOut(ctx, ["garden", "laptop", "nas", "vault"], new Set());
  assert.deepEqual(picked.machines, ["laptop", "nas"]);
  assert.match(picked.note?.text ?? "", /Left out, as clan does: vault \(requireExplicitUpdate: deploy it by name\)\. Skipped: garden: no way to reach it/);
  await assert.rejects(leaveOut(ctx, ["garden", "laptop"], new Set(["garden"])), (e: unknown) => e instanceof Refusal && /garden has no way to be reached, so clan cannot deploy it/.test(e.message));
  await assert.rejects(leaveOut(ctx, ["garden"], new Set()), (e: unknown) => e instanceof Refusal && /Nothing is left to deploy/.test(e.message));
  assert.deepEqual((await leaveOut(ctx, ["vault"], new Set(["vault"]))).machines, ["vault"]);
});
