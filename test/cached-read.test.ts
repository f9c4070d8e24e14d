// One flake evaluation shared by everyone asking at once, reused for a while, read again on demand.

import assert from "node:assert/strict";
import { test } from "node:test";
import { CachedRead } from "../ops/cached-read.ts";

test("a read is shared while it runs, reused within its ttl, and done again when fresh or expired", async () => {
  let now = 0;
  let reads = 0;
  let release: () => void = () => undefined;
  const cache = new CachedRead(
    () =>
      new Promise<number>((resolve) => {
        reads++;
        const n = reads;
        release = () => resolve(n);
      }),
    1000,
    { now: () => now },
  );
  const signal = new AbortController().signal;
  const a = cache.get(signal);
  const b = cache.get(signal);
  release();
  assert.deepEqual(await Promise.all([a, b]), [1, 1]);
  assert.equal(reads, 1);
  now = 999;
  assert.equal(await cache.get(signal), 1);
  const fresh = cache.get(signal, true);
  release();
  assert.equal(await fresh, 2);
  now = 999 + 1000;
  const expired = cache.get(signal);
  release();
  assert.equal(await expired, 3);
});

test("one caller giving up does not cancel the read the others wait for; a failed read is not kept", async () => {
  let fail = true;
  let release: () => void = () => undefined;
  const cache = new CachedRead(
    () =>
      new Promise<string>((resolve, reject) => {
        release = () => (fail ? reject(new Error("nix: syntax error")) : resolve("ok"));
      }),
    60_000,
    { now: () => 0 },
  );
  const impatient = new AbortController();
  const first = cache.get(impatient.signal);
  const second = cache.get(new AbortController().signal);
  impatient.abort(new Error("gave up"));
  await assert.rejects(first, /gave up/);
  release();
  await assert.rejects(second, /syntax error/);
  fail = false;
  const again = cache.get(new AbortController().signal);
  release();
  assert.equal(await again, "ok");
});
