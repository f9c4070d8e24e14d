import { rm } from "node:fs/promises";
import { formatInterrupted } from "../commands/deploy-format.ts";
import type { Message } from "../commands/format.ts";
import type { Clock, Log } from "../commands/types.ts";
import { stopLeftoverGroup } from "../ops/process-identity.ts";
import type { Db } from "../storage/db.ts";
import { expireDeployLogs, interruptDeploys, markAnnounced, unannouncedDeploys } from "../storage/deploys.ts";

/**
 * At start: deploys still marked running belong to a bot that died. They are marked interrupted,
 * and clan processes they left behind are stopped (a deploy nobody watches must not go on while
 * the machine is free for the next one). Nothing is run again. Old deploy logs are deleted.
 */
export async function recoverDeploys(db: Db, clock: Clock, log: Log, keepLogsMs: number, killGraceMs: number): Promise<void> {
  for (const d of await interruptDeploys(db, clock.now())) {
    const stopped = d.processes.filter((p) => stopLeftoverGroup(p.pid, p.pidStart, killGraceMs)).map((p) => p.machine);
    log.warn({ deploy: d.id, clan: d.clan, machines: d.machines, stopped }, "a deploy was interrupted when the bot last stopped");
  }
  for (const path of await expireDeployLogs(db, clock.now() - keepLogsMs)) {
    await rm(path, { force: true });
  }
}

/**
 * Posts a message in a clan's room, as a reply to `replyTo` (an event id) when given. With `once`, a
 * post made before under the same key (by this run or an earlier one) is not made again.
 */
export type ClanPoster = (clan: string, message: Message, replyTo: string | undefined, once?: string) => Promise<void>;

/** Tells each clan's room, once, about its interrupted deploys. */
export async function announceInterrupted(db: Db, clans: readonly string[], post: ClanPoster, clock: Clock, prefix: string): Promise<void> {
  for (const clan of clans) {
    for (const d of await unannouncedDeploys(db, clan)) {
      await post(clan, formatInterrupted(d, clock.now(), prefix), d.eventId, `interrupted:deploy:${d.id}`);
      await markAnnounced(db, d.id);
    }
  }
}
