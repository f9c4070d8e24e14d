/// <reference lib="dom" />
import { deserialize, serialize } from "node:v8";
import {
  IDBCursor,
  IDBDatabase,
  IDBFactory,
  IDBKeyRange,
  IDBObjectStore,
  IDBTransaction,
  IDBCursorWithValue,
  IDBIndex,
  IDBOpenDBRequest,
  IDBRequest,
  IDBVersionChangeEvent,
} from "fake-indexeddb";
import type { CryptoJournal } from "../../storage/crypto-journal.ts";

/**
 * IndexedDB for matrix-js-sdk's Rust crypto in Node, kept in memory (fake-indexeddb) and written
 * through to a journal on disk (SQLite): every transaction that completes is queued, and `flushed()`
 * resolves once everything completed so far is on disk. The HTTP layer waits for it before any
 * request that lets the homeserver or another device see the crypto state (a key upload, a to-device
 * message, an encrypted send, the next /sync that acknowledges to-device messages), so that after a
 * kill -9 the store is never behind what the world has seen: a store behind the server breaks the
 * device's encryption for good (one-time keys reused, room keys acknowledged but lost).
 * Memory: one copy of the (small) crypto store; the journal is compacted into a snapshot at start
 * and every `compactEvery` batches.
 */

type Key = unknown;
type Range = { lower: Key; upper: Key; lowerOpen: boolean; upperOpen: boolean };
type Op =
  | { db: string; store: string; kind: "put"; key: Key; value: Buffer }
  | { db: string; store: string; kind: "delete"; key: Key }
  | { db: string; store: string; kind: "deleteRange"; range: Range }
  | { db: string; store: string; kind: "clear" };

interface StoreSnapshot {
  name: string;
  keyPath: string | string[] | null;
  autoIncrement: boolean;
  indexes: Array<{ name: string; keyPath: string | string[]; unique: boolean; multiEntry: boolean }>;
  keys: Key[];
  values: Buffer[];
}
interface DbSnapshot {
  name: string;
  version: number;
  stores: StoreSnapshot[];
}

/** Which journal the prototype hooks below report to: one per process (one bot device). */
let active: DurableIndexedDb | undefined;
const opsOf = new WeakMap<IDBTransaction, Op[]>();

function record(tx: IDBTransaction, op: Op): void {
  // Not while the journal itself restores the databases (nothing is active yet then).
  if (!active) return;
  if (tx.mode === "versionchange") {
    active.schemaChanged();
    return;
  }
  let ops = opsOf.get(tx);
  if (!ops) {
    ops = [];
    opsOf.set(tx, ops);
    tx.addEventListener("complete", () => active?.committed(ops as Op[]));
  }
  ops.push(op);
}

function rangeOf(query: unknown): Range | undefined {
  if (!(query instanceof IDBKeyRange)) return undefined;
  return { lower: query.lower, upper: query.upper, lowerOpen: query.lowerOpen, upperOpen: query.upperOpen };
}

function toKeyRange(r: Range): IDBKeyRange {
  if (r.lower === undefined) return IDBKeyRange.upperBound(r.upper, r.upperOpen);
  if (r.upper === undefined) return IDBKeyRange.lowerBound(r.lower, r.lowerOpen);
  return IDBKeyRange.bound(r.lower, r.upper, r.lowerOpen, r.upperOpen);
}

