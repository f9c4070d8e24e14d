import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import type { ISyncResponse } from "matrix-js-sdk";
import { PersistentSyncStore } from "../bot/matrix/persistent-sync-store.ts";
import { openDatabase, type Db } from "../storage/db.ts";
import { migrate } from "../storage/migrations.ts";
import { tempDir } from "./support/temp-dir.ts";

const ME = "@bot:example.org";
const clock = { now: () => 1_000_000_000 };

async function freshDb(): Promise<Db> {
  const db = await openDatabase(join(await tempDir(), "db.sqlite3"));
  await migrate(db);
  return db;
}

function joined(roomId: string, name: string, messages: number): object {
  const ev = (type: string, extra: object, i: number) => ({ type, sender: "@a:example.org", origin_server_ts: i, event_id: `$${roomId}-${type}-${i}`, ...extra });
  return {
    state: { events: [ev("m.room.create", { state_key: "", content: { creator: "@a:example.org" } }, 0)] },
    timeline: {
      prev_batch: `p-${roomId}`,
      limited: false,
      events: [
        ev("m.room.name", { state_key: "", content: { name } }, 1),
        ...Array.from({ length: messages }, (_, i) => ev("m.room.message", { content: { msgtype: "m.text", body: `hi ${i}` } }, 2 + i)),
      ],
    },
    ephemeral: { events: [] },
    account_data: { events: [] },
  };
}

function sync(nextBatch: string, rooms: Partial<Record<"join" | "invite" | "leave", Record<string, object>>>): ISyncResponse {
  return { next_batch: nextBatch, rooms: { join: {}, invite: {}, leave: {}, ...rooms }, account_data: { events: [] } } as unknown as ISyncResponse;
}

const rows = (db: Db) => db.all<{ room_id: string; data: string }>("SELECT room_id, data FROM sync_rooms WHERE user_id = ? ORDER BY room_id", [ME]);

test("the saved sync has a row per room, a save writes only the rooms a sync touched, and a restart gets them all back", async () => {
  const db = await freshDb();
  const store = new PersistentSyncStore(db, ME, clock);
  assert.equal(await store.isNewlyCreated(), true);
  await store.setSyncData(sync("s1", { join: { "!a": joined("!a", "A", 2), "!b": joined("!b", "B", 2) } }));
  await store.save(true);
  assert.deepEqual((await rows(db)).map((r) => r.room_id), ["!a", "!b"]);

  // Marks !b's row: a save that does not touch !b must leave the row as it is.
  await db.run("UPDATE sync_rooms SET data = json_set(data, '$.marker', 1) WHERE room_id = '!b'");
  await store.setSyncData(sync("s2", { join: { "!a": joined("!a", "A2", 30) }, invite: { "!c": { invite_state: { events: [] } } } }));
  // The saved timeline is cut at the start of a sync's events (where the SDK has a pagination token).
  await store.setSyncData(sync("s2", { join: { "!a": joined("!a", "A3", 1) } }));
  await store.save(true);
  const after = await rows(db);
  assert.deepEqual(after.map((r) => r.room_id), ["!a", "!b", "!c"]);
  assert.equal(JSON.parse(after[1]?.data ?? "{}").marker, 1, "!b was written again");
  const a = JSON.parse(after[0]?.data ?? "{}") as { section: string; room: { timeline: { events: unknown[] } } };
  assert.equal(a.section, "join");
  assert.ok(a.room.timeline.events.length <= 10, `the saved timeline of !a has ${a.room.timeline.events.length} events`);

  const again = new PersistentSyncStore(db, ME, clock);
  assert.equal(await again.isNewlyCreated(), false);
  assert.equal(await again.getSavedSyncToken(), "s2");
  const saved = await again.getSavedSync();
  assert.equal(saved?.nextBatch, "s2");
  assert.deepEqual(Object.keys(saved?.roomsData.join ?? {}).sort(), ["!a", "!b"]);
  assert.deepEqual(Object.keys(saved?.roomsData.invite ?? {}), ["!c"]);

  // Leaving a room drops its row.
  await again.setSyncData(sync("s3", { leave: { "!a": { timeline: { events: [] } } } }));
  await again.save(true);
  assert.deepEqual((await rows(db)).map((r) => r.room_id), ["!b", "!c"]);
  await db.close();
});

test("a sync saved by an older version (all rooms in one string) loads, and the next save gives each room its row", async () => {
  const db = await freshDb();
  const old = new PersistentSyncStore(db, ME, clock);
  await old.setSyncData(sync("s1", { join: { "!a": joined("!a", "A", 1), "!b": joined("!b", "B", 1) } }));
  await old.save(true);
  const saved = await old.getSavedSync();
  const legacy = JSON.stringify({ nextBatch: "s1", roomsData: saved?.roomsData, accountData: [] });
  await db.run("DELETE FROM sync_rooms");
  await db.run("UPDATE sync_state SET data = ?", [legacy]);

  const store = new PersistentSyncStore(db, ME, clock);
  assert.deepEqual(Object.keys((await store.getSavedSync())?.roomsData.join ?? {}).sort(), ["!a", "!b"]);
  await store.save(true);
  assert.deepEqual((await rows(db)).map((r) => r.room_id), ["!a", "!b"]);
  const state = await db.get<{ data: string }>("SELECT data FROM sync_state WHERE user_id = ?", [ME]);
  assert.equal(JSON.parse(state?.data ?? "{}").roomsData, undefined);
  await db.close();
});

test("the bot's own messages (a join link among them) are not kept in the saved sync; the SDK still gets the whole sync", async () => {
  const db = await freshDb();
  const store = new PersistentSyncStore(db, ME, clock);
  const room = joined("!a", "A", 1) as { timeline: { events: object[] } };
  const link = "https://join.example.org/join/Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5";
  room.timeline.events.push({ type: "m.room.message", sender: ME, origin_server_ts: 9, event_id: "$own", content: { msgtype: "m.notice", body: `Join code #1: ${link}` } });
  const data = sync("s1", { join: { "!a": room } });
  await store.setSyncData(data);
  await store.save(true);
  const saved = JSON.stringify(await rows(db));
  assert.doesNotMatch(saved, /join\.example\.org\/join/);
  assert.match(saved, /hi 0/);
  assert.equal(room.timeline.events.length, 3, "the sync the SDK processes is left as it was");
});
