import { describeLock, formatLocks } from "./deploy-format.ts";
import { resolveMachine } from "./deploy-targets.ts";
import { BadInput, Refusal, UserError } from "./errors.ts";
import { concat, formatDuration, type Message } from "./format.ts";
import { allows } from "./levels.ts";
import type { CommandSpec } from "./types.ts";

const DEFAULT_LOCK_MS = 3600_000;
const MAX_LOCK_MS = 7 * 24 * 3600_000;

export const lockCommand: CommandSpec = {
  name: "lock",
  summary: "Keeps others from deploying a machine for a while (default 1 h).",
  level: "operator",
  args: [
    { name: "machine", summary: "the machine to lock", required: true },
    { name: "reason", summary: "why, for the others", variadic: true },
  ],
  flags: [{ name: "for", type: "duration", placeholder: "duration", summary: "how long, such as 30m or 2h (at most 7 d)" }],
  details: "Locking a machine you already hold renews the lock. Locks expire on their own; !unlock ends one early.",
  async run(ctx, input): Promise<Message> {
    const machine = await resolveMachine(ctx, input.args[0] as string);
    const forMs = (input.flags["for"] as number | undefined) ?? DEFAULT_LOCK_MS;
    if (forMs > MAX_LOCK_MS) throw new BadInput(`A lock lasts at most ${formatDuration(MAX_LOCK_MS)}; renew it when it runs out.`);
    const reason = input.args.slice(1).join(" ").trim().slice(0, 200) || undefined;
    const now = ctx.clock.now();
    const r = await ctx.deploys.lock({ machine, holder: ctx.sender.id, reason, since: now, until: now + forMs });
    if (!r.taken) throw new Refusal(`${describeLock(r.held, now)}.`);
    return concat(
      `🔒 ${machine} is locked by you for ${formatDuration(forMs)}${reason ? ` (${reason})` : ""}: nobody else can deploy it. `,
      `${ctx.prefix}unlock ${machine} ends it.`,
    );
  },
};

export const unlockCommand: CommandSpec = {
  name: "unlock",
  summary: "Ends a machine's lock: your own, or anyone's for admins.",
  level: "operator",
  args: [{ name: "machine", summary: "the locked machine", required: true }],
  flags: [],
  async run(ctx, input): Promise<Message> {
    const machine = await resolveMachine(ctx, input.args[0] as string);
    const now = ctx.clock.now();
    const held = (await ctx.deploys.locks()).find((l) => l.machine === machine);
    if (!held) throw new UserError(`${machine} is not locked.`);
    if (held.holder !== ctx.sender.id && !allows(ctx.sender.level, "admin")) {
      throw new Refusal(`${describeLock(held, now)}; only they or an admin (power level ${ctx.thresholds.admin}) can unlock it.`);
    }
    await ctx.deploys.unlock(machine);
    return concat(`🔓 ${machine} is unlocked${held.holder !== ctx.sender.id ? ` (it was locked by ${held.holder})` : ""}.`);
  },
};

export const locksCommand: CommandSpec = {
  name: "locks",
  readOnly: true,
  summary: "Shows which machines are locked, by whom, why and until when.",
  level: "viewer",
  args: [],
  flags: [],
  async run(ctx): Promise<Message> {
    return formatLocks(await ctx.deploys.locks(), ctx.clock.now());
  },
};
