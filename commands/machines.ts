import { code, concat, paragraphs, table, type Message } from "./format.ts";
import type { CommandSpec, Machine } from "./types.ts";

export function formatMachines(clanName: string, machines: readonly Machine[]): Message {
  if (!machines.length) return concat(`The clan '${clanName}' has no machines yet.`);
  const rows = machines.map((m) => [
    code(m.name),
    m.description ?? "",
    m.tags.join(", "),
    m.targetHost ? code(m.targetHost) : "—",
  ]);
  return paragraphs(
    concat(`${machines.length} machine${machines.length === 1 ? "" : "s"} in clan '${clanName}':`),
    table(["Machine", "Description", "Tags", "Target host"], rows),
  );
}

export const machinesCommand: CommandSpec = {
  name: "machines",
  readOnly: true,
  aliases: ["ls"],
  summary: "Lists the clan's machines with their tags and target hosts.",
  level: "viewer",
  args: [],
  flags: [{ name: "tag", type: "string", multiple: true, placeholder: "tag", summary: "only machines with this tag (repeat: all must match)" }],
  async run(ctx, input) {
    const tags = (input.flags["tag"] as string[] | undefined) ?? [];
    const machines = (await ctx.clan.machines(ctx.signal)).filter((m) => tags.every((t) => m.tags.includes(t)));
    if (tags.length && !machines.length) return concat(`No machine in clan '${ctx.clan.name}' has the tags ${tags.join(", ")}.`);
    return formatMachines(ctx.clan.name, machines);
  },
};
