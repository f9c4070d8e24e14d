import { resolveMachine } from "./deploy-targets.ts";
import { UserError } from "./errors.ts";
import { bold, code, concat, paragraphs, table, type Message } from "./format.ts";
import type { CommandSpec, Generation } from "./types.ts";

export const generationsCommand: CommandSpec = {
  name: "generations",
  summary: "A machine's NixOS system generations (clan machines generations), to pick one for !rollback.",
  level: "viewer",
  args: [{ name: "machine", summary: "the machine", required: true }],
  flags: [],
  details: "Asks the machine over SSH (clan machines generations, with my key and the host key I pinned): number, date, NixOS and kernel version, and which one runs.",
  async run(ctx, input): Promise<Message> {
    const machine = await resolveMachine(ctx, input.args[0] as string);
    if (!ctx.clan.generations) throw new UserError("Listing generations needs the clan CLI, which this bot is not set up with.");
    return formatGenerations(machine, await ctx.clan.generations(machine, ctx.signal), ctx.prefix);
  },
};

/** The table, newest first, and how to go back to one of them. */
export function formatGenerations(machine: string, generations: readonly Generation[], prefix: string): Message {
  if (!generations.length) return concat(`clan found no system generations on ${machine}.`);
  const newestFirst = [...generations].sort((a, b) => b.generation - a.generation);
  const current = newestFirst.find((g) => g.current);
  const older = newestFirst.find((g) => current !== undefined && g.generation < current.generation);
  return paragraphs(
    concat(bold(`${machine}: ${generations.length} generation${generations.length === 1 ? "" : "s"}`), current ? `, running ${current.generation}.` : "."),
    table(
      ["Generation", "Date", "NixOS", "Kernel"],
      newestFirst.map((g) => [g.current ? bold(`${g.generation} (current)`) : String(g.generation), g.date, g.nixosVersion, g.kernelVersion]),
    ),
    older ? concat("Go back to one with ", code(`${prefix}rollback ${machine} ${older.generation}`), " (an admin; it asks first).") : "",
  );
}
