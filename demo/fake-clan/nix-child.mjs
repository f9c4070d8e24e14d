// The process that stands in for a command clan runs below itself (nix build, nix copy,
// ssh ... switch-to-configuration, a backup script). Started by proc.mjs with one JSON
// argument:
//   title        process title shown by ps (e.g. "nix build")
//   before       [[stream, line]] written at once
//   during       [[stream, line]] spread evenly over delayMs
//   progress     { count, template } more `during` lines; "{i}" and "{n}" are replaced
//   after        [[stream, line]] written when delayMs is over
//   delayMs      how long the command takes
//   hang         true: after `before` (and `during`) never finish, until killed
//   repeat       { lines: [[stream, line]], everyMs } after `before`/`during`: write these lines
//                again and again, every everyMs, never finishing (a retry loop), until killed
//   exitCode     exit status
//   tagged       true: every line goes to stderr as "<1|2>\t<line>" (its real stream first),
//                so that runChild() sees stdout and stderr lines in the order they were written
//   orphanGraceMs  if the parent dies without killing us, exit after this long (default 5000),
//                so a test that only kills the fake's pid can still see us, but we never leak.

import { playStandIn } from "./stand-in.mjs";

const spec = JSON.parse(process.argv[2] ?? "{}");
if (spec.title) process.title = spec.title;

const write = (stream, line) => {
  try {
    if (spec.tagged) process.stderr.write(`${stream === "stdout" ? 1 : 2}\t${line}\n`);
    else (stream === "stdout" ? process.stdout : process.stderr).write(`${line}\n`);
  } catch {
    // reader gone
  }
};

const parent = process.ppid;
const grace = spec.orphanGraceMs ?? 5000;
let orphanedAt = null;
setInterval(() => {
  if (process.ppid !== parent && orphanedAt === null) orphanedAt = Date.now();
  if (orphanedAt !== null && Date.now() - orphanedAt >= grace) process.exit(143);
}, 100).unref();

process.exitCode = await playStandIn(spec, write);
