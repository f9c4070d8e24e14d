import { BadInput, Refusal, UserError } from "./errors.ts";
import { concat, formatDuration, type Message } from "./format.ts";
import { formatInviteCreated, formatInvites, noPublicUrlText } from "./invite-format.ts";
import { DEFAULT_INVITE_VALIDITY_MS, MAX_INVITE_VALIDITY_MS } from "./invite-types.ts";
import { allows } from "./levels.ts";
import { checkMatrixUserId } from "./matrix-id.ts";
import type { CommandSpec } from "./types.ts";

const MAX_USES = 100;
const MAX_NOTE = 200;

export const inviteCommand: CommandSpec = {
  name: "invite",
  summary: "Makes a join code (a QR code to scan with a phone), or invites a Matrix user into this room.",
  level: "operator",
  args: [{ name: "user", summary: "a Matrix ID such as @name:example.org, to invite directly without a code" }],
  flags: [
    { name: "uses", type: "integer", placeholder: "n", summary: `how many people may join with the code (default 1, at most ${MAX_USES})` },
    { name: "expires", type: "duration", placeholder: "duration", summary: "how long the code stays valid (default 24h, at most 30d)" },
    { name: "note", type: "string", placeholder: "text", summary: 'what the code is for, shown in !invites ("for the new laptop")' },
  ],
  details:
    "The QR code opens the bot's join page, where the new person enters their Matrix ID and is invited into this room. " +
    "Only a hash of the code is kept; !invites lists the active ones and !revoke ends one.",
  async run(ctx, input): Promise<Message | void> {
    const user = input.args[0];
    const { uses, expires, note } = input.flags as { uses?: number; expires?: number; note?: string };
    if (user !== undefined) {
      if (uses !== undefined || expires !== undefined || note !== undefined) {
        throw new BadInput("--uses, --expires and --note are for join codes; a Matrix user is invited at once.");
      }
      const checked = checkMatrixUserId(user);
      if (!checked.ok) throw new BadInput(checked.reason);
      await ctx.invites.inviteUser(checked.userId, ctx.sender);
      return concat(`📨 ${checked.userId} is invited to this room.`);
    }
    if (uses !== undefined && (uses < 1 || uses > MAX_USES)) throw new BadInput(`--uses must be between 1 and ${MAX_USES}.`);
    const validFor = expires ?? DEFAULT_INVITE_VALIDITY_MS;
    if (validFor > MAX_INVITE_VALIDITY_MS) {
      throw new BadInput(`A join code is valid for at most ${formatDuration(MAX_INVITE_VALIDITY_MS)}; make a new one when it runs out.`);
    }
    if (note !== undefined && note.length > MAX_NOTE) throw new BadInput(`--note is at most ${MAX_NOTE} characters.`);
    if (!ctx.invites.publicUrl) throw new Refusal(noPublicUrlText(ctx.prefix));
    const created = await ctx.invites.create({ creator: ctx.sender, uses: uses ?? 1, validForMs: validFor, note: note?.trim() || undefined });
    await ctx.reply(formatInviteCreated(created.invite, created.link, ctx.clock.now(), ctx.prefix));
    await ctx.replyFile(created.qr);
  },
};

export const invitesCommand: CommandSpec = {
  name: "invites",
  readOnly: true,
  summary: "Lists the active join codes: id, who made it, note, uses left, expiry.",
  level: "operator",
  args: [],
  flags: [],
  async run(ctx): Promise<Message> {
    return formatInvites(await ctx.invites.active(), ctx.clock.now(), ctx.prefix);
  },
};

export const revokeCommand: CommandSpec = {
  name: "revoke",
  summary: "Ends a join code at once: your own, or anyone's for admins.",
  level: "operator",
  args: [{ name: "id", summary: "the code's id, as !invites shows it (#3 or 3)", required: true }],
  flags: [],
  async run(ctx, input): Promise<Message> {
    const typed = (input.args[0] as string).replace(/^#/, "");
    if (!/^[0-9]{1,15}$/.test(typed)) throw new BadInput(`'${input.args[0]}' is not a join code id; ${ctx.prefix}invites lists them.`);
    const id = Number(typed);
    const held = (await ctx.invites.active()).find((i) => i.id === id);
    if (!held) throw new BadInput(`There is no active join code #${id} in this clan; ${ctx.prefix}invites lists them.`);
    if (held.creator !== ctx.sender.id && !allows(ctx.sender.level, "admin")) {
      throw new Refusal(`Join code #${id} was made by ${held.creator}; only they or an admin (power level ${ctx.thresholds.admin}) can revoke it.`);
    }
    const revoked = await ctx.invites.revoke(id, ctx.sender.id);
    if (!revoked) throw new UserError(`Join code #${id} was used up or expired meanwhile.`);
    return concat(`🚫 Join code #${id} is revoked: it no longer lets anyone join.`);
  },
};
