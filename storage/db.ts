import { chmod, mkdir, open } from "node:fs/promises";
import { dirname } from "node:path";
import sqlite3 from "sqlite3";

export type SqlValue = string | number | bigint | null | Buffer;
export type Params = readonly SqlValue[];

export interface Queries {
  run(sql: string, params?: Params): Promise<{ lastID: number; changes: number }>;
  get<T>(sql: string, params?: Params): Promise<T | undefined>;
  all<T>(sql: string, params?: Params): Promise<T[]>;
  exec(sql: string): Promise<void>;
}

export interface Db extends Queries {
  /** Runs `fn` in one transaction; other queries wait until it commits or rolls back. */
  transaction<T>(fn: (q: Queries) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** SQLite's answers when it cannot write now: a full disk, a broken, locked or read-only file. */
export function isWriteFailure(err: unknown): boolean {
  const code = (err as { code?: string } | undefined)?.code ?? "";
  return /^SQLITE_(FULL|IOERR|READONLY|CANTOPEN|CORRUPT|NOTADB|BUSY|LOCKED)/.test(code);
}

/** Another process holds the file open exclusively. */
export class DatabaseBusyError extends Error {
  override readonly name = "DatabaseBusyError";
  readonly path: string;
  constructor(path: string) {
    super(`${path} is in use by another process`);
    this.path = path;
  }
}

function queriesOf(raw: sqlite3.Database): Queries {
  return {
    run: (sql, params = []) =>
      new Promise((resolve, reject) => {
        raw.run(sql, params as SqlValue[], function (this: sqlite3.RunResult, err: Error | null) {
          if (err) reject(err);
          else resolve({ lastID: this.lastID, changes: this.changes });
        });
      }),
    get: <T>(sql: string, params: Params = []) =>
      new Promise<T | undefined>((resolve, reject) => {
        raw.get(sql, params as SqlValue[], (err: Error | null, row: T | undefined) => (err ? reject(err) : resolve(row)));
      }),
    all: <T>(sql: string, params: Params = []) =>
      new Promise<T[]>((resolve, reject) => {
        raw.all(sql, params as SqlValue[], (err: Error | null, rows: T[]) => (err ? reject(err) : resolve(rows)));
      }),
    exec: (sql) => new Promise((resolve, reject) => raw.exec(sql, (err) => (err ? reject(err) : resolve()))),
  };
}

/**
 * Opens (creating it with mode 0600) the SQLite file: WAL so readers never block the writer,
 * a busy timeout so a second process waits instead of failing, foreign keys on.
 * One connection is shared; a transaction holds a queue so no other query slips into it.
 */
export async function openDatabase(path: string, opts: { exclusive?: boolean } = {}): Promise<Db> {
  if (path !== ":memory:") {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    // SQLite creates files with the process umask; create it first so it is private from its first byte.
    // The -wal and -shm files take the main file's permissions.
    const fh = await open(path, "a", 0o600);
    await fh.close();
    await chmod(path, 0o600);
  }
  const raw = await new Promise<sqlite3.Database>((resolve, reject) => {
    const db: sqlite3.Database = new sqlite3.Database(path, sqlite3.OPEN_READWRITE | sqlite3.OPEN_CREATE, (err) =>
      err ? reject(err) : resolve(db),
    );
  });
  raw.configure("busyTimeout", opts.exclusive ? 0 : 5000);
  const q = queriesOf(raw);
  if (opts.exclusive) {
    // Held until the connection closes (or the process dies): a second process cannot open the file.
    await q.exec("PRAGMA locking_mode = EXCLUSIVE");
    try {
      await q.exec("BEGIN EXCLUSIVE; COMMIT;");
    } catch (err) {
      await new Promise<void>((resolve) => raw.close(() => resolve()));
      if ((err as { code?: string }).code === "SQLITE_BUSY") throw new DatabaseBusyError(path);
      throw err;
    }
  }
  // secure_delete (FAST: no extra I/O): an overwritten or deleted value (a token stored in clear by an older clanbot, a
  // sent post's content) is zeroed, not left in a free page of the file.
  await q.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA secure_delete = FAST;");

  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const next = queue.then(fn, fn);
    queue = next.catch(() => undefined);
    return next;
  };
  return {
    run: (sql, params) => serial(() => q.run(sql, params)),
    get: (sql, params) => serial(() => q.get(sql, params)),
    all: (sql, params) => serial(() => q.all(sql, params)),
    exec: (sql) => serial(() => q.exec(sql)),
    transaction: (fn) =>
      serial(async () => {
        await q.exec("BEGIN IMMEDIATE");
        try {
          const result = await fn(q);
          await q.exec("COMMIT");
          return result;
        } catch (err) {
          await q.exec("ROLLBACK");
          throw err;
        }
      }),
    close: () => serial(() => new Promise<void>((resolve, reject) => raw.close((err) => (err ? reject(err) : resolve())))),
  };
}
