import { resolveTargets } from "./deploy-targets.ts";
import { BadInput } from "./errors.ts";
import { formatStatus } from "./ssh-format.ts";
import type { Message } from "./format.ts";
import type { CommandSpec } from "./types.ts";

export const statusCommand: CommandSpec = {
  name: "status",
  readOnly: true,
  summary: "Shows how machines are: reachable, uptime, NixOS release and state version, system, pending reboot, failed units, disk, drift.",
  level: "viewer",
  args: [{ name: "machines", summary: "machine names, tag:<tag>, or all (the default)", variadic: true }],
  flags: [],
  details:
    "Asks each machine over SSH, several at once, each within a time limit. Drift tells whether the machine runs " +
    "the system I last deployed there. A machine's host key is pinned the first time I reach it.",
  async run(ctx, input): Promise<Message> {
    const { machines } = await resolveTargets(ctx, input.args.length ? input.args : ["all"]);
    if (!machines.length) throw new BadInput("No machine matches that.");
    // The state version is the flake's (system.stateVersion); the release is what the machine runs.
    const [statuses, stateVersions] = await Promise.all([ctx.ssh.status(machines, ctx.signal), ctx.clan.stateVersions?.(ctx.signal).catch(() => ({})) ?? {}]);
    return formatStatus(statuses, ctx.prefix, stateVersions);
  },
};
