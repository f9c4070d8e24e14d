// Part 3: `!deploy` of many machines through the real bot and the fake clan, against the fake clan
// run alone (the baseline); how often the status message is edited; the bot's memory while one
// deploy prints a gigabyte.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { startBot, writeConfig, type BotProcess } from "../test/support/bot-process.ts";
import { fakeClanPath, makeFlake, type FakeClanFixture, type FakeClanMachine } from "../demo/fake-clan-fixture.ts";
import { startHomeserver } from "../test/support/homeserver.ts";
import { openDatabase } from "../storage/db.ts";
import { observeDeploy, unpackedSize, type ObservedDeploy } from "./deploy-observe.ts";
import { tapHomeserver } from "./event-tap.ts";
import { pathWithThisNode, runFakeClan, runFakeClans, type ClanRuns } from "./fake-clan-runs.ts";
import { Human } from "./human.ts";
import { probe } from "./probe.ts";
import { cpuMsOf, peakRssOf, RssSampler, stopChild, type Stopped } from "./proc.ts";
import { percentile, summarize, type Summary } from "./stats.ts";

export interface DeployBenchOptions {
  /** Machines deployed by one `!deploy tag:bench`. */
  machines: number;
  /** Bot deploys of the fleet, each after a baseline run (and one more baseline at the end). */
  rounds: number;
  /** The bot's `deploy.parallel`, and the baseline's width. */
  parallel: number;
  /** How long each machine's (fake) nix build takes. */
  delayMs: number;
  /** Bytes of output of the one-machine deploy watched for memory. */
  bigBytes: number;
  bigDelayMs: number;
  progress: (line: string) => void;
  botNodeOptions?: string;
}

/** The bot's own record of a deploy (its SQLite rows), on the bot's clock (Date.now, like origin_server_ts). */
export interface DeployRecordTimes {
  startedAt: number;
  finishedAt: number;
  result: string;
  /** Each machine's clan process: start -> its end recorded. */
  perMachine: Summary;
  /** Share of the `parallel` slots busy with a clan process between the deploy's start and end. */
  slotUse: number;
}

export interface FleetResult {
  observed: ObservedDeploy;
  record: DeployRecordTimes | undefined;
  botCpuMs: number;
  rssPeak: number;
}

export interface BigResult {
  observed: ObservedDeploy;
  record: DeployRecordTimes | undefined;
  /** The fake clan alone printing the same bytes into a pipe that is read and thrown away. */
  baselineMs: number;
  baselineBytes: number;
  rssBefore: number;
  rssPeak: number;
  /** Peaks while the clan process ran, and after it (final edit, gzip of the log, upload). */
  rssPeakRunning: number;
  rssPeakPacking: number;
  rssAfter: number;
  hwmBefore: number;
  hwmAfter: number;
  botCpuMs: number;
  /** The deploy's log on the bot's disk. */
  logBytes: number;
  /** The attachment, downloaded and unpacked (NaN when it could not be). */
  unpackedBytes: number;
}

export interface DeployBenchResult {
  machines: number;
  parallel: number;
  delayMs: number;
  bigBytes: number;
  cores: number;
  /** machines / parallel waves of delayMs each. */
  idealMs: number;
  /** One fake `clan machines update` with delayMs 0, one at a time: the fake's own start-up and work. */
  overhead: Summary;
  /** The baseline, run before each of the bot's deploys and once after the last. */
  baselines: ClanRuns[];
  fleet: FleetResult[];
  big: BigResult;
  stop: Stopped;
  /** The bench's temporary directory (flakes, the bot's state and its 1 GB log) is gone afterwards. */
  tempRemoved: boolean;
}

const names = (n: number): string[] => Array.from({ length: n }, (_, i) => `m${String(i).padStart(String(n - 1).length, "0")}`);

function fixture(o: DeployBenchOptions, delayMs: number): FakeClanFixture {
  const machines: Record<string, FakeClanMachine> = {};
  for (const m of names(o.machines)) machines[m] = { tags: ["bench"], deploy: { targetHost: `root@${m}.bench.test` } };
  machines["big"] = { tags: ["loud"], deploy: { targetHost: "root@big.bench.test" } };
  return {
    machines,
    meta: { name: "bench" },
    behaviour: {
      // Vars generators run for every machine of the inventory before each update: keep them quiet.
      // The stand-ins for nix and ssh as timers inside the fake: one Node start per deploy, not ~5.
      "machines update": { delayMs, generateVars: false, inlineStandIns: true, perMachine: { big: { bytes: o.bigBytes, delayMs: o.bigDelayMs } } },
    },
  };
}

