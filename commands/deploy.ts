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
  source: Pick<DeployRequest, "install" | "restore" | "generation" | "vars"> = {},
): Promise<DeployState> {
  const status = statusMessage(ctx, (s: DeployState, now: number) => formatDeployStatus(s, now, ctx.prefix));
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

const NO_ROUTE = "no inventory deploy.targetHost, no clan network has it as a peer, no clan.core.networking.targetHost";

/**
 * Machines picked by `all` or a tag are the ones clan itself would update: those that must be
 * updated by name (`requireExplicitUpdate`) are left out, and so are those clan has no way to
 * reach (no inventory target, no network route, no configured targetHost), which clan would pick
 * and fail. A machine named on its own that clan cannot reach is refused.
 */
export async function leaveOut(ctx: CommandContext, machines: readonly string[], named: ReadonlySet<string>): Promise<{ machines: string[]; note: Message | undefined }> {
  const plan = await ctx.clan.updatePlan?.(ctx.signal);
  if (!plan) return { machines: [...machines], note: undefined };
  const namedUnreachable = machines.filter((m) => named.has(m) && plan.noRoute.has(m));
  if (namedUnreachable.length) {
    const one = namedUnreachable.length === 1;
    throw new Refusal(`${namedUnreachable.join(", ")} ${one ? "has" : "have"} no way to be reached, so clan cannot deploy ${one ? "it" : "them"}: ${NO_ROUTE}. Nothing was deployed.`);
  }
  const explicit = machines.filter((m) => !named.has(m) && plan.explicitOnly.has(m));
  const unreachable = machines.filter((m) => !named.has(m) && !plan.explicitOnly.has(m) && plan.noRoute.has(m));
  const kept = machines.filter((m) => !explicit.includes(m) && !unreachable.includes(m));
  const said: string[] = [];
  if (explicit.length) said.push(`Left out, as clan does: ${explicit.join(", ")} (requireExplicitUpdate: deploy ${explicit.length === 1 ? "it" : "them"} by name).`);
  if (unreachable.length) {
    said.push(
      `Skipped: ${unreachable.join(", ")}: no way to reach ${unreachable.length === 1 ? "it" : "them"} ` +
        `(${NO_ROUTE}).`,
    );
  }
  if (!kept.length) throw new Refusal(`${said.join(" ")} Nothing is left to deploy.`);
  return { machines: kept, note: said.length ? concat(`⏭️ ${said.join(" ")}`) : undefined };
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
    let machines = picked.machines;
    if (!machines.length) throw new BadInput("No machine matches that.");
    if (kind === "switch") {
      const left = await leaveOut(ctx, machines, named);
      machines = left.machines;
      if (left.note) await ctx.reply(left.note);
    }
    if (kind === "switch") {
      await checkLocks(ctx, machines, named);
      if (all || machines.length > ctx.deploys.confirmAbove) await askFirst(ctx, machines, all);
    }
    const final = await runDeploy(ctx, kind, machines);
    if (final.result !== "ok") throw new ReportedFailure(`deploy ${final.result}`);
  },
};
