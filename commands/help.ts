import { BadInput } from "./errors.ts";
import { bold, bulletList, code, concat, italic, lines, paragraphs, type Message } from "./format.ts";
import { allows } from "./levels.ts";
import { usage } from "./parse-input.ts";
import type { CommandSpec, LevelThresholds, Level } from "./types.ts";

function commandLine(spec: CommandSpec, prefix: string): Message {
  return concat(code(usage(spec, prefix)), ` ${spec.summary}`);
}

function levelName(level: Level, thresholds: LevelThresholds): string {
  return `${level} (power level ${thresholds[level]})`;
}

function parameters(spec: CommandSpec): Message[] {
  return [
    ...spec.args.map((a) => concat(code(a.name), ` ${a.summary}${a.required ? "" : " (optional)"}`)),
    ...spec.flags.map((f) => concat(code(`--${f.name}`), ` ${f.summary}`)),
  ];
}

/** A family's subcommand in the family's help: usage, what it does, who may use it, its parameters. */
function subcommandItem(sub: CommandSpec, prefix: string, thresholds: LevelThresholds): Message {
  const params = parameters(sub);
  const head = concat(code(usage(sub, prefix)), ` ${sub.summary} `, italic(`(${levelName(sub.level, thresholds)})`));
  return params.length ? lines(head, bulletList(params)) : head;
}

/** One command in full: usage, what it does, its arguments and flags (or subcommands), who may use it. */
export function describeCommand(spec: CommandSpec, prefix: string, thresholds: LevelThresholds, note?: string): Message {
  const parts: Message[] = [concat(code(usage(spec, prefix))), concat(spec.summary)];
  if (spec.details) parts.push(concat(spec.details));
  if (note) parts.push(concat(note));
  if (spec.subcommands?.length && spec.args.length === 0) {
    parts.push(bulletList(spec.subcommands.map((s) => subcommandItem(s, prefix, thresholds))));
    return paragraphs(...parts);
  }
  if (spec.subcommands?.length) parts.push(bulletList(spec.subcommands.map((s) => subcommandItem(s, prefix, thresholds))));
  const params = parameters(spec);
  if (params.length) parts.push(bulletList(params));
  const also = spec.aliases?.length ? `; also ${spec.aliases.map((a) => prefix + a).join(", ")}` : "";
  parts.push(italic(`Needs ${levelName(spec.level, thresholds)}${also}.`));
  return paragraphs(...parts);
}

/** The commands this person may use, and a note on how many more a higher level would open. */
export function helpOverview(
  table: readonly CommandSpec[],
  have: Level | undefined,
  prefix: string,
  thresholds: LevelThresholds,
): Message {
  const usable = table.filter((c) => allows(have, c.level));
  const locked = table.filter((c) => !allows(have, c.level));
  const parts: Message[] = [
    bold("clanbot commands"),
    bulletList(usable.map((c) => commandLine(c, prefix))),
  ];
  if (locked.length) {
    const byLevel = new Map<Level, string[]>();
    for (const c of locked) byLevel.set(c.level, [...(byLevel.get(c.level) ?? []), prefix + c.name]);
    parts.push(
      lines(
        ...[...byLevel].map(([level, names]) => italic(`Needs ${levelName(level, thresholds)}: ${names.join(", ")}`)),
      ),
    );
  }
  parts.push(concat("Details: ", code(`${prefix}help <command>`), ". Quote arguments with spaces: ", code(`"like this"`), "."));
  return paragraphs(...parts);
}

export function findCommand(table: readonly CommandSpec[], name: string): CommandSpec | undefined {
  const n = name.toLowerCase();
  return table.find((c) => c.name === n || c.aliases?.includes(n));
}

export function makeHelpCommand(table: () => readonly CommandSpec[]): CommandSpec {
  return {
    name: "help",
    readOnly: true,
    aliases: ["commands"],
    summary: "Lists the commands you may use, or explains one.",
    level: "viewer",
    args: [{ name: "command", summary: "a command to explain" }],
    flags: [],
    async run(ctx, input) {
      const [name] = input.args;
      if (name === undefined) return helpOverview(table(), ctx.sender.level, ctx.prefix, ctx.thresholds);
      const spec = findCommand(table(), name.replace(/^!/, ""));
      if (!spec) throw new BadInput(`There is no command '${name}'. ${ctx.prefix}help lists them all.`);
      return describeCommand(spec, ctx.prefix, ctx.thresholds, spec.helpNote?.(ctx));
    },
  };
}
