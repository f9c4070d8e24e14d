import { formatDeployHistory } from "./deploy-format.ts";
import { resolveMachine } from "./deploy-targets.ts";
import type { Message } from "./format.ts";
import type { CommandSpec } from "./types.ts";

export const deploysCommand: CommandSpec = {
  name: "deploys",
  readOnly: true,
  summary: "Lists recent deploys: id, machines, who, when, revision, result, duration.",
  level: "viewer",
  args: [{ name: "machine", summary: "only deploys of this machine" }],
  flags: [{ name: "limit", type: "integer", placeholder: "n", summary: "how many to show (default 10, at most 50)" }],
  async run(ctx, input): Promise<Message> {
    const machine = input.args[0] !== undefined ? await resolveMachine(ctx, input.args[0]) : undefined;
    const limit = Math.min(Math.max((input.flags["limit"] as number | undefined) ?? 10, 1), 50);
    return formatDeployHistory(await ctx.deploys.history(limit, machine), ctx.clock.now(), machine);
  },
};
