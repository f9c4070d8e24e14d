import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, test } from "node:test";
import { DurableIndexedDb } from "../bot/matrix/durable-indexeddb.ts";
import { openCryptoJournal } from "../storage/crypto-journal.ts";
import { DatabaseBusyError } from "../storage/db.ts";
import { tempDir } from "./support/temp-dir.ts";

const CHILD = join(import.meta.dirname, "support", "durable-idb-child.ts");
const children = new Set<ReturnType<typeof spawn>>();
after(() => {
  for (const c of children) c.kill("SIGKILL");
});

function child(path: string, mode: string) {
  const proc = spawn(process.execPath, [CHILD, path, mode], { stdio: ["pipe", "pipe", "inherit"] });
  children.add(proc);
  proc.on("exit", () => children.delete(proc));
  const lines = createInterface({ input: proc.stdout });
  const next = (pred: (line: string) => boolean): Promise<string> =>
    new Promise((resolve, reject) => {
      const onLine = (line: string): void => {
        if (!pred(line)) return;
        lines.off("line", onLine);
        resolve(line);
      };
      lines.on("line", onLine);
      proc.once("exit", (code) => reject(new Error(`child exited (${code}) before the line came`)));
    });
  const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
  return { proc, next, exited };
}

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function txDone(tx: IDBTransaction): Promise<void> {
  await new Promise((resolve, reject) => {
    tx.oncomplete = resolve;
    tx.onabort = () => reject(tx.error);
  });
}

test("what was written comes back after a reopen: puts, deletes (one key and ranges), clears, cursor updates, indexes", async () => {
  const path = join(await tempDir(), "crypto.sqlite3");
  let idb = await DurableIndexedDb.open(await openCryptoJournal(path), { onError: (e) => assert.fail(String(e)) });
  const open = idb.factory.open("db", 3);
  open.onupgradeneeded = () => {
    const db = open.result;
    db.createObjectStore("plain");
    const inline = db.createObjectStore("inline", { keyPath: ["room", "id"] });
    inline.createIndex("byRoom", "room");
    db.createObjectStore("auto", { keyPath: "n", autoIncrement: true });
    db.createObjectStore("gone");
  };
  let db = await request(open);
  await idb.compact();
  let tx = db.transaction(["plain", "inline", "auto", "gone"], "readwrite");
  for (let i = 0; i < 10; i++) tx.objectStore("plain").put({ i, bytes: new Uint8Array([i, 1, 2]) }, i);
  tx.objectStore("inline").put({ room: "!a", id: 1, v: "one" });
  tx.objectStore("inline").put({ room: "!a", id: 2, v: "two" });
  tx.objectStore("inline").put({ room: "!b", id: 1, v: "three" });
  tx.objectStore("auto").add({ v: "first" });
  tx.objectStore("auto").add({ v: "second" });
  tx.objectStore("gone").put("x", "k");
  await txDone(tx);
  tx = db.transaction(["plain", "inline", "gone"], "readwrite");
  tx.objectStore("plain").delete(0);
  tx.objectStore("plain").delete(IDBKeyRange.bound(5, 7));
  tx.objectStore("gone").clear();
  const cursorReq = tx.objectStore("inline").index("byRoom").openCursor(IDBKeyRange.only("!a"));
  cursorReq.onsuccess = () => {
    const c = cursorReq.result;
    if (!c) return;
    if ((c.value as { id: number }).id === 1) c.update({ ...(c.value as object), v: "ONE" });
    else c.delete();
    c.continue();
  };
  await txDone(tx);
  // An aborted transaction leaves nothing behind.
  tx = db.transaction(["plain"], "readwrite");
  tx.objectStore("plain").put("never", 99);
  tx.abort();
  await idb.flushed();
  db.close();
  await idb.close();

  idb = await DurableIndexedDb.open(await openCryptoJournal(path), { onError: (e) => assert.fail(String(e)) });
  db = await request(idb.factory.open("db"));
  assert.equal(db.version, 3);
  tx = db.transaction(["plain", "inline", "auto", "gone"], "readonly");
  assert.deepEqual(await request(tx.objectStore("plain").getAllKeys()), [1, 2, 3, 4, 8, 9]);
  assert.deepEqual(await request(tx.objectStore("plain").get(2)), { i: 2, bytes: new Uint8Array([2, 1, 2]) });
  assert.deepEqual(await request(tx.objectStore("inline").getAll()), [
    { room: "!a", id: 1, v: "ONE" },
    { room: "!b", id: 1, v: "three" },
  ]);
  assert.deepEqual(await request(tx.objectStore("inline").index("byRoom").getAllKeys("!b")), [["!b", 1]]);
  assert.deepEqual(await request(tx.objectStore("auto").getAll()), [
    { v: "first", n: 1 },
    { v: "second", n: 2 },
  ]);
  assert.equal(await request(tx.objectStore("gone").count()), 0);
  db.close();
  await idb.close();
});