/** A clan flake is a git checkout; the bot reads its revision at the start of each deploy. */
function commit(dir: string): void {
  const env = { ...process.env, GIT_AUTHOR_NAME: "b", GIT_AUTHOR_EMAIL: "b@bench.test", GIT_COMMITTER_NAME: "b", GIT_COMMITTER_EMAIL: "b@bench.test" };
  for (const args of [["init", "-q"], ["add", "-A"], ["commit", "-qm", "bench clan"]]) execFileSync("git", args, { cwd: dir, env, stdio: "ignore" });
}

async function recordOf(statePath: string, deployId: number | undefined, parallel: number): Promise<DeployRecordTimes | undefined> {
  if (deployId === undefined || !Number.isFinite(deployId)) return undefined;
  const db = await openDatabase(statePath);
  try {
    const d = await db.get<{ started_at: number; finished_at: number | null; result: string }>(
      "SELECT started_at, finished_at, result FROM deploys WHERE id = ?",
      [deployId],
    );
    const ms = await db.all<{ started_at: number | null; finished_at: number | null }>(
      "SELECT started_at, finished_at FROM deploy_machines WHERE deploy_id = ?",
      [deployId],
    );
    if (!d || d.finished_at === null) return undefined;
    const spans = ms.filter((m) => m.started_at !== null && m.finished_at !== null).map((m) => (m.finished_at as number) - (m.started_at as number));
    const busy = spans.reduce((a, b) => a + b, 0);
    const slots = Math.min(parallel, ms.length);
    return {
      startedAt: d.started_at,
      finishedAt: d.finished_at,
      result: d.result,
      perMachine: summarize(spans),
      slotUse: busy / (slots * (d.finished_at - d.started_at)),
    };
  } finally {
    await db.close();
  }
}

function startDeployBot(dir: string, homeserver: string, account: { userId: string; accessToken: string }, room: string, flake: string, o: DeployBenchOptions): Promise<BotProcess> {
  const config = {
    matrix: { homeserver, userId: account.userId, accessToken: account.accessToken, maxCommandAge: "15m" },
    storage: { path: join(dir, "state", "clanbot.sqlite3") },
    clan: { command: fakeClanPath },
    deploy: { parallel: o.parallel, confirmAbove: 1000 },
    clans: [{ name: "bench", room, flake }],
    log: { level: "warn" },
  };
  const env: Record<string, string> = { PATH: pathWithThisNode() };
  if (o.botNodeOptions) env["NODE_OPTIONS"] = o.botNodeOptions;
  return writeConfig(dir, config).then((path) => startBot(path, { env }));
}

