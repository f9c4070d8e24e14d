import { randomBytes } from "node:crypto";
import { mkdir, rename } from "node:fs/promises";
import { join } from "node:path";
import { Method, type MatrixClient } from "matrix-js-sdk";
import { openCryptoJournal, type CryptoJournal } from "../../storage/crypto-journal.ts";
import { DatabaseBusyError } from "../../storage/db.ts";
import { AGE_SUFFIX, readSecretFile, writeSecretFile, type SecretBox } from "../../ops/secret-box.ts";
import type { Logger } from "../logger.ts";
import { DurableIndexedDb } from "./durable-indexeddb.ts";

/** A problem with the bot's encryption state that a restart will not fix: said in one line, the process exits. */
export class CryptoStateError extends Error {
  override readonly name = "CryptoStateError";
}

/** The IndexedDB name prefix of the bot's crypto store. */
export const CRYPTO_DB_PREFIX = "clanbot";

/**
 * Requests that let the homeserver or another device see the crypto state: they wait until it is on
 * disk. Plain sends (messages and reactions in unencrypted rooms, media) do not.
 */
const SEES_CRYPTO_STATE = /\/_matrix\/client\/[^/]+\/(keys\/|sendToDevice\/|sync\b|room_keys\/|rooms\/[^/]+\/send\/m\.room\.encrypted\/)/;

export interface DeviceCrypto {
  idb: DurableIndexedDb;
  /** Encrypts the store's values (the crypto library's store cipher). */
  storageKey: Uint8Array;
  /** A new, empty store (first start for this device, or a device made anew). */
  fresh: boolean;
  /** Where the bot keeps its cross-signing private keys, apart from the store. */
  crossSigningFile: string;
  /** The fetch the Matrix client uses: waits for the store before requests that reveal its state. */
  fetchFn: typeof fetch;
  /** Records which device the (fresh) store now belongs to. */
  claim(userId: string, deviceId: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * Reads the 32-byte store key (kept age-encrypted as `<path>.age`; a clear one from an older bot is
 * encrypted on the way), or makes one when there is none and `create` allows.
 */
async function keyFile(box: SecretBox, path: string, create: boolean): Promise<Uint8Array | undefined> {
  const data = await readSecretFile(box, path);
  if (data !== undefined) {
    if (data.byteLength !== 32) throw new CryptoStateError(`${path}: not a crypto store key (32 bytes expected, ${data.byteLength} found)`);
    return data;
  }
  if (!create) return undefined;
  const key = new Uint8Array(randomBytes(32));
  await writeSecretFile(box, path, key);
  return key;
}

/**
 * Opens the crypto store of the bot's device under `<stateDir>/crypto/`: the journal (SQLite, 0600,
 * one process at a time), its key, the kept cross-signing keys. A store that belongs to another
 * device (the access token now names a new device) is set aside, never mixed with the new one.
 */
export async function openDeviceCrypto(stateDir: string, session: { userId: string; deviceId: string }, log: Logger, box: SecretBox): Promise<DeviceCrypto> {
  const dir = join(stateDir, "crypto");
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const journalPath = join(dir, "store.sqlite3");
  const open = async (): Promise<CryptoJournal> => {
    try {
      return await openCryptoJournal(journalPath);
    } catch (err) {
      if (err instanceof DatabaseBusyError) {
        throw new CryptoStateError(`${journalPath} is in use by another clanbot process: only one may run with this state directory`);
      }
      throw err;
    }
  };
  let journal = await open();
  let owner = await journal.owner();
  if (owner && (owner.userId !== session.userId || owner.deviceId !== session.deviceId)) {
    const aside = `${journalPath}.${owner.deviceId}.old`;
    log.warn({ was: owner.deviceId, now: session.deviceId, aside }, "the crypto store belongs to another device; setting it aside and starting a new one");
    await journal.close();
    await rename(journalPath, aside);
    journal = await open();
    owner = undefined;
  }
  const storageKey = await keyFile(box, join(dir, "store.key"), owner === undefined);
  if (!storageKey) {
    await journal.close();
    throw new CryptoStateError(`${join(dir, `store.key${AGE_SUFFIX}`)} is missing: the crypto store of device ${session.deviceId} cannot be read without it`);
  }
  const idb = await DurableIndexedDb.open(journal, {
    onError: (err) => log.error({ err }, "cannot write the crypto store (is the disk full?); requests that would reveal it wait until it can"),
    onRecovered: () => log.info({}, "the crypto store can be written again"),
  });
  const fetchFn: typeof fetch = async (input, init) => {
    const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    if (SEES_CRYPTO_STATE.test(url)) await idb.flushed();
    return fetch(input, init);
  };
  return {
    idb,
    storageKey,
    fresh: owner === undefined,
    crossSigningFile: join(dir, "cross-signing.json"),
    fetchFn,
    claim: (userId, deviceId) => journal.setOwner(userId, deviceId),
    close: () => idb.close(),
  };
}

/** What the homeserver publishes about one device of the bot's account (`/keys/query`). */
export interface PublishedDevice {
  /** The device's identity keys, with the signatures on them; undefined when it has none. */
  keys: { signatures?: Record<string, Record<string, string>> } | undefined;
  /** Key ids of the account's self-signing key. */
  selfSigningKeyIds: string[];
}

export async function publishedDevice(client: MatrixClient, userId: string, deviceId: string): Promise<PublishedDevice> {
  const res = await client.http.authedRequest<{
    device_keys?: Record<string, Record<string, { signatures?: Record<string, Record<string, string>> }>>;
    self_signing_keys?: Record<string, { keys?: Record<string, string> }>;
  }>(Method.Post, "/keys/query", undefined, { device_keys: { [userId]: [deviceId] } });
  return { keys: res.device_keys?.[userId]?.[deviceId], selfSigningKeyIds: Object.keys(res.self_signing_keys?.[userId]?.keys ?? {}) };
}

/** Whether the homeserver already has identity keys for this device (then a fresh store cannot be its store). */
export async function deviceHasKeys(client: MatrixClient, userId: string, deviceId: string): Promise<boolean> {
  return (await publishedDevice(client, userId, deviceId)).keys !== undefined;
}
