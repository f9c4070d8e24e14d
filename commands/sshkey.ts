import { code, codeBlock, concat, paragraphs, type Message } from "./format.ts";
import type { CommandSpec } from "./types.ts";

/**
 * The current clan installer lets root in with a key only (`"pass": null` in its QR code, sshd
 * PermitRootLogin prohibit-password): the bot's key must be on it before `!install`.
 */
export function installerKeyAdvice(key: string): Message {
  return paragraphs(
    concat(
      "For ",
      code("!install"),
      ": the clan installer lets root in with a key only. Put my key on the installer before it boots, when you write its USB stick:",
    ),
    codeBlock(`echo '${key}' > clanbot.pub\nclan flash write --ssh-pubkey clanbot.pub ...`),
    concat("or, on a running installer's console, add it to /root/.ssh/authorized_keys:"),
    codeBlock(`mkdir -p /root/.ssh && echo '${key}' >> /root/.ssh/authorized_keys`),
  );
}

export const sshkeyCommand: CommandSpec = {
  name: "sshkey",
  readOnly: true,
  summary: "Shows my public SSH key and how to let me onto a machine.",
  level: "viewer",
  args: [],
  flags: [],
  async run(ctx): Promise<Message> {
    const key = ctx.ssh.publicKey;
    return paragraphs(
      concat(`My SSH key (${ctx.ssh.keyFingerprint}):`),
      codeBlock(key),
      concat(
        "To let me check, reboot and roll back a machine, add it to root's authorized keys in the clan, for every machine at once " +
          "through the admin service in the inventory:",
      ),
      codeBlock(`inventory.instances.admin.roles.default.settings.allowedKeys."clanbot" = "${key}";`),
      concat("or for one machine in its NixOS configuration:"),
      codeBlock(`users.users.root.openssh.authorizedKeys.keys = [ "${key}" ];`),
      concat("Then deploy the machine (", code(`${ctx.prefix}deploy <machine>`), ") and try ", code(`${ctx.prefix}status <machine>`), "."),
      installerKeyAdvice(key),
    );
  },
};