export async function runDeployBench(o: DeployBenchOptions): Promise<DeployBenchResult> {
  const tap = tapHomeserver();
  const hs = await startHomeserver();
  const dir = await mkdtemp(join(tmpdir(), "clanbot-bench-deploy-"));
  const statePath = join(dir, "state", "clanbot.sqlite3");
  let result: Omit<DeployBenchResult, "tempRemoved">;
  try {
    const human = new Human(hs.url, await hs.createUser("alice", "pw-alice"));
    const botAccount = await hs.createUser("clanbot", "pw-clanbot");
    const botId = botAccount.userId;
    const room = await human.createRoom("Bench clan", [botId]);
    const flake = await makeFlake(join(dir, "flakes", "bench"), fixture(o, o.delayMs));
    commit(flake);
    const zeroFlake = await makeFlake(join(dir, "flakes", "zero"), fixture(o, 0));
    commit(zeroFlake);
    const fleet = names(o.machines);

    o.progress(`deploy: the fake clan alone: one machine with delayMs 0, one at a time`);
    const overheadRuns: number[] = [];
    // The first run is a warm-up (disk cache).
    for (let i = 0; i < 6; i++) {
      const r = await runFakeClan(fleet[0] as string, zeroFlake);
      if (r.exitCode !== 0) throw new Error(`the fake clan failed (exit ${r.exitCode}) in ${zeroFlake}`);
      if (i > 0) overheadRuns.push(r.ms);
    }
    const baselines: ClanRuns[] = [];
    const baseline = async (): Promise<void> => {
      o.progress(`deploy: baseline: ${o.machines} fake deploys of ${o.delayMs} ms, ${o.parallel} at a time, no bot`);
      const runs = await runFakeClans(fleet, o.parallel, flake);
      if (runs.runs.some((r) => r.exitCode !== 0)) throw new Error("a baseline run of the fake clan failed");
      baselines.push(runs);
    };

    o.progress("deploy: starting clanbot");
    const joined = tap.waitFor((e) => e.roomId === room && e.type === "m.room.member" && e.stateKey === botId && e.content["membership"] === "join", 30_000);
    const bot = await startDeployBot(dir, hs.url, botAccount, room, flake, o);
    const pid = bot.proc.pid ?? 0;
    const exited = new Promise((resolve) => bot.proc.once("exit", resolve));
    const rss = new RssSampler(pid, 100);
    const failed = (what: string): Error => new Error(`${what}; bot log:\n${bot.log.slice(-20).join("\n")}`);
    try {
      if (!(await joined)) throw failed("clanbot did not join its room in 30 s");
      if ((await probe(tap, human, room, "!whoami")) === undefined) throw failed("clanbot does not answer");

      // Warm-up: the first deploy loads code and reads the inventory (cached for the next ones).
      o.progress("deploy: warm-up deploy of one machine");
      const warm = await observeDeploy(tap, human, room, botId, `!deploy ${fleet[0]}`, 60_000);
      if (warm.outcome !== "✅") throw failed(`the warm-up deploy ended with ${warm.outcome ?? "no answer"}: ${warm.resultLine}`);
      await sleep(1000);

      const fleetResults: FleetResult[] = [];
      for (let round = 0; round < o.rounds; round++) {
        await baseline();
        await sleep(500);
        o.progress(`deploy: !deploy tag:bench (${o.machines} machines, parallel ${o.parallel})`);
        const cpu0 = cpuMsOf(pid);
        const t0 = performance.now();
        const timeout = Math.max(120_000, 20 * o.delayMs * Math.ceil(o.machines / o.parallel));
        const observed = await observeDeploy(tap, human, room, botId, "!deploy tag:bench", timeout);
        fleetResults.push({
          observed,
          record: await recordOf(statePath, observed.deployId, o.parallel),
          botCpuMs: cpuMsOf(pid) - cpu0,
          rssPeak: rss.peak(t0, performance.now()),
        });
        if (observed.outcome === undefined) throw failed(`the deploy of ${o.machines} machines did not end in time`);
      }
      await baseline();
      o.progress(`deploy: the fake clan alone printing ${(o.bigBytes / 1e6).toFixed(0)} MB`);
      const bigBase = await runFakeClan("big", flake);

      o.progress(`deploy: !deploy big (${(o.bigBytes / 1e6).toFixed(0)} MB of output), watching the bot's memory`);
      await sleep(1000);
      const idleFrom = performance.now() - 1000;
      const rssBefore = percentile(
        rss.samples.filter((s) => s.at >= idleFrom).map((s) => s.rss),
        50,
      );
      const hwmBefore = peakRssOf(pid);
      const bigCpu0 = cpuMsOf(pid);
      const b0 = performance.now();
      const big = await observeDeploy(tap, human, room, botId, "!deploy big", 600_000);
      const b1 = performance.now();
      const bigCpuMs = cpuMsOf(pid) - bigCpu0;
      await sleep(2000);
      const rssAfter = rss.sample();
      const hwmAfter = peakRssOf(pid);
      if (big.outcome === undefined) throw failed("the deploy printing a lot did not end in 10 min");
      const bigRecord = await recordOf(statePath, big.deployId, 1);
      // The bot's records are on Date.now(); the samples on performance.now().
      const ranUntil = bigRecord ? bigRecord.finishedAt - performance.timeOrigin : b1;
      const logPath = join(dir, "state", "logs", "bench", `deploy-${big.deployId}.log`);
      const logBytes = await stat(logPath).then((s) => s.size, () => Number.NaN);
      o.progress("deploy: downloading and unpacking the attached log");
      const unpacked = big.file ? await unpackedSize(hs.url, human.account.accessToken, big.file).catch(() => Number.NaN) : Number.NaN;
      rss.stop();
      const stop = await stopChild(bot.proc, exited);
      result = {
        machines: o.machines,
        parallel: o.parallel,
        delayMs: o.delayMs,
        bigBytes: o.bigBytes,
        cores: availableParallelism(),
        idealMs: Math.ceil(o.machines / o.parallel) * o.delayMs,
        overhead: summarize(overheadRuns),
        baselines,
        fleet: fleetResults,
        big: {
          observed: big,
          record: bigRecord,
          baselineMs: bigBase.ms,
          baselineBytes: bigBase.bytes,
          rssBefore,
          rssPeak: rss.peak(b0, b1),
          rssPeakRunning: rss.peak(b0, ranUntil),
          rssPeakPacking: rss.peak(ranUntil, b1),
          rssAfter,
          hwmBefore,
          hwmAfter,
          botCpuMs: bigCpuMs,
          logBytes,
          unpackedBytes: unpacked,
        },
        stop,
      };
    } finally {
      rss.stop();
      await stopChild(bot.proc, exited);
    }
  } finally {
    await hs.close();
    await rm(dir, { recursive: true, force: true });
  }
  return { ...result, tempRemoved: !existsSync(dir) };
}
