import type { DeployKind, DeployRecord, DeployResult, FinalPhase } from "../commands/deploy-types.ts";
import type { Db } from "./db.ts";

export interface DeployStart {
  /** The audit id of the command that starts it; the room and event are taken from that row. */
  id: number;
  clan: string;
  kind: DeployKind;
  sender: string;
  machines: readonly string[];
  revision: string | undefined;
  startedAt: number;
  logPath: string;
}


export async function startDeploy(db: Db, d: DeployStart): Promise<void> {
  await db.transaction(async (q) => {
    const { changes } = await q.run(
      `INSERT INTO deploys (id, clan, room, event_id, kind, sender, revision, started_at, result, log_path)
       SELECT id, ?, room, event_id, ?, ?, ?, ?, 'running', ? FROM audit WHERE id = ?`,
      [d.clan, d.kind, d.sender, d.revision ?? null, d.startedAt, d.logPath, d.id],
    );
    if (changes !== 1) throw new Error(`no command #${d.id} to start a deploy for`);
    for (const m of d.machines) {
      await q.run("INSERT INTO deploy_machines (deploy_id, machine, state) VALUES (?, ?, 'queued')", [d.id, m]);
    }
  });
}

/** A machine's clan process has started: its pid and start time find it again if the bot dies. */
export async function machineStarted(db: Db, id: number, machine: string, at: number, pid: number | undefined, pidStart: string | undefined): Promise<void> {
  await db.run("UPDATE deploy_machines SET state = 'running', started_at = ?, pid = ?, pid_start = ? WHERE deploy_id = ? AND machine = ?", [
    at,
    pid ?? null,
    pidStart ?? null,
    id,
    machine,
  ]);
}

export async function machineFinished(
  db: Db,
  id: number,
  machine: string,
  f: { state: FinalPhase; at: number; exitCode: number | undefined; storePath: string | undefined },
): Promise<void> {
  await db.run(
    "UPDATE deploy_machines SET state = ?, finished_at = ?, exit_code = ?, store_path = ?, pid = NULL, pid_start = NULL WHERE deploy_id = ? AND machine = ?",
    [f.state, f.at, f.exitCode ?? null, f.storePath ?? null, id, machine],
  );
}

export async function finishDeploy(db: Db, id: number, result: Exclude<DeployResult, "running">, at: number, cancelledBy?: string): Promise<void> {
  await db.run("UPDATE deploys SET result = ?, finished_at = ?, cancelled_by = ? WHERE id = ?", [result, at, cancelledBy ?? null, id]);
}

interface DeployRow {
  id: number;
  kind: DeployKind;
  sender: string;
  revision: string | null;
  started_at: number;
  finished_at: number | null;
  result: DeployResult;
  cancelled_by: string | null;
  machines: string;
}

/** Newest first; with `machine`, only deploys that included it. */
export async function recentDeploys(db: Db, clan: string, limit: number, machine?: string): Promise<DeployRecord[]> {
  const rows = await db.all<DeployRow>(
    `SELECT d.id, d.kind, d.sender, d.revision, d.started_at, d.finished_at, d.result, d.cancelled_by,
            (SELECT json_group_array(json_object('machine', m.machine, 'state', m.state))
               FROM deploy_machines m WHERE m.deploy_id = d.id) AS machines
       FROM deploys d
      WHERE d.clan = ? AND (? IS NULL OR EXISTS (SELECT 1 FROM deploy_machines m WHERE m.deploy_id = d.id AND m.machine = ?))
      ORDER BY d.id DESC LIMIT ?`,
    [clan, machine ?? null, machine ?? null, limit],
  );
  return rows.map((r) => ({
    id: r.id,
    kind: r.kind,
    sender: r.sender,
    revision: r.revision ?? undefined,
    startedAt: r.started_at,
    finishedAt: r.finished_at ?? undefined,
    result: r.result,
    cancelledBy: r.cancelled_by ?? undefined,
    machines: (JSON.parse(r.machines) as { machine: string; state: string }[]).sort((a, b) => a.machine.localeCompare(b.machine)),
  }));
}

export interface InterruptedDeploy {
  id: number;
  clan: string;
  room: string;
  eventId: string | undefined;
  kind: DeployKind;
  sender: string;
  startedAt: number;
  machines: string[];
  /** Clan processes that were running when the bot died: they may still be alive. */
  processes: { machine: string; pid: number; pidStart: string | undefined }[];
}

