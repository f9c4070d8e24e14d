// Child processes of the benchmark (the echo bot; clanbot goes through test/support/bot-process.ts)
// and what /proc says about them.
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import type { Account } from "./human.ts";

const ECHO_BOT = new URL("./echo-bot.ts", import.meta.url).pathname;

export interface EchoBot {
  proc: ChildProcess;
  stop(): Promise<Stopped>;
}

/** Starts the echo bot on this Node and resolves once it has synced ("ready"). */
export async function startEchoBot(homeserver: string, account: Account, timeoutMs = 20_000): Promise<EchoBot> {
  const proc = spawn(process.execPath, [ECHO_BOT], {
    env: {
      ...process.env,
      ECHO_HOMESERVER: homeserver,
      ECHO_USER_ID: account.userId,
      ECHO_ACCESS_TOKEN: account.accessToken,
      ECHO_DEVICE_ID: account.deviceId,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  proc.stderr?.on("data", (c: Buffer) => {
    stderr += c.toString("utf8");
  });
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`echo bot not ready in ${timeoutMs} ms: ${stderr}`)), timeoutMs);
    proc.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`echo bot exited (${code}): ${stderr}`));
    });
    proc.stdout?.on("data", (c: Buffer) => {
      if (c.toString("utf8").includes("ready")) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  return {
    proc,
    async stop() {
      return stopChild(proc, exited);
    },
  };
}

export interface Stopped {
  /** SIGTERM -> exit. */
  ms: number;
  /** It did not exit within the grace time and was killed. */
  killed: boolean;
}

/** How long a bot may take to exit on SIGTERM before the bench kills it. */
export const STOP_GRACE_MS = 5000;

/** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
export async function stopChild(proc: ChildProcess, exited: Promise<unknown>, graceMs = STOP_GRACE_MS): Promise<Stopped> {
  if (proc.exitCode !== null || proc.signalCode !== null) return { ms: 0, killed: false };
  const t0 = performance.now();
  proc.kill("SIGTERM");
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    proc.kill("SIGKILL");
  }, graceMs);
  await exited;
  clearTimeout(timer);
  return { ms: performance.now() - t0, killed };
}

function statusField(pid: number, field: string): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : Number.NaN;
  } catch {
    return Number.NaN; // the process is gone
  }
}

/** Resident memory in bytes (VmRSS), NaN once the process is gone. */
export const rssOf = (pid: number): number => statusField(pid, "VmRSS");
/** The kernel's own high-water mark of resident memory (VmHWM). */
export const peakRssOf = (pid: number): number => statusField(pid, "VmHWM");

/** User + system CPU time of a process, in ms (clock ticks of 10 ms on Linux). */
export function cpuMsOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // Fields after the command name start at field 3 (state); utime is field 14, stime 15.
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return Number.NaN;
  }
}

/** Samples VmRSS every `everyMs` until stopped. */
export class RssSampler {
  readonly samples: Array<{ at: number; rss: number }> = [];
  private readonly timer: NodeJS.Timeout;
  private readonly pid: number;

  constructor(pid: number, everyMs = 250) {
    this.pid = pid;
    this.sample();
    this.timer = setInterval(() => this.sample(), everyMs);
  }

  sample(): number {
    const rss = rssOf(this.pid);
    if (Number.isFinite(rss)) this.samples.push({ at: performance.now(), rss });
    return rss;
  }

  /** Highest sample taken in [from, to] (performance.now() times). */
  peak(from = 0, to = Number.POSITIVE_INFINITY): number {
    let best = Number.NaN;
    for (const s of this.samples) if (s.at >= from && s.at <= to && !(s.rss <= best)) best = s.rss;
    return best;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
