// The bot's SSH against real sshd: connections kept open after a status (like ControlPersist) are
// reused by the next one, replaced when the machine dropped them, and not kept when keepOpen is 0;
// and a machine with no inventory target is found over the clan's network routes, best first,
// past a route that does not answer.

import assert from "node:assert/strict";
import { createServer, connect, type Server } from "node:net";
import { join } from "node:path";
import { after, test } from "node:test";
import type { Machine } from "../commands/types.ts";
import type { NetworkRoute } from "../ops/clan-networks.ts";
import { loadBotKey } from "../ops/ssh-key.ts";
import { SshMachineService } from "../ops/ssh-machines.ts";
import { openDatabase } from "../storage/db.ts";
import { migrate } from "../storage/migrations.ts";
import { FakeMachine, freePort } from "./support/fake-machine.ts";
import { tempDir } from "./support/temp-dir.ts";

const dir = await tempDir("clanbot-ssh-reuse-");
const key = loadBotKey(join(dir, "bot", "id_ed25519"), true);
const m = await FakeMachine.start({ dir: join(dir, "nas"), authorizedKeys: [key.publicLine], hostName: "nas" });
const servers: Server[] = [];
after(async () => {
  for (const s of servers) s.close();
  await m.stop();
});

/** A TCP relay to the machine that counts the connections made through it. */
async function counting(): Promise<{ port: number; connections: () => number; cut: () => void }> {
  let n = 0;
  const open = new Set<import("node:net").Socket>();
  const server = createServer((client) => {
    n += 1;
    const up = connect({ host: "127.0.0.1", port: m.port });
    open.add(client);
    client.pipe(up).pipe(client);
    client.on("error", () => up.destroy());
    up.on("error", () => client.destroy());
    client.on("close", () => {
      open.delete(client);
      up.destroy();
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { port: (server.address() as { port: number }).port, connections: () => n, cut: () => open.forEach((s) => s.destroy()) };
}

async function service(inventory: Machine[], keepOpenMs: number, routes = new Map<string, NetworkRoute[]>()) {
  const db = await openDatabase(join(await tempDir(), "db.sqlite3"));
  await migrate(db);
  return new SshMachineService({
    clan: "fam",
    db,
    clock: Date,
    key,
    knownHostsFile: undefined,
    timeoutMs: 4000,
    parallel: 4,
    keepOpenMs,
    rebootTimeoutMs: 8000,
    rebootPollMs: 200,
    installerPort: 22,
    machines: async () => inventory,
    configuredTargets: async () => ({}),
    routes: async () => routes,
  });
}

const signal = new AbortController().signal;

test("a kept connection serves the next status; a dropped one is replaced; keepOpen 0 keeps none", async () => {
  const relay = await counting();
  const ssh = await service([{ name: "nas", tags: [], targetHost: `root@127.0.0.1:${relay.port}` }], 60_000);
  const first = await ssh.status(["nas"], signal);
  assert.ok(first[0]?.ok && first[0].pinnedNow);
  const second = await ssh.status(["nas"], signal);
  assert.ok(second[0]?.ok && !second[0].pinnedNow);
  assert.equal(relay.connections(), 1, "the second status used the open connection");
  relay.cut();
  await new Promise((r) => setTimeout(r, 100));
  const third = await ssh.status(["nas"], signal);
  assert.ok(third[0]?.ok, JSON.stringify(third[0]));
  assert.equal(relay.connections(), 2, "a new connection after the old one was cut");
  ssh.close();

  const none = await counting();
  const closing = await service([{ name: "nas", tags: [], targetHost: `root@127.0.0.1:${none.port}` }], 0);
  await closing.status(["nas"], signal);
  await closing.status(["nas"], signal);
  assert.equal(none.connections(), 2);
});

test("no inventory target: the clan's routes, best first; one that does not answer is passed over", async () => {
  const dead = await freePort();
  const route = (network: string, priority: number, port: number): NetworkRoute => ({ network, priority, module: "clan_lib.network.direct", hosts: ["127.0.0.1"], port, user: "root" });
  const ssh = await service([{ name: "nas", tags: [] }], 0, new Map([["nas", [route("internet", 2000, dead), route("wg", 1000, m.port)]]]));
  const [s] = await ssh.status(["nas"], signal);
  assert.ok(s?.ok, JSON.stringify(s));
  assert.equal(s.target, `root@127.0.0.1:${m.port}`);
  assert.equal((await ssh.reachableTarget("nas", signal)).port, m.port);
  const none = await service([{ name: "nas", tags: [] }], 0);
  const [missing] = await none.status(["nas"], signal);
  assert.equal(missing?.ok, false);
  assert.match(missing && !missing.ok ? missing.detail : "", /no clan network has it as a peer/);
});
