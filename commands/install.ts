import { confirmFirst } from "./confirm-first.ts";
import { resolveMachine } from "./deploy-targets.ts";
import type { InstallSource } from "./deploy-types.ts";
import { runDeploy } from "./deploy.ts";
import { BadInput, ReportedFailure, UserError } from "./errors.ts";
import { bold, code, concat, formatDuration, paragraphs } from "./format.ts";
import { refuseIfBusy } from "./machine-busy.ts";
import { installerKeyAdvice } from "./sshkey.ts";
import type { CommandContext, CommandSpec } from "./types.ts";

const REDACT_REASON = "It shows the installer's login details; clanbot read it and took it out of the room.";

export const installCommand: CommandSpec = {
  name: "install",
  summary: "Installs a machine from the NixOS installer: send a photo of the installer's QR code.",
  level: "admin",
  args: [
    { name: "machine", summary: "the clan machine to install", required: true },
    { name: "target", summary: "root@host of the installer, instead of its QR code" },
  ],
  flags: [],
  details:
    "I ask for a photo of the QR code on the installer's screen (or its JSON, pasted). I read it, take the message out of " +
    "the room (older installers put a password in it), find the address that answers, check that the installer lets me in " +
    "with my SSH key (current installers take keys only: !sshkey says how to put mine there), and run clan machines install " +
    "with my key. This erases the disks of the machine it installs to.",
  async run(ctx, input): Promise<void> {
    const machine = await resolveMachine(ctx, input.args[0] as string);
    await refuseIfBusy(ctx, machine, "installed");
    const source = input.args[1] !== undefined ? await byTarget(ctx, machine, input.args[1]) : await byQrCode(ctx, machine);
    const final = await runDeploy(ctx, "install", [machine], { install: source });
    if (final.result !== "ok") throw new ReportedFailure(`install ${final.result}`);
    await ctx.reply(
      concat(`${machine} is installed. It has a new host key, which I will pin the next time I reach it; `, code(`${ctx.prefix}status ${machine}`), " shows how it is."),
    );
  },
};

async function byTarget(ctx: CommandContext, machine: string, text: string): Promise<InstallSource> {
  const target = ctx.ssh.parseTarget(text);
  if ("error" in target) throw new BadInput(`That is not an SSH target: ${target.error}. Write it as root@host or root@host:port.`);
  await confirmFirst(ctx, {
    ask: concat(bold(`Install ${machine} to ${target.text}?`), " This erases the disks of the machine at that address."),
    subject: `Install of ${machine}`,
    confirmedSubject: `Install of ${machine} to ${target.text}`,
  });
  return { kind: "target", target: target.text };
}

async function byQrCode(ctx: CommandContext, machine: string): Promise<InstallSource> {
  const wait = formatDuration(ctx.installReplyTimeoutMs);
  const reply = await ctx.askFor(
    paragraphs(
      concat(bold(`Installing ${machine}.`), " Boot the machine from the clan installer; its screen shows a QR code."),
      concat(
        `${ctx.sender.name}, send me a photo of that QR code within ${wait} (or paste the JSON from the installer). ` +
          "I remove your message from the room as soon as I have read it. The installer must let me in with my SSH key: " +
          `if it was not written with it, ${ctx.prefix}sshkey says how to put it there.`,
      ),
    ),
    ctx.installReplyTimeoutMs,
  );
  if (!reply) throw new UserError(`No photo or JSON came within ${wait}: nothing was installed. Start again with ${ctx.prefix}install ${machine}.`);
  const read = await ctx.ssh.readInstallerCode(reply.content);
  const removed = await reply.remove(REDACT_REASON);
  const removal = removed ? "" : " I could not remove your message (I may lack the power to): please delete it yourself, it shows the installer's password.";
  if (!read.ok) throw new UserError(`I could not use that: ${read.reason}. Nothing was installed.${removal}`);
  const { installer } = read;
  const address = await ctx.ssh.firstAnswering(installer.addrs, ctx.signal);
  if (!address) {
    throw new UserError(
      `None of the installer's addresses (${installer.addrs.join(", ")}) answers on SSH from my host. ` +
        `Is the installer on a network I can reach? Nothing was installed.${removal}`,
    );
  }
  const login = await ctx.ssh.installerLogin(address, ctx.signal);
  if (login === "refused" && installer.pass === null) {
    await ctx.reply(
      paragraphs(
        concat(
          `❌ The installer at ${address} does not let me in with my SSH key, and its code has no password (the current installer takes keys only). ` +
            `Nothing was installed.${removal}`,
        ),
        installerKeyAdvice(ctx.ssh.publicKey),
        concat("Then send ", code(`${ctx.prefix}install ${machine}`), " again."),
      ),
    );
    throw new ReportedFailure("the installer refused the bot's key");
  }
  await ctx.reply(concat(`Read the installer's code: it answers at ${address}. Installing ${machine} there now.${removal}`));
  return { kind: "installer", installer, address };
}
