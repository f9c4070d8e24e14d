import { confirmFirst } from "./confirm-first.ts";
import { resolveMachine } from "./deploy-targets.ts";
import { ReportedFailure } from "./errors.ts";
import { bold, concat } from "./format.ts";
import { refuseIfBusy } from "./machine-busy.ts";
import { explainSshFailure } from "./ssh-errors.ts";
import { formatReboot } from "./ssh-format.ts";
import type { CommandSpec } from "./types.ts";

export const rebootCommand: CommandSpec = {
  name: "reboot",
  summary: "Reboots a machine and tells how long it was down (asks you to confirm first).",
  level: "admin",
  args: [{ name: "machine", summary: "the machine to reboot", required: true }],
  flags: [],
  details: "Waits until the machine answers over SSH again, with a new boot; the room is told if it does not come back.",
  async run(ctx, input): Promise<void> {
    const machine = await resolveMachine(ctx, input.args[0] as string);
    await refuseIfBusy(ctx, machine, "rebooted");
    await confirmFirst(ctx, {
      ask: concat(bold(`Reboot ${machine}?`), " Everyone using it will be cut off until it is back."),
      subject: `Reboot of ${machine}`,
      // Someone may have started a deploy while the question was open.
      recheck: () => refuseIfBusy(ctx, machine, "rebooted"),
    });
    const status = await ctx.reply(concat(`🔄 Rebooting ${machine}…`));
    const since = ctx.clock.now();
    let report;
    try {
      report = await ctx.ssh.reboot(machine, ctx.signal, (stage) => {
        if (stage === "waiting") void status.edit(concat(`🔄 ${machine} is rebooting; waiting for it to answer again (since ${new Date(since).toISOString().slice(11, 19)} UTC)…`));
      });
    } catch (err) {
      await status.edit(concat(`❌ Reboot of ${machine} failed.`));
      explainSshFailure(err, ctx, machine);
    }
    await status.edit(formatReboot(machine, report, ctx.prefix));
    if (!report.cameBack) throw new ReportedFailure("did not come back");
  },
};
