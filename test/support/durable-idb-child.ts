// A separate process that uses the durable IndexedDB, so a test can kill it (-9) or hold its lock.
// argv: <journal path> <mode>; modes:
//   write: puts records "k<i>" one transaction each, printing "durable <i>" after each flush, until killed;
//   hold: opens the journal and waits;
//   crypto: starts matrix-js-sdk's Rust crypto on it and prints the device's identity key.
import { createInterface } from "node:readline";
import { DurableIndexedDb } from "../../bot/matrix/durable-indexeddb.ts";
import { openCryptoJournal } from "../../storage/crypto-journal.ts";

const [path, mode] = process.argv.slice(2) as [string, string];
const journal = await openCryptoJournal(path);
const idb = await DurableIndexedDb.open(journal, { onError: (err) => console.error(err) });

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

if (mode === "write") {
  const open = idb.factory.open("db", 1);
  open.onupgradeneeded = () => open.result.createObjectStore("s");
  const db = await request(open);
  await idb.compact();
  for (let i = 0; ; i++) {
    const tx = db.transaction("s", "readwrite");
    tx.objectStore("s").put({ i, pad: "x".repeat(100) }, `k${i}`);
    await new Promise((r) => (tx.oncomplete = r));
    await idb.flushed();
    process.stdout.write(`durable ${i}\n`);
  }
} else if (mode === "hold") {
  process.stdout.write("holding\n");
  createInterface({ input: process.stdin }).on("close", () => process.exit(0));
} else if (mode === "crypto") {
  const { createClient } = await import("matrix-js-sdk");
  const client = createClient({ baseUrl: "http://127.0.0.1:9", userId: "@bot:localhost", deviceId: "BOTDEVICE", accessToken: "unused" });
  await client.initRustCrypto({ useIndexedDB: true, cryptoDatabasePrefix: "clanbot", storageKey: new Uint8Array(32).fill(7) });
  await idb.flushed();
  const keys = await client.getCrypto()?.getOwnDeviceKeys();
  process.stdout.write(`identity ${keys?.ed25519}\n`);
  client.stopClient();
  await idb.close();
  process.exit(0);
}
