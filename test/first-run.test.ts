// The first hour: the README's first command in a fresh copy of the repository, the state directory,
// and fatal start-up errors (one line, exit at once).

import assert from "node:assert/strict";
import { execFile, execFileSync, spawn } from "node:child_process";
import { cp, mkdir, readFile, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { defaultStateDir } from "../ops/state-dir.ts";
import { MAIN } from "./support/bot-process.ts";
import { tempDir } from "./support/temp-dir.ts";

const root = new URL("..", import.meta.url).pathname;
const execFileP = promisify(execFile);

function run(
  cmd: string,
  args: string[],
  o: { cwd: string; input?: string; env?: Record<string, string>; timeoutMs?: number },
): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd: o.cwd, env: { ...process.env, ...o.env }, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    const timer = setTimeout(() => p.kill("SIGKILL"), o.timeoutMs ?? 60_000);
    p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    p.on("error", reject);
    p.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
    p.stdin.end(o.input ?? "");
  });
}

/** The repository as a fresh clone has it (tracked and new files), with this checkout's node_modules instead of `npm ci`. */
async function freshCopy(): Promise<string> {
  const dir = join(await tempDir(), "clanbot");
  const files = execFileSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], { cwd: root, encoding: "utf8" })
    .split("\0")
    .filter((f) => f !== "");
  for (const f of files) await cp(join(root, f), join(dir, f), { recursive: false, force: true }).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== "ENOENT") throw e; // deleted in the work tree, not yet committed
  });
  await symlink(join(root, "node_modules"), join(dir, "node_modules"));
  const git = (...args: string[]) => execFileSync("git", args, { cwd: dir, stdio: "ignore" });
  git("init", "-q");
  git("add", "-A");
  git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "fresh");
  return dir;
}

