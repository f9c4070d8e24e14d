// A small emulation of Python's argparse (3.13), enough to reproduce what clan's
// parser prints and how it exits: usage wrapping at the terminal width, prefix
// abbreviations of long options, `--opt=value`, nargs 0/1/2/'+'/'*', sub-parsers,
// "unrecognized arguments" reported by the top-level parser, exit status 2, and
// mutually exclusive groups (an option's `group`: "not allowed with argument ...").

export class ArgparseExit extends Error {
  constructor(code, stdout, stderr) {
    super(`argparse exit ${code}`);
    this.code = code;
    this.stdout = stdout;
    this.stderr = stderr;
  }
}

export function terminalColumns() {
  // shutil.get_terminal_size(): $COLUMNS, else the size of stdout, else 80.
  const env = Number.parseInt(process.env.COLUMNS ?? "", 10);
  if (Number.isInteger(env) && env > 0) return env;
  if (process.stdout.isTTY && process.stdout.columns) return process.stdout.columns;
  return 80;
}

const PARSER = "A...";

/**
 * Option: { flags: string[], dest, nargs: 0|1|2|'+', metavar?, choices?, help?, kind: 'store'|'true'|'append-option'|'help', default?,
 *           group?: name of its mutually exclusive group (add_mutually_exclusive_group) }
 * Positional: { dest, nargs: 1|'*'|PARSER, metavar?, help?, default? }
 * Parser: { prog, usage?, description?, epilog?, options, positionals, subcommands?: Map(name -> parser), subMetavar?, subRequired? }
 */
export function makeParser({ prog, usage, description, epilog, options = [], positionals = [] }) {
  return {
    prog,
    usage,
    description,
    epilog,
    options: [{ flags: ["-h", "--help"], dest: "help", nargs: 0, kind: "help", help: "show this help message and exit" }, ...options],
    positionals: [...positionals],
    subcommands: null,
  };
}

export function addSubcommands(parser, { metavar, required = false, help }) {
  parser.subcommands = { choices: new Map(), order: [], metavar, required, help };
  parser.positionals.push({ dest: "_command", nargs: PARSER, isSubparsers: true, help });
  return parser.subcommands;
}

export function addSubparser(parent, name, { aliases = [], help, description, epilog, options = [], positionals = [], leaf = true }) {
  const sub = makeParser({
    prog: `${parent.usage ? parent.usage.replace("%(prog)s", parent.prog) : parent.prog} ${name}`,
    description: description ?? (help && !leaf ? help : description),
    epilog,
    options,
    positionals,
  });
  sub.name = name;
  sub.help = help;
  sub.aliases = aliases;
  for (const n of [name, ...aliases]) parent.subcommands.choices.set(n, sub);
  parent.subcommands.order.push(sub);
  return sub;
}

export const COMMON_FLAGS = [
  { flags: ["--debug"], dest: "debug", nargs: 0, kind: "true", help: "Enable debug logging" },
  { flags: ["--option"], dest: "option", nargs: 2, kind: "append-option", metavar: ["name", "value"], help: "Nix option to set", default: [] },
  {
    flags: ["--flake"],
    dest: "flake",
    nargs: 1,
    kind: "store",
    metavar: "PATH",
    help: "path to the flake where the clan resides in, can be a remote flake or local, can be set through the [CLAN_DIR] environment variable",
  },
];

function choicesName(choices) {
  return `{${choices.join(",")}}`;
}

function subChoices(parser) {
  return [...parser.subcommands.choices.keys()];
}

function positionalMetavar(p, parser) {
  if (p.isSubparsers) return parser.subcommands.metavar ?? choicesName(subChoices(parser));
  return p.metavar ?? p.dest;
}

function optionMetavar(o) {
  if (o.metavar) return o.metavar;
  if (o.choices) return choicesName(o.choices);
  return o.dest.toUpperCase();
}

function formatArgs(nargs, metavar) {
  const mv = Array.isArray(metavar) ? metavar : [metavar];
  if (nargs === 1) return mv[0];
  if (nargs === "+") return `${mv[0]} [${mv[0]} ...]`;
  if (nargs === "*") return `[${mv[0]} ...]`;
  if (nargs === PARSER) return `${mv[0]} ...`;
  return mv.join(" ");
}

// The name argparse uses for an action in error messages (_get_action_name).
function actionName(action, parser) {
  if (action.flags) return action.flags.join("/");
  if (action.isSubparsers) return positionalMetavar(action, parser);
  return action.metavar ?? action.dest;
}

