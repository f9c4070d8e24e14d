// SSH at real distances: `status` of 50 machines, each a real sshd in a network namespace of its
// own behind a veth pair, 50 ms round trip away, against one of them in the same setting; then the
// same twice within the keep-open window, where the second finds the connections still open.
//
// The delay is netem's (`tc qdisc add dev <veth> root netem delay 25ms` on both ends) where the
// kernel has it. Where it has not (no sch_netem, as on this project's machines), a relay in the
// bench adds it: every chunk in either direction is held 25 ms, in order, before it goes on through
// the veth pair. Needs root and Debian's iproute2; only the namespaces and veth pairs this bench
// makes are touched, and they are removed at the end (also on Ctrl-C).
import { execFileSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Machine } from "../commands/types.ts";
import { loadBotKey } from "../ops/ssh-key.ts";
import { SshMachineService } from "../ops/ssh-machines.ts";
import { openDatabase } from "../storage/db.ts";
import { migrate } from "../storage/migrations.ts";
import { FakeMachine } from "../test/support/fake-machine.ts";
import { hostCpu } from "./ssh.ts";
import { summarize, type Summary } from "./stats.ts";

export interface DistanceBenchOptions {
  machines: number;
  parallel: number;
  rounds: number;
  /** Round trip added between the bot and each machine, ms. */
  rttMs: number;
  progress: (line: string) => void;
}

export interface DistanceBenchResult {
  machines: number;
  parallel: number;
  rttMs: number;
  /** "netem" or "relay": how the delay was made. */
  delay: string;
  /** One machine, a new connection each time, ms. */
  one: Summary;
  /** All machines, new connections, ms. */
  all: Summary;
  /** All machines again within the keep-open window (connections reused), ms. */
  allKept: Summary;
  /** One machine with its connection kept, ms. */
  oneKept: Summary;
  /** All machines at parallelism 10 (the old default), new connections, ms. */
  allAt10: Summary;
  failures: number;
  /** Why, for each machine that did not answer. */
  problems: string[];
  /** During the fleet's status with new connections: busy cores of the whole host (bot, relays, every sshd), and the bot's CPU. */
  hostCoresBusy: number;
  botCpuMsPerFleet: number;
  cores: number;
}

const ip = (...args: string[]): string => execFileSync("ip", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });

