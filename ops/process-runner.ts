import { execa } from "execa";
import { eachLine } from "./line-splitter.ts";

export interface RunOptions {
  cwd?: string;
  env?: Record<string, string>;
  /** Cancels the run: the whole process group gets SIGTERM, then SIGKILL after `killGraceMs`. */
  signal?: AbortSignal;
  timeoutMs: number;
  killGraceMs?: number;
  /** Keep stdout in memory and return it (for JSON answers); otherwise it is only streamed to onLine / output. */
  collectStdout?: boolean;
  maxStdoutBytes?: number;
  /** Every output line, as it comes; memory stays bounded however much a process prints. */
  onLine?: (line: string, stream: "stdout" | "stderr") => void;
  /** Every output line as bytes, undecoded, for callers that pass on a lot of output and read little of it. */
  output?: OutputSink;
  /** How many stderr lines to keep for the result; 0 when the caller keeps its own tail. */
  stderrTailLines?: number;
  /** Written to stdin, which is then closed (a secret for `clan vars set`); without it stdin is closed at once. */
  input?: Uint8Array;
  /** Called once the process exists, with its pid (also its process group id). */
  onSpawn?: (pid: number) => void;
}

/** Where output lines go as bytes: see LineSink, whose rules hold here too. */
export interface OutputSink {
  line(bytes: Buffer, start: number, end: number, stream: "stdout" | "stderr"): void;
  chunkDone(): void;
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
  const streamsLines = opts.onLine !== undefined || opts.output !== undefined;
  const sub = execa(file, args, {
    cwd: opts.cwd,
    env: { NO_COLOR: "1", ...opts.env },
    extendEnv: true,
    ...(opts.input !== undefined ? { input: opts.input } : { stdin: "ignore" as const }),
    // Output nobody reads must not fill the pipe and stall the process.
    stdout: opts.collectStdout || streamsLines ? "pipe" : "ignore",
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
    const keep = name === "stderr" && tailMax > 0;
    const sink = {
      line: (bytes: Buffer, start: number, end: number): void => {
        opts.output?.line(bytes, start, end, name);
        if (!keep && !opts.onLine) return;
        const line = bytes.toString("utf8", start, end);
        if (keep) {
          tail.push(line);
          if (tail.length > tailMax) tail.shift();
        }
        opts.onLine?.(line, name);
      },
      chunkDone: (): void => opts.output?.chunkDone(),
    };
    // execa reads stdout too when it collects it; otherwise these lines are the only reader of the pipe.
    return eachLine(stream, sink, { releaseChunks: !(name === "stdout" && opts.collectStdout) });
  };
  const readers = [readLines(sub.stderr, "stderr"), streamsLines ? readLines(sub.stdout, "stdout") : Promise.resolve()];

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