function usageParts(parser) {
  const options = parser.options;
  // HelpFormatter._get_actions_usage_parts: a mutually exclusive group is shown as
  // "[-a A | -b B]" only when its options are next to each other in the parser.
  const grouped = new Map();
  for (const name of new Set(options.map((o) => o.group).filter(Boolean))) {
    const members = options.filter((o) => o.group === name);
    const start = options.indexOf(members[0]);
    if (options.slice(start, start + members.length).every((o) => o.group === name)) grouped.set(name, members);
  }
  const opt = options.map((o) => {
    const part = o.nargs === 0 ? o.flags[0] : `${o.flags[0]} ${formatArgs(o.nargs, optionMetavar(o))}`;
    const members = grouped.get(o.group);
    if (!members) return `[${part}]`;
    const i = members.indexOf(o);
    return `${i === 0 ? "[" : ""}${part}${i === members.length - 1 ? "]" : " |"}`;
  });
  const pos = parser.positionals.map((p) => formatArgs(p.nargs, positionalMetavar(p, parser)));
  return { opt, pos };
}

export function formatUsage(parser) {
  const prefix = "usage: ";
  if (parser.usage) return `${prefix}${parser.usage.replace("%(prog)s", parser.prog)}\n`;
  const textWidth = terminalColumns() - 2;
  const prog = parser.prog;
  const { opt, pos } = usageParts(parser);
  const full = [prog, ...opt, ...pos].join(" ");
  if (prefix.length + full.length <= textWidth) return `${prefix}${full}\n`;

  const getLines = (parts, indent, pfx) => {
    const lines = [];
    let line = [];
    let lineLen = pfx !== undefined ? pfx.length - 1 : indent.length - 1;
    for (const part of parts) {
      if (lineLen + 1 + part.length > textWidth && line.length > 0) {
        lines.push(indent + line.join(" "));
        line = [];
        lineLen = indent.length - 1;
      }
      line.push(part);
      lineLen += part.length + 1;
    }
    if (line.length > 0) lines.push(indent + line.join(" "));
    if (pfx !== undefined) lines[0] = lines[0].slice(indent.length);
    return lines;
  };
  let lines;
  if (prefix.length + prog.length <= 0.75 * textWidth) {
    const indent = " ".repeat(prefix.length + prog.length + 1);
    if (opt.length > 0) {
      lines = getLines([prog, ...opt], indent, prefix);
      lines.push(...getLines(pos, indent));
    } else if (pos.length > 0) {
      lines = getLines([prog, ...pos], indent, prefix);
    } else {
      lines = [prog];
    }
  } else {
    const indent = " ".repeat(prefix.length);
    lines = getLines([...opt, ...pos], indent);
    if (lines.length > 1) lines = [...getLines(opt, indent), ...getLines(pos, indent)];
    lines = [prog, ...lines];
  }
  return `${prefix}${lines.join("\n")}\n`;
}

export function formatHelp(parser) {
  const width = terminalColumns() - 2;
  const maxHelpPosition = Math.min(24, Math.max(width - 20, 4));
  const entries = [];
  const positionals = parser.positionals.map((p) => {
    const inv = positionalMetavar(p, parser);
    const subs = p.isSubparsers
      ? parser.subcommands.order.map((s) => ({
          inv: s.aliases.length ? `${s.name} (${s.aliases.join(", ")})` : s.name,
          help: s.help,
          indent: 4,
        }))
      : [];
    return { inv, help: p.help, indent: 2, subs };
  });
  const options = parser.options.map((o) => {
    // Python 3.13: "-j, --json JSON", the metavar once, after the last flag
    const inv = o.nargs === 0 ? o.flags.join(", ") : `${o.flags.join(", ")} ${formatArgs(o.nargs, optionMetavar(o))}`;
    let help = o.help;
    if (help !== undefined && o.choices && o.default != null) help = `${help} (default: ${o.default})`;
    return { inv, help, indent: 2, subs: [] };
  });
  for (const e of [...positionals, ...options]) {
    entries.push(e);
    entries.push(...e.subs);
  }
  const maxLen = Math.max(0, ...entries.map((e) => e.inv.length + e.indent));
  const helpPosition = Math.min(maxLen + 2, maxHelpPosition);
  const fmt = (e) => {
    const head = " ".repeat(e.indent) + e.inv;
    if (!e.help) return `${head}\n`;
    const helpLines = e.help.split("\n");
    const pad = " ".repeat(helpPosition);
    let out;
    if (head.length <= helpPosition - 2) out = `${head.padEnd(helpPosition)}${helpLines[0]}\n`;
    else out = `${head}\n${pad}${helpLines[0]}\n`;
    for (const l of helpLines.slice(1)) out += `${pad}${l}\n`;
    return out;
  };
  let out = formatUsage(parser);
  if (parser.description) out += `\n${parser.description}\n`;
  if (positionals.length > 0) {
    out += "\npositional arguments:\n";
    for (const p of positionals) {
      out += fmt(p);
      for (const s of p.subs) out += fmt(s);
    }
  }
  out += "\noptions:\n";
  for (const o of options) out += fmt(o);
  if (parser.epilog) out += `\n${parser.epilog}\n`;
  return out;
}

