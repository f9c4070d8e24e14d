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

/** A node-cron task, made once per expression and zone, and how many schedules use it. */
interface Shared {
  readonly task: ScheduledTask;
  users: number;
  /** The next run as last asked for, and in which second: schedules due together ask together. */
  last?: { second: number; next: number };
}

/**
 * node-cron's tasks, one per expression and time zone, shared by the schedules that use them: a
 * task costs a few kilobytes to keep and more to make (most clans back up at the same few times).
 * They are made but never started: the bot's scheduler keeps one timer for all schedules
 * (bot/schedule-timer.ts), and asks the task only for next runs, which node-cron counts from the
 * wall clock.
 */
const tasks = new Map<string, Shared>();

class NodeCronTimes implements CronTimes {
  readonly cron: string;
  readonly timeZone: string;
  private shared: Shared | undefined;
  private readonly key: string;

  constructor(cron: string, timeZone: string) {
    this.cron = cron;
    this.timeZone = timeZone;
    this.key = `${timeZone}\n${cron}`;
    let shared = tasks.get(this.key);
    if (!shared) {
      shared = { task: createTask(cron, () => undefined, { timezone: timeZone }), users: 0 };
      tasks.set(this.key, shared);
    }
    shared.users++;
    this.shared = shared;
  }

  next(count = 1): number[] {
    const shared = this.shared;
    if (!shared) throw new Error(`next runs of a disposed schedule (${this.cron})`);
    // node-cron counts from the start of the current second: within it, the answer is the same.
    const second = Math.floor(Date.now() / 1000);
    if (count === 1 && shared.last?.second === second) return [shared.last.next];
    const next = shared.task.getNextRuns(count).map((d) => d.getTime());
    if (count === 1) shared.last = { second, next: next[0] as number };
    return next;
  }

  /** The last user of a task takes it out of node-cron's registry. */
  dispose(): void {
    const shared = this.shared;
    if (!shared) return;
    this.shared = undefined;
    if (--shared.users > 0) return;
    tasks.delete(this.key);
    void shared.task.destroy();
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

const zones = new Map<string, string | undefined>();

/** An IANA time zone as written (letter case corrected), or undefined when there is no such zone. */
export function knownTimeZone(zone: string): string | undefined {
  // Asked once per schedule at every start: an Intl.DateTimeFormat is costly to make.
  if (zones.has(zone)) return zones.get(zone);
  let known: string | undefined;
  try {
    const resolved = new Intl.DateTimeFormat("en-US", { timeZone: zone }).resolvedOptions().timeZone;
    // ICU names some zones by their old names (Asia/Kolkata is Asia/Calcutta): keep the one people wrote.
    known = resolved.toLowerCase() === zone.toLowerCase() ? resolved : zone;
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
  }
  if (zones.size < 1000) zones.set(zone, known);
  return known;
}

/**
 * Parses `cron` (5 fields, or 6 with seconds first; @daily and the like) in `timeZone`, or says in
 * words why it cannot be used.
 */
export function parseCron(cron: string, timeZone: string): CronParse {
  const expression = cron.trim().replace(/\s+/g, " ");
  const zone = knownTimeZone(timeZone);
  if (zone === undefined) return { ok: false, reason: `'${clip(timeZone)}' is not a time zone I know; use a name such as Europe/Berlin or UTC` };
  try {
    return { ok: true, times: new NodeCronTimes(expression, zone) };
  } catch (err) {
    // createTask only tells the first problem, in node-cron's words: ask again for all of them.
    const check = validateDetailed(expression);
    if (check.valid) throw err;
    return { ok: false, reason: describeErrors(expression, check.errors) };
  }
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