interface InterruptedRow {
  id: number;
  clan: string;
  room: string;
  event_id: string | null;
  kind: DeployKind;
  sender: string;
  started_at: number;
}

/**
 * Deploys still marked running belong to a bot that died. Marks them interrupted (to be told to
 * their room once) and returns them with the processes they had started.
 */
export async function interruptDeploys(db: Db, now: number): Promise<InterruptedDeploy[]> {
  return db.transaction(async (q) => {
    const rows = await q.all<InterruptedRow>("SELECT id, clan, room, event_id, kind, sender, started_at FROM deploys WHERE result = 'running'");
    const out: InterruptedDeploy[] = [];
    for (const r of rows) {
      const machines = await q.all<{ machine: string; state: string; pid: number | null; pid_start: string | null }>(
        "SELECT machine, state, pid, pid_start FROM deploy_machines WHERE deploy_id = ? ORDER BY machine",
        [r.id],
      );
      out.push({
        ...interruptedOf(r, machines.map((m) => m.machine)),
        processes: machines
          .filter((m) => m.state === "running" && m.pid !== null)
          .map((m) => ({ machine: m.machine, pid: m.pid as number, pidStart: m.pid_start ?? undefined })),
      });
      await q.run(
        "UPDATE deploy_machines SET state = 'interrupted', finished_at = ?, pid = NULL, pid_start = NULL WHERE deploy_id = ? AND state IN ('queued', 'running')",
        [now, r.id],
      );
      await q.run("UPDATE deploys SET result = 'interrupted', finished_at = ?, announced = 0 WHERE id = ?", [now, r.id]);
    }
    return out;
  });
}

export type UnannouncedDeploy = Omit<InterruptedDeploy, "processes">;

/** Interrupted deploys of a clan that its room has not been told about yet, oldest first. */
export async function unannouncedDeploys(db: Db, clan: string): Promise<UnannouncedDeploy[]> {
  const rows = await db.all<InterruptedRow & { machines: string }>(
    `SELECT d.id, d.clan, d.room, d.event_id, d.kind, d.sender, d.started_at,
            (SELECT json_group_array(m.machine) FROM deploy_machines m WHERE m.deploy_id = d.id) AS machines
       FROM deploys d WHERE d.clan = ? AND d.announced = 0 ORDER BY d.id`,
    [clan],
  );
  return rows.map((r) => interruptedOf(r, (JSON.parse(r.machines) as string[]).sort()));
}

function interruptedOf(r: InterruptedRow, machines: string[]): UnannouncedDeploy {
  return { id: r.id, clan: r.clan, room: r.room, eventId: r.event_id ?? undefined, kind: r.kind, sender: r.sender, startedAt: r.started_at, machines };
}

export async function markAnnounced(db: Db, id: number): Promise<void> {
  await db.run("UPDATE deploys SET announced = 1 WHERE id = ?", [id]);
}

/** Forgets the log files of deploys that ended before `before`; returns the paths to delete. */
export async function expireDeployLogs(db: Db, before: number): Promise<string[]> {
  return db.transaction(async (q) => {
    const rows = await q.all<{ log_path: string }>("SELECT log_path FROM deploys WHERE log_path IS NOT NULL AND finished_at IS NOT NULL AND finished_at < ?", [
      before,
    ]);
    await q.run("UPDATE deploys SET log_path = NULL WHERE log_path IS NOT NULL AND finished_at IS NOT NULL AND finished_at < ?", [before]);
    return rows.map((r) => r.log_path);
  });
}

/**
 * The system the bot last put on each of these machines: the newest deploy, rollback or install
 * that ended well there and knows the store path it activated.
 */
export async function lastActivatedSystems(db: Db, clan: string, machines: readonly string[]): Promise<Map<string, { storePath: string; deployId: number }>> {
  const found = new Map<string, { storePath: string; deployId: number }>();
  if (!machines.length) return found;
  const rows = await db.all<{ machine: string; store_path: string; deploy_id: number }>(
    `SELECT m.machine, m.store_path, m.deploy_id
       FROM deploy_machines m JOIN deploys d ON d.id = m.deploy_id
      WHERE d.clan = ? AND d.kind IN ('switch', 'rollback', 'install') AND m.state = 'done' AND m.store_path IS NOT NULL
        AND m.machine IN (${machines.map(() => "?").join(", ")})
      ORDER BY m.deploy_id DESC`,
    [clan, ...machines],
  );
  for (const r of rows) if (!found.has(r.machine)) found.set(r.machine, { storePath: r.store_path, deployId: r.deploy_id });
  return found;
}
