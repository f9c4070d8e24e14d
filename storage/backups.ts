import type { BackupEnd, BackupState, MachineBackups } from "../commands/backup-types.ts";
import type { Db } from "./db.ts";

interface RunRow {
  id: number;
  clan: string;
  machine: string;
  provider: string | null;
  sender: string;
  schedule_id: number | null;
  due_at: number | null;
  late: number;
  started_at: number;
  run_started_at: number | null;
  finished_at: number | null;
  result: string;
  archive: string | null;
  exit_code: number | null;
  tail: string | null;
  note: string | null;
}

const RUN_COLUMNS =
  "r.id, r.clan, r.machine, r.provider, r.sender, r.schedule_id, r.due_at, r.late, r.started_at, r.run_started_at, r.finished_at, r.result, r.archive, r.exit_code, r.tail, r.note";

function toState(r: RunRow): BackupState {
  return {
    id: r.id,
    machine: r.machine,
    sender: r.sender,
    trigger: r.schedule_id === null ? "command" : "schedule",
    startedAt: r.started_at,
    phase: (r.result === "running" ? "queued" : r.result) as BackupState["phase"],
    tail: r.tail ? r.tail.split("\n") : [],
    late: r.late === 1,
    ...(r.provider !== null ? { provider: r.provider } : {}),
    ...(r.schedule_id !== null ? { scheduleId: r.schedule_id } : {}),
    ...(r.due_at !== null ? { dueAt: r.due_at } : {}),
    ...(r.run_started_at !== null ? { runStartedAt: r.run_started_at } : {}),
    ...(r.finished_at !== null ? { finishedAt: r.finished_at } : {}),
    ...(r.archive !== null ? { archive: r.archive } : {}),
    ...(r.exit_code !== null ? { exitCode: r.exit_code } : {}),
    ...(r.note !== null ? { note: r.note } : {}),
  };
}

