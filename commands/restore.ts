import { PROVIDER_FLAG, providerOf } from "./backup.ts";
import { confirmFirst } from "./confirm-first.ts";
import { SAFE_NAME } from "./deploy-types.ts";
import { resolveMachine } from "./deploy-targets.ts";
import { checkLocks, runDeploy } from "./deploy.ts";
import { BadInput, ReportedFailure } from "./errors.ts";
import { bold, code, concat } from "./format.ts";
import { nearest } from "./suggest.ts";
import type { CommandSpec } from "./types.ts";

/** The provider a restore uses without `--provider`: the one clan's backups are usually made with. */
export const DEFAULT_RESTORE_PROVIDER = "borgbackup";

export const restoreCommand: CommandSpec = {
  name: "restore",
  summary: "Puts a machine's services back to a backup archive (asks you to confirm first).",
  level: "admin",
  args: [
    { name: "machine", summary: "the machine to restore", required: true },
    { name: "archive", summary: "the archive, as !backups <machine> lists it", required: true },
  ],
  flags: [
    { ...PROVIDER_FLAG, summary: `the backup provider the archive is from (default ${DEFAULT_RESTORE_PROVIDER})` },
    { name: "service", type: "string", placeholder: "name", summary: "restore only this service's state (default: every service)" },
  ],
  details:
    "Runs clan backups restore with the services' pre- and post-restore hooks. It replaces the services' data with the archive's, " +
    "waits for the machine like a deploy, respects locks, is reported like a deploy, and can be cancelled with !cancel.",
  async run(ctx, input): Promise<void> {
    const machine = await resolveMachine(ctx, input.args[0] as string);
    const archive = input.args[1] as string;
    const provider = providerOf(input) ?? DEFAULT_RESTORE_PROVIDER;
    const service = input.flags["service"] as string | undefined;
    if (service !== undefined && !SAFE_NAME.test(service)) throw new BadInput(`'${service.slice(0, 60)}' is not a service's name.`);
    await checkLocks(ctx, [machine], new Set([machine]), "Nothing was restored.");
    // Only an archive clan itself lists is ever passed on.
    const archives = await ctx.backups.archives(machine, provider, ctx.signal);
    if (!archives.includes(archive)) {
      const guess = nearest(archive, archives);
      throw new BadInput(
        `${machine} has no archive '${archive.slice(0, 120)}' from ${provider}.${guess !== undefined ? ` Did you mean '${guess}'?` : ""} ` +
          `${ctx.prefix}backups ${machine}${provider !== DEFAULT_RESTORE_PROVIDER ? ` --provider ${provider}` : ""} lists them.`,
      );
    }
    const what = service !== undefined ? `the ${service} service` : "every backed-up service";
    await confirmFirst(ctx, {
      ask: concat(bold(`Restore ${machine} from ${archive}?`), ` This replaces the data of ${what} on ${machine} with the archive's (`, code(provider), ")."),
      subject: `Restore of ${machine}`,
      confirmedSubject: `Restore of ${machine} from ${archive}`,
      otherwise: "nothing was restored",
      recheck: () => checkLocks(ctx, [machine], new Set([machine]), "Nothing was restored."),
    });
    const final = await runDeploy(ctx, "restore", [machine], { restore: { provider, archive, ...(service !== undefined ? { service } : {}) } });
    if (final.result !== "ok") throw new ReportedFailure(`restore ${final.result}`);
  },
};
