import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { recoverCommands } from "../bot/matrix/command-recovery.ts";
import { answerLane } from "../bot/matrix/reply-channel.ts";
import { commandTable } from "../commands/index.ts";
import { recentCommands, runningCommands, startCommand } from "../storage/audit.ts";
import { openDatabase } from "../storage/db.ts";
import { migrate } from "../storage/migrations.ts";
import { addToOutbox } from "../storage/outbox.ts";
import { tempDir } from "./support/temp-dir.ts";

const quiet = { info() {}, warn() {}, error() {} };

test("after a crash: unanswered read-only commands are answered, those whose outcome was shown left alone, others told once, never run again; each marked only when done", async () => {
  const db = await openDatabase(join(await tempDir(), "db.sqlite3"));
  await migrate(db);
  const lines = ["machines", "status nas", "vm list", "reboot nas", "vm run media", "deploy laptop", "lock nas", "whoami", "machines"];
  for (const [i, line] of lines.entries()) {
    // The last two: a message without an event id, and #1's message again (answered again, then cut short again).
    const eventId = i === 7 ? undefined : i === 8 ? "$e1" : `$e${i + 1}`;
    await startCommand(db, { clan: "fam", room: "!r", sender: "@a:x", command: line.split(" ")[0] ?? "", line: `!${line}`, eventId, startedAt: 1 });
  }
  const post = (eventId: string, eventType: string, target?: number) =>
    addToOutbox(db, { roomId: "!r", lane: answerLane(eventId), eventType, content: {}, ...(target ? { target } : {}) }, 1);
  // #2 was answered (its reply is stored); #4 ended (its ✅ is stored); #5 only posted its status message and an edit.
  await post("$e2", "m.room.message");
  await post("$e4", "m.room.message");
  await post("$e4", "m.reaction");
  const status = await post("$e5", "m.room.message");
  await post("$e5", "m.room.message", status);

  const reruns: string[] = [];
  let answer: () => void = () => undefined;
  const answered = new Promise<void>((resolve) => (answer = resolve));
  const told: Array<{ id: number; once: string; text: string }> = [];
  await recoverCommands(await runningCommands(db), {
    db,
    table: commandTable,
    prefix: "!",
    now: () => 100,
    log: quiet,
    rerun: async (c, line) => {
      reruns.push(`${c.id} ${line}`);
      await answered;
    },
    tell: async (c, message, once) => void told.push({ id: c.id, once, text: message.text }),
  });
  assert.deepEqual(reruns, ["1 machines", "3 vm list"], "one rerun per message");
  assert.deepEqual(
    told.map((t) => [t.id, t.once]),
    [
      [5, "interrupted:command:5"],
      [6, "interrupted:command:6"], // its deploy row was not written yet: the deploy's recovery does not know it
      [7, "interrupted:command:7"],
    ],
  );
  assert.match(told[0]?.text ?? "", /\(#5\) was cut short when I stopped, and I did not run it again/);
  // Until the reruns are answered, their rows stay running: a crash now would find them again.
  const stillRunning = async () => (await runningCommands(db)).map((c) => c.id);
  assert.deepEqual(await stillRunning(), [1, 3, 9]);
  answer();
  for (let i = 0; i < 50 && (await stillRunning()).length; i++) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(await stillRunning(), []);
  const rows = await recentCommands(db, "fam", 20);
  assert.ok(rows.every((r) => r.result === "interrupted"));
});
