import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, test } from "node:test";
import { FAMILY } from "./support/e2e.ts";
import { fakeClanDir, makeFlake } from "../demo/fake-clan-fixture.ts";
import { MAIN } from "./support/bot-process.ts";
import { FakeMachine } from "./support/fake-machine.ts";
import { qrPhoto } from "./support/photo.ts";
import { tempDir } from "./support/temp-dir.ts";

const root = new URL("..", import.meta.url).pathname;

function runWithInput(cmd: string, args: string[], input: string, env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd: root, env: { ...process.env, ...env }, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    p.on("error", reject);
    p.on("close", (code) => resolve({ code, stdout, stderr }));
    p.stdin.end(input);
  });
}

test("printf '!help\\n!machines\\n' | npm start -- --console --flake DIR prints both answers", async () => {
  const flake = await makeFlake(join(await tempDir(), "home"), FAMILY);
  const r = await runWithInput("npm", ["start", "--silent", "--", "--console", "--flake", flake], "!help\n!machines\n", {
    PATH: `${fakeClanDir}:${process.env["PATH"] ?? ""}`,
  });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /clanbot commands/);
  assert.match(r.stdout, /!machines \[--tag <tag>\]\.\.\./);
  assert.match(r.stdout, /3 machines in clan 'home':/);
  // Terminal text, not Matrix markup: no backticks or asterisks when the output is not a terminal.
  assert.match(r.stdout, /\nnas\s+Storage in the basement\s+servers, storage\s+root@nas\.lan:2222\n/);
  assert.doesNotMatch(r.stdout, /`|\*/);
  assert.equal(r.stdout.match(/\[✅\]/g)?.length, 2);
});

test("the console acts as the configured user, with that user's level", async () => {
  const dir = await tempDir();
  const flake = await makeFlake(join(dir, "home"), FAMILY);
  const config = join(dir, "config.yaml");
  await writeFile(config, `storage:\n  path: ${dir}/s.sqlite3\nclan:\n  command: ${fakeClanDir}/clan\n`);
  const r = await runWithInput(
    process.execPath,
    [MAIN, "--config", config, "--console", "--flake", flake, "--as", "@kid:home.org", "--power-level", "0"],
    "whoami\nrefresh\nmachines --tag storage\n",
    {},
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /@kid:home\.org in clan 'home': power level 0, viewer/);
  assert.match(r.stdout, /!refresh needs the operator level \(power level 50 in this room\); you have power level 0/);
  assert.match(r.stdout, /\[⛔\]/);
  assert.match(r.stdout, /1 machine in clan 'home'/);
  assert.doesNotMatch(r.stdout, /\nlaptop /);
});

test("!install in the console: the path of a photo of the installer's QR code, read and installed", async () => {
  const dir = await tempDir();
  const flake = await makeFlake(join(dir, "home"), { ...FAMILY, behaviour: { "machines install": { delayMs: 50 } } });
  const installer = await FakeMachine.start({ dir: join(dir, "installer"), authorizedKeys: [], plain: true });
  after(() => installer.stop());
  const photo = qrPhoto(JSON.stringify({ pass: "console-secret-words", tor: null, addrs: ["127.0.0.1"] }), { angleDeg: 30, blur: 1 });
  const photoPath = join(dir, "IMG_0001.jpg");
  await writeFile(photoPath, photo.jpeg);
  const config = join(dir, "config.yaml");
  await writeFile(config, `storage:\n  path: ${dir}/s.sqlite3\nclan:\n  command: ${fakeClanDir}/clan\ninstall:\n  installerPort: ${installer.port}\n`);
  const r = await runWithInput(process.execPath, [MAIN, "--config", config, "--console", "--flake", flake], `install media\n${photoPath}\n`, {});
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /send me a photo of that QR code/);
  assert.match(r.stdout, /Read the installer's code: it answers at 127\.0\.0\.1\. Installing media there now\./);
  assert.doesNotMatch(r.stdout, /could not remove/);
  assert.match(r.stdout, /✅ media: installed in/);
  assert.match(r.stdout, /\[✅\]/);
  assert.ok(!r.stdout.includes("console-secret-words") && !r.stderr.includes("console-secret-words"));
});

test("!invite in the console: without web.publicUrl it explains how to turn join codes on; a direct invite needs Matrix", async () => {
  const dir = await tempDir();
  const flake = await makeFlake(join(dir, "home"), FAMILY);
  const config = join(dir, "config.yaml");
  await writeFile(config, `storage:\n  path: ${dir}/s.sqlite3\nclan:\n  command: ${fakeClanDir}/clan\n`);
  const r = await runWithInput(process.execPath, [MAIN, "--config", config, "--console", "--flake", flake], "invite\ninvite @bob:example.org\ninvites\n", {});
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Join codes need the bot's join page to be reachable from people's phones/);
  assert.match(r.stdout, /set web\.publicUrl in the bot's config/);
  assert.match(r.stdout, /invite people by their Matrix ID: !invite @name:example\.org/);
  assert.match(r.stdout, /Could not invite @bob:example\.org: the bot is not connected to Matrix here \(the console has no room\)/);
  assert.match(r.stdout, /No join code is active/);
});
