import { confirmFirst } from "./confirm-first.ts";
import { resolveMachine } from "./deploy-targets.ts";
import { checkLocks, runDeploy } from "./deploy.ts";
import { ReportedFailure } from "./errors.ts";
import { bold } from "./format.ts";
import type { CommandSpec } from "./types.ts";

export const rollbackCommand: CommandSpec = {
  name: "rollback",
  summary: "Switches a machine back to its previous system generation (asks you to confirm first).",
  level: "admin",
  args: [{ name: "machine", summary: "the machine to roll back", required: true }],
  flags: [],
  details:
    "Over SSH: the system profile goes back one generation and is activated, as nixos-rebuild switch --rollback does. " +
    "It waits for the machine like a deploy, shows in !deploys, and can be cancelled with !cancel.",
  async run(ctx, input): Promise<void> {
    const machine = await resolveMachine(ctx, input.args[0] as string);
    await checkLocks(ctx, [machine], new Set([machine]), "Nothing was rolled back.");
    await confirmFirst(ctx, { ask: bold(`Roll ${machine} back to its previous system generation?`), subject: `Rollback of ${machine}` });
    const final = await runDeploy(ctx, "rollback", [machine]);
    if (final.result !== "ok") throw new ReportedFailure(`rollback ${final.result}`);
  },
};