function fail(parser, message) {
  throw new ArgparseExit(2, "", `${formatUsage(parser)}${parser.prog}: error: ${message}\n`);
}

function invalidChoice(parser, action, value, choices) {
  fail(parser, `argument ${actionName(action, parser)}: invalid choice: '${value}' (choose from ${choices.join(", ")})`);
}

// Pattern used to count how many strings an action consumes (_get_nargs_pattern).
function nargsRegex(nargs, isOptional) {
  let pat;
  if (nargs === 0) pat = "(-*-*)";
  else if (nargs === 1) pat = "(-*A-*)";
  else if (nargs === "+") pat = "(-*A[A-]*)";
  else if (nargs === "*") pat = "(-*[A-]*)";
  else if (nargs === PARSER) pat = "(-*A[-AO]*)";
  else pat = `(-*${Array(nargs).fill("A").join("-*")}-*)`;
  if (isOptional) pat = pat.replaceAll("-*", "").replaceAll("-", "");
  return pat;
}

function parseOptional(parser, arg) {
  if (!arg || arg[0] !== "-") return null;
  const byFlag = (f) => parser.options.find((o) => o.flags.includes(f));
  const exact = byFlag(arg);
  if (exact) return { action: exact, flag: arg, explicit: null };
  if (arg.length === 1) return null;
  if (arg.includes("=")) {
    const [flag, ...rest] = arg.split("=");
    const a = byFlag(flag);
    if (a) return { action: a, flag, explicit: rest.join("=") };
  }
  // prefix abbreviations
  const matches = [];
  if (arg.startsWith("--")) {
    const eq = arg.indexOf("=");
    const pfx = eq >= 0 ? arg.slice(0, eq) : arg;
    const explicit = eq >= 0 ? arg.slice(eq + 1) : null;
    for (const o of parser.options)
      for (const f of o.flags) if (f.startsWith(pfx)) matches.push({ action: o, flag: f, explicit });
  } else {
    const shortPfx = arg.slice(0, 2);
    const shortExplicit = arg.slice(2);
    for (const o of parser.options)
      for (const f of o.flags) {
        if (f === shortPfx) matches.push({ action: o, flag: f, explicit: shortExplicit });
        else if (f.startsWith(arg)) matches.push({ action: o, flag: f, explicit: null });
      }
  }
  if (matches.length > 1) fail(parser, `ambiguous option: ${arg} could match ${matches.map((m) => m.flag).join(", ")}`);
  if (matches.length === 1) return matches[0];
  if (/^-\d+$|^-\d*\.\d+$/.test(arg)) return null;
  if (arg.includes(" ")) return null;
  return { action: null, flag: arg, explicit: null };
}

