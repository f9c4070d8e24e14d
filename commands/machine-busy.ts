import { BACKUP_ENDS } from "./backup-types.ts";
import { describeLock } from "./deploy-format.ts";
import { FINAL_PHASES } from "./deploy-types.ts";
import { Refusal } from "./errors.ts";
import type { CommandContext } from "./types.ts";

/**
 * Refuses to touch a machine that someone else has locked, or that a deploy, rollback, install or
 * restore is changing (or a backup is reading) right now: a reboot in the middle of a switch is how
 * machines end up half-updated.
 */
export async function refuseIfBusy(ctx: CommandContext, machine: string, what: string): Promise<void> {
  const now = ctx.clock.now();
  const lock = (await ctx.deploys.locks()).find((l) => l.machine === machine && l.holder !== ctx.sender.id);
  if (lock) throw new Refusal(`${describeLock(lock, now)}. Nothing was ${what}. Ask them, or an admin can ${ctx.prefix}unlock ${machine}.`);
  const busy = ctx.deploys.active().find((d) => d.kind !== "dry-run" && d.machines.some((m) => m.machine === machine && !FINAL_PHASES.has(m.phase)));
  if (busy) {
    throw new Refusal(
      `${machine} is being changed right now (#${busy.id} by ${busy.sender}). Nothing was ${what}. ` +
        `Wait for it to end, or ${ctx.prefix}cancel ${busy.id}.`,
    );
  }
  // A reboot or install in the middle of a backup leaves a broken archive behind.
  const backup = ctx.backups.active().find((b) => b.machine === machine && !BACKUP_ENDS.has(b.phase));
  if (backup) {
    throw new Refusal(
      `${machine} is being backed up right now (#${backup.id} by ${backup.sender}). Nothing was ${what}. ` +
        `Wait for it to end, or ${ctx.prefix}cancel ${backup.id}.`,
    );
  }
}
