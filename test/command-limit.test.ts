// Commands per person and clan: token buckets, one "slow down" answer per window, admins exempt by default.

import assert from "node:assert/strict";
import { test } from "node:test";
import { CommandLimit } from "../bot/command-limit.ts";
import { formatSlowDown } from "../commands/limit-format.ts";

test("a burst of `requests` runs, the next is limited and told once per window, the bucket refills evenly", () => {
  const limit = new CommandLimit({ requests: 3, windowMs: 30_000, exempt: "admin" });
  for (let i = 0; i < 3; i++) assert.deepEqual(limit.check("fam", "@v:x", "viewer", 0), { limited: false });
  assert.deepEqual(limit.check("fam", "@v:x", "viewer", 0), { limited: true, retryAfterMs: 10_000, tell: true });
  assert.deepEqual(limit.check("fam", "@v:x", "viewer", 4_000), { limited: true, retryAfterMs: 6_000, tell: false });
  // One command's worth came back after 10 s: it runs, the one after it is limited but not told again.
  assert.equal(limit.check("fam", "@v:x", "viewer", 10_000).limited, false);
  assert.deepEqual(limit.check("fam", "@v:x", "viewer", 10_001), { limited: true, retryAfterMs: 9_999, tell: false });
  // A window after the answer, the next refusal is told again.
  assert.deepEqual(limit.check("fam", "@v:x", "viewer", 30_000), { limited: false });
  assert.deepEqual(limit.check("fam", "@v:x", "viewer", 30_000), { limited: false });
  assert.deepEqual(limit.check("fam", "@v:x", "viewer", 30_000), { limited: true, retryAfterMs: 10_000, tell: true });
});

test("buckets are per person and per clan", () => {
  const limit = new CommandLimit({ requests: 1, windowMs: 60_000, exempt: "admin" });
  assert.equal(limit.check("fam", "@a:x", "viewer", 0).limited, false);
  assert.equal(limit.check("fam", "@a:x", "viewer", 0).limited, true);
  assert.equal(limit.check("fam", "@b:x", "viewer", 0).limited, false);
  assert.equal(limit.check("shop", "@a:x", "viewer", 0).limited, false);
});

test("admins are exempt by default; `operator` exempts operators too; `nobody` limits everyone, and those below viewer are limited", () => {
  const byDefault = new CommandLimit({ requests: 1, windowMs: 60_000, exempt: "admin" });
  for (let i = 0; i < 50; i++) assert.equal(byDefault.check("fam", "@admin:x", "admin", 0).limited, false);
  byDefault.check("fam", "@op:x", "operator", 0);
  assert.equal(byDefault.check("fam", "@op:x", "operator", 0).limited, true);
  byDefault.check("fam", "@nobody:x", undefined, 0);
  assert.equal(byDefault.check("fam", "@nobody:x", undefined, 0).limited, true);

  const operators = new CommandLimit({ requests: 1, windowMs: 60_000, exempt: "operator" });
  for (let i = 0; i < 5; i++) assert.equal(operators.check("fam", "@op:x", "operator", 0).limited, false);

  const everyone = new CommandLimit({ requests: 1, windowMs: 60_000, exempt: "nobody" });
  everyone.check("fam", "@admin:x", "admin", 0);
  assert.equal(everyone.check("fam", "@admin:x", "admin", 0).limited, true);
});

test("a message time that goes back a little never refills the bucket backwards", () => {
  const limit = new CommandLimit({ requests: 2, windowMs: 20_000, exempt: "admin" });
  assert.equal(limit.check("fam", "@v:x", "viewer", 10_000).limited, false);
  assert.equal(limit.check("fam", "@v:x", "viewer", 9_000).limited, false);
  assert.deepEqual(limit.check("fam", "@v:x", "viewer", 9_500), { limited: true, retryAfterMs: 10_000, tell: true });
});

test("many people over time do not grow the tables without bound", () => {
  const limit = new CommandLimit({ requests: 1, windowMs: 1000, exempt: "admin" }, 100);
  for (let i = 0; i < 10_000; i++) {
    limit.check("fam", `@p${i}:x`, "viewer", i * 10);
    limit.check("fam", `@p${i}:x`, "viewer", i * 10);
  }
  const sizes = limit as unknown as { told: Map<string, number>; buckets: { buckets: Map<string, unknown> } };
  assert.ok(sizes.told.size <= 100, `told: ${sizes.told.size}`);
  assert.ok(sizes.buckets.buckets.size <= 100, `buckets: ${sizes.buckets.buckets.size}`);
});

test("the answer says the limit, that the command did not run, and when to try again (rounded up)", () => {
  const m = formatSlowDown({ requests: 10, windowMs: 60_000, retryAfterMs: 5_200 });
  assert.equal(
    m.text,
    "Slow down: at most 10 commands per person in 1 min here. I did not run this one; try again in 6 s. " +
      "Until then I skip your commands without answering each of them.",
  );
  assert.match(formatSlowDown({ requests: 10, windowMs: 60_000, retryAfterMs: 3 }).text, /try again in 1 s\./);
});
