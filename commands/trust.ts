import { resolveMachine } from "./deploy-targets.ts";
import { UserError } from "./errors.ts";
import { concat, type Message } from "./format.ts";
import { explainSshFailure } from "./ssh-errors.ts";
import type { CommandSpec } from "./types.ts";

export const trustCommand: CommandSpec = {
  name: "trust",
  summary: "Accepts the host key a machine shows now (after it was reinstalled).",
  level: "admin",
  args: [{ name: "machine", summary: "the machine whose new host key to accept", required: true }],
  flags: [],
  details: "Only do this when you know why the key changed: a changed key can also mean someone is in the way.",
  async run(ctx, input): Promise<Message> {
    const machine = await resolveMachine(ctx, input.args[0] as string);
    if (ctx.ssh.trustAdvice) throw new UserError(`I do not pin host keys here: ${ctx.ssh.trustAdvice}`);
    let r;
    try {
      r = await ctx.ssh.trust(machine, ctx.signal);
    } catch (err) {
      explainSshFailure(err, ctx, machine);
    }
    if (r.kind === "unchanged") return concat(`${machine}'s host key is already the trusted one (${r.fingerprint}).`);
    return concat(
      `🔑 I now trust ${machine}'s host key ${r.fingerprint}`,
      r.previous ? ` instead of ${r.previous}.` : " (there was none before).",
    );
  },
};