function parseKnownArgs(parser, args, ns) {
  if (parser.lenient) {
    // a clan command the fake does not emulate: keep its arguments, parse nothing
    ns._rest = args;
    return [];
  }
  for (const o of parser.options) if (o.kind !== "help" && !(o.dest in ns)) ns[o.dest] = structuredClone(o.default ?? (o.kind === "true" ? false : null));
  for (const p of parser.positionals) if (!p.isSubparsers && !(p.dest in ns)) ns[p.dest] = p.default ?? null;

  const extras = [];
  const childUnrecognized = [];
  const seen = new Set();
  const seenNonDefault = new Set();
  const optionIndices = new Map();
  let pattern = "";
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--") {
      pattern += "-";
      for (let j = i + 1; j < args.length; j++) pattern += "A";
      break;
    }
    const t = parseOptional(parser, args[i]);
    if (t === null) pattern += "A";
    else {
      optionIndices.set(i, t);
      pattern += "O";
    }
  }
  const positionals = [...parser.positionals];

  const takeAction = (action, strs, flag) => {
    seen.add(action);
    if (action.kind === "help") throw new ArgparseExit(0, formatHelp(parser), "");
    if (action.isSubparsers) {
      const name = strs[0];
      const sub = parser.subcommands.choices.get(name);
      if (!sub) invalidChoice(parser, action, name, subChoices(parser));
      ns._path.push(sub.name);
      ns._parsers.push(sub);
      childUnrecognized.push(...parseKnownArgs(sub, strs.slice(1), ns));
      return;
    }
    let strings = strs;
    if (!flag && action.nargs !== PARSER) {
      const k = strings.indexOf("--");
      if (k >= 0) strings = [...strings.slice(0, k), ...strings.slice(k + 1)];
    }
    if (action.choices) for (const s of strings) if (!action.choices.includes(s)) invalidChoice(parser, action, s, action.choices);
    if (action.group) {
      seenNonDefault.add(action);
      const conflict = parser.options.find((o) => o !== action && o.group === action.group && seenNonDefault.has(o));
      if (conflict) fail(parser, `argument ${actionName(action, parser)}: not allowed with argument ${actionName(conflict, parser)}`);
    }
    if (action.kind === "true") ns[action.dest] = true;
    else if (action.kind === "false") ns[action.dest] = false;
    else if (action.kind === "append-option") ns[action.dest].push("--option", strings[0], strings[1]);
    else if (action.kind === "append") ns[action.dest].push(strings[0]);
    else if (action.nargs === 1) ns[action.dest] = strings[0];
    else if (action.nargs === "*" && strings.length === 0 && !action.flags) ns[action.dest] = structuredClone(action.default ?? []);
    else ns[action.dest] = strings;
  };

  const consumeOptional = (start) => {
    const { action, flag, explicit } = optionIndices.get(start);
    if (action === null) {
      extras.push(args[start]);
      return start + 1;
    }
    if (explicit !== null) {
      if (action.nargs === 1 || action.nargs === "+" || action.nargs === "*") {
        takeAction(action, [explicit], flag);
        return start + 1;
      }
      if (action.nargs === 0 && !flag.startsWith("--") && explicit !== "" && !explicit.startsWith("-") && !args[start].includes("=")) {
        // "-hx": -h, then "-x" as another short flag, or an unrecognized argument
        takeAction(action, [], flag);
        const next = parser.options.find((o) => o.flags.includes(`-${explicit[0]}`));
        if (!next) {
          extras.push(`-${explicit}`);
          return start + 1;
        }
        optionIndices.set(start, { action: next, flag: `-${explicit[0]}`, explicit: explicit.length > 1 ? explicit.slice(1) : null });
        return consumeOptional(start);
      }
      fail(parser, `argument ${actionName(action, parser)}: ignored explicit argument '${explicit}'`);
    }
    const m = new RegExp(`^${nargsRegex(action.nargs, true)}`).exec(pattern.slice(start + 1));
    if (!m) {
      const n = action.nargs;
      const msg =
        n === 1 ? "expected one argument" : n === "+" ? "expected at least one argument" : `expected ${n} argument${n === 1 ? "" : "s"}`;
      fail(parser, `argument ${actionName(action, parser)}: ${msg}`);
    }
    const count = m[1].length;
    takeAction(action, args.slice(start + 1, start + 1 + count), flag);
    return start + 1 + count;
  };

  const consumePositionals = (start) => {
    const sel = pattern.slice(start);
    let counts = [];
    for (let i = positionals.length; i > 0; i--) {
      const re = new RegExp(`^${positionals.slice(0, i).map((p) => nargsRegex(p.nargs, false)).join("")}`);
      const m = re.exec(sel);
      if (m) {
        counts = m.slice(1).map((g) => g.length);
        if (m[0].length < sel.length && sel[m[0].length] === "O") while (counts.length > 0 && counts[counts.length - 1] === 0) counts.pop();
        break;
      }
    }
    let idx = start;
    for (let i = 0; i < counts.length; i++) {
      takeAction(positionals[i], args.slice(idx, idx + counts[i]), null);
      idx += counts[i];
    }
    positionals.splice(0, counts.length);
    return idx;
  };

  const optionIdx = [...optionIndices.keys()];
  const maxOption = optionIdx.length ? Math.max(...optionIdx) : -1;
  let start = 0;
  while (start <= maxOption) {
    const next = Math.min(...optionIdx.filter((i) => i >= start));
    if (start !== next) {
      const end = consumePositionals(start);
      if (end > start) {
        start = end;
        continue;
      }
      start = end;
    }
    if (!optionIndices.has(start)) {
      extras.push(...args.slice(start, next));
      start = next;
    }
    start = consumeOptional(start);
  }
  const stop = consumePositionals(start);
  extras.push(...args.slice(stop));

  const missing = parser.positionals
    .filter((p) => !seen.has(p) && (p.isSubparsers ? parser.subcommands.required : p.nargs !== "*"))
    .map((p) => actionName(p, parser));
  if (missing.length > 0) fail(parser, `the following arguments are required: ${missing.join(", ")}`);
  return [...extras, ...childUnrecognized];
}

/** Parses argv like ArgumentParser.parse_args; throws ArgparseExit for help and usage errors. */
export function parseArgs(root, argv) {
  const ns = { _path: [], _parsers: [root] };
  const extras = parseKnownArgs(root, argv, ns);
  if (extras.length > 0) fail(root, `unrecognized arguments: ${extras.join(" ")}`);
  return ns;
}

export { PARSER };
