import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";

function git(args: string[], cwd: string): Promise<{ code: number; stdout: string }> {
  return new Promise((done) => {
    execFile("git", args, { cwd, env: { ...process.env, GIT_OPTIONAL_LOCKS: "0" } }, (err, stdout) => {
      const code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
      done({ code, stdout: stdout.trim() });
    });
  });
}

/**
 * The git work tree a path would be committed from: set when `path` (which need not exist yet) is
 * inside a work tree and git does not ignore it, so that `git add -A` there would take it along.
 * Undefined when it is outside any work tree, ignored, or git is not installed.
 */
export async function unignoredWorkTree(path: string): Promise<string | undefined> {
  const target = resolve(path);
  let dir = dirname(target);
  while (!existsSync(dir)) dir = dirname(dir);
  const top = await git(["rev-parse", "--show-toplevel"], dir);
  if (top.code !== 0 || !top.stdout) return undefined;
  // Exit status 0: ignored; 1: not ignored; anything else (no git, a broken repository): do not guess.
  const ignored = await git(["check-ignore", "-q", "--no-index", target], top.stdout);
  return ignored.code === 1 ? top.stdout : undefined;
}
