import type { DeployKind, DeployRecord, DeployResult, DeployState, MachineLock, MachineRun, Waiting } from "./deploy-types.ts";
import { ago, bold, code, codeBlock, concat, formatDuration, lines, paragraphs, table, type Message, type Piece } from "./format.ts";

const PHASE_MARK: Record<MachineRun["phase"], string> = {
  queued: "⏳",
  building: "🔨",
  copying: "📦",
  activating: "⚡",
  done: "✅",
  failed: "❌",
  cancelled: "🚫",
  "timed-out": "⏱️",
  skipped: "⏭️",
  interrupted: "⚠️",
  "reboot-needed": "🔁",
};

/** What a deploy-like run is called in titles: "Deploy #42", "Rollback #43". */
export const KIND_TITLE: Record<DeployKind, string> = {
  switch: "Deploy",
  "dry-run": "Dry run",
  rollback: "Rollback",
  install: "Install",
  restore: "Restore",
  vars: "Vars generation",
};

function ordinal(n: number): string {
  if (n === 1) return "next";
  const teen = n % 100 >= 11 && n % 100 <= 13;
  const suffix = teen ? "th" : ({ 1: "st", 2: "nd", 3: "rd" } as Record<number, string>)[n % 10] ?? "th";
  return `${n}${suffix} in line`;
}

/** "queued, next behind #41 by @alice (deploying it since 3 min ago)": why a run waits for its machine. */
export function waitingText(w: Waiting | undefined, now: number): string {
  if (w?.kind === "machine") return `queued, ${ordinal(w.position)} behind #${w.deployId} by ${w.sender} (${w.activity} since ${ago(w.since, now)})`;
  if (w?.kind === "slot") return `waiting for a free slot (${w.running} running)`;
  if (w?.kind === "preparation") return `waiting for clan's preparation (vars, inventory) in ${w.machine}'s run`;
  return "queued";
}

function machineLine(run: MachineRun, s: DeployState, now: number): Message {
  const took = (run.startedAt !== undefined ? formatDuration((run.finishedAt ?? now) - run.startedAt) : undefined) ?? "";
  const name = bold(run.machine);
  const mark = PHASE_MARK[run.phase];
  switch (run.phase) {
    case "queued":
      return concat(mark, " ", name, `: ${waitingText(run.waiting, now)}`);
    case "building":
      return concat(mark, " ", name, s.kind === "install" ? ": installing" : s.kind === "restore" ? ": restoring" : s.kind === "vars" ? ": generating vars" : ": building");
    case "copying":
      return concat(mark, " ", name, ": copying to the machine");
    case "activating":
      return concat(mark, " ", name, ": activating");
    case "done":
      if (s.kind === "dry-run" && run.storePath) return concat(mark, " ", name, `: built in ${took}: `, code(run.storePath));
      if (s.kind === "rollback") {
        const gen = run.generation !== undefined ? ` generation ${run.generation}` : " the previous generation";
        return concat(mark, " ", name, `: rolled back to${gen} in ${took}`, run.storePath ? concat(": ", code(run.storePath)) : "");
      }
      if (s.kind === "install") return concat(mark, " ", name, `: installed in ${took}`);
      if (s.kind === "restore") return concat(mark, " ", name, `: restored in ${took}`);
      if (s.kind === "vars") return concat(mark, " ", name, `: vars generated in ${took}`);
      return concat(mark, " ", name, `: done in ${took}`);
    case "failed":
      return concat(mark, " ", name, `: failed after ${took}${run.exitCode !== undefined ? ` (exit status ${run.exitCode})` : ""}`);
    case "cancelled":
      return concat(mark, " ", name, `: ${run.note ?? "cancelled"}${run.startedAt !== undefined ? ` after ${took}` : ""}`);
    case "timed-out":
      return concat(mark, " ", name, `: timed out, ${run.note ?? "stopped"}`);
    case "skipped":
      return concat(mark, " ", name, `: skipped, ${run.note ?? "not deployed"}`);
    case "interrupted":
      return concat(mark, " ", name, ": interrupted");
    case "reboot-needed":
      return concat(mark, " ", name, `: switched at next boot: reboot needed (built and registered in ${took}; switch inhibitors kept it from switching live)`);
  }
}

const RESULT_TEXT: Record<Exclude<DeployResult, "running">, string> = {
  ok: "✅ Done",
  failed: "❌ Failed",
  cancelled: "🚫 Cancelled",
  "timed-out": "⏱️ Timed out",
  interrupted: "⚠️ Interrupted",
};

