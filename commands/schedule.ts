import { PROVIDER_FLAG, providerOf } from "./backup.ts";
import { formatScheduleAdded, formatSchedules, targetText } from "./backup-format.ts";
import { NOTIFY, type Notify } from "./backup-types.ts";
import { resolveTargets } from "./deploy-targets.ts";
import { BadInput, Refusal } from "./errors.ts";
import { code, concat, type Message } from "./format.ts";
import type { CommandSpec } from "./types.ts";

const EXAMPLE = `schedule backup nas "0 1 * * *" --tz Europe/Berlin`;

export const scheduleCommand: CommandSpec = {
  name: "schedule",
  summary: "Backs up machines on a schedule (cron), and tells the room how each run went.",
  level: "admin",
  args: [
    { name: "what", summary: "backup (the one thing that can be scheduled now)", required: true },
    { name: "machines", summary: "a machine, tag:<tag> or all (as the inventory has them when each run starts)", required: true },
    { name: "cron", summary: 'when: "minute hour day-of-month month day-of-week", such as "0 1 * * *" (quotes optional), or @daily', required: true, variadic: true },
  ],
  flags: [
    { name: "tz", type: "string", placeholder: "zone", summary: "the time zone the cron expression is read in, such as Europe/Berlin (default: the bot host's)" },
    { name: "notify", type: "string", placeholder: "always|failures", summary: "tell the room of every run (always, the default), or only of failures and the recovery after one" },
    PROVIDER_FLAG,
  ],
  details:
    "Runs of one machine never overlap: a run still going when the next is due makes the next one skip, and the room is told. " +
    "Runs that fell due while the bot was down are run once when it starts, marked late. A machine a schedule backs up that has " +
    "had no successful backup for backup.maxAge gets one alert. !schedules lists schedules; !unschedule <id> removes one.",
  async run(ctx, input): Promise<Message> {
    const [what, target] = input.args as [string, string];
    if (what !== "backup") throw new BadInput(`Only backups can be scheduled, not '${what.slice(0, 40)}'. For example: ${ctx.prefix}${EXAMPLE}`);
    const { machines } = await resolveTargets(ctx, [target]);
    if (!machines.length) throw new BadInput(`'${target}' picks no machine now.`);
    const notify = (input.flags["notify"] as string | undefined) ?? "always";
    if (!NOTIFY.includes(notify as Notify)) throw new BadInput(`--notify takes always or failures, not '${notify.slice(0, 40)}'.`);
    const provider = providerOf(input);
    const check = ctx.schedules.check(input.args.slice(2).join(" "), input.flags["tz"] as string | undefined);
    if (!check.ok) {
      const text = `I cannot use that schedule: ${check.reason}. For example: ${ctx.prefix}${EXAMPLE}`;
      throw check.tooOften ? new Refusal(text) : new BadInput(text);
    }
    const schedule = await ctx.schedules.add({
      target,
      cron: check.cron,
      timeZone: check.timeZone,
      notify: notify as Notify,
      createdBy: ctx.sender.id,
      ...(provider !== undefined ? { provider } : {}),
    });
    return formatScheduleAdded(schedule, machines, check.next, ctx.clock.now(), ctx.prefix);
  },
};

export const schedulesCommand: CommandSpec = {
  name: "schedules",
  readOnly: true,
  summary: "Lists the clan's backup schedules and when each runs next.",
  level: "viewer",
  args: [],
  flags: [],
  async run(ctx): Promise<Message> {
    return formatSchedules(await ctx.schedules.list(), ctx.clock.now(), ctx.prefix);
  },
};

export const unscheduleCommand: CommandSpec = {
  name: "unschedule",
  summary: "Removes a backup schedule (a run already going goes on).",
  level: "admin",
  args: [{ name: "id", summary: "the schedule's id, as !schedules shows it (#3 or 3)", required: true }],
  flags: [],
  async run(ctx, input): Promise<Message> {
    const word = input.args[0] as string;
    const id = /^#?(\d{1,15})$/.exec(word)?.[1];
    if (id === undefined) throw new BadInput(`'${word.slice(0, 40)}' is not a schedule id; ${ctx.prefix}schedules lists them.`);
    const removed = await ctx.schedules.remove(Number(id));
    if (!removed) throw new BadInput(`This clan has no schedule #${id}; ${ctx.prefix}schedules lists them.`);
    return concat(`🗑️ Schedule #${removed.id} is removed: backups of ${targetText(removed.target)} at `, code(removed.cron), ` (${removed.timeZone}).`);
  },
};
