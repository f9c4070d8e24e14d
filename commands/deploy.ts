import { confirmFirst } from "./confirm-first.ts";
import { formatDeployStatus, describeLock } from "./deploy-format.ts";
import type { DeployKind, DeployRequest, DeployState } from "./deploy-types.ts";
import { resolveTargets } from "./deploy-targets.ts";
import { BadInput, Refusal, ReportedFailure } from "./errors.ts";
import { bold, concat, type Message } from "./format.ts";
import { statusMessage } from "./status-message.ts";
import type { CommandContext, CommandSpec } from "./types.ts";

/** Refuses machines someone else has locked: named ones always, ones picked by a tag or `all` only when all are. */
export async function checkLocks(ctx: CommandContext, machines: readonly string[], named: ReadonlySet<string>, outcome = "Nothing was deployed."): Promise<void> {
  const now = ctx.clock.now();
  const blocking = (await ctx.deploys.locks()).filter((l) => machines.includes(l.machine) && l.holder !== ctx.sender.id);
  // A machine named on its own is refused; one picked by a tag or `all` is skipped when its turn comes.
  const refused = blocking.filter((l) => named.has(l.machine) || blocking.length === machines.length);
  if (refused.length) {
    throw new Refusal(
      `${refused.map((l) => describeLock(l, now)).join("; ")}. ${outcome} ` +
        `Ask them, or an admin can ${ctx.prefix}unlock ${refused[0]?.machine}.`,
    );
  }
}

function askFirst(ctx: CommandContext, machines: readonly string[], all: boolean): Promise<void> {
  return confirmFirst(ctx, {
    ask: concat(bold(`Deploy ${all ? "all " : ""}${machines.length} machines?`), ` ${machines.join(", ")}`),
    subject: `Deploy of ${machines.length} machines`,
    confirmedSubject: `Deploy of ${machines.length} machines (${machines.join(", ")})`,
    otherwise: "nothing was deployed",
  });
}

/** Starts the deploy, shows it in one message edited as it moves, and attaches the log at the end. */
export async function runDeploy(
  ctx: CommandContext,
  kind: DeployKind,
  machines: readonly string[],
  source: Pick<DeployRequest, "install" | "restore"> = {},
): Promise<DeployState> {
  const status = statusMessage(ctx, formatDeployStatus);
  const request: DeployRequest = { id: ctx.runId, kind, sender: ctx.sender.id, machines, ...source };
  const running = await ctx.deploys.start(request, status.onChange);
  // Packed and posted beside the final edit, which may wait for its 2 s gap (both after ✅/❌).
  const attach = async (): Promise<void> => {
    const log = await ctx.deploys.logFile(ctx.runId);
    await ctx.replyFile(log);
    if (log.truncatedFrom !== undefined) {
      const mb = Math.round(log.truncatedFrom / 1e6);
      await ctx.reply(concat(`The log is ${mb} MB: only its end is attached; the whole log stays on the bot's host.`));
    }
  };
  return status.follow(running, () => void ctx.deploys.cancel(ctx.runId, "the bot shutting down"), attach);
}

const NO_TARGET = "set the inventory's deploy.targetHost or clan.core.networking.targetHost";

/**
 * clan cannot deploy a machine without a target host: one named on its own is refused; ones a tag
 * or `all` picked are left out, and the room is told which.
 */
export async function leaveOutUntargeted(ctx: CommandContext, machines: readonly string[], named: ReadonlySet<string>): Promise<string[]> {
  const without = new Set(await ctx.ssh.withoutTarget(machines, ctx.signal));
  if (!without.size) return [...machines];
  const namedWithout = [...without].filter((m) => named.has(m));
  const list = (ms: readonly string[]): string => ms.join(", ");
  if (namedWithout.length || without.size === machines.length) {
    const which = namedWithout.length ? namedWithout : [...without];
    throw new Refusal(`${list(which)} ${which.length === 1 ? "has" : "have"} no target host, so clan cannot deploy ${which.length === 1 ? "it" : "them"}: ${NO_TARGET}. Nothing was deployed.`);
  }
  await ctx.reply(concat(`Leaving out ${list([...without])}: no target host (${NO_TARGET}).`));
  return machines.filter((m) => !without.has(m));
}

export const deployCommand: CommandSpec = {
  name: "deploy",
  summary: "Deploys machines: their NixOS configuration from the clan flake, with live progress and the log.",
  level: "operator",
  args: [{ name: "machines", summary: "machine names, tag:<tag>, or all", required: true, variadic: true }],
  flags: [{ name: "dry-run", type: "boolean", summary: "only build the systems, without switching to them" }],
  details:
    "One deploy per machine at a time: a second one waits in line. Deploying more machines than the clan's limit, " +
    "or all, asks you to confirm with ✅ first. Cancel with !cancel <id|machine>; see past deploys with !deploys.",
  async run(ctx, input): Promise<Message | void> {
    const kind: DeployKind = input.flags["dry-run"] === true ? "dry-run" : "switch";
    const picked = await resolveTargets(ctx, input.args);
    const { all, named } = picked;
    if (!picked.machines.length) throw new BadInput("No machine matches that.");
    let machines = picked.machines;
    if (kind === "switch") {
      machines = await leaveOutUntargeted(ctx, machines, named);
      await checkLocks(ctx, machines, named);
      if (all || machines.length > ctx.deploys.confirmAbove) await askFirst(ctx, machines, all);
    }
    const final = await runDeploy(ctx, kind, machines);
    if (final.result !== "ok") throw new ReportedFailure(`deploy ${final.result}`);
  },
};
