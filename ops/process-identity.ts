import { readFileSync } from "node:fs";

/**
 * A process's start time (clock ticks since boot, from /proc), which tells a live process from a
 * later one that reuses its pid. Undefined when there is no such process (or no /proc).
 */
export function processStartTime(pid: number): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT" || (err as NodeJS.ErrnoException).code === "ESRCH") return undefined;
    throw err;
  }
  // Fields after the command name (which may hold spaces and parentheses): state is field 3, starttime field 22.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  if (fields[0] === "Z" || fields[0] === "X") return undefined;
  return fields[19];
}

/** True when `pid` is still the process that was recorded with `startTime`. */
export function isSameProcess(pid: number, startTime: string | undefined): boolean {
  const now = processStartTime(pid);
  return now !== undefined && (startTime === undefined || now === startTime);
}

/**
 * Ends a process group left behind by an earlier run of the bot: SIGTERM, then SIGKILL after
 * `graceMs` if anything of it is left. True when it was signalled, false when it was already gone.
 */
export function stopLeftoverGroup(pid: number, startTime: string | undefined, graceMs: number): boolean {
  if (!isSameProcess(pid, startTime)) return false;
  const signal = (sig: NodeJS.Signals): void => {
    try {
      process.kill(-pid, sig);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
    }
  };
  signal("SIGTERM");
  setTimeout(() => signal("SIGKILL"), graceMs).unref();
  return true;
}
