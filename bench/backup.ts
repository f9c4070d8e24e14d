// Part 5: backup schedules. 10,000 schedules in one process, run by clanbot's scheduler (one timer,
// node-cron for next runs) and, for comparison, by one node-cron task each: start-up, resident
// memory, how late firings come, and what happens to them when the event loop stalls.
// Each run is a child process (bench/backup-child.ts) whose resident memory is sampled from here.
import { spawn } from "node:child_process";
import type { BackupChildResult } from "./backup-child.ts";
import { RssSampler } from "./proc.ts";
import { summarize, type Summary } from "./stats.ts";

const CHILD = new URL("./backup-child.ts", import.meta.url).pathname;

export interface BackupBenchOptions {
  schedules: number;
  /** How long firings are watched in the main runs. */
  windowMs: number;
  /** The same for the runs with every expression written differently, and for those with a stall. */
  distinctWindowMs: number;
  stallWindowMs: number;
  stallMs: number;
  progress: (line: string) => void;
}

export interface BackupRun extends BackupChildResult {
  /** Highest VmRSS sampled while it ran (every 100 ms). */
  rssPeak: number;
  late: Summary;
}

export interface BackupBenchResult {
  schedules: number;
  stallMs: number;
  /** Ten cron expressions in four zones, as people pick the same few times. */
  shared: { clanbot: BackupRun; nodeCron: BackupRun };
  /** Every schedule written differently: nothing shared. */
  distinct: { clanbot: BackupRun; nodeCron: BackupRun };
  stall: { clanbot: BackupRun; nodeCron: BackupRun };
}

async function runChild(args: string[]): Promise<BackupRun> {
  const proc = spawn(process.execPath, ["--expose-gc", CHILD, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  const sampler = new RssSampler(proc.pid as number, 100);
  let out = "";
  let err = "";
  proc.stdout.on("data", (c: Buffer) => (out += c.toString("utf8")));
  proc.stderr.on("data", (c: Buffer) => (err += c.toString("utf8")));
  const code = await new Promise<number | null>((resolve) => proc.once("exit", resolve));
  sampler.stop();
  const line = out.trim().split("\n").at(-1);
  if (code !== 0 || !line) throw new Error(`backup-child ${args.join(" ")} exited ${code}: ${err.slice(-2000)}`);
  const result = JSON.parse(line) as BackupChildResult;
  return { ...result, rssPeak: sampler.peak(), late: summarize(result.lateness) };
}

export async function runBackupBench(o: BackupBenchOptions): Promise<BackupBenchResult> {
  const n = String(o.schedules);
  const pair = async (what: string, windowMs: number, pattern: string, stallMs = 0): Promise<{ clanbot: BackupRun; nodeCron: BackupRun }> => {
    const args = (variant: string): string[] => [variant, n, String(windowMs), pattern, String(stallMs)];
    o.progress(`backup: ${n} schedules, ${what}: clanbot's scheduler, ${(windowMs / 1000).toFixed(0)} s`);
    const clanbot = await runChild(args("clanbot"));
    o.progress(`backup: ${n} schedules, ${what}: a node-cron task each, ${(windowMs / 1000).toFixed(0)} s`);
    const nodeCron = await runChild(args("node-cron"));
    return { clanbot, nodeCron };
  };
  return {
    schedules: o.schedules,
    stallMs: o.stallMs,
    shared: await pair("10 expressions x 4 zones", o.windowMs, "shared"),
    distinct: await pair("all written differently", o.distinctWindowMs, "distinct"),
    stall: await pair(`a ${(o.stallMs / 1000).toFixed(1)} s stall`, o.stallWindowMs, "shared", o.stallMs),
  };
}
