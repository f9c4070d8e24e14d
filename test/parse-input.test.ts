import assert from "node:assert/strict";
import { test } from "node:test";
import { commandLineOf } from "../bot/addressing.ts";
import { parseDuration } from "../commands/duration.ts";
import { UserError } from "../commands/errors.ts";
import { bindInput, tokenize } from "../commands/parse-input.ts";
import type { CommandSpec } from "../commands/types.ts";

const spec: CommandSpec = {
  name: "deploy",
  summary: "deploys",
  level: "operator",
  args: [{ name: "machine", summary: "what to deploy", required: true, variadic: true }],
  flags: [
    { name: "dry-run", type: "boolean", summary: "build only" },
    { name: "for", type: "duration", summary: "how long" },
    { name: "uses", type: "integer", summary: "how often" },
    { name: "tag", type: "string", summary: "tag", multiple: true },
  ],
  run: async () => undefined,
};

function userError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof UserError, `expected a UserError, got ${String(err)}`);
    return err.message;
  }
  assert.fail("no error");
}

test("tokenize honours quotes of every kind and keeps shell characters literal", () => {
  assert.deepEqual(tokenize(`deploy "laptop; touch /tmp/x" 'a b' c\\ d`), ["deploy", "laptop; touch /tmp/x", "a b", "c d"]);
  assert.deepEqual(tokenize("note “for the new laptop” ‘x y’"), ["note", "for the new laptop", "x y"]);
  assert.deepEqual(tokenize(`x "" $(rm -rf /) *`), ["x", "", "$(rm", "-rf", "/)", "*"]);
  assert.match(userError(() => tokenize(`deploy "laptop`)), /unclosed quote/);
});

test("bindInput converts flags by type and keeps positionals", () => {
  const input = bindInput(spec, tokenize("laptop nas --dry-run --for 2h --uses=3 --tag a --tag b"), "!deploy ...", "!");
  assert.deepEqual(input.args, ["laptop", "nas"]);
  assert.deepEqual(input.flags, { "dry-run": true, for: 7_200_000, uses: 3, tag: ["a", "b"] });
});

test("bindInput refuses unknown and malformed flags with a usage line", () => {
  assert.match(userError(() => bindInput(spec, ["--flake=/"], "", "!")), /!deploy has no flag `--flake`.*Usage: `!deploy <machine\.\.\.>/);
  assert.match(userError(() => bindInput(spec, ["x", "--uses", "many"], "", "!")), /takes a whole number, not 'many'/);
  assert.match(userError(() => bindInput(spec, ["x", "--for", "soon"], "", "!")), /takes a duration such as 30m/);
  assert.match(userError(() => bindInput(spec, ["x", "--for"], "", "!")), /`--for` needs a value/);
  assert.match(userError(() => bindInput(spec, ["x", "--dry-run=yes"], "", "!")), /is a switch and takes no value/);
  assert.match(userError(() => bindInput(spec, [], "", "!")), /!deploy needs machine/);
  const noArgs: CommandSpec = { ...spec, args: [], flags: [] };
  assert.match(userError(() => bindInput(noArgs, ["extra"], "", "!")), /does not take 'extra'/);
});

test("a message addresses the bot by prefix or by name, and only then", () => {
  const a = { prefix: "!", names: ["@clanbot:example.org", "Clan Bot", "clanbot"] };
  assert.equal(commandLineOf("!deploy laptop", a), "deploy laptop");
  assert.equal(commandLineOf("  !help  ", a), "help");
  assert.equal(commandLineOf("clanbot: deploy laptop", a), "deploy laptop");
  assert.equal(commandLineOf("Clan Bot, !machines", a), "machines");
  assert.equal(commandLineOf("@clanbot:example.org: help", a), "help");
  assert.equal(commandLineOf("clanbot:", a), "help");
  assert.equal(commandLineOf("clanbot is great", a), undefined);
  assert.equal(commandLineOf("hello !help", a), undefined);
  assert.equal(commandLineOf("!", a), undefined);
  assert.equal(commandLineOf("! not a command", a), undefined);
});

test("durations follow a strict grammar", () => {
  assert.equal(parseDuration("90s"), 90_000);
  assert.equal(parseDuration("1h30m"), 5_400_000);
  assert.equal(parseDuration("7d"), 604_800_000);
  assert.equal(parseDuration("2"), undefined);
  assert.equal(parseDuration("2 hours"), undefined);
  assert.equal(parseDuration(""), undefined);
});
