// The README's examples work as written.

import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";

const root = new URL("..", import.meta.url).pathname;

test("the NixOS example puts clan on the service's PATH (services.clanbot.clanPackage), as the module needs", async () => {
  const readme = await readFile(join(root, "README.md"), "utf8");
  const example = /```nix\n([\s\S]*?)```/.exec(readme)?.[1] ?? "";
  assert.match(example, /services\.clanbot = \{/);
  // The module leaves `clan` off the PATH unless clanPackage is set or clan.command is an absolute path.
  const module = await readFile(join(root, "nix/module.nix"), "utf8");
  assert.match(module, /clanPackage = mkOption/);
  assert.match(example, /clanPackage = clan-core\.packages\.[\w-]+\.clan-cli;/);
  assert.match(example, /inputs\.clan-core\.url = /);
  assert.match(example, /outputs = \{[^}]*clan-core[^}]*\}/);
});