/** The one status message of a deploy, as it stands. */
export function formatDeployStatus(s: DeployState, now: number, prefix = "!"): Message {
  const what = KIND_TITLE[s.kind];
  const names = s.machines.map((m) => m.machine);
  const head = concat(
    bold(`${what} #${s.id}`),
    ` of ${names.length > 6 ? `${names.length} machines` : names.join(", ")} by ${s.sender}`,
    s.revision ? concat(" at revision ", code(s.revision)) : "",
    s.restore ? concat(": ", code(s.restore.archive), ` from ${s.restore.provider}, ${s.restore.service ?? "every service"}`) : "",
  );
  const parts: Piece[] = [head, lines(...s.machines.map((m) => machineLine(m, s, now)))];
  if (s.result !== "running") {
    const took = formatDuration((s.finishedAt ?? now) - s.startedAt);
    const counts = s.machines.length > 1 ? ` (${summary(s)})` : "";
    const by = s.result === "cancelled" && s.cancelledBy ? ` by ${s.cancelledBy}` : "";
    parts.push(concat(`${RESULT_TEXT[s.result]}${by} after ${took}${counts}.`));
    for (const m of s.machines) {
      if (m.tail.length) parts.push(concat(`Last lines from ${m.machine}:`), codeBlock(m.tail.join("\n")));
    }
    const reboot = s.machines.filter((m) => m.phase === "reboot-needed").map((m) => m.machine);
    if (reboot.length) {
      parts.push(
        concat(
          `🔁 ${reboot.join(", ")} ${reboot.length === 1 ? "runs" : "run"} the old system until ${reboot.length === 1 ? "it reboots" : "they reboot"}: `,
          "critical parts changed (switch inhibitors), so clan made the new system the boot default instead of switching live. An admin can ",
          code(`${prefix}reboot ${reboot[0]}`),
          reboot.length > 1 ? " (one machine at a time)" : "",
          ".",
        ),
      );
    }
    if (s.result !== "ok") parts.push(concat("The whole log is attached."));
  }
  return paragraphs(...parts);
}

function summary(s: DeployState): string {
  const counts = new Map<string, number>();
  for (const m of s.machines) counts.set(m.phase, (counts.get(m.phase) ?? 0) + 1);
  return [...counts].map(([phase, n]) => `${n} ${phase}`).join(", ");
}

const RECORD_MARK: Record<DeployResult, string> = {
  running: "⏳ running",
  ok: "✅ ok",
  failed: "❌ failed",
  cancelled: "🚫 cancelled",
  "timed-out": "⏱️ timed out",
  interrupted: "⚠️ interrupted",
};

export function formatDeployHistory(records: readonly DeployRecord[], now: number, machine?: string): Message {
  if (!records.length) return concat(machine ? `No deploys of ${machine} yet.` : "No deploys in this clan yet.");
  const rows = records.map((r) => [
    `#${r.id}`,
    `${r.machines.map((m) => m.machine).join(", ")}${r.kind === "switch" ? "" : ` (${KIND_TITLE[r.kind].toLowerCase()})`}`,
    r.sender,
    ago(r.startedAt, now),
    r.revision ? code(r.revision) : "",
    RECORD_MARK[r.result] + (r.cancelledBy ? ` by ${r.cancelledBy}` : ""),
    r.finishedAt === undefined ? "" : formatDuration(r.finishedAt - r.startedAt),
  ]);
  return paragraphs(
    concat(`The last ${records.length} deploy${records.length === 1 ? "" : "s"}${machine ? ` of ${machine}` : ""}, newest first:`),
    table(["Id", "Machines", "Who", "When", "Revision", "Result", "Took"], rows),
  );
}

export function formatLocks(locks: readonly MachineLock[], now: number): Message {
  if (!locks.length) return concat("No machine is locked.");
  return table(
    ["Machine", "Held by", "Reason", "Since", "Expires"],
    locks.map((l) => [l.machine, l.holder, l.reason ?? "", ago(l.since, now), `in ${formatDuration(l.until - now)}`]),
  );
}

/** "laptop is locked by @bob for another 40 min (kernel update)". */
export function describeLock(l: MachineLock, now: number): string {
  return `${l.machine} is locked by ${l.holder} for another ${formatDuration(l.until - now)}${l.reason ? ` (${l.reason})` : ""}`;
}

/** What the room is told, once, about a deploy the bot did not see to its end. */
export function formatInterrupted(
  d: { id: number; kind: string; sender: string; startedAt: number; machines: readonly string[] },
  now: number,
  prefix: string,
): Message {
  const what = KIND_TITLE[d.kind as DeployKind] ?? "Deploy";
  const changed = d.kind !== "dry-run";
  if (d.kind === "restore") {
    const names = d.machines.join(" ");
    return paragraphs(
      concat(`⚠️ `, bold(`${what} #${d.id}`), ` of ${d.machines.join(", ")} by ${d.sender} (started ${ago(d.startedAt, now)}) was interrupted: the bot stopped while it ran.`),
      concat(
        "Its processes were stopped and nothing was run again. The services may be half-restored: check them (",
        code(`${prefix}status ${names}`),
        "), then restore again (",
        code(`${prefix}backups ${names}`),
        " lists the archives).",
      ),
    );
  }
  return paragraphs(
    concat(
      `⚠️ `,
      bold(`${what} #${d.id}`),
      ` of ${d.machines.join(", ")} by ${d.sender} (started ${ago(d.startedAt, now)}) was interrupted: the bot stopped while it ran.`,
    ),
    concat(
      "Its processes were stopped and nothing was run again. ",
      changed ? "The machines may be half-deployed: check them (" : "",
      changed ? code(`${prefix}status ${d.machines.join(" ")}`) : "",
      changed ? "), then deploy again with " : "",
      changed ? code(`${prefix}deploy ${d.machines.join(" ")}`) : "",
      changed ? "." : "",
    ),
  );
}
