import { FINAL_PHASES, type DeployState } from "./deploy-types.ts";
import { Refusal, UserError } from "./errors.ts";
import { concat, type Message } from "./format.ts";
import { allows } from "./levels.ts";
import type { CommandSpec } from "./types.ts";

/** The deploys `word` points at: `#42` or `42` by id, else every unfinished deploy of that machine. */
function targets(active: readonly DeployState[], word: string): { deploys: DeployState[]; machine?: string } {
  const id = /^#?(\d+)$/.exec(word);
  if (id) return { deploys: active.filter((d) => d.id === Number(id[1])) };
  return {
    deploys: active.filter((d) => d.machines.some((m) => m.machine === word && !FINAL_PHASES.has(m.phase))),
    machine: word,
  };
}

export const cancelCommand: CommandSpec = {
  name: "cancel",
  summary: "Stops a running or queued deploy: yours, or anyone's for admins.",
  level: "operator",
  args: [{ name: "deploy", summary: "a deploy id (#42) or a machine", required: true }],
  flags: [],
  details: "A running clan process gets SIGTERM, then SIGKILL after 10 s. With a machine, only that machine's part of its deploys stops.",
  async run(ctx, input): Promise<Message> {
    const word = input.args[0] as string;
    const { deploys, machine } = targets(ctx.deploys.active(), word);
    if (!deploys.length) {
      throw new UserError(
        machine !== undefined
          ? `No deploy of '${machine.slice(0, 60)}' is running or queued. ${ctx.prefix}deploys shows recent ones.`
          : `Deploy ${word} is not running or queued. ${ctx.prefix}deploys shows recent ones.`,
      );
    }
    const others = deploys.filter((d) => d.sender !== ctx.sender.id);
    if (others.length && !allows(ctx.sender.level, "admin")) {
      const who = [...new Set(others.map((d) => d.sender))].join(", ");
      throw new Refusal(
        `#${others.map((d) => d.id).join(", #")} was started by ${who}; only they or an admin (power level ${ctx.thresholds.admin}) can cancel it.`,
      );
    }
    const stopped = await Promise.all(deploys.map((d) => ctx.deploys.cancel(d.id, ctx.sender.id, machine)));
    const ids = deploys.filter((_, i) => stopped[i]).map((d) => `#${d.id}`);
    if (!ids.length) throw new UserError(`${word} had already ended.`);
    return concat(`🚫 Cancelled ${ids.join(", ")}${machine !== undefined ? ` for ${machine}` : ""}.`);
  },
};
