import { runProcess } from "./process-runner.ts";

/**
 * The flake's git revision as people quote it: a short commit, "+dirty" when the work tree has
 * uncommitted changes (which a deploy includes). Undefined when the flake is not a git checkout.
 */
export async function gitRevision(flake: string, signal?: AbortSignal): Promise<string | undefined> {
  const opts = { cwd: flake, timeoutMs: 30_000, collectStdout: true, ...(signal ? { signal } : {}) };
  const head = await runProcess("git", ["rev-parse", "--short=12", "HEAD"], opts);
  if (head.exitCode !== 0) return undefined;
  const status = await runProcess("git", ["status", "--porcelain", "--untracked-files=no"], opts);
  const dirty = status.exitCode === 0 && status.stdout.trim() !== "";
  return `${head.stdout.trim()}${dirty ? "+dirty" : ""}`;
}
