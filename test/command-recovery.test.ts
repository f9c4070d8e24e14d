import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { recoverCommands } from "../bot/matrix/command-recovery.ts";
import { answerLane } from "../bot/matrix/reply-channel.ts";
import { commandTable } from "../commands/index.ts";
import type { UnfinishedCommand } from "../storage/audit.ts";
import { openDatabase } from "../storage/db.ts";
import { migrate } from "../storage/migrations.ts";
import { addToOutbox } from "../storage/outbox.ts";
import { tempDir } from "./support/temp-dir.ts";

const cmd = (id: number, line: string): UnfinishedCommand => ({
  id,
  clan: "fam",
  room: "!r",
  sender: "@a:x",
  command: line.split(" ")[0] ?? "",
  line: `!${line}`,
  eventId: `$e${id}`,
  startedAt: 1,
});

test("after a crash: unanswered read-only commands are answered, those whose outcome was shown left alone, others told once, never run again", async () => {
  const db = await openDatabase(join(await tempDir(), "db.sqlite3"));
  await migrate(db);
  const post = (eventId: string, eventType: string, target?: number) =>
    addToOutbox(db, { roomId: "!r", lane: answerLane(eventId), eventType, content: {}, ...(target ? { target } : {}) }, 1);
  // #2 was answered (its reply is stored); #4 ended (its ✅ is stored); #5 only posted its status message.
  await post("$e2", "m.room.message");
  await post("$e4", "m.room.message");
  await post("$e4", "m.reaction");
  const status = await post("$e5", "m.room.message");
  await post("$e5", "m.room.message", status); // an edit of it

  const reruns: string[] = [];
  const told: Array<{ id: number; once: string; text: string }> = [];
  await recoverCommands(
    [
      cmd(1, "machines"),
      cmd(2, "status nas"),
      cmd(3, "vm list"),
      cmd(4, "reboot nas"),
      cmd(5, "vm run media"),
      cmd(6, "deploy laptop"), // its deploy row was not written yet: the deploy's recovery does not know it
      cmd(7, "lock nas"),
      { ...cmd(8, "whoami"), eventId: undefined },
    ],
    {
      db,
      table: commandTable,
      prefix: "!",
      rerun: async (c, line) => void reruns.push(`${c.id} ${line}`),
      tell: async (c, message, once) => void told.push({ id: c.id, once, text: message.text }),
    },
  );
  assert.deepEqual(reruns, ["1 machines", "3 vm list"]);
  assert.deepEqual(
    told.map((t) => [t.id, t.once]),
    [
      [5, "interrupted:command:5"],
      [6, "interrupted:command:6"],
      [7, "interrupted:command:7"],
    ],
  );
  assert.match(told[0]?.text ?? "", /\(#5\) was cut short when I stopped, and I did not run it again/);
});