/** Whether this kernel has netem (tried in a namespace of our own, removed again). */
function hasNetem(tag: string): boolean {
  const ns = `${tag}-probe`;
  try {
    ip("netns", "add", ns);
    execFileSync("ip", ["netns", "exec", ns, "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  } finally {
    try {
      ip("netns", "del", ns);
    } catch {
      // it was not made
    }
  }
}

/** A TCP relay that holds each chunk `delayMs` in each direction, keeping order: a user-space netem. */
function delayRelay(listenPort: number, host: string, port: number, delayMs: number): Promise<Server> {
  const pipe = (from: Socket, to: Socket): void => {
    let last = 0;
    from.on("data", (chunk: Buffer) => {
      const at = Math.max(performance.now() + delayMs, last);
      last = at;
      setTimeout(() => to.writable && to.write(chunk), at - performance.now());
    });
    from.on("end", () => setTimeout(() => to.end(), Math.max(0, last - performance.now()) + 1));
    from.on("error", () => to.destroy());
    from.on("close", () => setTimeout(() => to.destroy(), Math.max(0, last - performance.now()) + 5));
  };
  const server = createServer((client) => {
    client.setNoDelay(true);
    const upstream = connect({ host, port });
    upstream.setNoDelay(true);
    pipe(client, upstream);
    pipe(upstream, client);
  });
  return new Promise((resolve) => server.listen(listenPort, "127.0.0.1", () => resolve(server)));
}

export async function runDistanceBench(o: DistanceBenchOptions): Promise<DistanceBenchResult> {
  if (process.getuid?.() !== 0) throw new Error("the distance bench needs root (network namespaces)");
  const tag = `cbd${process.pid % 10000}`;
  const dir = await mkdtemp(join(tmpdir(), "clanbot-bench-distance-"));
  const made: { ns: string; veth: string }[] = [];
  const fleet: FakeMachine[] = [];
  const relays: Server[] = [];
  const cleanup = (): void => {
    for (const { ns, veth } of made.splice(0)) {
      for (const args of [["link", "del", veth], ["netns", "del", ns]]) {
        try {
          ip(...args);
        } catch {
          // already gone
        }
      }
    }
  };
  const onSignal = (): void => {
    cleanup();
    process.exit(130);
  };
  process.once("SIGINT", onSignal);
  try {
    const netem = hasNetem(tag);
    const delay = netem ? "netem" : "relay";
    o.progress(`distance: ${o.machines} machines in namespaces, ${o.rttMs} ms round trip (${netem ? "netem" : "no netem in this kernel: a delaying relay"})`);
    const key = loadBotKey(join(dir, "key", "id_ed25519"), true);
    const inventory: Machine[] = [];
    for (let i = 0; i < o.machines; i++) {
      const ns = `${tag}-${i}`;
      const veth = `${tag}h${i}`;
      const host = `10.177.${i}.1`;
      const guest = `10.177.${i}.2`;
      ip("netns", "add", ns);
      made.push({ ns, veth });
      ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns);
      ip("addr", "add", `${host}/30`, "dev", veth);
      ip("link", "set", veth, "up");
      ip("netns", "exec", ns, "ip", "addr", "add", `${guest}/30`, "dev", "eth0");
      ip("netns", "exec", ns, "ip", "link", "set", "eth0", "up");
      ip("netns", "exec", ns, "ip", "link", "set", "lo", "up");
      if (netem) {
        const half = `${o.rttMs / 2}ms`;
        execFileSync("tc", ["qdisc", "add", "dev", veth, "root", "netem", "delay", half]);
        execFileSync("ip", ["netns", "exec", ns, "tc", "qdisc", "add", "dev", "eth0", "root", "netem", "delay", half]);
      }
      const m = await FakeMachine.start({ dir: join(dir, `m${i}`), authorizedKeys: [key.publicLine], hostName: `m${i}`, plain: true, listen: [guest], wrap: ["ip", "netns", "exec", ns] });
      fleet.push(m);
      let target = `root@${guest}:${m.port}`;
      if (!netem) {
        const relay = await delayRelay(0, guest, m.port, o.rttMs / 2);
        relays.push(relay);
        target = `root@127.0.0.1:${(relay.address() as { port: number }).port}`;
      }
      inventory.push({ name: `m${i}`, tags: ["bench"], targetHost: target });
    }
    const db = await openDatabase(join(dir, "db.sqlite3"));
    await migrate(db);
    const service = (keepOpenMs: number, parallel = o.parallel): SshMachineService =>
      new SshMachineService({
        clan: "bench",
        db,
        clock: Date,
        key,
        knownHostsFile: undefined,
        timeoutMs: 20_000,
        parallel,
        keepOpenMs,
        rebootTimeoutMs: 60_000,
        rebootPollMs: 1000,
        installerPort: 22,
        machines: async () => inventory,
        configuredTargets: async () => ({}),
      });
    const names = inventory.map((m) => m.name);
    const signal = new AbortController().signal;
    let failures = 0;
    const problems: string[] = [];
    const time = async (ssh: SshMachineService, which: string[]): Promise<number> => {
      const t0 = performance.now();
      const statuses = await ssh.status(which, signal);
      for (const s of statuses) {
        if (s.ok) continue;
        failures += 1;
        problems.push(`${s.machine}: ${s.problem} ${s.detail}`);
      }
      return performance.now() - t0;
    };
    const fresh = service(0);
    await time(fresh, names); // pins the host keys, warms the JIT
    const one: number[] = [];
    const all: number[] = [];
    let busy = 0;
    let wall = 0;
    let botUs = 0;
    for (let r = 0; r < o.rounds; r++) {
      o.progress(`distance: round ${r + 1}/${o.rounds}: 1 machine, then ${o.machines}, new connections`);
      for (let k = 0; k < 5; k++) one.push(await time(fresh, [names[(r * 5 + k) % names.length] as string]));
      const cpu0 = hostCpu();
      const bot0 = process.cpuUsage();
      const took = await time(fresh, names);
      const bot1 = process.cpuUsage(bot0);
      busy += hostCpu().busy - cpu0.busy;
      wall += took;
      botUs += bot1.user + bot1.system;
      all.push(took);
    }
    const narrow: number[] = [];
    const ten = service(0, 10);
    for (let r = 0; r < o.rounds; r++) {
      o.progress(`distance: round ${r + 1}/${o.rounds}: ${o.machines} machines at parallel 10 (the old default)`);
      narrow.push(await time(ten, names));
    }
    const kept = service(300_000);
    const allKept: number[] = [];
    const oneKept: number[] = [];
    await time(kept, names); // opens them
    for (let r = 0; r < o.rounds; r++) {
      o.progress(`distance: round ${r + 1}/${o.rounds}: ${o.machines} machines again, connections kept open`);
      allKept.push(await time(kept, names));
      for (let k = 0; k < 5; k++) oneKept.push(await time(kept, [names[(r * 5 + k) % names.length] as string]));
    }
    kept.close();
    await db.close();
    return { machines: o.machines, parallel: o.parallel, rttMs: o.rttMs, delay, one: summarize(one), all: summarize(all), allKept: summarize(allKept), oneKept: summarize(oneKept), allAt10: summarize(narrow), failures, problems,
      hostCoresBusy: busy / 100 / (wall / 1000), botCpuMsPerFleet: botUs / 1000 / o.rounds, cores: hostCpu().cores };
  } finally {
    process.removeListener("SIGINT", onSignal);
    for (const r of relays) r.close();
    await Promise.all(fleet.map((m) => m.stop()));
    cleanup();
    await rm(dir, { recursive: true, force: true });
  }
}
