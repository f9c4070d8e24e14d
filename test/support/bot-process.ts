import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { stringify } from "yaml";
import { stopAtExit } from "./leftovers.ts";

const root = new URL("../..", import.meta.url).pathname;
export const MAIN = join(root, "bot/main.ts");
/** The V8 flags the bot runs with (package.json's config.nodeFlags: `npm start` and the Nix package pass them too). */
export const NODE_FLAGS = (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { config: { nodeFlags: string } }).config.nodeFlags;

export interface BotProcess {
  proc: ChildProcess;
  /** Every log line so far (JSON lines from stderr), for failure diagnostics. */
  log: string[];
  /** Resolves with the first log line matching, or rejects after timeoutMs. */
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** SIGTERM (a clean stop) or SIGKILL (a crash); resolves with the exit code or signal. */
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

/** Writes a YAML config file for a test bot and returns its path. */
export async function writeConfig(dir: string, config: Record<string, unknown>, name = "config.yaml"): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, stringify(config));
  return path;
}

/**
 * The bot's V8 flags as command-line arguments, as `npm start` passes them (so the clan processes
 * the bot starts do not inherit them); a flag that NODE_OPTIONS sets too (a benchmark trying
 * another value) is left out, so that NODE_OPTIONS decides it.
 */
function nodeFlags(nodeOptions: string | undefined): string[] {
  const overridden = new Set((nodeOptions ?? "").split(/\s+/).map((f) => f.split("=")[0]));
  return NODE_FLAGS.split(/\s+/).filter((f) => f !== "" && !overridden.has(f.split("=")[0]));
}

/** Starts the real bot (bot/main.ts on this Node, with its V8 flags) as a child process, as a user would. */
export function startBot(configPath: string, opts: { cwd?: string; env?: Record<string, string> } = {}): BotProcess {
  const env = { ...process.env, ...opts.env };
  const proc = spawn(process.execPath, [...nodeFlags(env["NODE_OPTIONS"]), MAIN, "--config", configPath], {
    cwd: opts.cwd ?? root,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  stopAtExit(proc);
  const log: string[] = [];
  const waiters: Array<{ pattern: RegExp; resolve: (l: string) => void }> = [];
  let partial = "";
  const onData = (chunk: Buffer): void => {
    partial += chunk.toString("utf8");
    const lines = partial.split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) {
      log.push(line);
      for (const w of [...waiters]) {
        if (w.pattern.test(line)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    }
  };
  proc.stderr?.on("data", onData);
  proc.stdout?.on("data", onData);
  const exited = new Promise<number | string>((resolve) => proc.once("exit", (code, signal) => resolve(code ?? signal ?? -1)));
  return {
    proc,
    log,
    waitForLog(pattern, timeoutMs = 15_000) {
      const seen = log.find((l) => pattern.test(l));
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no log line matching ${pattern} in ${timeoutMs} ms; log:\n${log.slice(-30).join("\n")}`)), timeoutMs);
        waiters.push({
          pattern,
          resolve: (l) => {
            clearTimeout(timer);
            resolve(l);
          },
        });
      });
    },
    async stop(signal = "SIGTERM") {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}
