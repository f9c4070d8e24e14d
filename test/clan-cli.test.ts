import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { ClanCli, ClanCliError } from "../ops/clan-cli.ts";
import { FAMILY } from "./support/e2e.ts";
import { fakeClanPath, makeFlake, processesInGroup, readInvocations } from "../demo/fake-clan-fixture.ts";
import { tempDir } from "./support/temp-dir.ts";

async function rejection(p: Promise<unknown>): Promise<ClanCliError> {
  const err = await p.then(
    () => assert.fail("the clan run succeeded"),
    (e: unknown) => e,
  );
  assert.ok(err instanceof ClanCliError, `expected a ClanCliError, got ${String(err)}`);
  return err;
}

test("the inventory is read as sorted machines, with stdin closed and NO_COLOR set", async () => {
  const dir = await tempDir();
  const flake = await makeFlake(join(dir, "clan"), FAMILY);
  const log = join(dir, "log.jsonl");
  const cli = new ClanCli({ command: fakeClanPath, timeoutMs: 10_000, env: { FAKE_CLAN_LOG: log } });
  const machines = await cli.machines(flake);
  assert.deepEqual(machines.map((m) => [m.name, m.tags, m.targetHost]), [
    ["laptop", ["family"], "root@laptop.lan"],
    ["media", ["servers"], undefined],
    ["nas", ["servers", "storage"], "root@nas.lan:2222"],
  ]);
  const [call] = await readInvocations(log);
  assert.deepEqual(call?.argv, ["select", "clanInternals.inventoryClass.inventorySerialization.machines", "--flake", flake]);
  assert.equal(call?.env.NO_COLOR, "1");
});

test("a clan run that hangs is stopped at its timeout, with its whole process group", async () => {
  const dir = await tempDir();
  const flake = await makeFlake(join(dir, "clan"), { ...FAMILY, behaviour: { select: { hang: true } } });
  const cli = new ClanCli({ command: fakeClanPath, timeoutMs: 500 });
  const err = await rejection(cli.machines(flake));
  assert.equal(err.kind, "timeout");
  assert.equal(err.message, "Reading the clan's machines took longer than 500 ms and was stopped.");
  const pid = err.result?.pid;
  assert.ok(pid);
  assert.deepEqual(processesInGroup(pid), []);
});

test("a missing clan executable gets an answer that says what to configure", async () => {
  const cli = new ClanCli({ command: "/nonexistent/clan", timeoutMs: 1000 });
  const err = await rejection(cli.machines(await tempDir()));
  assert.equal(err.kind, "not-found");
  assert.equal(err.message, "The clan CLI '/nonexistent/clan' was not found. Install clan or set clan.command in the config.");
});
