import { confirmFirst } from "./confirm-first.ts";
import { resolveMachine } from "./deploy-targets.ts";
import { checkLocks, runDeploy } from "./deploy.ts";
import { ReportedFailure, UserError } from "./errors.ts";
import { bold } from "./format.ts";
import type { CommandSpec } from "./types.ts";

export const rollbackCommand: CommandSpec = {
  name: "rollback",
  summary: "Switches a machine back to its previous system generation, or to the one you name (asks you to confirm first).",
  level: "admin",
  args: [
    { name: "machine", summary: "the machine to roll back", required: true },
    { name: "generation", summary: "the generation to switch to (see !generations); default: the previous one" },
  ],
  flags: [],
  details:
    "Over SSH: the system profile goes back one generation (or to the one named) and is activated, as nixos-rebuild switch " +
    "--rollback does. It waits for the machine like a deploy, shows in !deploys, and can be cancelled with !cancel.",
  async run(ctx, input): Promise<void> {
    const machine = await resolveMachine(ctx, input.args[0] as string);
    const text = input.args[1];
    let generation: number | undefined;
    if (text !== undefined) {
      if (!/^\d{1,9}$/.test(text) || Number(text) < 1) throw new UserError(`'${text.slice(0, 20)}' is not a generation number: ${ctx.prefix}generations ${machine} lists them.`);
      generation = Number(text);
    }
    await checkLocks(ctx, [machine], new Set([machine]), "Nothing was rolled back.");
    const to = generation !== undefined ? `generation ${generation}` : "its previous system generation";
    await confirmFirst(ctx, { ask: bold(`Roll ${machine} back to ${to}?`), subject: `Rollback of ${machine}` });
    const final = await runDeploy(ctx, "rollback", [machine], generation !== undefined ? { generation } : {});
    if (final.result !== "ok") throw new ReportedFailure(`rollback ${final.result}`);
  },
};
