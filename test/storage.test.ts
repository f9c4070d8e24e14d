import assert from "node:assert/strict";
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { finishCommand, interruptCommands, recentCommands, runningCommands, startCommand } from "../storage/audit.ts";
import { openDatabase } from "../storage/db.ts";
import { claimEvent, EventClaims, forgetEventsBefore, unrecordedClaims } from "../storage/handled-events.ts";
import { addToOutbox, forgetSentPosts, laneState, markFailed, markSent, pendingPosts, sentEventOf } from "../storage/outbox.ts";
import { migrate, MIGRATIONS } from "../storage/migrations.ts";
import { tempDir } from "./support/temp-dir.ts";

test("the database file is private (0600) in a private directory, and in WAL mode", async () => {
  const dir = await tempDir();
  const path = join(dir, "state", "clanbot.sqlite3");
  const db = await openDatabase(path);
  await migrate(db);
  await startCommand(db, { clan: "a", room: "!r", sender: "@u", command: "help", line: "!help", eventId: undefined, startedAt: 1 });
  assert.equal((await stat(path)).mode & 0o777, 0o600);
  assert.equal((await stat(join(dir, "state"))).mode & 0o777, 0o700);
  assert.equal((await stat(`${path}-wal`)).mode & 0o777, 0o600);
  assert.equal((await db.get<{ journal_mode: string }>("PRAGMA journal_mode"))?.journal_mode, "wal");
  await db.close();
});

test("migrations run once each, in a transaction, and refuse a newer schema", async () => {
  const path = join(await tempDir(), "db.sqlite3");
  const db = await openDatabase(path);
  assert.equal(await migrate(db), MIGRATIONS.length);
  assert.equal(await migrate(db), MIGRATIONS.length);
  // A failing migration leaves the version and the schema as they were.
  await assert.rejects(migrate(db, [...MIGRATIONS, "CREATE TABLE t (x); SELECT nonsense_fn();"]), /nonsense_fn/);
  assert.equal((await db.get<{ user_version: number }>("PRAGMA user_version"))?.user_version, MIGRATIONS.length);
  assert.equal(await db.get("SELECT name FROM sqlite_master WHERE name = 't'"), undefined);
  await db.exec(`PRAGMA user_version = ${MIGRATIONS.length + 1}`);
  await assert.rejects(migrate(db), /newer than this clanbot knows/);
  await db.close();
});

test("an event is claimed once, even by concurrent handlers", async () => {
  const db = await openDatabase(join(await tempDir(), "db.sqlite3"));
  await migrate(db);
  const claims = await Promise.all([1, 2, 3].map(() => claimEvent(db, "$e1", "fam", 100)));
  assert.deepEqual(claims.sort(), [false, false, true]);
  assert.equal(await forgetEventsBefore(db, 101), 1);
  assert.equal(await claimEvent(db, "$e1", "fam", 200), true);
  await db.close();
});

test("claims of recent events are decided at once and stored; older events are looked up; a restart knows both", async () => {
  const db = await openDatabase(join(await tempDir(), "db.sqlite3"));
  await migrate(db);
  const hour = 3600_000;
  const now = 100 * hour;
  // Claimed by an earlier run: one within the hours kept in memory, one long before.
  assert.equal(await claimEvent(db, "$recent", "fam", now - hour), true);
  assert.equal(await claimEvent(db, "$old", "fam", now - 50 * hour), true);
  const claims = await EventClaims.load(db, now);

  const fresh = claims.claim("$new", "fam", now - 1000, now);
  assert.ok(!(fresh instanceof Promise) && fresh.fresh, "a new event is claimed without waiting");
  assert.deepEqual(claims.claim("$new", "fam", now - 1000, now), { fresh: false });
  await fresh.stored;
  assert.equal(await claimEvent(db, "$new", "fam", now), false, "the claim is in SQLite");
  assert.deepEqual(claims.claim("$recent", "fam", now - hour, now), { fresh: false });

  // Sent before the window: SQLite decides.
  const old = claims.claim("$old", "fam", now - 50 * hour, now);
  assert.ok(old instanceof Promise);
  assert.deepEqual(await old, { fresh: false });
  const replayed = await claims.claim("$unseen-old", "fam", now - 50 * hour, now);
  assert.equal(replayed.fresh, true);
  assert.deepEqual(await claims.claim("$unseen-old", "fam", now - 50 * hour, now), { fresh: false });

  const restarted = await EventClaims.load(db, now + 1000);
  assert.deepEqual(restarted.claim("$new", "fam", now - 1000, now + 1000), { fresh: false });
  assert.deepEqual(restarted.claim("$unseen-old", "fam", now - 50 * hour, now + 1000), { fresh: false });
  // Hours later the window has moved on: what it forgot is still found in SQLite.
  const later = now + 5 * hour;
  const again = restarted.claim("$new", "fam", now - 1000, later);
  assert.ok(again instanceof Promise);
  assert.deepEqual(await again, { fresh: false });
  await db.close();
});

