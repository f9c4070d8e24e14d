// Part 4: machines over SSH. `status` of 50 machines (one real sshd each on loopback) at parallelism
// 10 against the status of one of them, through the bot's own SSH service; and reading the
// installer's QR code from a 12-megapixel phone photo.
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Machine } from "../commands/types.ts";
import { readInstallerPhoto } from "../ops/installer-qr.ts";
import { loadBotKey } from "../ops/ssh-key.ts";
import { SshMachineService } from "../ops/ssh-machines.ts";
import { openDatabase } from "../storage/db.ts";
import { migrate } from "../storage/migrations.ts";
import { FakeMachine } from "../test/support/fake-machine.ts";
import { qrPhoto } from "../test/support/photo.ts";
import { summarize, type Summary } from "./stats.ts";

export interface SshBenchOptions {
  machines: number;
  parallel: number;
  rounds: number;
  progress: (line: string) => void;
}

export interface SshBenchResult {
  machines: number;
  parallel: number;
  /** One machine's status, ms. */
  one: Summary;
  /** All machines' status, ms. */
  all: Summary;
  /** While the fleet's status ran: busy CPU cores of the whole host (bot and every sshd), and the bot's own CPU. */
  hostCoresBusy: number;
  botCpuMsPerFleet: number;
  cores: number;
  /** Machines that did not answer in any round (should be none). */
  failures: number;
  photo: { width: number; height: number; bytes: number };
  /** Reading the photo's QR code, ms. */
  decode: Summary;
  decodedOk: boolean;
}

export async function runSshBench(o: SshBenchOptions): Promise<SshBenchResult> {
  const dir = await mkdtemp(join(tmpdir(), "clanbot-bench-ssh-"));
  const fleet: FakeMachine[] = [];
  try {
    const key = loadBotKey(join(dir, "key", "id_ed25519"), true);
    o.progress(`ssh: starting ${o.machines} sshd on loopback`);
    for (let i = 0; i < o.machines; i++) {
      fleet.push(await FakeMachine.start({ dir: join(dir, `m${i}`), authorizedKeys: [key.publicLine], hostName: `m${i}`, plain: true }));
    }
    const inventory: Machine[] = fleet.map((m, i) => ({ name: `m${i}`, tags: ["bench"], targetHost: m.target }));
    const db = await openDatabase(join(dir, "db.sqlite3"));
    await migrate(db);
    const ssh = new SshMachineService({
      clan: "bench",
      db,
      clock: Date,
      key,
      knownHostsFile: undefined,
      timeoutMs: 10_000,
      parallel: o.parallel,
      rebootTimeoutMs: 60_000,
      rebootPollMs: 1000,
      installerPort: 22,
      machines: async () => inventory,
      configuredTargets: async () => ({}),
    });
    const names = inventory.map((m) => m.name);
    const signal = new AbortController().signal;
    let failures = 0;
    const time = async (which: string[]): Promise<number> => {
      const t0 = performance.now();
      const statuses = await ssh.status(which, signal);
      const took = performance.now() - t0;
      failures += statuses.filter((s) => !s.ok).length;
      return took;
    };
    // Warm-up: pins every host key (a first contact writes to SQLite) and warms the JIT.
    await time(names);
    const one: number[] = [];
    const all: number[] = [];
    let busyJiffies = 0;
    let wallMs = 0;
    let botCpuUs = 0;
    for (let r = 0; r < o.rounds; r++) {
      o.progress(`ssh: round ${r + 1}/${o.rounds}: status of 1, then of ${o.machines}`);
      for (let k = 0; k < 5; k++) one.push(await time([names[(r * 5 + k) % names.length] as string]));
      const cpu0 = hostCpu();
      const bot0 = process.cpuUsage();
      const took = await time(names);
      const cpu1 = hostCpu();
      const bot1 = process.cpuUsage(bot0);
      busyJiffies += cpu1.busy - cpu0.busy;
      wallMs += took;
      botCpuUs += bot1.user + bot1.system;
      all.push(took);
    }
    await db.close();

    o.progress("ssh: a 12-megapixel photo of an installer's QR code");
    const installer = { pass: "scabbed-defender-headlock", tor: null, addrs: ["192.168.122.86"] };
    const photo = qrPhoto(JSON.stringify(installer), { width: 4000, height: 3000, moduleSize: 18, angleDeg: -11, blur: 3, quality: 85, centre: [0.55, 0.45] });
    const decode: number[] = [];
    let decodedOk = true;
    for (let i = 0; i < 6; i++) {
      const t0 = performance.now();
      const read = await readInstallerPhoto(new Uint8Array(photo.jpeg));
      // The first read also compiles ZXing's WebAssembly: counted apart, as the bot does it once.
      if (i > 0) decode.push(performance.now() - t0);
      decodedOk &&= read.ok;
    }
    return {
      machines: o.machines,
      parallel: o.parallel,
      one: summarize(one),
      all: summarize(all),
      failures,
      // /proc/stat counts in USER_HZ (100 per second on Linux).
      hostCoresBusy: busyJiffies / 100 / (wallMs / 1000),
      botCpuMsPerFleet: botCpuUs / 1000 / o.rounds,
      cores: hostCpu().cores,
      photo: { width: photo.width, height: photo.height, bytes: photo.jpeg.byteLength },
      decode: summarize(decode),
      decodedOk,
    };
  } finally {
    await Promise.all(fleet.map((m) => m.stop()));
    await rm(dir, { recursive: true, force: true });
  }
}

/** Busy and total CPU time of the whole host so far, from /proc/stat, in USER_HZ ticks. */
export function hostCpu(): { busy: number; cores: number } {
  const lines = readFileSync("/proc/stat", "utf8").split("\n");
  const [, ...fields] = (lines[0] ?? "").trim().split(/\s+/);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = fields.map(Number);
  return { busy: user + nice + system + irq + softirq + steal, cores: lines.filter((l) => /^cpu\d+ /.test(l)).length };
}
