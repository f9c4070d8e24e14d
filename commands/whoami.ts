import { code, concat } from "./format.ts";
import type { CommandSpec } from "./types.ts";

export const whoamiCommand: CommandSpec = {
  name: "whoami",
  readOnly: true,
  summary: "Shows who you are to the bot: your power level and what it allows.",
  level: "viewer",
  args: [],
  flags: [],
  async run(ctx) {
    const { sender, thresholds } = ctx;
    const level = sender.level ? `${sender.level}` : "no level (below viewer)";
    return concat(
      code(sender.id),
      ` in clan '${ctx.clan.name}': power level ${sender.powerLevel}, ${level}. `,
      `Levels here: viewer ${thresholds.viewer}, operator ${thresholds.operator}, admin ${thresholds.admin}.`,
    );
  },
};
