// Starting the real clanbot (bot/main.ts as a child process) against the test homeserver for a benchmark.
import { join } from "node:path";
import { startBot, writeConfig, type BotProcess } from "../test/support/bot-process.ts";
import type { Account } from "./human.ts";

export interface BenchClan {
  name: string;
  room: string;
}

/**
 * Writes a config binding each clan to its room (logging at warn, so logging does not dominate;
 * `clan.command` is /bin/false: `!whoami` never runs clan) and starts the bot on it, with
 * `nodeOptions` as its NODE_OPTIONS if given (to try V8 flags such as --max-semi-space-size).
 */
export async function startClanbot(
  dir: string,
  homeserver: string,
  bot: Account,
  clans: readonly BenchClan[],
  nodeOptions?: string,
): Promise<BotProcess> {
  const config = {
    matrix: { homeserver, userId: bot.userId, accessToken: bot.accessToken, maxCommandAge: "15m" },
    storage: { path: join(dir, "state", "clanbot.sqlite3") },
    clan: { command: "/bin/false" },
    clans: clans.map((c) => ({ name: c.name, room: c.room, flake: join(dir, "flakes", c.name) })),
    log: { level: "warn" },
  };
  return startBot(await writeConfig(dir, config), nodeOptions ? { env: { NODE_OPTIONS: nodeOptions } } : {});
}