test("the audit keeps clans apart, newest first, and marks runs a crash interrupted", async () => {
  const db = await openDatabase(join(await tempDir(), "db.sqlite3"));
  await migrate(db);
  const base = { room: "!r", sender: "@u", command: "help", line: "!help", eventId: undefined };
  const a1 = await startCommand(db, { ...base, clan: "a", startedAt: 1 });
  await finishCommand(db, a1, "ok", 5);
  await startCommand(db, { ...base, clan: "b", startedAt: 2 });
  const a2 = await startCommand(db, { ...base, clan: "a", startedAt: 3 });
  assert.deepEqual((await recentCommands(db, "a", 10)).map((e) => [e.id, e.result]), [[a2, "running"], [a1, "ok"]]);
  const running = await runningCommands(db);
  assert.equal(running.length, 2);
  await interruptCommands(db, running.map((c) => c.id), 9);
  assert.equal((await recentCommands(db, "a", 1))[0]?.result, "interrupted");
  await db.close();
});

test("the outbox: posts pending until sent, content dropped once sent, once keys unique, old sent posts forgotten, pending kept", async () => {
  const db = await openDatabase(join(await tempDir(), "db.sqlite3"));
  await migrate(db);
  const row = (lane: string, extra: object = {}) => ({ roomId: "!r", lane, eventType: "m.room.message", content: { body: "a join link" }, ...extra });
  const a = (await addToOutbox(db, row("answer:$1"), 100)) as number;
  const b = (await addToOutbox(db, row("answer:$1", { eventType: "m.reaction", content: {} }), 100)) as number;
  assert.equal(await addToOutbox(db, row("notice:!r", { once: "greeting:$i" }), 100) !== undefined, true);
  assert.equal(await addToOutbox(db, row("notice:!r", { once: "greeting:$i" }), 200), undefined, "a once key is posted once");
  assert.deepEqual((await pendingPosts(db)).map((p) => p.id).slice(0, 2), [a, b]);
  await markSent(db, a, "$sent");
  await markFailed(db, b);
  assert.equal(await sentEventOf(db, a), "$sent");
  assert.equal(await sentEventOf(db, b), undefined);
  const raw = await db.get<{ content: string }>("SELECT content FROM outbox WHERE id = ?", [a]);
  assert.equal(raw?.content, "{}", "the content is not kept once sent");
  assert.deepEqual(await laneState(db, "answer:$1"), { posted: true, ended: true });
  assert.deepEqual(await laneState(db, "answer:$2"), { posted: false, ended: false });
  assert.equal(await forgetSentPosts(db, 150), 2);
  assert.equal((await pendingPosts(db)).length, 1, "pending posts are never forgotten");
});

test("claims with no command row are found (a crash between the two); notices' own claims are not", async () => {
  const db = await openDatabase(join(await tempDir(), "db.sqlite3"));
  await migrate(db);
  await claimEvent(db, "$recorded", "fam", 10);
  await claimEvent(db, "$lost", "fam", 10);
  await claimEvent(db, "$x#undecryptable", "fam", 10);
  await claimEvent(db, "$old", "fam", 1);
  await startCommand(db, { clan: "fam", room: "!r", sender: "@a:x", command: "whoami", line: "!whoami", eventId: "$recorded", startedAt: 10 });
  assert.deepEqual(await unrecordedClaims(db, 5), [{ eventId: "$lost", clan: "fam" }]);
});
