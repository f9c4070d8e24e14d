import { parseArgs } from "node:util";
import { clipQuote } from "./answer-size.ts";
import { parseDuration } from "./duration.ts";
import { BadInput, UserError } from "./errors.ts";
import { nearest } from "./suggest.ts";
import type { CommandInput, CommandSpec, FlagSpec, FlagValue } from "./types.ts";

// Phones turn "..." into “...” as people type; both mean the same to them.
const OPEN_QUOTES: Record<string, string> = { '"': '"', "'": "'", "“": "”", "‘": "’", "„": "“" };

/**
 * Splits a command line into words, honouring quotes ("two words", 'single', “curly”) and
 * backslash escapes outside single quotes. No shell rules apply: `;`, `$` and `*` are plain characters.
 */
export function tokenize(line: string): string[] {
  const words: string[] = [];
  let word = "";
  let inWord = false;
  let closing: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i] as string;
    if (closing !== undefined) {
      if (c === closing) closing = undefined;
      else if (c === "\\" && closing !== "'" && i + 1 < line.length) word += line[++i];
      else word += c;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = "";
      inWord = false;
    } else if (OPEN_QUOTES[c] !== undefined) {
      closing = OPEN_QUOTES[c];
      inWord = true;
    } else if (c === "\\" && i + 1 < line.length) {
      word += line[++i];
      inWord = true;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (closing !== undefined) throw new BadInput(`There is an unclosed quote in \`${clipQuote(line)}\`: add the closing ${closing}.`);
  if (inWord) words.push(word);
  return words;
}

/** A subcommand's own word: "run" of "vm run". */
export function subcommandWord(family: CommandSpec, sub: CommandSpec): string {
  return sub.name.slice(family.name.length + 1);
}

/**
 * For a command family, the subcommand the first word names and the words after it; for any other
 * command (or a family given no word), the command itself and all its words.
 */
export function selectSubcommand(spec: CommandSpec, words: readonly string[], prefix: string): { spec: CommandSpec; words: readonly string[] } {
  const [first] = words;
  if (!spec.subcommands?.length || first === undefined) return { spec, words };
  const word = first.toLowerCase();
  const sub = spec.subcommands.find((s) => subcommandWord(spec, s) === word || s.aliases?.includes(word));
  if (sub) return { spec: sub, words: words.slice(1) };
  // A family that takes arguments itself (`!vars <machine>` beside `!vars generate`).
  if (spec.args.length > 0) return { spec, words };
  const names = spec.subcommands.map((s) => subcommandWord(spec, s));
  const guess = nearest(word, names);
  const shown = first.length > 40 ? `${first.slice(0, 40)}…` : first;
  throw new BadInput(
    `!${spec.name} has no subcommand '${shown}'; it has ${names.join(", ")}.` +
      (guess !== undefined ? ` Did you mean \`${prefix}${spec.name} ${guess}\`?` : ` \`${prefix}help ${spec.name}\` explains them.`),
  );
}

export function usage(spec: CommandSpec, prefix: string): string {
  if (spec.subcommands?.length && spec.args.length === 0) return `${prefix}${spec.name} <${spec.subcommands.map((s) => subcommandWord(spec, s)).join("|")}>`;
  const args = spec.args.map((a) => {
    const name = a.variadic ? `${a.name}...` : a.name;
    return a.required ? `<${name}>` : `[${name}]`;
  });
  const flags = spec.flags.map((f) =>
    f.type === "boolean" ? `[--${f.name}]` : `[--${f.name} <${f.placeholder ?? f.type}>]${f.multiple ? "..." : ""}`,
  );
  return [`${prefix}${spec.name}`, ...args, ...flags].join(" ");
}

function convert(spec: FlagSpec, raw: string, command: string): number | string {
  if (spec.type === "integer") {
    if (!/^-?\d+$/.test(raw) || !Number.isSafeInteger(Number(raw))) {
      throw new BadInput(`\`--${spec.name}\` of !${command} takes a whole number, not '${clipQuote(raw, 40)}'.`);
    }
    return Number(raw);
  }
  if (spec.type === "duration") {
    const ms = parseDuration(raw);
    // Zero is no duration anyone means: refused, never replaced by a default.
    if (ms === undefined || ms <= 0 || !Number.isSafeInteger(ms)) {
      throw new BadInput(`\`--${spec.name}\` of !${command} takes a duration such as 30m, 2h or 1d, not '${clipQuote(raw, 40)}'.`);
    }
    return ms;
  }
  return raw;
}

/**
 * Checks words against a command's declared arguments and flags. Every mistake is a UserError
 * that says what was expected, so nothing half-understood ever runs.
 */
export function bindInput(spec: CommandSpec, words: readonly string[], line: string, prefix: string): CommandInput {
  const { tokens } = parseArgs({
    args: [...words],
    options: Object.fromEntries(spec.flags.map((f) => [f.name, { type: f.type === "boolean" ? "boolean" : "string", multiple: true }] as const)),
    allowPositionals: true,
    strict: false,
    tokens: true,
  });
  const args: string[] = [];
  const raw = new Map<string, string[]>();
  const seenBool = new Set<string>();
  const hint = (): string => `Usage: \`${usage(spec, prefix)}\``;
  for (const token of tokens) {
    if (token.kind === "positional") {
      args.push(token.value);
      continue;
    }
    if (token.kind === "option-terminator") continue;
    const flag = spec.flags.find((f) => f.name === token.name);
    if (!flag) {
      const known = spec.flags.length ? ` It takes ${spec.flags.map((f) => `--${f.name}`).join(", ")}.` : " It takes no flags.";
      throw new BadInput(`!${spec.name} has no flag \`${clipQuote(token.rawName, 40)}\`.${known} ${hint()}`);
    }
    if (flag.type === "boolean") {
      if (token.value !== undefined) throw new BadInput(`\`--${flag.name}\` is a switch and takes no value. ${hint()}`);
      seenBool.add(flag.name);
      continue;
    }
    if (token.value === undefined) throw new BadInput(`\`--${flag.name}\` needs a value. ${hint()}`);
    const values = raw.get(flag.name) ?? [];
    if (values.length && !flag.multiple) throw new BadInput(`\`--${flag.name}\` can be given only once.`);
    raw.set(flag.name, [...values, token.value]);
  }
  const flags: Record<string, FlagValue> = {};
  for (const name of seenBool) flags[name] = true;
  for (const [name, values] of raw) {
    const flag = spec.flags.find((f) => f.name === name) as FlagSpec;
    const converted = values.map((v) => convert(flag, v, spec.name));
    flags[name] = flag.multiple ? (converted as string[] | number[]) : (converted[0] as string | number);
  }
  const required = spec.args.filter((a) => a.required);
  if (args.length < required.length) {
    const missing = required[args.length] as (typeof required)[number];
    throw new BadInput(`!${spec.name} needs ${missing.name} (${missing.summary}). ${hint()}`);
  }
  const variadic = spec.args.at(-1)?.variadic === true;
  if (!variadic && args.length > spec.args.length) {
    const rest = args.slice(spec.args.length);
    const extra = rest.slice(0, 3).map((a) => `'${clipQuote(a, 40)}'`).join(", ") + (rest.length > 3 ? ` and ${rest.length - 3} more words` : "");
    throw new BadInput(`!${spec.name} does not take ${extra}. ${hint()}`);
  }
  return { args, flags, line };
}
