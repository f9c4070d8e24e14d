// Child processes that stand in for the nix/ssh commands clan runs. They are real
// children in clan's process group (no new session), like the `nix build`, `nix copy`
// and ssh commands clan starts with needs_user_terminal=True, so killing the group
// of the fake kills them too. Their output is relayed line by line, prefixed with
// the machine name, as clan's handle_io() logs it.

import { spawn } from "node:child_process";
import { once } from "node:events";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { log } from "./errors.mjs";
import { playStandIn } from "./stand-in.mjs";

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), "nix-child.mjs");
const running = new Set();
let inline = false;

/**
 * From now on, stand-ins run inside this process, with the same output and timing (the
 * `inlineStandIns` knob): for benchmarks, where a Node start per stand-in would make the fake
 * itself the bottleneck on a host with few cores. Killing the fake's process group still stops them.
 */
export function runStandInsInline() {
  inline = true;
}

export function killChildren(signal = "SIGTERM") {
  for (const c of running) {
    try {
      c.kill(signal);
    } catch {
      // already gone
    }
  }
}

/**
 * Runs one emulated command. spec (see nix-child.mjs): { title, before, during, after,
 * stdout, progress, delayMs, hang, repeat, tagged, exitCode, orphanGraceMs }. `logStreams` says which
 * streams clan logs live (RunOpts.log); both are always captured for error messages.
 */
export async function runChild(spec, { prefix = null, logStreams = ["stderr"] } = {}) {
  if (inline) {
    const captured = { stdout: "", stderr: "" };
    const returnCode = await playStandIn(spec, (from, line) => {
      captured[from] += `${line}\n`;
      if (logStreams.includes(from)) log(line, prefix);
    });
    return { returnCode, stdout: captured.stdout, stderr: captured.stderr };
  }
  const child = spawn(process.execPath, [CHILD, JSON.stringify(spec)], {
    stdio: ["ignore", "pipe", "pipe"],
    env: process.env,
  });
  running.add(child);
  const captured = { stdout: "", stderr: "" };
  const relay = (stream, name) =>
    new Promise((resolve) => {
      const rl = createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY });
      rl.on("line", (raw) => {
        let line = raw;
        let from = name;
        // spec.tagged: both streams come through stderr, in order, as "<1|2>\t<line>"
        if (spec.tagged && /^[12]\t/.test(raw)) {
          from = raw[0] === "1" ? "stdout" : "stderr";
          line = raw.slice(2);
        }
        captured[from] += `${line}\n`;
        if (logStreams.includes(from)) log(line, prefix);
      });
      rl.on("close", resolve);
    });
  const done = Promise.all([relay(child.stdout, "stdout"), relay(child.stderr, "stderr")]);
  const [code, signal] = await once(child, "close");
  await done;
  running.delete(child);
  // subprocess.Popen reports death by signal N as returncode -N
  const returnCode = code ?? -(signalNumber(signal) ?? 1);
  return { returnCode, stdout: captured.stdout, stderr: captured.stderr };
}

function signalNumber(signal) {
  return { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 }[signal];
}

/** Writes exactly `total` bytes of "[prefix] ..." lines to a stream, honouring back-pressure. */
export async function emitBytes(total, { prefix = null, stream = process.stderr } = {}) {
  if (!total || total <= 0) return;
  const head = prefix ? `[${prefix}] ` : "";
  const lineLen = Math.max(100, head.length + 40);
  const makeLine = (len) => {
    const body = `${head}building output chunk `;
    return `${body}${"#".repeat(Math.max(0, len - body.length - 1))}\n`.slice(-len);
  };
  const line = makeLine(lineLen);
  const perChunk = Math.max(1, Math.floor(65536 / lineLen));
  const chunk = Buffer.from(line.repeat(perChunk));
  let left = total;
  let broken = false;
  const onError = () => {
    broken = true;
  };
  stream.on("error", onError);
  const drained = () =>
    new Promise((resolve) => {
      const done = () => {
        stream.off("drain", done);
        stream.off("error", done);
        resolve();
      };
      stream.on("drain", done);
      stream.on("error", done);
    });
  while (left > 0 && !broken) {
    let buf;
    if (left >= chunk.length) buf = chunk;
    else {
      const full = Math.floor(left / lineLen);
      const rest = left - full * lineLen;
      buf = Buffer.from(line.repeat(full) + (rest > 0 ? (rest === 1 ? "\n" : makeLine(rest)) : ""));
    }
    left -= buf.length;
    if (!stream.write(buf)) await drained();
    else await new Promise((r) => setImmediate(r));
  }
  stream.off("error", onError);
}

let stdinLines = null;
let stdinWaiters = [];
let stdinEnded = false;

/** Reads one line from stdin the way a prompt would; resolves null at end of input. */
export function readStdinLine() {
  if (stdinLines === null) {
    stdinLines = [];
    let partial = "";
    const finish = () => {
      if (stdinEnded) return;
      stdinEnded = true;
      if (partial !== "") stdinLines.push(partial);
      partial = "";
      flush();
    };
    const flush = () => {
      while (stdinWaiters.length > 0 && (stdinLines.length > 0 || stdinEnded)) {
        stdinWaiters.shift()(stdinLines.length > 0 ? stdinLines.shift() : null);
      }
    };
    process.stdin.setEncoding("utf8");
    process.stdin.on("data", (d) => {
      partial += d;
      const parts = partial.split("\n");
      partial = parts.pop();
      stdinLines.push(...parts);
      flush();
    });
    process.stdin.on("end", finish);
    process.stdin.on("error", finish);
    process.stdin.on("close", finish);
  }
  return new Promise((resolve) => {
    if (stdinLines.length > 0) resolve(stdinLines.shift());
    else if (stdinEnded) resolve(null);
    else {
      stdinWaiters.push(resolve);
      process.stdin.resume();
    }
  });
}

export function releaseStdin() {
  if (stdinLines !== null) process.stdin.pause();
}

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/** Blocks forever (until killed), like a process stuck on the network. */
export function hangForever() {
  return new Promise(() => {
    setInterval(() => {}, 1 << 30);
  });
}
