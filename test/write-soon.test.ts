import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { writeSoon } from "../ops/write-soon.ts";
import { openDatabase } from "../storage/db.ts";
import { tempDir } from "./support/temp-dir.ts";

test("a record the full database refuses lands once it can be written; other errors are thrown", async () => {
  const db = await openDatabase(join(await tempDir(), "db.sqlite3"));
  await db.exec("CREATE TABLE results (what TEXT)");
  const { page_count } = (await db.get<{ page_count: number }>("PRAGMA page_count")) as { page_count: number };
  // SQLite's own "disk full": the file may not grow past the pages it has.
  await db.exec(`PRAGMA max_page_count = ${page_count}`);
  const errors: string[] = [];
  const log = { info: () => undefined, warn: () => undefined, error: (_f: Record<string, unknown>, msg: string) => void errors.push(msg) };
  const write = () => db.run("INSERT INTO results (what) VALUES (?)", ["deploy #7 ok ".repeat(2000)]);
  await writeSoon(write, log, "the result of deploy #7", 50);
  assert.deepEqual(errors, ["cannot write the result of deploy #7 now; trying again until the database takes it"]);
  assert.equal((await db.get<{ n: number }>("SELECT COUNT(*) AS n FROM results"))?.n, 0);
  // Space again: the write lands without anyone asking.
  await db.exec("PRAGMA max_page_count = 1000000");
  for (let i = 0; i < 100 && (await db.get<{ n: number }>("SELECT COUNT(*) AS n FROM results"))?.n === 0; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal((await db.get<{ n: number }>("SELECT COUNT(*) AS n FROM results"))?.n, 1);
  await assert.rejects(writeSoon(() => db.run("INSERT INTO nosuch VALUES (1)"), log, "x"), /no such table/);
});