test("the README's first command in a fresh copy opens the demo clan: !help, !machines and a !deploy answer, nothing lands in the checkout", async () => {
  const readme = await readFile(join(root, "README.md"), "utf8");
  const first = /```sh\n([^\n]*)/.exec(readme)?.[1] ?? "";
  assert.match(first, /^npm ci && npm start\b/, "the README's first command");
  const dir = await freshCopy();
  const home = await tempDir();
  // `npm ci` is what made this checkout's node_modules; the rest of the command runs as written.
  const r = await run("npm", ["start", "--silent"], {
    cwd: dir,
    input: "!help\n!machines\n!deploy laptop\n",
    env: { HOME: home, XDG_STATE_HOME: join(home, "state"), PATH: process.env["PATH"] ?? "" },
    timeoutMs: 90_000,
  });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^DEMO: /m);
  assert.match(r.stdout, /clanbot commands/);
  assert.match(r.stdout, /4 machines in clan 'demo':/);
  assert.match(r.stdout, /\nnas\s+Storage in the basement\s+servers, storage\s+root@nas\.lan:2222\n/);
  assert.match(r.stdout, /Deploy #\d+ of laptop by @console:localhost/);
  assert.match(r.stdout, /🔨 laptop: building/);
  assert.match(r.stdout, /✅ laptop: done in \d+ s/);
  assert.equal(r.stdout.match(/\[✅\]/g)?.length, 3, r.stdout);
  assert.doesNotMatch(r.stderr, /tsc|error/i);
  // Nothing written into the checkout (no ./data with a database and an SSH key).
  assert.equal(execFileSync("git", ["status", "--porcelain", "--ignored"], { cwd: dir, encoding: "utf8" }).replace(/.*node_modules\n?/, ""), "");
});

test("the state directory: systemd's StateDirectory, /var/lib/clanbot for root, else XDG", () => {
  assert.equal(defaultStateDir({ STATE_DIRECTORY: "/var/lib/clanbot:/x" }, 1000), "/var/lib/clanbot");
  assert.equal(defaultStateDir({}, 0), "/var/lib/clanbot");
  assert.equal(defaultStateDir({ HOME: "/home/a" }, 1000), "/home/a/.local/state/clanbot");
  assert.equal(defaultStateDir({ HOME: "/home/a", XDG_STATE_HOME: "/xdg" }, 1000), "/xdg/clanbot");
  assert.equal(defaultStateDir({ HOME: "/home/a", XDG_STATE_HOME: "rel" }, 1000), "/home/a/.local/state/clanbot");
});

test("a state path inside a git work tree that git would commit is refused with the reason; an ignored one is fine", async () => {
  const repo = join(await tempDir(), "my-clan");
  await mkdir(repo);
  execFileSync("git", ["init", "-q"], { cwd: repo });
  const config = join(repo, "bot.yaml");
  await writeFile(config, `storage:\n  path: ${repo}/data/clanbot.sqlite3\n`);
  const refused = await run(process.execPath, [MAIN, "--config", config, "--console", "--flake", repo], { cwd: repo });
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /^clanbot: storage\.path: .*\/my-clan\/data\/clanbot\.sqlite3 is inside the git work tree .*\/my-clan, and git does not ignore it/);
  await writeFile(join(repo, ".gitignore"), "/data/\n");
  const ignored = await run(process.execPath, [MAIN, "--config", config, "--console", "--flake", repo], { cwd: repo });
  assert.equal(ignored.code, 0, ignored.stderr);
});

test("config.example.yaml copied unchanged: one line naming matrix.accessTokenFile, exit status 2 at once, no stack trace", async () => {
  const dir = await tempDir();
  const text = await readFile(join(root, "config.example.yaml"), "utf8");
  await writeFile(join(dir, "config.yaml"), text.replace(/^storage:\n(.*\n)*?  path: .*$/m, `storage:\n  path: ${dir}/state/clanbot.sqlite3`));
  const r = await run(process.execPath, [MAIN], { cwd: dir, env: { INIT_CWD: dir }, timeoutMs: 20_000 });
  assert.equal(r.code, 2);
  assert.equal(r.stderr, "clanbot: matrix.accessTokenFile: cannot read /run/secrets/clanbot-token: no such file\n");
  assert.ok(r.ms < 10_000, `took ${r.ms} ms`);
});

test("--flake to a missing folder and --as with something that is not a Matrix ID are refused at start", async () => {
  const dir = await tempDir();
  const flake = await run(process.execPath, [MAIN, "--console", "--flake", join(dir, "nope")], { cwd: dir });
  assert.equal(flake.code, 2);
  assert.match(flake.stderr, /^clanbot: --flake .*nope: no such folder/);
  const as = await run(process.execPath, [MAIN, "--console", "--flake", dir, "--as", "alice"], { cwd: dir });
  assert.equal(as.code, 2);
  assert.match(as.stderr, /^clanbot: --as alice: /);
});

test("on a Node older than 22 it says which Node it needs, instead of failing as its dependencies load", async (t) => {
  const old = ["/usr/bin/node", "/usr/local/bin/node"].find((p) => {
    try {
      return Number(execFileSync(p, ["-p", "process.versions.node.split('.')[0]"], { encoding: "utf8" })) < 22;
    } catch {
      return false;
    }
  });
  if (!old) return t.skip("no Node older than 22 on this machine");
  const out = join(await tempDir(), "dist");
  await execFileP(join(root, "node_modules/.bin/tsc"), ["-p", join(root, "tsconfig.build.json"), "--outDir", out]);
  await symlink(join(root, "node_modules"), join(out, "..", "node_modules"));
  await writeFile(join(out, "..", "package.json"), JSON.stringify({ type: "module" }));
  const r = await run(old, [join(out, "bot/main.js"), "--help"], { cwd: out });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^clanbot: needs Node\.js 22 or newer .*; this is Node 2\d\./);
  assert.doesNotMatch(r.stderr, /TEXT_ENCODINGS|\n    at /);
});
