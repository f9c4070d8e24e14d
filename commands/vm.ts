import { resolveMachine } from "./deploy-targets.ts";
import { Refusal, ReportedFailure, UserError } from "./errors.ts";
import { concat, type Message } from "./format.ts";
import { describeCommand } from "./help.ts";
import { allows } from "./levels.ts";
import { parsePorts } from "./vm-ports.ts";
import { describeBackend, formatBuilding, formatEnd, formatLogTail, formatRefusal, formatRunning, formatVmList } from "./vm-format.ts";
import type { CommandContext, CommandSpec, SentMessage } from "./types.ts";

const LOG_LINES = 20;

/** A name from the inventory (with a suggestion when mistyped); a darwin machine has no NixOS VM. */
async function nixosMachine(ctx: CommandContext, word: string): Promise<string> {
  const machine = await resolveMachine(ctx, word);
  const m = (await ctx.clan.machines(ctx.signal)).find((x) => x.name === machine);
  if (m?.machineClass === "darwin") throw new UserError(`${machine} is a darwin machine: only NixOS machines have a VM.`);
  return machine;
}

/** Answers in the status message when there is one (a build was shown), else as a new reply. */
async function show(ctx: CommandContext, status: Promise<SentMessage> | undefined, message: Message): Promise<void> {
  if (status) await (await status).edit(message);
  else await ctx.reply(message);
}

const runCommand: CommandSpec = {
  name: "vm run",
  summary: "Starts the machine's VM on the bot's host and says where to reach it.",
  level: "operator",
  args: [{ name: "machine", summary: "the machine whose VM to start", required: true }],
  flags: [{ name: "port", type: "string", multiple: true, placeholder: "host:guest", summary: "forward a host port to a port of the VM, e.g. 8080:80 (repeatable)" }],
  async run(ctx, input) {
    const ports = parsePorts((input.flags["port"] as string[] | undefined) ?? []);
    const machine = await nixosMachine(ctx, input.args[0] as string);
    let status: Promise<SentMessage> | undefined;
    const started = await ctx.vms.start({ id: ctx.runId, sender: ctx.sender.id, machine, ports }, (vm) => {
      if (vm.phase === "building" && vm.backend === "nix") status ??= ctx.reply(formatBuilding(machine, vm.id));
    });
    if (started.kind === "refused") throw new Refusal(formatRefusal(started.refusal, machine, ctx.prefix, ctx.clock.now()));
    if (started.kind === "failed") {
      await show(ctx, status, formatEnd(started.end, ctx.vms.stopTimeoutMs, ctx.clock.now()));
      const log = await ctx.vms.logFile(machine);
      if (log) await ctx.replyFile(log);
      throw new ReportedFailure(`vm ${started.end.result}`);
    }
    await show(ctx, status, formatRunning(started.vm, ctx.vms.publicHost, ctx.prefix));
  },
};

const listCommand: CommandSpec = {
  name: "vm list",
  readOnly: true,
  aliases: ["ls"],
  summary: "The running VMs: machine, who started them, since when, ports, memory.",
  level: "viewer",
  args: [],
  flags: [],
  async run(ctx) {
    return formatVmList(ctx.vms.list(), ctx.vms.publicHost, ctx.clock.now(), ctx.prefix);
  },
};

const stopCommand: CommandSpec = {
  name: "vm stop",
  summary: "Stops a machine's VM: yours, or anyone's for admins. SIGTERM first, killed if it does not end in time.",
  level: "operator",
  args: [{ name: "machine", summary: "the machine whose VM to stop", required: true }],
  flags: [],
  async run(ctx, input) {
    const machine = await resolveMachine(ctx, input.args[0] as string);
    const vm = ctx.vms.list().find((v) => v.machine === machine);
    if (!vm) throw new UserError(`${machine} has no VM running. ${ctx.prefix}vm list shows the running ones.`);
    if (vm.sender !== ctx.sender.id && !allows(ctx.sender.level, "admin")) {
      throw new Refusal(`${machine}'s VM was started by ${vm.sender}; only they or an admin (power level ${ctx.thresholds.admin}) can stop it.`);
    }
    const status = ctx.reply(concat(`Stopping ${machine}'s VM (#${vm.id}): SIGTERM now, killed if it has not ended in ${Math.round(ctx.vms.stopTimeoutMs / 1000)} s.`));
    const end = await ctx.vms.stop(machine, ctx.sender.id);
    if (!end) throw new UserError(`${machine}'s VM had already ended.`);
    await show(ctx, status, formatEnd(end, ctx.vms.stopTimeoutMs, ctx.clock.now()));
  },
};

const logsCommand: CommandSpec = {
  name: "vm logs",
  readOnly: true,
  aliases: ["log"],
  summary: "The last lines of a machine's VM output, and the whole log as a file.",
  level: "viewer",
  args: [{ name: "machine", summary: "the machine whose VM log to show (running, or else its last VM)", required: true }],
  flags: [],
  async run(ctx, input) {
    const machine = await resolveMachine(ctx, input.args[0] as string);
    const tail = await ctx.vms.tail(machine, LOG_LINES);
    if (!tail) throw new UserError(`${machine} has had no VM yet. Start one with ${ctx.prefix}vm run ${machine}.`);
    await ctx.reply(formatLogTail(machine, tail.id, tail.lines));
    const file = await ctx.vms.logFile(machine);
    if (file) await ctx.replyFile(file);
  },
};

export const vmCommand: CommandSpec = {
  name: "vm",
  readOnly: true,
  summary: "Runs VMs of the clan's machines on the bot's host: run, list, stop, logs.",
  level: "viewer",
  args: [],
  flags: [],
  details:
    "A VM is a safe place to try a machine's configuration: nothing touches the real machine. One VM per machine; " +
    "the room is told when a VM exits or crashes. VMs keep running when the bot restarts.",
  helpNote: (ctx) => describeBackend(ctx.vms.backend, ctx.vms.max, ctx.vms.publicHost),
  subcommands: [runCommand, listCommand, stopCommand, logsCommand],
  async run(ctx) {
    return describeCommand(vmCommand, ctx.prefix, ctx.thresholds, describeBackend(ctx.vms.backend, ctx.vms.max, ctx.vms.publicHost));
  },
};
