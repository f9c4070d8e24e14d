import { archiveTime } from "./archives.ts";
import type { BackupState, MachineBackups, Schedule } from "./backup-types.ts";
import { waitingText } from "./deploy-format.ts";
import { ago, bold, bulletList, code, codeBlock, concat, formatDuration, italic, paragraphs, table, type Message, type Piece } from "./format.ts";

function providerText(provider: string | undefined): string {
  return provider ?? "every provider";
}

/** How long the backup itself took (from when clan started), or since it was asked for when it never started. */
function took(s: BackupState, now: number): string {
  return formatDuration((s.finishedAt ?? now) - (s.runStartedAt ?? s.startedAt));
}

function exitText(s: BackupState): string {
  return s.exitCode !== undefined ? ` (exit status ${s.exitCode})` : "";
}

function tailBlock(s: BackupState): Piece[] {
  return s.tail.length ? [concat(`Last lines from ${s.machine}:`), codeBlock(s.tail.join("\n"))] : [];
}

/** The one status message of `!backup`, as it stands. */
export function formatBackupStatus(s: BackupState, now: number): Message {
  const head = concat(bold(`Backup #${s.id}`), ` of ${s.machine} (${providerText(s.provider)}) by ${s.sender}`);
  switch (s.phase) {
    case "queued":
      return paragraphs(head, concat(`⏳ ${waitingText(s.waiting, now)}`));
    case "running":
      return paragraphs(head, concat(`💾 backing up (${took(s, now)} so far)`));
    case "listing":
      return paragraphs(head, concat(`📋 backed up in ${took(s, now)}; asking for the newest archive's name`));
    case "ok":
      return paragraphs(
        head,
        concat(`✅ Done in ${took(s, now)}.`, s.archive ? concat(" Newest archive: ", code(s.archive), ".") : ""),
        ...(s.note ? [concat(`Note: ${s.note}.`)] : []),
      );
    case "failed":
      return paragraphs(head, concat(`❌ Failed after ${took(s, now)}${exitText(s)}.`), ...tailBlock(s));
    case "timed-out":
      return paragraphs(head, concat(`⏱️ Timed out: ${s.note ?? "stopped"}.`), ...tailBlock(s));
    case "cancelled":
      return paragraphs(head, concat(`🚫 ${capitalize(s.note ?? "cancelled")}${s.runStartedAt !== undefined ? ` after ${took(s, now)}` : ""}.`));
    case "skipped":
      return paragraphs(head, concat(`⏭️ Skipped: ${s.note ?? "another backup of the machine was running"}.`));
    case "interrupted":
      return paragraphs(head, concat("⚠️ Interrupted: the bot stopped while it ran."));
  }
}

export interface NoticeContext {
  readonly now: number;
  readonly prefix: string;
  /** The run before, when this one ended well after it had not. */
  readonly recoveredFrom?: BackupState;
  /** The run still going, for a skipped one. */
  readonly busy?: BackupState;
}

/** What the room is told of a run the bot made on its own (a schedule), or did not see to its end. */
export function formatBackupNotice(s: BackupState, c: NoticeContext): Message {
  const name = bold(s.machine);
  const provider = `(${providerText(s.provider)})`;
  const parts: Piece[] = [];
  switch (s.phase) {
    case "ok": {
      const archive = s.archive ? concat(": newest archive ", code(s.archive)) : "";
      const r = c.recoveredFrom;
      if (r) {
        const when = r.finishedAt !== undefined ? ` ${ago(r.finishedAt, c.now)}` : "";
        parts.push(concat("🟢 Backups of ", name, ` work again ${provider}: done in ${took(s, c.now)}`, archive, `. The run before (#${r.id}${when}) had ${r.phase === "timed-out" ? "timed out" : r.phase}.`));
      } else parts.push(concat("🟢 Backup of ", name, ` ${provider} done in ${took(s, c.now)}`, archive, "."));
      if (s.note) parts.push(concat(`Note: ${s.note}.`));
      break;
    }
    case "failed":
      parts.push(concat("🔴 Backup of ", name, ` ${provider} failed after ${took(s, c.now)}${exitText(s)}.`), ...tailBlock(s));
      break;
    case "timed-out":
      parts.push(concat("🔴 Backup of ", name, ` ${provider} timed out: ${s.note ?? "stopped"}.`), ...tailBlock(s));
      break;
    case "cancelled":
      parts.push(concat("🚫 Backup of ", name, ` ${provider} was ${s.note ?? "cancelled"}${s.runStartedAt !== undefined ? ` after ${took(s, c.now)}` : ""}.`));
      break;
    case "skipped": {
      const since = c.busy ? ` (since ${ago(c.busy.runStartedAt ?? c.busy.startedAt, c.now)})` : "";
      parts.push(concat("⏭️ Backup of ", name, ` skipped: ${s.note ?? "the last one was still running"}${since}. Backups of one machine never overlap.`));
      break;
    }
    case "interrupted":
    case "queued":
    case "running":
    case "listing":
      parts.push(
        concat(`⚠️ Backup #${s.id} of `, name, ` ${provider} by ${s.sender} was interrupted: the bot stopped while it ran. Nothing was run again; `, code(`${c.prefix}backup ${s.machine}`), " starts a new one."),
      );
      break;
  }
  const late = s.late && s.dueAt !== undefined ? `; late: it was due ${ago(s.dueAt, c.now)}, while the bot was down` : "";
  const by = s.scheduleId !== undefined ? `schedule #${s.scheduleId}` : `by ${s.sender}`;
  if (s.phase !== "interrupted") parts.push(italic(`#${s.id}, ${by}${late}.`));
  else if (late) parts.push(italic(`#${s.id}, ${by}${late}.`));
  return paragraphs(...parts);
}

