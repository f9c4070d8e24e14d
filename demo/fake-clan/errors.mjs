// Error types and output helpers that reproduce how clan (Python) reports problems.
// Without colour (stderr not a TTY, or NO_COLOR set) clan's log format is just
// "%(message)s", or "[<prefix>] %(message)s" for records tied to a machine.

import { terminalColumns } from "./argparse.mjs";

/** clan_lib.errors.ClanError: str() is "<location>: \n<msg>[ - <description>]". */
export class ClanError extends Error {
  constructor(msg, { description = null, location = null, pyType = "clan_lib.errors.ClanError" } = {}) {
    let text = "";
    if (location) text += `${location}: \n`;
    text += msg ?? "";
    if (description) text += ` - ${description}`;
    super(text);
    this.msg = msg ?? "";
    this.description = description;
    this.pyType = pyType;
  }
  toString() {
    return this.message;
  }
}

/** clan_lib.flake.flake.ClanSelectError */
export class ClanSelectError extends ClanError {
  constructor(flakeIdentifier, selectors, nixStderr = null, description = null) {
    if (nixStderr !== null && description === null) {
      const at = nixStderr.lastIndexOf("error:");
      if (at >= 0) description = nixStderr.slice(at + "error:".length).trim() || null;
    }
    let msg;
    if (selectors.length === 0) msg = "failed to select []\n";
    else if (selectors.length === 1) msg = `Error on: $ clan select '${selectors[0]}'\n`;
    else msg = `Error while executing:${selectors.map((s) => `$ clan select '${s}'\n`).join("")}`;
    super(msg, { description, location: flakeIdentifier, pyType: "clan_lib.flake.flake.ClanSelectError" });
    this.message = description ? `${msg}  Reason: ${description}. Use flag '--debug' to see full nix trace.` : msg;
  }
}

/** A Python exception that clan does not catch: it ends in a traceback, exit status 1. */
export class PythonCrash extends Error {
  constructor(pyType, text, frames = []) {
    super(`${pyType}: ${text}`);
    this.pyType = pyType;
    this.text = text;
    this.frames = frames;
  }
}

/** Mistakes in the test set-up (bad fixture, unsupported command): exit 99, not a clan behaviour. */
export class FakeSetupError extends Error {}

export const NOT_EMULATED_EXIT = 99;

// ---- output -------------------------------------------------------------------

function safeWrite(stream, text) {
  try {
    stream.write(text);
  } catch {
    // clan's logging swallows write errors (closed pipe); so does the fake.
  }
}

export function out(text) {
  safeWrite(process.stdout, text);
}

export function err(text) {
  safeWrite(process.stderr, text);
}

/** One log record on stderr, as clan's PrefixFormatter prints it without colour. */
export function log(message, prefix = null) {
  err(`${prefix ? `[${prefix}] ` : ""}${message}\n`);
}

// ---- CmdOut (clan_lib.errors.CmdOut.__str__) ------------------------------------

const SAFE = /^[\w@%+=:,./-]+$/;
export function shQuote(s) {
  if (s === "") return "''";
  if (SAFE.test(s)) return s;
  return `'${s.replaceAll("'", `'"'"'`)}'`;
}

export function indentCommand(cmd) {
  const parts = [];
  let i = 0;
  while (i < cmd.length) {
    const arg = cmd[i];
    parts.push(shQuote(arg));
    if (i < cmd.length - 1 && arg.startsWith("-")) {
      parts.push(" ");
      i += 1;
      parts.push(shQuote(cmd[i]));
    }
    if (i < cmd.length - 1) parts.push(" \\\n    ");
    i += 1;
  }
  return parts.join("");
}

function textHeading(heading) {
  const width = terminalColumns();
  const filler = Math.floor((width - heading.length) / 2) - 1;
  let msg = `${"=".repeat(Math.max(filler, 0))} ${heading} ${"=".repeat(Math.max(filler, 0))}`;
  if (msg.length < width) msg += "=";
  return msg;
}

function optionalText(heading, text) {
  if (text === null || text.trim() === "") return "";
  return `${textHeading(heading)}\n${text}`;
}

function pyCapitalize(s) {
  return s.length === 0 ? s : s[0].toUpperCase() + s.slice(1).toLowerCase();
}

/** clan_lib.errors.ClanCmdError: a command run by clan failed (check=True). */
export class ClanCmdError extends ClanError {
  constructor({ command, stdout = "", stderr = "", returnCode = 1, msg = null }) {
    super("", { pyType: "clan_lib.errors.ClanCmdError" });
    const block = `\n${optionalText("Command", indentCommand(command))}\n${optionalText("Stdout", stdout)}\n${optionalText("Stderr", stderr)}\n${"Return Code:".padEnd(11)} ${returnCode}\n`;
    this.message = msg ? `${block}\n${"Error Msg:".padEnd(11)} ${pyCapitalize(msg)}` : block;
    this.stderrText = stderr;
  }
}

export function nixCommand(flags) {
  return ["nix", "--extra-experimental-features", "nix-command flakes", "--option", "warn-dirty", "false", ...flags];
}

// ---- tracebacks ---------------------------------------------------------------

const SITE = "/nix/store/6r0v1a1sk1wqvxfxl0hm7bq3mq1rj7lm-clan-cli/lib/python3.13/site-packages";

export function traceback(crash) {
  const frames = [
    [`/nix/store/6r0v1a1sk1wqvxfxl0hm7bq3mq1rj7lm-clan-cli/bin/.clan-wrapped`, 9, "<module>", "sys.exit(main())"],
    [`${SITE}/clan_cli/cli.py`, 471, "main", "args.func(args)"],
    // clan's own files are relative to site-packages; absolute paths (the stdlib) stay as they are
    ...crash.frames.map(([file, line, fn, code]) => [file.startsWith("/") ? file : `${SITE}/${file}`, line, fn, code]),
  ];
  let text = "Traceback (most recent call last):\n";
  for (const [file, line, fn, code] of frames) text += `  File "${file}", line ${line}, in ${fn}\n    ${code}\n`;
  return `${text}${crash.pyType}: ${crash.text}\n`;
}
