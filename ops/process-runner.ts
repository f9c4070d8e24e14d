import { execa } from "execa";

export interface RunOptions {
  cwd?: string;
  env?: Record<string, string>;
  /** Cancels the run: the whole process group gets SIGTERM, then SIGKILL after `killGraceMs`. */
  signal?: AbortSignal;
  timeoutMs: number;
  killGraceMs?: number;
  /** Keep stdout in memory and return it (for JSON answers); otherwise it is only streamed to onLine. */
  collectStdout?: boolean;
  maxStdoutBytes?: number;
  /** Every output line, as it comes; memory stays bounded however much a process prints. */
  onLine?: (line: string, stream: "stdout" | "stderr") => void;
  /** How many stderr lines to keep for the result; 0 when the caller keeps its own tail. */
  stderrTailLines?: number;
  /** Called once the process exists, with its pid (also its process group id). */
  onSpawn?: (pid: number) => void;
}

export interface RunResult {
  exitCode: number | undefined;
  signal: string | undefined;
  stdout: string;
  /** The last lines on stderr, for error messages. */
  stderrTail: string[];
  timedOut: boolean;
  cancelled: boolean;
  /** Why the executable could not be started: ENOENT (not found), EACCES (not executable), or undefined. */
  startError: string | undefined;
  pid: number | undefined;
  durationMs: number;
}

/**
 * Runs a program with an argument array (never a shell), stdin closed so prompts fail fast,
 * NO_COLOR set, in its own process group so that cancelling or timing out also ends what it spawned.
 */
export async function runProcess(file: string, args: readonly string[], opts: RunOptions): Promise<RunResult> {
  const started = performance.now();
  const grace = opts.killGraceMs ?? 10_000;
  const tailMax = opts.stderrTailLines ?? 40;
  const sub = execa(file, args, {
    cwd: opts.cwd,
    env: { NO_COLOR: "1", ...opts.env },
    extendEnv: true,
    stdin: "ignore",
    // Output nobody reads must not fill the pipe and stall the process.
    stdout: opts.collectStdout || opts.onLine ? "pipe" : "ignore",
    detached: true,
    reject: false,
    buffer: { stdout: opts.collectStdout === true, stderr: false },
    maxBuffer: opts.maxStdoutBytes ?? 64 * 1024 * 1024,
    stripFinalNewline: false,
  });

  if (sub.pid !== undefined) opts.onSpawn?.(sub.pid);
  let timedOut = false;
  let cancelled = false;
  let killTimer: NodeJS.Timeout | undefined;
  const killGroup = (sig: NodeJS.Signals): void => {
    if (sub.pid === undefined) return;
    try {
      process.kill(-sub.pid, sig);
    } catch (err) {
      // ESRCH: the group is already gone, which is what we wanted.
      if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
    }
  };
  const stop = (): void => {
    killGroup("SIGTERM");
    killTimer ??= setTimeout(() => killGroup("SIGKILL"), grace);
  };
  const onAbort = (): void => {
    cancelled = true;
    stop();
  };
  const timeout = setTimeout(() => {
    timedOut = true;
    stop();
  }, opts.timeoutMs);
  if (opts.signal?.aborted) onAbort();
  else opts.signal?.addEventListener("abort", onAbort, { once: true });

  const tail: string[] = [];
  const readLines = (stream: NodeJS.ReadableStream | null, name: "stdout" | "stderr"): Promise<void> => {
    if (!stream) return Promise.resolve();
    return eachLine(stream, (line) => {
      if (name === "stderr" && tailMax > 0) {
        tail.push(line);
        if (tail.length > tailMax) tail.shift();
      }
      opts.onLine?.(line, name);
    });
  };
  const readers = [readLines(sub.stderr, "stderr"), opts.onLine ? readLines(sub.stdout, "stdout") : Promise.resolve()];

  try {
    const result = await sub;
    await Promise.all(readers);
    // The leader is gone; make sure nothing it left behind in its group outlives a cancel or timeout.
    if (timedOut || cancelled) killGroup("SIGKILL");
    const code = (result as { code?: string }).code;
    return {
      exitCode: result.exitCode,
      signal: result.signal,
      stdout: typeof result.stdout === "string" ? result.stdout : "",
      stderrTail: tail,
      timedOut,
      cancelled,
      startError: result.exitCode === undefined && !result.signal ? (code ?? "EFAIL") : undefined,
      pid: sub.pid,
      durationMs: performance.now() - started,
    };
  } finally {
    clearTimeout(timeout);
    clearTimeout(killTimer);
    opts.signal?.removeEventListener("abort", onAbort);
  }
}

/** Why an executable could not be started, for a message: "was not found". */
export function startErrorReason(code: string): string {
  return { ENOENT: "was not found", EACCES: "is not executable" }[code] ?? `could not be started (${code})`;
}

/** Longer lines are cut into pieces of this size, so a process printing without newlines cannot grow memory. */
export const MAX_LINE_CHARS = 64 * 1024;

/** Calls `onLine` for every line of a stream (LF or CRLF), as it arrives; resolves at its end. */
export function eachLine(stream: NodeJS.ReadableStream, onLine: (line: string) => void): Promise<void> {
  let partial = "";
  stream.setEncoding("utf8");
  const emit = (raw: string): void => {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    for (let at = 0; at < line.length || at === 0; at += MAX_LINE_CHARS) onLine(line.slice(at, at + MAX_LINE_CHARS));
  };
  stream.on("data", (chunk: string) => {
    let start = 0;
    for (let nl = chunk.indexOf("\n"); nl !== -1; nl = chunk.indexOf("\n", start)) {
      emit(partial + chunk.slice(start, nl));
      partial = "";
      start = nl + 1;
    }
    partial += chunk.slice(start);
    while (partial.length > MAX_LINE_CHARS) {
      emit(partial.slice(0, MAX_LINE_CHARS));
      partial = partial.slice(MAX_LINE_CHARS);
    }
  });
  return new Promise((resolve) => {
    const end = (): void => {
      if (partial) emit(partial);
      partial = "";
      resolve();
    };
    stream.once("end", end);
    stream.once("close", end);
    stream.once("error", end);
  });
}