/** The one alert for a machine without a successful backup for too long. */
export function formatOverdue(m: MachineBackups, watchedSince: number, maxAgeMs: number, now: number, prefix: string): Message {
  const since = m.lastOk?.finishedAt ?? watchedSince;
  const last = m.lastOk
    ? concat(`The last one was #${m.lastOk.id}`, m.lastOk.archive ? concat(", archive ", code(m.lastOk.archive)) : "", ".")
    : concat("It has not been backed up successfully since it was scheduled.");
  const failing = m.last && m.last.result !== "ok" ? ` The last run, #${m.last.id} ${ago(m.last.finishedAt, now)}, ${m.last.result === "timed-out" ? "timed out" : m.last.result}.` : "";
  return paragraphs(
    concat("🔴 No successful backup of ", bold(m.machine), ` for ${formatDuration(now - since)}: more than backup.maxAge (${formatDuration(maxAgeMs)}).`),
    concat(last, failing, " ", code(`${prefix}backup ${m.machine}`), " tries now; ", code(`${prefix}backups ${m.machine}`), " shows what there is."),
  );
}

/** The all-clear after an overdue alert. */
export function formatBackedUpAgain(m: MachineBackups, now: number): Message {
  const archive = m.lastOk?.archive ? concat(": archive ", code(m.lastOk.archive)) : "";
  const overdue = m.overdueSince !== undefined ? `, after the alert ${ago(m.overdueSince, now)}` : "";
  return concat("🟢 ", bold(m.machine), ` is backed up again${m.lastOk ? ` (#${m.lastOk.id})` : ""}`, archive, `${overdue}.`);
}

function lastSuccess(m: MachineBackups | undefined, now: number): Message {
  if (!m?.lastOk) return concat("The bot has not backed it up successfully yet.");
  return concat(`Last successful backup by the bot: ${ago(m.lastOk.finishedAt, now)} (#${m.lastOk.id}).`);
}

/** `!backups <machine>`: the archives, newest first, cut at `limit`. */
export function formatArchives(
  o: { machine: string; provider: string | undefined; archives: readonly string[]; limit: number; summary: MachineBackups | undefined; prefix: string },
  now: number,
): Message {
  const from = o.provider ? ` from ${o.provider}` : "";
  const overdue = o.summary?.overdueSince !== undefined ? [concat(`⚠️ Overdue: the room was told ${ago(o.summary.overdueSince, now)}.`)] : [];
  if (!o.archives.length) {
    return paragraphs(concat(bold(o.machine), `: no archives${from} yet. `, code(`${o.prefix}backup ${o.machine}`), " makes one."), lastSuccess(o.summary, now), ...overdue);
  }
  const newest = archiveTime(o.archives[0] as string);
  const count = `${o.archives.length} archive${o.archives.length === 1 ? "" : "s"}${from}`;
  const age = newest !== undefined ? `the newest made ${ago(newest, now)}` : "the newest first (their names tell no time)";
  const shown = o.archives.slice(0, o.limit);
  const rest = o.archives.length - shown.length;
  return paragraphs(
    concat(bold(o.machine), `: ${count}, ${age}.`),
    bulletList(
      shown.map((a) => {
        const t = archiveTime(a);
        return concat(code(a), t !== undefined ? ` (${ago(t, now)})` : "");
      }),
    ),
    ...(rest > 0 ? [concat(`… and ${rest} older one${rest === 1 ? "" : "s"} not shown (`, code(`--limit ${Math.min(o.archives.length, MAX_LIST)}`), " shows more).")] : []),
    lastSuccess(o.summary, now),
    ...overdue,
  );
}

/** The most archives `!backups` lists. */
export const MAX_LIST = 200;

const RESULT_MARK: Record<string, string> = {
  ok: "✅ ok",
  failed: "❌ failed",
  cancelled: "🚫 cancelled",
  "timed-out": "⏱️ timed out",
  interrupted: "⚠️ interrupted",
};

/** `!backups`: each machine's last success and last run. */
export function formatBackupSummaries(rows: readonly MachineBackups[], now: number, prefix: string): Message {
  if (!rows.length) return concat("This clan has no machines yet.");
  return paragraphs(
    concat("Backups by the bot, per machine:"),
    table(
      ["Machine", "Last success", "Archive", "Last run", "Overdue"],
      rows.map((m) => [
        m.machine,
        m.lastOk ? `${ago(m.lastOk.finishedAt, now)} (#${m.lastOk.id})` : "never",
        m.lastOk?.archive ? code(m.lastOk.archive) : "",
        m.last ? `${RESULT_MARK[m.last.result] ?? m.last.result} ${ago(m.last.finishedAt, now)}` : "",
        m.overdueSince !== undefined ? `⚠️ since ${ago(m.overdueSince, now)}` : "",
      ]),
    ),
    concat(code(`${prefix}backups <machine>`), " lists a machine's archives."),
  );
}

/** A time as people in `timeZone` read it: "Sun 22 Nov 01:00" (with seconds when it has some). */
export function localTime(at: number, timeZone: string): string {
  const seconds = new Date(at).getUTCSeconds() !== 0;
  return new Intl.DateTimeFormat("en-GB", {
    timeZone,
    weekday: "short",
    day: "numeric",
    month: "short",
    hour: "2-digit",
    minute: "2-digit",
    ...(seconds ? { second: "2-digit" } : {}),
    hourCycle: "h23",
  })
    .format(at)
    .replace(",", "");
}

/** "in 9 h (Sun 22 Nov 01:00)". */
export function whenText(at: number, timeZone: string, now: number): string {
  return `in ${formatDuration(Math.max(0, at - now))} (${localTime(at, timeZone)})`;
}

/** "nas", "the machines tagged servers", "every machine". */
export function targetText(target: string): string {
  if (target === "all") return "every machine";
  if (target.startsWith("tag:")) return `the machines tagged ${target.slice(4)}`;
  return target;
}

export function formatSchedules(list: readonly Schedule[], now: number, prefix: string): Message {
  if (!list.length) {
    return concat("No backups are scheduled in this clan. ", code(`${prefix}schedule backup <machine|tag:T|all> "0 1 * * *"`), " adds a schedule.");
  }
  return table(
    ["Id", "Backs up", "When", "Next run", "Notify", "Provider", "By"],
    list.map((s) => [
      `#${s.id}`,
      targetText(s.target),
      concat(code(s.cron), ` ${s.timeZone}`),
      whenText(s.nextRun, s.timeZone, now),
      s.notify === "always" ? "always" : "failures",
      providerText(s.provider),
      s.createdBy,
    ]),
  );
}

export function formatScheduleAdded(s: Schedule, machines: readonly string[], next: readonly number[], now: number, prefix: string): Message {
  const which = s.target === "all" || s.target.startsWith("tag:") ? ` (now ${machines.join(", ")})` : "";
  const then = next[1] !== undefined ? `, then ${localTime(next[1], s.timeZone)}` : "";
  const notify =
    s.notify === "always"
      ? "I tell the room how each run went."
      : "I tell the room when a run fails, and when backups work again after a failure; successes stay quiet.";
  return paragraphs(
    concat(`🗓️ Schedule #${s.id}: backups of ${targetText(s.target)}${which} at `, code(s.cron), ` (${s.timeZone}), ${providerText(s.provider)}.`),
    concat(`Next run ${whenText(s.nextRun, s.timeZone, now)}${then}. ${notify} `, code(`${prefix}unschedule ${s.id}`), " removes it."),
  );
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
