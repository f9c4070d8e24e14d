import { createTask, validateDetailed, type ScheduledTask } from "node-cron";

/** A cron expression in a time zone: when it runs next. */
export interface CronTimes {
  readonly cron: string;
  readonly timeZone: string;
  /** The next `count` runs after now (after the current second), as epoch ms. */
  next(count?: number): number[];
  /** Lets go of what it holds. */
  dispose(): void;
}

/**
 * CronTimes computed by node-cron. Its tasks are made but never started: the bot's scheduler keeps
 * one timer for all schedules (bot/schedule-timer.ts). node-cron counts from the wall clock.
 */
class NodeCronTimes implements CronTimes {
  readonly cron: string;
  readonly timeZone: string;
  private readonly task: ScheduledTask;

  constructor(cron: string, timeZone: string, task: ScheduledTask) {
    this.cron = cron;
    this.timeZone = timeZone;
    this.task = task;
  }

  next(count = 1): number[] {
    return this.task.getNextRuns(count).map((d) => d.getTime());
  }

  /** Takes the task out of node-cron's registry. */
  dispose(): void {
    void this.task.destroy();
  }
}

export type CronParse = { readonly ok: true; readonly times: CronTimes } | { readonly ok: false; readonly reason: string };

const FIELD_NAMES: Record<string, string> = {
  second: "second",
  minute: "minute",
  hour: "hour",
  dayOfMonth: "day of the month",
  month: "month",
  dayOfWeek: "day of the week",
};

/** The time zone of the bot's host (TZ, /etc/localtime), as Intl sees it. */
export function hostTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone;
}

/** An IANA time zone as written (letter case corrected), or undefined when there is no such zone. */
export function knownTimeZone(zone: string): string | undefined {
  let resolved: string;
  try {
    resolved = new Intl.DateTimeFormat("en-US", { timeZone: zone }).resolvedOptions().timeZone;
  } catch (err) {
    if (err instanceof RangeError) return undefined;
    throw err;
  }
  // ICU names some zones by their old names (Asia/Kolkata is Asia/Calcutta): keep the one people wrote.
  return resolved.toLowerCase() === zone.toLowerCase() ? resolved : zone;
}

/**
 * Parses `cron` (5 fields, or 6 with seconds first; @daily and the like) in `timeZone`, or says in
 * words why it cannot be used.
 */
export function parseCron(cron: string, timeZone: string): CronParse {
  const expression = cron.trim().replace(/\s+/g, " ");
  const zone = knownTimeZone(timeZone);
  if (zone === undefined) return { ok: false, reason: `'${clip(timeZone)}' is not a time zone I know; use a name such as Europe/Berlin or UTC` };
  const check = validateDetailed(expression);
  if (!check.valid) return { ok: false, reason: describeErrors(expression, check.errors) };
  const task = createTask(expression, () => undefined, { timezone: zone });
  const times = new NodeCronTimes(expression, zone, task);
  try {
    times.next();
  } catch (err) {
    times.dispose();
    return { ok: false, reason: `'${clip(expression)}' never comes: ${err instanceof Error ? err.message : String(err)}` };
  }
  return { ok: true, times };
}

function describeErrors(expression: string, errors: readonly { field: string; value?: string; message: string }[]): string {
  const fields = expression.startsWith("@") ? 0 : expression.split(" ").length;
  return errors
    .map((e) => {
      if (e.field === "expression") {
        if (/fields/.test(e.message)) {
          return `a cron expression has 5 fields (minute hour day-of-month month day-of-week), or 6 with seconds first; '${clip(expression)}' has ${fields}`;
        }
        if (/illegal characters/.test(e.message)) return `'${clip(expression)}' has characters cron does not use (digits, letters, * , - / # ? only)`;
        return `'${clip(expression)}': ${e.message}`;
      }
      if (/impossible day/.test(e.message)) return `'${clip(expression)}' names a day that its months do not have`;
      return `'${clip(e.value ?? "")}' is not a valid ${FIELD_NAMES[e.field] ?? e.field}`;
    })
    .join("; ");
}

function clip(s: string): string {
  return s.length > 60 ? `${s.slice(0, 60)}…` : s;
}