test("a kill -9 loses nothing that was reported durable, and the store reopens", async () => {
  const path = join(await tempDir(), "crypto.sqlite3");
  const writer = child(path, "write");
  const last = await writer.next((line) => Number(line.split(" ")[1]) >= 200);
  writer.proc.kill("SIGKILL");
  await writer.exited;
  const durable = Number(last.split(" ")[1]);
  const idb = await DurableIndexedDb.open(await openCryptoJournal(path), { onError: (e) => assert.fail(String(e)) });
  const db = await request(idb.factory.open("db"));
  const keys = (await request(db.transaction("s").objectStore("s").getAllKeys())) as string[];
  for (let i = 0; i <= durable; i++) assert.ok(keys.includes(`k${i}`), `k${i} was reported durable but is gone`);
  db.close();
  await idb.close();
});

test("a second process cannot open a crypto store that is in use", async () => {
  const path = join(await tempDir(), "crypto.sqlite3");
  const holder = child(path, "hold");
  await holder.next((line) => line === "holding");
  await assert.rejects(openCryptoJournal(path), DatabaseBusyError);
  holder.proc.stdin?.end();
  assert.equal(await holder.exited, 0);
  const journal = await openCryptoJournal(path);
  await journal.close();
});

test("matrix-js-sdk's Rust crypto keeps its device identity across processes", async () => {
  const path = join(await tempDir(), "crypto.sqlite3");
  const first = child(path, "crypto");
  const a = await first.next((line) => line.startsWith("identity "));
  await first.exited;
  const second = child(path, "crypto");
  const b = await second.next((line) => line.startsWith("identity "));
  await second.exited;
  assert.match(a, /^identity [A-Za-z0-9+/]{43}$/);
  assert.equal(b, a);
});

test("a journal the disk refuses (full): what depends on the store waits, and it lands when the disk takes it again", async () => {
  const real = await openCryptoJournal(join(await tempDir(), "crypto.sqlite3"));
  let refuse = false;
  const full = Object.assign(new Error("database or disk is full"), { code: "SQLITE_FULL" });
  const journal = {
    ...real,
    append: async (batch: Buffer) => {
      if (refuse) throw full;
      return real.append(batch);
    },
  };
  const errors: unknown[] = [];
  let recovered = 0;
  const idb = await DurableIndexedDb.open(journal, { onError: (e) => void errors.push(e), onRecovered: () => void recovered++ });
  const open = idb.factory.open("db", 1);
  open.onupgradeneeded = () => open.result.createObjectStore("s");
  const db = await request(open);
  await idb.compact();
  refuse = true;
  const tx = db.transaction("s", "readwrite");
  tx.objectStore("s").put("room key", "k1");
  await txDone(tx);
  let flushed = false;
  const waiting = idb.flushed().then(() => (flushed = true));
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(flushed, false, "a request that would reveal the store went ahead of the disk");
  assert.equal(errors.length, 1);
  refuse = false;
  await waiting;
  assert.equal(recovered, 1);
  db.close();
  await idb.close();
});