/** Records a run as it is asked for. Scheduled runs are unannounced until the room has been told how they ended. */
export async function startBackupRun(db: Db, clan: string, s: BackupState): Promise<void> {
  await db.run(
    `INSERT INTO backup_runs (id, clan, machine, provider, sender, schedule_id, due_at, late, started_at, result, note, finished_at, announced)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    [
      s.id,
      clan,
      s.machine,
      s.provider ?? null,
      s.sender,
      s.scheduleId ?? null,
      s.dueAt ?? null,
      s.late ? 1 : 0,
      s.startedAt,
      s.phase === "skipped" ? "skipped" : "running",
      s.note ?? null,
      s.finishedAt ?? null,
      s.trigger === "schedule" ? 0 : 1,
    ],
  );
}

/** The clan process has started: its pid and start time find it again if the bot dies. */
export async function backupRunStarted(db: Db, id: number, at: number, pid: number | undefined, pidStart: string | undefined): Promise<void> {
  await db.run("UPDATE backup_runs SET run_started_at = ?, pid = ?, pid_start = ? WHERE id = ?", [at, pid ?? null, pidStart ?? null, id]);
}

export async function finishBackupRun(db: Db, s: BackupState & { phase: BackupEnd; finishedAt: number }): Promise<void> {
  await db.run(
    "UPDATE backup_runs SET result = ?, finished_at = ?, archive = ?, exit_code = ?, tail = ?, note = ?, pid = NULL, pid_start = NULL WHERE id = ?",
    [s.phase, s.finishedAt, s.archive ?? null, s.exitCode ?? null, s.tail.length ? s.tail.join("\n") : null, s.note ?? null, s.id],
  );
}

export async function markBackupAnnounced(db: Db, id: number): Promise<void> {
  await db.run("UPDATE backup_runs SET announced = 1 WHERE id = ?", [id]);
}

export interface InterruptedBackup {
  id: number;
  clan: string;
  machine: string;
  /** The clan process that was running when the bot died: it may still be alive. */
  process: { pid: number; pidStart: string | undefined } | undefined;
}

/**
 * Runs still marked running belong to a bot that died: marks them interrupted (to be told to their
 * room once) and returns them with the process each had started.
 */
export async function interruptBackupRuns(db: Db, now: number): Promise<InterruptedBackup[]> {
  return db.transaction(async (q) => {
    const rows = await q.all<{ id: number; clan: string; machine: string; pid: number | null; pid_start: string | null }>(
      "SELECT id, clan, machine, pid, pid_start FROM backup_runs WHERE result = 'running' ORDER BY id",
    );
    await q.run(
      "UPDATE backup_runs SET result = 'interrupted', finished_at = ?, note = 'the bot stopped while it ran', pid = NULL, pid_start = NULL, announced = 0 WHERE result = 'running'",
      [now],
    );
    return rows.map((r) => ({
      id: r.id,
      clan: r.clan,
      machine: r.machine,
      process: r.pid !== null ? { pid: r.pid, pidStart: r.pid_start ?? undefined } : undefined,
    }));
  });
}

/** Ended runs whose room has not been told yet, oldest first, with the event of the command that started them. */
export async function unannouncedBackupRuns(db: Db): Promise<{ clan: string; eventId: string | undefined; run: BackupState }[]> {
  const rows = await db.all<RunRow & { event_id: string | null }>(
    `SELECT ${RUN_COLUMNS}, a.event_id FROM backup_runs r LEFT JOIN audit a ON a.id = r.id
      WHERE r.announced = 0 AND r.result <> 'running' ORDER BY r.id`,
  );
  return rows.map((r) => ({ clan: r.clan, eventId: r.event_id ?? undefined, run: toState(r) }));
}

/**
 * How the machine's backups went before run `beforeId`: the last result that says whether backups
 * work (runs cancelled by a person or skipped for overlap say nothing about that).
 */
export async function previousOutcome(db: Db, clan: string, machine: string, beforeId: number): Promise<BackupState | undefined> {
  const row = await db.get<RunRow>(
    `SELECT ${RUN_COLUMNS} FROM backup_runs r
      WHERE r.clan = ? AND r.machine = ? AND r.id < ? AND r.result IN ('ok', 'failed', 'timed-out', 'interrupted')
      ORDER BY r.id DESC LIMIT 1`,
    [clan, machine, beforeId],
  );
  return row ? toState(row) : undefined;
}

/** When each machine last had a successful backup (machines that never did are left out). */
export async function lastSuccesses(db: Db, clan: string): Promise<Map<string, number>> {
  const rows = await db.all<{ machine: string; at: number }>(
    "SELECT machine, MAX(finished_at) AS at FROM backup_runs WHERE clan = ? AND result = 'ok' GROUP BY machine",
    [clan],
  );
  return new Map(rows.map((r) => [r.machine, r.at]));
}

/** Each machine's last success, last run and overdue alert. */
export async function machineSummaries(db: Db, clan: string, machines: readonly string[]): Promise<MachineBackups[]> {
  if (!machines.length) return [];
  const marks = machines.map(() => "?").join(", ");
  const ok = await db.all<{ machine: string; id: number; finished_at: number; archive: string | null }>(
    `SELECT machine, id, finished_at, archive FROM backup_runs r
      WHERE clan = ? AND result = 'ok' AND machine IN (${marks})
        AND id = (SELECT MAX(id) FROM backup_runs x WHERE x.clan = r.clan AND x.machine = r.machine AND x.result = 'ok')`,
    [clan, ...machines],
  );
  const last = await db.all<{ machine: string; id: number; finished_at: number; result: BackupEnd }>(
    `SELECT machine, id, finished_at, result FROM backup_runs r
      WHERE clan = ? AND machine IN (${marks}) AND result NOT IN ('running', 'skipped')
        AND id = (SELECT MAX(id) FROM backup_runs x WHERE x.clan = r.clan AND x.machine = r.machine AND x.result NOT IN ('running', 'skipped'))`,
    [clan, ...machines],
  );
  const alerts = await alertsOf(db, clan);
  const okOf = new Map(ok.map((r) => [r.machine, r]));
  const lastOf = new Map(last.map((r) => [r.machine, r]));
  return machines.map((machine) => {
    const o = okOf.get(machine);
    const l = lastOf.get(machine);
    const overdueSince = alerts.get(machine);
    return {
      machine,
      ...(o ? { lastOk: { id: o.id, finishedAt: o.finished_at, ...(o.archive !== null ? { archive: o.archive } : {}) } } : {}),
      ...(l ? { last: { id: l.id, finishedAt: l.finished_at, result: l.result } } : {}),
      ...(overdueSince !== undefined ? { overdueSince } : {}),
    };
  });
}

/** Raises a machine's overdue alert; false when it is raised already (so the room is told once). */
export async function raiseAlert(db: Db, clan: string, machine: string, at: number): Promise<boolean> {
  const { changes } = await db.run("INSERT INTO backup_alerts (clan, machine, raised_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING", [clan, machine, at]);
  return changes === 1;
}

/** Clears a machine's overdue alert; false when there was none. */
export async function clearAlert(db: Db, clan: string, machine: string): Promise<boolean> {
  const { changes } = await db.run("DELETE FROM backup_alerts WHERE clan = ? AND machine = ?", [clan, machine]);
  return changes === 1;
}

/** Machines with an overdue alert, and since when. */
export async function alertsOf(db: Db, clan: string): Promise<Map<string, number>> {
  const rows = await db.all<{ machine: string; raised_at: number }>("SELECT machine, raised_at FROM backup_alerts WHERE clan = ?", [clan]);
  return new Map(rows.map((r) => [r.machine, r.raised_at]));
}