let hooked = false;
/** Wraps the writing methods once: each records what it did when its request succeeds. */
function hookWrites(): void {
  if (hooked) return;
  hooked = true;
  const store = IDBObjectStore.prototype;
  for (const method of ["put", "add"] as const) {
    const original = store[method];
    store[method] = function (this: IDBObjectStore, value: unknown, key?: IDBValidKey): IDBRequest<IDBValidKey> {
      const copy = serialize(value);
      const req = original.call(this, value, key) as IDBRequest<IDBValidKey>;
      const tx = this.transaction;
      const name = this.name;
      req.addEventListener("success", () => record(tx, { db: tx.db.name, store: name, kind: "put", key: req.result, value: copy }));
      return req;
    } as typeof original;
  }
  const originalDelete = store.delete;
  store.delete = function (this: IDBObjectStore, query: IDBValidKey | IDBKeyRange): IDBRequest<undefined> {
    const req = originalDelete.call(this, query);
    const tx = this.transaction;
    const name = this.name;
    const range = rangeOf(query);
    req.addEventListener("success", () =>
      record(tx, range ? { db: tx.db.name, store: name, kind: "deleteRange", range } : { db: tx.db.name, store: name, kind: "delete", key: query }),
    );
    return req;
  };
  const originalClear = store.clear;
  store.clear = function (this: IDBObjectStore): IDBRequest<undefined> {
    const req = originalClear.call(this);
    const tx = this.transaction;
    const name = this.name;
    req.addEventListener("success", () => record(tx, { db: tx.db.name, store: name, kind: "clear" }));
    return req;
  };
  // A new shape (an upgrade) is written as a whole snapshot once the upgrade is done.
  for (const [proto, methods] of [
    [IDBDatabase.prototype, ["createObjectStore", "deleteObjectStore"]],
    [IDBObjectStore.prototype, ["createIndex", "deleteIndex"]],
  ] as const) {
    for (const method of methods) {
      const target = proto as unknown as Record<string, (...args: unknown[]) => unknown>;
      const original = target[method] as (...args: unknown[]) => unknown;
      target[method] = function (this: unknown, ...args: unknown[]): unknown {
        const result = original.apply(this, args);
        active?.schemaChanged();
        return result;
      };
    }
  }
  const cursor = IDBCursor.prototype;
  const storeOf = (c: IDBCursor): IDBObjectStore => (c.source instanceof IDBIndex ? c.source.objectStore : (c.source as IDBObjectStore));
  const originalUpdate = cursor.update;
  cursor.update = function (this: IDBCursor, value: unknown): IDBRequest<IDBValidKey> {
    const copy = serialize(value);
    const key = this.primaryKey;
    const target = storeOf(this);
    const req = originalUpdate.call(this, value);
    const tx = target.transaction;
    req.addEventListener("success", () => record(tx, { db: tx.db.name, store: target.name, kind: "put", key, value: copy }));
    return req;
  };
  const originalCursorDelete = cursor.delete;
  cursor.delete = function (this: IDBCursor): IDBRequest<undefined> {
    const key = this.primaryKey;
    const target = storeOf(this);
    const req = originalCursorDelete.call(this);
    const tx = target.transaction;
    req.addEventListener("success", () => record(tx, { db: tx.db.name, store: target.name, kind: "delete", key }));
    return req;
  };
}

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.addEventListener("success", () => resolve(req.result));
    req.addEventListener("error", () => reject(req.error ?? new Error("IndexedDB request failed")));
  });
}

function done(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.addEventListener("complete", () => resolve());
    tx.addEventListener("abort", () => reject(tx.error ?? new Error("IndexedDB transaction aborted")));
    tx.addEventListener("error", () => reject(tx.error ?? new Error("IndexedDB transaction failed")));
  });
}

export interface DurableIndexedDbOptions {
  /** Batches in the journal after which it is folded into a new snapshot. */
  compactEvery?: number;
  /** Writing failed (a full disk); it is tried again every few seconds. */
  onError: (err: unknown) => void;
  /** Writing works again after a failure. */
  onRecovered?: () => void;
}

/** Between tries of a journal write the disk refused. */
const RETRY_WRITE_MS = 2000;

export class DurableIndexedDb {
  readonly factory = new IDBFactory();
  private readonly journal: CryptoJournal;
  private readonly opts: { compactEvery: number } & Omit<DurableIndexedDbOptions, "compactEvery">;
  private pending: Op[] = [];
  /** Ops committed in memory so far, and the count of those that are on disk. */
  private committedCount = 0;
  private durableCount = 0;
  private waiters: Array<{ upTo: number; resolve: () => void }> = [];
  private writing: Promise<void> | undefined;
  private batchesSinceSnapshot = 0;
  private needsSnapshot = false;
  /** Writes fail now (a full disk): told once, and again when they work. */
  private failing = false;

