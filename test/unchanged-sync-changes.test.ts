import assert from "node:assert/strict";
import { test } from "node:test";
import { skipUnchangedSyncChanges } from "../bot/matrix/unchanged-sync-changes.ts";
import { createLogger } from "../bot/logger.ts";

test("syncs with nothing new for the crypto skip it; to-device messages, device list changes and new key counts reach it", async () => {
  const seen: unknown[] = [];
  const crypto = {
    async processSyncChanges(changes: unknown) {
      seen.push(changes);
      return ["decrypted"];
    },
  };
  skipUnchangedSyncChanges(crypto, createLogger("silent"));
  const quiet = { toDeviceEvents: [], deviceLists: { changed: [], left: [] }, oneTimeKeysCounts: { signed_curve25519: 50 }, unusedFallbackKeys: ["signed_curve25519"] };
  assert.deepEqual(await crypto.processSyncChanges(quiet), ["decrypted"]);
  assert.deepEqual(await crypto.processSyncChanges({ ...quiet }), []);
  assert.equal(seen.length, 1);
  await crypto.processSyncChanges({ ...quiet, toDeviceEvents: [{ type: "m.room.encrypted" }] });
  await crypto.processSyncChanges({ ...quiet, deviceLists: { changed: ["@bob:x"], left: [] } });
  await crypto.processSyncChanges({ ...quiet, oneTimeKeysCounts: { signed_curve25519: 49 } });
  await crypto.processSyncChanges({ ...quiet, oneTimeKeysCounts: { signed_curve25519: 49 } });
  await crypto.processSyncChanges({ ...quiet, oneTimeKeysCounts: { signed_curve25519: 49 }, unusedFallbackKeys: [] });
  assert.equal(seen.length, 5);
});
