// The baseline of the deploy benchmark: the fake `clan machines update` run straight from this
// process, with the arguments, process group and piped output the bot gives it, but no bot.
import { spawn } from "node:child_process";
import { dirname } from "node:path";
import { fakeClanPath } from "../demo/fake-clan-fixture.ts";

/** What the bot runs for one machine (ops/deploy-service.ts). */
export const updateArgs = (machine: string, flake: string): string[] => [
  "machines",
  "update",
  machine,
  "--host-key-check",
  "accept-new",
  "--flake",
  flake,
];

/**
 * PATH with this Node first. The fake clan starts with `#!/usr/bin/env node`: without this, a bench
 * started as `node_modules/.bin/node bench/run.ts` (not through npm) would run the fake, in the bot
 * and in the baseline, on whatever `node` is on PATH (the system's Node 20 here, 2x slower to start).
 */
export function pathWithThisNode(): string {
  return [dirname(process.execPath), process.env["PATH"] ?? ""].filter(Boolean).join(":");
}

export interface ClanRun {
  machine: string;
  ms: number;
  exitCode: number | null;
  /** stdout + stderr bytes read. */
  bytes: number;
}

export interface ClanRuns {
  wallMs: number;
  runs: ClanRun[];
}

/** One fake `clan machines update <machine>`, its output read and thrown away as it comes. */
export function runFakeClan(machine: string, flake: string): Promise<ClanRun> {
  const started = performance.now();
  const proc = spawn(fakeClanPath, updateArgs(machine, flake), {
    cwd: flake,
    env: { ...process.env, PATH: pathWithThisNode(), NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let bytes = 0;
  const count = (c: Buffer): void => {
    bytes += c.length;
  };
  proc.stdout.on("data", count);
  proc.stderr.on("data", count);
  return new Promise((resolve, reject) => {
    proc.once("error", reject);
    proc.once("close", (code) => resolve({ machine, ms: performance.now() - started, exitCode: code, bytes }));
  });
}

/** All machines, at most `width` at a time (a new one starts as soon as one ends, as the bot's slots do). */
export async function runFakeClans(machines: readonly string[], width: number, flake: string): Promise<ClanRuns> {
  const started = performance.now();
  const runs: ClanRun[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, machines.length) }, async () => {
      while (next < machines.length) {
        const machine = machines[next++] as string;
        runs.push(await runFakeClan(machine, flake));
      }
    }),
  );
  return { wallMs: performance.now() - started, runs };
}
