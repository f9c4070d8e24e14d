#!/usr/bin/env node
import { access, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import type { Message } from "../commands/format.ts";
import { createApp, consoleClan } from "./app.ts";
import { parseCliArgs, USAGE, UsageError, type CliArgs } from "./cli-args.ts";
import { ConfigError, loadConfig, parseConfig, type Config } from "./config.ts";
import { runConsole } from "./console-front-end.ts";
import { createLogger } from "./logger.ts";
import { runMatrix } from "./matrix/run-matrix.ts";

const DEFAULT_CONFIG = "./config.yaml";

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** The config to use and whether to open the console: no config file at all means the console. */
async function resolveConfig(args: CliArgs): Promise<{ config: Config; console: boolean }> {
  if (args.config !== undefined || (await exists(DEFAULT_CONFIG))) {
    const config = await loadConfig(args.config ?? DEFAULT_CONFIG);
    if (!args.console && !config.matrix) {
      throw new ConfigError(`${args.config ?? DEFAULT_CONFIG}: matrix: required to run on Matrix (or start with --console)`);
    }
    return { config, console: args.console || !config.matrix };
  }
  if (!args.console) {
    process.stderr.write(`No ${DEFAULT_CONFIG} here: opening the console. clanbot --help tells more.\n`);
  }
  return { config: parseConfig("(defaults)", ""), console: true };
}

async function main(argv: readonly string[]): Promise<number> {
  const args = parseCliArgs(argv);
  if (args.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const { config, console } = await resolveConfig(args);
  const log = createLogger(config.log.level ?? (console ? "warn" : "info"));

  if (console) {
    const clan = consoleClan(args.flake ?? process.cwd());
    const app = await createApp(config, [clan], log);
    try {
      const print = async (_clan: string, message: Message): Promise<void> => {
        process.stdout.write(`${message.text}\n`);
      };
      await app.announceInterrupted(print);
      await app.announcer.connect(print);
      await runConsole({
        dispatcher: app.dispatcher,
        clan: clan.name,
        prefix: config.commands.prefix,
        user: { id: args.as ?? config.console.user, powerLevel: args.powerLevel ?? config.console.powerLevel },
        input: process.stdin,
        output: process.stdout,
        interactive: process.stdin.isTTY === true && process.stdout.isTTY === true,
        now: () => Date.now(),
        saveFile: async (file) => {
          const dir = await mkdtemp(join(tmpdir(), "clanbot-"));
          const path = join(dir, basename(file.name));
          await writeFile(path, file.data, { mode: 0o600 });
          return path;
        },
      });
    } finally {
      await app.close();
    }
    return 0;
  }
  if (args.flake) throw new UsageError("--flake is for the console; clans and their flakes are listed in the config");
  const app = await createApp(config, config.clans, log);
  const code = await runMatrix(app);
  // matrix-js-sdk leaves request timers behind (up to its sync timeout); do not wait for them.
  await new Promise<void>((resolve) => log.flush(() => resolve()));
  process.exit(code);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof ConfigError || err instanceof UsageError) {
      process.stderr.write(`clanbot: ${err.message}\n`);
      if (err instanceof UsageError) process.stderr.write(`${USAGE}\n`);
      process.exitCode = 2;
      return;
    }
    process.stderr.write(`clanbot: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
