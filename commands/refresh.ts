import { concat } from "./format.ts";
import type { CommandSpec } from "./types.ts";

export const refreshCommand: CommandSpec = {
  name: "refresh",
  readOnly: true,
  summary: "Reads the clan's inventory from the flake again, after the flake changed.",
  details:
    "The bot keeps what it read from the flake for a few minutes, because evaluating it takes time. " +
    "Use this after pushing a change to the clan's configuration.",
  level: "operator",
  args: [],
  flags: [],
  async run(ctx) {
    const started = ctx.clock.now();
    const machines = await ctx.clan.machines(ctx.signal, true);
    const took = ((ctx.clock.now() - started) / 1000).toFixed(1);
    return concat(`Read the flake of clan '${ctx.clan.name}' again: ${machines.length} machines (${took} s).`);
  },
};
