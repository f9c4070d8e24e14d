import type { VmBackendKind, VmExit, VmPort, VmResult } from "../commands/vm-types.ts";
import type { Db } from "./db.ts";

/** A VM as recorded: enough to find it again after a restart and to tell how it ended. */
export interface VmRecord {
  readonly id: number;
  readonly clan: string;
  readonly machine: string;
  readonly sender: string;
  readonly backend: VmBackendKind;
  readonly ports: readonly VmPort[];
  readonly logPath: string;
  readonly startedAt: number;
  readonly result: "building" | "running" | VmResult;
  readonly pid: number | undefined;
  readonly pidStart: string | undefined;
}

interface VmRow {
  id: number;
  clan: string;
  machine: string;
  sender: string;
  backend: VmBackendKind;
  ports: string;
  log_path: string;
  started_at: number;
  result: VmRecord["result"];
  pid: number | null;
  pid_start: string | null;
}

const COLUMNS = "id, clan, machine, sender, backend, ports, log_path, started_at, result, pid, pid_start";

const toRecord = (r: VmRow): VmRecord => ({
  id: r.id,
  clan: r.clan,
  machine: r.machine,
  sender: r.sender,
  backend: r.backend,
  ports: JSON.parse(r.ports) as VmPort[],
  logPath: r.log_path,
  startedAt: r.started_at,
  result: r.result,
  pid: r.pid ?? undefined,
  pidStart: r.pid_start ?? undefined,
});

export async function startVm(
  db: Db,
  vm: { id: number; clan: string; machine: string; sender: string; backend: VmBackendKind; ports: readonly VmPort[]; logPath: string; startedAt: number },
): Promise<void> {
  await db.run(
    "INSERT INTO vms (id, clan, machine, sender, backend, ports, log_path, started_at, result) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'building')",
    [vm.id, vm.clan, vm.machine, vm.sender, vm.backend, JSON.stringify(vm.ports), vm.logPath, vm.startedAt],
  );
}

/** The VM's process exists: recorded before anything else, so a crash right after still finds it. */
export async function vmRunning(db: Db, id: number, pid: number, pidStart: string | undefined): Promise<void> {
  await db.run("UPDATE vms SET result = 'running', pid = ?, pid_start = ? WHERE id = ?", [pid, pidStart ?? null, id]);
}

export async function endVm(
  db: Db,
  id: number,
  end: { result: VmResult; endedAt: number; exit: VmExit; stoppedBy: string | undefined; reason: string | undefined },
): Promise<void> {
  await db.run("UPDATE vms SET result = ?, ended_at = ?, exit_code = ?, exit_signal = ?, stopped_by = ?, reason = ? WHERE id = ?", [
    end.result,
    end.endedAt,
    end.exit.kind === "code" ? end.exit.code : null,
    end.exit.kind === "signal" ? end.exit.signal : null,
    end.stoppedBy ?? null,
    end.reason ?? null,
    id,
  ]);
}

/** VMs that were building or running when the bot last stopped, of every clan. */
export async function unfinishedVms(db: Db): Promise<VmRecord[]> {
  const rows = await db.all<VmRow>(`SELECT ${COLUMNS} FROM vms WHERE result IN ('building', 'running') ORDER BY id`);
  return rows.map(toRecord);
}

/** The newest VM of a machine, running or not. */
export async function lastVmOf(db: Db, clan: string, machine: string): Promise<VmRecord | undefined> {
  const row = await db.get<VmRow>(`SELECT ${COLUMNS} FROM vms WHERE clan = ? AND machine = ? ORDER BY id DESC LIMIT 1`, [clan, machine]);
  return row ? toRecord(row) : undefined;
}

/** The build's process, so that a restart can stop a build nobody waits for any more. */
export async function vmBuilding(db: Db, id: number, pid: number, pidStart: string | undefined): Promise<void> {
  await db.run("UPDATE vms SET pid = ?, pid_start = ? WHERE id = ? AND result = 'building'", [pid, pidStart ?? null, id]);
}
