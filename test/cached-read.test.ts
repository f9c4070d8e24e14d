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

test("fresh reads asked for while a read runs share one read that starts after it; a read started since is shared", async () => {
  let reads = 0;
  const releases: Array<() => void> = [];
  const cache = new CachedRead(
    () =>
      new Promise<number>((resolve) => {
        const n = ++reads;
        releases.push(() => resolve(n));
      }),
    60_000,
    { now: () => 0 },
  );
  const signal = new AbortController().signal;
  const running = cache.get(signal);
  // Ten !refresh at once while the first read runs: it may predate their change, so one more read, for all ten.
  const fresh = Array.from({ length: 10 }, () => cache.get(signal, true));
  releases.shift()?.();
  assert.equal(await running, 1);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(reads, 2);
  releases.shift()?.();
  assert.deepEqual(await Promise.all(fresh), Array(10).fill(2));
  // Nothing running: a fresh read starts at once.
  const alone = cache.get(signal, true);
  assert.equal(reads, 3);
  releases.shift()?.();
  assert.equal(await alone, 3);
});

test("many fresh reads of a failing flake: still one read after the running one", async () => {
  let reads = 0;
  const releases: Array<() => void> = [];
  const cache = new CachedRead(
    () =>
      new Promise<number>((_resolve, reject) => {
        reads++;
        releases.push(() => reject(new Error("nix: syntax error")));
      }),
    60_000,
    { now: () => 0 },
  );
  const signal = new AbortController().signal;
  const first = cache.get(signal, true);
  const more = Array.from({ length: 5 }, () => cache.get(signal, true));
  releases.shift()?.();
  await assert.rejects(first, /syntax error/);
  await new Promise((resolve) => setImmediate(resolve));
  releases.shift()?.();
  for (const m of more) await assert.rejects(m, /syntax error/);
  assert.equal(reads, 2);
});
