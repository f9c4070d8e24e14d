// Running the fake `clan` as a child process the way a test looks at it: exit code, signal,
// both streams, and how long it took, in a clean environment.

import { spawn } from "node:child_process";
import os from "node:os";
import { fakeClanPath } from "../../demo/fake-clan-fixture.ts";

export interface ClanRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface ClanRunOptions {
  cwd?: string;
  /** Added to the environment; undefined removes a variable. */
  env?: Record<string, string | undefined>;
  /** "ignore": stdin is /dev/null; a string is written to stdin, then it is closed. */
  stdin?: "ignore" | string;
  /** Run with this node binary instead of the executable's #! line. */
  node?: string;
}

/** The environment of the test process without what would change the fake's behaviour. */
export function cleanEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of ["CLAN_DIR", "COLUMNS", "FAKE_CLAN_LOG", "NIXOS_NO_CHECK", "NO_COLOR"]) delete env[k];
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

export function runClan(args: string[], opts: ClanRunOptions = {}): Promise<ClanRun> {
  const started = Date.now();
  const [cmd, argv] = opts.node ? [opts.node, [fakeClanPath, ...args]] : [fakeClanPath, args];
  const child = spawn(cmd, argv, {
    cwd: opts.cwd ?? os.tmpdir(),
    env: cleanEnv(opts.env),
    stdio: [opts.stdin === undefined || opts.stdin === "ignore" ? "ignore" : "pipe", "pipe", "pipe"],
  });
  if (typeof opts.stdin === "string" && child.stdin) child.stdin.end(opts.stdin);
  let stdout = "";
  let stderr = "";
  child.stdout?.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  child.stderr?.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr, ms: Date.now() - started }));
  });
}
