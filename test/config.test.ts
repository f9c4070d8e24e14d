import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { ConfigError, parseConfig } from "../bot/config.ts";
import { tempDir } from "./support/temp-dir.ts";

const run = promisify(execFile);
const root = new URL("..", import.meta.url).pathname;

function configError(text: string): string {
  try {
    parseConfig("config.yaml", text, "/state");
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err.message;
  }
  assert.fail("the config was accepted");
}

test("config.example.yaml documents a config the schema accepts, with every top-level key", async () => {
  const text = await readFile(join(root, "config.example.yaml"), "utf8");
  const config = parseConfig("config.example.yaml", text, "/state");
  assert.equal(config.matrix?.homeserver, "https://matrix.example.org");
  assert.equal(config.matrix?.maxCommandAge, 15 * 60_000);
  assert.equal(config.clans.length, 2);
  assert.equal(config.clans[1]?.permissions?.operator, 20);
  for (const key of ["matrix", "storage", "clan", "commands", "permissions", "clans", "console", "log"]) {
    assert.match(text, new RegExp(`^${key}:`, "m"), `config.example.yaml does not document '${key}'`);
  }
});

test("defaults fill everything a console run needs", () => {
  const c = parseConfig("(defaults)", "", "/state");
  // Never ./data of wherever it was started (a clan checkout): the state directory.
  assert.equal(c.storage.path, "/state/clanbot.sqlite3");
  assert.equal(c.clan.command, "clan");
  assert.equal(c.commands.prefix, "!");
  assert.deepEqual(c.clans, []);
});

test("a misspelled key is refused with its path and a suggestion", () => {
  const msg = configError("matrix:\n  homesever: https://m.org\n  userId: '@b:m.org'\n  password: x\n");
  assert.match(msg, /matrix\.homesever: unknown key \(did you mean 'matrix\.homeserver'\?\)/);
  // One mistake, one line: the key it should have been is not also reported missing.
  assert.doesNotMatch(msg, /matrix\.homeserver: required/);
  assert.equal(msg.split("\n").length, 2);
  const nested = configError("clans:\n  - name: fam\n    room: '#f:m.org'\n    flak: /x\n");
  assert.match(nested, /clans\[0\]\.flak: unknown key \(did you mean 'clans\[0\]\.flake'\?\)/);
});

test("bad values name their key and say what was expected", () => {
  assert.match(configError("clan:\n  timeout: 2 hours\n"), /clan\.timeout: expected a duration such as 30s/);
  assert.match(configError("clans:\n  - name: a\n    room: family\n    flake: /x\n"), /clans\[0\]\.room: a Matrix room id/);
  assert.match(
    configError("matrix:\n  homeserver: https://m.org\n  userId: '@b:m.org'\n  password: x\n  accessToken: y\n"),
    /matrix: set exactly one of accessToken, accessTokenFile or password \(2 given\)/,
  );
  assert.match(
    configError("clans:\n  - { name: a, room: '#a:m', flake: /a }\n  - { name: a, room: '#b:m', flake: /b }\n"),
    /clans\[1\]\.name: 'a' is already used by clans\.0/,
  );
  assert.match(configError("matrix: [unclosed\n"), /not valid YAML/);
});

test("type errors say what was expected and what was written, in plain words", () => {
  const msg = configError("deploy:\n  parallel: lots\nvm:\n  max: 2.5\n  backend: qemu\nweb:\n  trustProxy: 'yes'\nclans: {}\n");
  assert.match(msg, /deploy\.parallel: expected a number, got 'lots'/);
  assert.match(msg, /vm\.max: expected a whole number, got 2\.5/);
  assert.match(msg, /vm\.backend: expected one of auto, clan, nix, got 'qemu'/);
  assert.match(msg, /web\.trustProxy: expected true or false, got 'yes'/);
  assert.match(msg, /clans: expected a list/);
  assert.doesNotMatch(msg, /Invalid input|received/);
  assert.match(configError("deploy:\n  parallel: 0\n"), /deploy\.parallel: must be at least 1, got 0/);
});

test("YAML mistakes point at the line that has them (an unclosed quote or bracket: where it opened)", () => {
  assert.match(configError("a: 'unclosed\nb: 2\nc: 3\n"), /not valid YAML, line 1: Missing closing 'quote/);
  assert.match(configError("matrix:\n  homeserver: https://x\n  userId: [\n  password: p\n"), /not valid YAML, line 3: .*\n\s+userId: \[/);
  assert.match(configError("matrix:\n  homeserver: https://x\n  userId @bot:x\n  password: p\n"), /not valid YAML, line 3: /);
});

test("the bot exits with status 2 and names the key when the config has a misspelled key", async () => {
  const dir = await tempDir();
  const file = join(dir, "config.yaml");
  await writeFile(file, "storage:\n  paht: ./x.sqlite3\n");
  const err = await run(process.execPath, [join(root, "bot/main.ts"), "--config", file]).then(
    () => assert.fail("the bot started with a bad config"),
    (e: { code: number; stderr: string }) => e,
  );
  assert.equal(err.code, 2);
  assert.match(err.stderr, /storage\.paht: unknown key \(did you mean 'storage\.path'\?\)/);
});

test("an unknown command-line flag exits with status 2 and usage", async () => {
  const err = await run(process.execPath, [join(root, "bot/main.ts"), "--confg", "x.yaml"]).then(
    () => assert.fail("the bot accepted --confg"),
    (e: { code: number; stderr: string }) => e,
  );
  assert.equal(err.code, 2);
  assert.match(err.stderr, /Unknown option '--confg'/);
  assert.match(err.stderr, /Usage: clanbot/);
});