  private constructor(journal: CryptoJournal, opts: DurableIndexedDbOptions) {
    this.journal = journal;
    this.opts = { compactEvery: 2000, ...opts };
  }

  /** Restores the databases from the journal and makes them the process's `indexedDB`. */
  static async open(journal: CryptoJournal, opts: DurableIndexedDbOptions): Promise<DurableIndexedDb> {
    if (active) throw new Error("a durable IndexedDB is already open in this process");
    hookWrites();
    const me = new DurableIndexedDb(journal, opts);
    const { snapshot, batches } = await journal.load();
    if (snapshot) await me.restore(deserialize(snapshot) as DbSnapshot[]);
    for (const batch of batches) await me.replay(deserialize(batch) as Op[]);
    me.batchesSinceSnapshot = batches.length;
    active = me;
    const g = globalThis as Record<string, unknown>;
    Object.assign(g, {
      indexedDB: me.factory,
      IDBFactory,
      IDBDatabase,
      IDBObjectStore,
      IDBIndex,
      IDBCursor,
      IDBCursorWithValue,
      IDBKeyRange,
      IDBRequest,
      IDBOpenDBRequest,
      IDBTransaction,
      IDBVersionChangeEvent,
    });
    return me;
  }

  /** Resolves once everything committed so far is on disk (at once when it is). */
  flushed(): Promise<void> {
    if (this.durableCount >= this.committedCount && !this.needsSnapshot) return Promise.resolve();
    const upTo = this.committedCount;
    return new Promise((resolve) => {
      this.waiters.push({ upTo, resolve });
      this.kick();
    });
  }

  /** Writes a snapshot of everything now and empties the journal's batches. */
  async compact(): Promise<void> {
    this.needsSnapshot = true;
    await this.flushed();
  }

  async close(): Promise<void> {
    await this.flushed();
    if (active === this) active = undefined;
    await this.journal.close();
  }

  /** @internal a transaction of the crypto store completed. */
  committed(ops: Op[]): void {
    this.pending.push(...ops);
    this.committedCount += ops.length;
    this.kick();
  }

  /** @internal the databases' shape changed (an upgrade): only a snapshot holds that. */
  schemaChanged(): void {
    this.needsSnapshot = true;
  }

  private kick(): void {
    if (this.writing) return;
    this.writing = this.writeLoop().finally(() => {
      this.writing = undefined;
    });
  }

  private async writeLoop(): Promise<void> {
    while (this.pending.length || this.needsSnapshot) {
      const snapshotting = this.needsSnapshot || this.batchesSinceSnapshot >= this.opts.compactEvery;
      let batch: Op[] = [];
      try {
        if (snapshotting) {
          this.needsSnapshot = false;
          // Ops queued before the snapshot's transactions start are in it; later ones follow as batches.
          const upTo = this.committedCount;
          const included = this.pending.length;
          const snapshot = await this.snapshot();
          this.pending.splice(0, included);
          await this.journal.compact(serialize(snapshot));
          this.batchesSinceSnapshot = 0;
          this.durableCount = Math.max(this.durableCount, upTo);
        } else {
          batch = this.pending;
          this.pending = [];
          const upTo = this.committedCount;
          await this.journal.append(serialize(batch));
          this.batchesSinceSnapshot += 1;
          this.durableCount = upTo;
        }
        if (this.failing) this.opts.onRecovered?.();
        this.failing = false;
      } catch (err) {
        // The disk is full (or the file is gone): what depends on the store waits (the requests that
        // would reveal it are held), and the write is tried again until it lands. A snapshot is taken
        // anew (it holds everything in memory); a batch goes back to the front of the queue.
        if (snapshotting) this.needsSnapshot = true;
        else this.pending = [...batch, ...this.pending];
        if (!this.failing) this.opts.onError(err);
        this.failing = true;
        setTimeout(() => this.kick(), RETRY_WRITE_MS).unref();
        return;
      }
      const ready = this.waiters.filter((w) => w.upTo <= this.durableCount);
      this.waiters = this.waiters.filter((w) => w.upTo > this.durableCount);
      for (const w of ready) w.resolve();
    }
  }


