import { BACKUP_ENDS } from "./backup-types.ts";
import { FINAL_PHASES } from "./deploy-types.ts";
import { BadInput, Refusal, UserError } from "./errors.ts";
import { concat, type Message } from "./format.ts";
import { allows } from "./levels.ts";
import type { CommandContext, CommandSpec } from "./types.ts";

/** A deploy (rollback, install, restore) or a backup that has not ended: the ids share one space (audit ids). */
interface Stoppable {
  readonly id: number;
  readonly sender: string;
  /** Started by a schedule, not a person. */
  readonly scheduled: boolean;
  /** Its machines not yet done. */
  readonly machines: readonly string[];
  stop(by: string, machine: string | undefined): Promise<boolean>;
}

function stoppables(ctx: CommandContext): Stoppable[] {
  return [
    ...ctx.deploys.active().map((d) => ({
      id: d.id,
      sender: d.sender,
      scheduled: false,
      machines: d.machines.filter((m) => !FINAL_PHASES.has(m.phase)).map((m) => m.machine),
      stop: (by: string, machine: string | undefined) => ctx.deploys.cancel(d.id, by, machine),
    })),
    ...ctx.backups.active().map((b) => ({
      id: b.id,
      sender: b.sender,
      scheduled: b.trigger === "schedule",
      machines: BACKUP_ENDS.has(b.phase) ? [] : [b.machine],
      stop: (by: string) => ctx.backups.cancel(b.id, by),
    })),
  ];
}

/** What `word` points at: `#42` or `42` by id, else everything unfinished on that machine. */
function targets(active: readonly Stoppable[], word: string): { runs: Stoppable[]; machine?: string } {
  const id = /^#?(\d+)$/.exec(word);
  if (id) return { runs: active.filter((r) => r.id === Number(id[1])) };
  return { runs: active.filter((r) => r.machines.includes(word)), machine: word };
}

export const cancelCommand: CommandSpec = {
  name: "cancel",
  summary: "Stops a running or queued deploy or backup: yours, or anyone's (and scheduled ones) for admins.",
  level: "operator",
  args: [{ name: "run", summary: "an id (#42), or a machine", required: true }],
  flags: [],
  details:
    "A running clan process gets SIGTERM, then SIGKILL after 10 s. With a machine, only that machine's part of its deploys stops, " +
    "and its backup.",
  async run(ctx, input): Promise<Message> {
    const word = input.args[0] as string;
    const { runs, machine } = targets(stoppables(ctx), word);
    if (!runs.length) {
      const recent = `${ctx.prefix}deploys and ${ctx.prefix}backups show recent ones.`;
      throw new BadInput(
        machine !== undefined
          ? `No deploy or backup of '${machine.slice(0, 60)}' is running or queued. ${recent}`
          : `Nothing with id ${word} is running or queued. ${recent}`,
      );
    }
    const others = runs.filter((r) => r.sender !== ctx.sender.id);
    if (others.length && !allows(ctx.sender.level, "admin")) {
      const who = [...new Set(others.map((r) => r.sender))].join(", ");
      const they = others.every((r) => r.scheduled) ? "" : "they or ";
      throw new Refusal(
        `#${others.map((r) => r.id).join(", #")} was started by ${who}; only ${they}an admin (power level ${ctx.thresholds.admin}) can cancel it.`,
      );
    }
    const stopped = await Promise.all(runs.map((r) => r.stop(ctx.sender.id, machine)));
    const ids = runs.filter((_, i) => stopped[i]).map((r) => `#${r.id}`);
    if (!ids.length) throw new UserError(`${word} had already ended.`);
    return concat(`🚫 Cancelled ${ids.join(", ")}${machine !== undefined ? ` for ${machine}` : ""}.`);
  },
};
