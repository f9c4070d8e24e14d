import { bold, code, concat, formatDuration, lines, paragraphs, table, type Message, type Piece } from "./format.ts";
import type { MachineHealth, MachineStatus, RebootReport } from "./ssh-types.ts";

type Problem = Extract<MachineStatus, { ok: false }>["problem"];

const PROBLEM_STATE: Record<Problem, string> = {
  "no-target": "— no target",
  unreachable: "🔴 unreachable",
  timeout: "⏱️ no answer",
  "host-key-changed": "🔑 host key changed",
  "host-key-unknown": "🔑 host key unknown",
  auth: "🚫 key refused",
  closed: "🔴 connection lost",
  cancelled: "🚫 cancelled",
  failed: "❌ status failed",
};

/** `25.11.20260815.5e2a59a (Xantusia)` → `25.11 (5e2a59a)`. */
export function shortVersion(version: string | undefined): string {
  if (!version) return "not NixOS?";
  const m = /^(\d+\.\d+)\.[^.\s]+\.([0-9a-f]+)/.exec(version);
  return m ? `${m[1]} (${m[2]})` : (version.split(" ")[0] ?? version);
}

/** `/nix/store/<hash>-nixos-system-...` → the first 8 characters of its hash, enough to compare. */
export function shortStorePath(path: string | undefined): string {
  if (!path) return "?";
  const name = path.split("/").pop() ?? path;
  return name.slice(0, 8);
}

function disk(h: MachineHealth): string {
  const d = h.rootDisk;
  if (!d) return "?";
  const used = Math.round((100 * d.usedKiB) / (d.usedKiB + d.availKiB || 1));
  return `${used}% of ${gigabytes(d.sizeKiB)}`;
}

function gigabytes(kib: number): string {
  const gb = (kib * 1024) / 1e9;
  return gb >= 10 ? `${Math.round(gb)} GB` : `${gb.toFixed(1)} GB`;
}

function failed(units: readonly string[]): string {
  if (!units.length) return "none";
  const shown = units.slice(0, 3).join(", ");
  return `${units.length}: ${shown}${units.length > 3 ? ", …" : ""}`;
}

function drift(s: Extract<MachineStatus, { ok: true }>): Piece {
  switch (s.drift.kind) {
    case "in-sync":
      return `as deployed (#${s.drift.deployId})`;
    case "drifted":
      return concat("⚠️ not ", code(shortStorePath(s.drift.expected)), ` from #${s.drift.deployId}`);
    case "unknown":
      return "not deployed by me";
  }
}

/** `!status`: one table, then what went wrong where, and what to do about changed host keys. */
export function formatStatus(statuses: readonly MachineStatus[], prefix: string, stateVersions: Readonly<Record<string, string>> = {}): Message {
  const rows = statuses.map((s): Piece[] => {
    if (!s.ok) return [bold(s.machine), PROBLEM_STATE[s.problem], "", "", "", "", "", "", ""];
    const h = s.health;
    return [
      bold(s.machine),
      "🟢 up",
      h.uptimeSeconds !== undefined ? formatDuration(h.uptimeSeconds * 1000) : "?",
      stateVersions[s.machine] ? `${shortVersion(h.nixosVersion)}, state ${stateVersions[s.machine]}` : shortVersion(h.nixosVersion),
      concat(code(shortStorePath(h.currentSystem)), h.generation !== undefined ? ` gen ${h.generation}` : ""),
      h.rebootPending ? "⚠️ pending" : "no",
      h.failedUnits.length ? `⚠️ ${failed(h.failedUnits)}` : "none",
      disk(h),
      drift(s),
    ];
  });
  const up = statuses.filter((s) => s.ok).length;
  const parts: Piece[] = [
    concat(`${statuses.length} machine${statuses.length === 1 ? "" : "s"}: ${up} up${up < statuses.length ? `, ${statuses.length - up} not` : ""}.`),
    table(["Machine", "State", "Up", "NixOS", "System", "Reboot", "Failed units", "Disk /", "Drift"], rows),
  ];
  const problems = statuses.filter((s): s is Extract<MachineStatus, { ok: false }> => !s.ok && s.problem !== "cancelled");
  if (problems.length) parts.push(lines(...problems.map((p) => concat(bold(p.machine), `${p.target ? ` (${p.target})` : ""}: ${p.detail}`))));
  const changed = problems.filter((p) => p.problem === "host-key-changed").map((p) => p.machine);
  if (changed.length) {
    parts.push(
      concat(
        `🔑 A changed host key can mean the machine was reinstalled, or that someone is in the way. I did not log in. ` +
          `Once you know why, an admin accepts the new key with `,
        code(`${prefix}trust ${changed[0]}`),
        ".",
      ),
    );
  }
  if (problems.some((p) => p.problem === "auth")) parts.push(concat("🚫 My key is not authorized there: ", code(`${prefix}sshkey`), " shows it and how to add it."));
  const reboot = statuses.filter((s) => s.ok && s.health.rebootPending).map((s) => s.machine);
  if (reboot.length) {
    parts.push(
      concat(
        `🔁 ${reboot.join(", ")} ${reboot.length === 1 ? "has" : "have"} a new system waiting for the next boot. An admin can `,
        code(`${prefix}reboot ${reboot[0]}`),
        " to start it.",
      ),
    );
  }
  const pinned = statuses.filter((s) => s.ok && s.pinnedNow).map((s) => s.machine);
  if (pinned.length) parts.push(concat(`🔑 First contact with ${pinned.join(", ")}: I pinned ${pinned.length === 1 ? "its host key" : "their host keys"}.`));
  return paragraphs(...parts);
}

export function formatReboot(machine: string, r: RebootReport, prefix: string): Message {
  if (r.cameBack) {
    return concat(`✅ ${machine} rebooted: it was down for ${formatDuration(r.downtimeMs ?? 0)} and answers again. `, code(`${prefix}status ${machine}`), " shows how it is.");
  }
  return concat(
    `❌ ${machine} did not come back: no answer over SSH (${r.target}) within ${formatDuration(r.waitedMs)} of the reboot. ` +
      "It may need someone at the machine (a console, a power button).",
  );
}