  private async snapshot(): Promise<DbSnapshot[]> {
    const out: DbSnapshot[] = [];
    for (const info of await this.factory.databases()) {
      if (!info.name) continue;
      const db = await request(this.factory.open(info.name));
      try {
        const names = [...db.objectStoreNames];
        const stores: StoreSnapshot[] = [];
        if (names.length) {
          const tx = db.transaction(names, "readonly");
          const reads = names.map(async (name) => {
            const s = tx.objectStore(name);
            const [keys, values] = await Promise.all([request(s.getAllKeys()), request(s.getAll())]);
            stores.push({
              name,
              keyPath: s.keyPath,
              autoIncrement: s.autoIncrement,
              indexes: [...s.indexNames].map((n) => {
                const i = s.index(n);
                return { name: n, keyPath: i.keyPath, unique: i.unique, multiEntry: i.multiEntry };
              }),
              keys,
              values: values.map((v) => serialize(v)),
            });
          });
          await Promise.all([...reads, done(tx)]);
        }
        out.push({ name: db.name, version: db.version, stores });
      } finally {
        db.close();
      }
    }
    return out;
  }

  private async restore(snapshot: DbSnapshot[]): Promise<void> {
    for (const dbSnap of snapshot) {
      const open = this.factory.open(dbSnap.name, dbSnap.version);
      open.addEventListener("upgradeneeded", () => {
        const db = open.result;
        for (const s of dbSnap.stores) {
          const store = db.createObjectStore(s.name, { keyPath: s.keyPath, autoIncrement: s.autoIncrement });
          for (const i of s.indexes) store.createIndex(i.name, i.keyPath, { unique: i.unique, multiEntry: i.multiEntry });
        }
      });
      const db = await request(open);
      try {
        if (dbSnap.stores.length) {
          const tx = db.transaction(dbSnap.stores.map((s) => s.name), "readwrite");
          for (const s of dbSnap.stores) {
            const store = tx.objectStore(s.name);
            s.keys.forEach((key, i) => putRecord(store, key, deserialize(s.values[i] as Buffer)));
          }
          await done(tx);
        }
      } finally {
        db.close();
      }
    }
  }

  private async replay(ops: Op[]): Promise<void> {
    const byDb = new Map<string, Op[]>();
    for (const op of ops) {
      const list = byDb.get(op.db) ?? [];
      list.push(op);
      byDb.set(op.db, list);
    }
    for (const [name, list] of byDb) {
      const db = await request(this.factory.open(name));
      try {
        const tx = db.transaction([...new Set(list.map((o) => o.store))], "readwrite");
        for (const op of list) {
          const store = tx.objectStore(op.store);
          if (op.kind === "put") putRecord(store, op.key, deserialize(op.value));
          else if (op.kind === "delete") store.delete(op.key as IDBValidKey);
          else if (op.kind === "deleteRange") store.delete(toKeyRange(op.range));
          else store.clear();
        }
        await done(tx);
      } finally {
        db.close();
      }
    }
  }
}

/** A record back where it was: by explicit key, or with its key inside the value (injected when generated). */
function putRecord(store: IDBObjectStore, key: Key, value: unknown): void {
  if (store.keyPath === null) {
    store.put(value, key as IDBValidKey);
    return;
  }
  if (typeof store.keyPath === "string" && store.autoIncrement && value && typeof value === "object" && !(store.keyPath in value)) {
    (value as Record<string, unknown>)[store.keyPath] = key;
  }
  store.put(value);
}
