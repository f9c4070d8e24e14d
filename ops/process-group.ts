import { readdirSync, readFileSync } from "node:fs";

/** Reads a /proc file of a process that may be gone by now: undefined then. */
function procFile(pid: string, name: string): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/${name}`, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ESRCH") return undefined;
    throw err;
  }
}

/** Live (not zombie) processes of process group `pgid`, from /proc. */
export function groupMembers(pgid: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = procFile(entry, "stat");
    if (stat === undefined) continue;
    // After the command name (which may hold spaces and parentheses): state, ppid, pgrp.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (fields[0] !== "Z" && fields[0] !== "X" && Number(fields[2]) === pgid) pids.push(Number(entry));
  }
  return pids;
}

/** Resident memory of a whole process group (a VM is QEMU plus helpers such as virtiofsd), in bytes. */
export function groupRssBytes(pgid: number): number | undefined {
  const members = groupMembers(pgid);
  if (!members.length) return undefined;
  let kib = 0;
  for (const pid of members) {
    const status = procFile(String(pid), "status");
    const m = status !== undefined ? /^VmRSS:\s+(\d+) kB$/m.exec(status) : null;
    if (m) kib += Number(m[1]);
  }
  return kib * 1024;
}

/** Signals every process of a group; false when none was left. */
export function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ESRCH") return false;
    throw err;
  }
}
