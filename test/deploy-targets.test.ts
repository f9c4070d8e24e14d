// Machine names people type are checked against the inventory as last read: an unknown name never
// makes the bot evaluate the flake again (!refresh does).

import assert from "node:assert/strict";
import { test } from "node:test";
import { resolveMachine, resolveTargets } from "../commands/deploy-targets.ts";
import { UserError } from "../commands/errors.ts";
import type { CommandContext, Machine } from "../commands/types.ts";

const INVENTORY: Machine[] = [
  { name: "laptop", tags: ["family"] },
  { name: "nas", tags: ["servers"] },
];

function context(): { ctx: CommandContext; reads: boolean[] } {
  const reads: boolean[] = [];
  const ctx = {
    prefix: "!",
    signal: new AbortController().signal,
    clan: {
      name: "fam",
      flake: "/x",
      machines: async (_signal: AbortSignal, fresh = false) => {
        reads.push(fresh);
        return INVENTORY;
      },
    },
  } as unknown as CommandContext;
  return { ctx, reads };
}

async function refusal(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => assert.fail("the name was accepted"),
    (e: unknown) => e,
  );
  assert.ok(err instanceof UserError);
  return err.message;
}

test("200 unknown names are answered from the last read of the inventory, never by a fresh one", async () => {
  const { ctx, reads } = context();
  for (let i = 0; i < 100; i++) await refusal(resolveMachine(ctx, `nope-${i}`));
  for (let i = 0; i < 100; i++) await refusal(resolveTargets(ctx, ["laptop", `tag:nope-${i}`]));
  assert.equal(reads.length, 200);
  assert.ok(!reads.includes(true), "an unknown name evaluated the flake again");
});

test("the answer names what is known, suggests a near name and says how to read a changed flake", async () => {
  const { ctx } = context();
  assert.equal(
    await refusal(resolveMachine(ctx, "laptp")),
    "unknown machine 'laptp'; known: laptop, nas. Did you mean 'laptop'?\n" +
      "Machines are as last read from the flake; if one was just added, !refresh (operator) reads it again.",
  );
  assert.match(await refusal(resolveTargets(ctx, ["tag:server"])), /^No machine has the tag 'server'; tags in this clan: family, servers\. Did you mean 'tag:servers'\?\n/);
  assert.equal(await refusal(resolveMachine(ctx, `tag:${"x".repeat(100)}`)), `Name one machine here, not 'tag:${"x".repeat(56)}…'.`);
  assert.deepEqual((await resolveTargets(ctx, ["tag:servers", "laptop"])).machines, ["laptop", "nas"]);
});
