import type { Logger } from "../logger.ts";

/** What matrix-js-sdk hands its crypto layer from each sync (SyncCryptoCallbacks.processSyncChanges). */
interface SyncChanges {
  toDeviceEvents: readonly unknown[];
  deviceLists?: { changed?: readonly string[]; left?: readonly string[] };
  oneTimeKeysCounts?: Record<string, number>;
  unusedFallbackKeys?: readonly string[];
}
type ProcessSyncChanges = (changes: SyncChanges) => Promise<unknown[]>;

/**
 * matrix-js-sdk passes every sync's encryption data to the Rust crypto before it looks at the rooms,
 * and the Rust crypto commits a store transaction each time, unpickling the Olm account (deriving
 * the public key of each of its one-time keys): ~9 ms of WASM per sync on this kind of machine, in
 * front of every command, plain rooms included, though a sync without to-device messages or device
 * list changes and with the same key counts as the last one changes nothing. Such syncs skip it.
 * The counts are remembered only once the crypto took them.
 */
export function skipUnchangedSyncChanges(crypto: unknown, log: Logger): void {
  const target = crypto as { processSyncChanges?: ProcessSyncChanges };
  const original = target.processSyncChanges;
  if (typeof original !== "function") {
    log.warn({}, "the crypto has no processSyncChanges: every sync goes to it");
    return;
  }
  let last: string | undefined;
  target.processSyncChanges = async (changes) => {
    const news = changes.toDeviceEvents.length > 0 || (changes.deviceLists?.changed?.length ?? 0) > 0 || (changes.deviceLists?.left?.length ?? 0) > 0;
    const counts = JSON.stringify([changes.oneTimeKeysCounts ?? {}, changes.unusedFallbackKeys ? [...changes.unusedFallbackKeys].sort() : null]);
    if (!news && counts === last) return [];
    const out = await original.call(crypto, changes);
    last = counts;
    return out;
  };
}
