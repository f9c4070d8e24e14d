import type { InviteSummary } from "./invite-types.ts";
import { bold, concat, formatDuration, italic, paragraphs, table, type Message } from "./format.ts";

/** "22 Nov 2026, 15:47 UTC": a time everyone reads the same, wherever their phone is. */
export function utcTime(ms: number): string {
  const d = new Date(ms);
  const month = d.toLocaleString("en-GB", { month: "short", timeZone: "UTC" });
  const hh = String(d.getUTCHours()).padStart(2, "0");
  const mm = String(d.getUTCMinutes()).padStart(2, "0");
  return `${d.getUTCDate()} ${month} ${d.getUTCFullYear()}, ${hh}:${mm} UTC`;
}

const uses = (i: InviteSummary): string => (i.maxUses === 1 ? "one person" : `${i.maxUses} people`);

/** The answer to `!invite`: what the QR code below does, for whom and until when. */
export function formatInviteCreated(i: InviteSummary, link: string, now: number, prefix: string): Message {
  return paragraphs(
    concat(
      `📨 `,
      bold(`Join code #${i.id}`),
      i.note ? concat(` (`, italic(i.note), `)`) : "",
      `: scan the QR code with a phone camera, or open ${link}`,
    ),
    concat(
      `It lets ${uses(i)} join, until ${utcTime(i.expiresAt)} (in ${formatDuration(i.expiresAt - now)}). `,
      `${prefix}revoke ${i.id} ends it sooner.`,
    ),
  );
}

/** `!invites`: the codes still usable; never their tokens. */
export function formatInvites(list: readonly InviteSummary[], now: number, prefix: string): Message {
  if (!list.length) return concat(`No join code is active. ${prefix}invite makes one.`);
  return table(
    ["Id", "Made by", "Note", "Uses left", "Expires"],
    list.map((i) => [
      `#${i.id}`,
      i.creator,
      i.note ?? "",
      `${i.usesLeft} of ${i.maxUses}`,
      `in ${formatDuration(i.expiresAt - now)}`,
    ]),
  );
}

/** What the room is told when someone used a join code. */
export function formatInviteUsed(i: InviteSummary, userId: string): Message {
  const left = i.usesLeft > 0 ? ` (${i.usesLeft} use${i.usesLeft === 1 ? "" : "s"} left)` : "";
  return concat(
    `👋 ${userId} used join code #${i.id}`,
    i.note ? concat(` (`, italic(i.note), `)`) : "",
    ` made by ${i.creatorName}, and is invited to this room${left}.`,
  );
}

/** What the room is told when someone invited through a join code joins it. */
export function formatJoinedWithCode(i: InviteSummary, userId: string): Message {
  return concat(`🎉 ${userId} joined the room with join code #${i.id}`, i.note ? concat(` (`, italic(i.note), `)`) : "", ` from ${i.creatorName}.`);
}

/** `!invite` without a user when the join page has no public address. */
export function noPublicUrlText(prefix: string): string {
  return [
    "Join codes need the bot's join page to be reachable from people's phones, and this bot has no address for it.",
    "To turn them on, set web.publicUrl in the bot's config to the https address that reaches it (for example through " +
      "a reverse proxy to web.listen, by default 127.0.0.1:8080), then restart the bot.",
    `Meanwhile, invite people by their Matrix ID: ${prefix}invite @name:example.org`,
  ].join("\n");
}
