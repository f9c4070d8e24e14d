import { formatArchives, formatBackupStatus, formatBackupSummaries, MAX_LIST } from "./backup-format.ts";
import type { BackupState } from "./backup-types.ts";
import { SAFE_NAME } from "./deploy-types.ts";
import { resolveMachine } from "./deploy-targets.ts";
import { BadInput, Refusal, ReportedFailure } from "./errors.ts";
import { ago, type Message } from "./format.ts";
import { statusMessage } from "./status-message.ts";
import type { CommandContext, CommandInput, CommandSpec, FlagSpec } from "./types.ts";

export const PROVIDER_FLAG: FlagSpec = {
  name: "provider",
  type: "string",
  placeholder: "name",
  summary: "the backup provider, such as borgbackup (default: every provider the machine has)",
};

/** `--provider`, checked: a name as clan has them, never anything that could pass for an option. */
export function providerOf(input: CommandInput): string | undefined {
  const provider = input.flags["provider"] as string | undefined;
  if (provider !== undefined && !SAFE_NAME.test(provider)) {
    throw new BadInput(`'${provider.slice(0, 60)}' is not a backup provider's name (such as borgbackup or localbackup).`);
  }
  return provider;
}

/** Starts the backup and shows it in one status message, edited as it moves. */
async function runBackup(ctx: CommandContext, machine: string, provider: string | undefined): Promise<BackupState> {
  const status = statusMessage(ctx, formatBackupStatus);
  const request = { id: ctx.runId, machine, sender: ctx.sender.id, trigger: "command" as const, ...(provider !== undefined ? { provider } : {}) };
  const start = await ctx.backups.start(request, status.onChange);
  if ("busy" in start) {
    const b = start.busy;
    throw new Refusal(
      `A backup of ${machine} is ${b.phase === "queued" ? "waiting to run" : "running"} already: #${b.id} by ${b.sender}, ` +
        `asked for ${ago(b.startedAt, ctx.clock.now())}. Backups of one machine never overlap; ${ctx.prefix}cancel ${b.id} stops that one.`,
    );
  }
  return status.follow(start.started, () => void ctx.backups.cancel(ctx.runId, "the bot shutting down"));
}

export const backupCommand: CommandSpec = {
  name: "backup",
  summary: "Backs a machine up now (clan backups create), with live progress.",
  level: "operator",
  args: [{ name: "machine", summary: "the machine to back up", required: true }],
  flags: [PROVIDER_FLAG],
  details:
    "One backup per machine at a time: a second is refused while one runs. A backup waits while the machine is being deployed " +
    "or restored. Cancel with !cancel <id|machine>; !backups <machine> lists the archives.",
  async run(ctx, input): Promise<void> {
    const machine = await resolveMachine(ctx, input.args[0] as string);
    const final = await runBackup(ctx, machine, providerOf(input));
    if (final.phase !== "ok") throw new ReportedFailure(`backup ${final.phase}`);
  },
};

export const backupsCommand: CommandSpec = {
  name: "backups",
  readOnly: true,
  summary: "Lists a machine's backup archives, newest first; without a machine, each machine's last successful backup.",
  level: "viewer",
  args: [{ name: "machine", summary: "the machine whose archives to list (clan backups list)" }],
  flags: [PROVIDER_FLAG, { name: "limit", type: "integer", placeholder: "n", summary: `how many archives to show (default 20, at most ${MAX_LIST})` }],
  async run(ctx, input): Promise<Message> {
    const now = ctx.clock.now();
    if (input.args[0] === undefined) {
      const machines = (await ctx.clan.machines(ctx.signal)).map((m) => m.name);
      return formatBackupSummaries(await ctx.backups.summary(machines), now, ctx.prefix);
    }
    const machine = await resolveMachine(ctx, input.args[0]);
    const provider = providerOf(input);
    const limit = Math.min(Math.max((input.flags["limit"] as number | undefined) ?? 20, 1), MAX_LIST);
    const [archives, [summary]] = await Promise.all([ctx.backups.archives(machine, provider, ctx.signal), ctx.backups.summary([machine])]);
    return formatArchives({ machine, provider, archives, limit, summary, prefix: ctx.prefix }, ctx.clock.now());
  },
};
