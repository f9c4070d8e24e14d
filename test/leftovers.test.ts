// A test file whose set-up fails at load still stops the processes it started.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { tempDir } from "./support/temp-dir.ts";

const support = new URL("./support/", import.meta.url).pathname;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test("a test file that fails at load after starting the bot leaves no bot process behind", async () => {
  const dir = await tempDir();
  const config = join(dir, "config.yaml");
  await writeFile(config, `storage:\n  path: ${dir}/s.sqlite3\nmatrix:\n  homeserver: http://127.0.0.1:9\n  userId: "@bot:x"\n  password: pw\n`);
  const script = join(dir, "failing-setup.ts");
  await writeFile(
    script,
    `import { startBot } from ${JSON.stringify(join(support, "bot-process.ts"))};\n` +
      `const bot = startBot(${JSON.stringify(config)});\n` +
      "console.log(bot.proc.pid);\n" +
      "await new Promise((r) => setTimeout(r, 500));\n" +
      'throw new Error("chromium is not installed");\n',
  );
  const { stdout, code } = await new Promise<{ stdout: string; code: number | null }>((resolve) => {
    const p = execFile(process.execPath, [script], (_err, out) => resolve({ stdout: out, code: p.exitCode }));
  });
  assert.notEqual(code, 0);
  const pid = Number(stdout.trim());
  assert.ok(pid > 0, stdout);
  for (let i = 0; i < 20 && alive(pid); i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal(alive(pid), false, `bot process ${pid} is still running`);
});

test("npm test first says what the machine lacks for the tests, and how to install it", async () => {
  const { stderr, code } = await new Promise<{ stderr: string; code: number | null }>((resolve) => {
    const p = execFile(process.execPath, [join(support, "requirements.ts")], { env: { PATH: "/nonexistent" } }, (_err, _out, err) => resolve({ stderr: err, code: p.exitCode }));
  });
  assert.equal(code, 1);
  assert.match(stderr, /The tests need:\n.*git/s);
  assert.match(stderr, /apt-get install --no-install-recommends .*git.*procps/);
});
