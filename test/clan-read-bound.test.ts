// A clan's quick reads (inventory, target hosts, backup lists) start at most clan.parallel processes at
// once; the others wait in line, in the order they came, and one that gives up while waiting never starts.

import assert from "node:assert/strict";
import { chmod, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { ClanCli, ClanCliError } from "../ops/clan-cli.ts";
import { tempDir } from "./support/temp-dir.ts";

/** A stand-in for `clan` that notes when each run starts and ends ("+m1", "-m1"). */
async function recordingClan(): Promise<{ command: string; log: string; dir: string }> {
  const dir = await tempDir();
  const command = join(dir, "clan");
  const log = join(dir, "runs.log");
  await writeFile(command, `#!/bin/sh\necho "+$3" >> "$RUNS"\nsleep 0.3\necho "-$3" >> "$RUNS"\necho "$3"\n`);
  await chmod(command, 0o755);
  return { command, log, dir };
}

async function runs(log: string): Promise<string[]> {
  return (await readFile(log, "utf8")).split("\n").filter((l) => l !== "");
}

function mostAtOnce(events: readonly string[]): number {
  let now = 0;
  let most = 0;
  for (const e of events) {
    now += e.startsWith("+") ? 1 : -1;
    most = Math.max(most, now);
  }
  return most;
}

test("at most `parallel` clan processes at once, the rest started in the order they were asked for", async () => {
  const { command, log, dir } = await recordingClan();
  const cli = new ClanCli({ command, timeoutMs: 10_000, env: { RUNS: log }, parallel: 2 });
  const names = ["m1", "m2", "m3", "m4", "m5", "m6"];
  const results = await Promise.all(names.map((m) => cli.run(dir, ["backups", "list", m], "Listing", { collectStdout: true })));
  assert.deepEqual(results.map((r) => r.stdout.trim()), names);
  const events = await runs(log);
  assert.equal(mostAtOnce(events), 2);
  assert.deepEqual(events.filter((e) => e.startsWith("+")), names.map((m) => `+${m}`));
});

test("a read whose command is cancelled while it waits in line is told so and never starts", async () => {
  const { command, log, dir } = await recordingClan();
  const cli = new ClanCli({ command, timeoutMs: 10_000, env: { RUNS: log }, parallel: 1 });
  const first = cli.run(dir, ["backups", "list", "m1"], "Listing the backups of m1");
  const gaveUp = new AbortController();
  const waiting = cli.run(dir, ["backups", "list", "m2"], "Listing the backups of m2", { signal: gaveUp.signal });
  gaveUp.abort(new Error("the bot is shutting down"));
  const err = await waiting.then(
    () => assert.fail("the waiting run went ahead"),
    (e: unknown) => e,
  );
  assert.ok(err instanceof ClanCliError);
  assert.equal(err.kind, "cancelled");
  assert.equal(err.message, "Listing the backups of m2 was cancelled.");
  await first;
  assert.deepEqual(await runs(log), ["+m1", "-m1"]);
});
