import { createHash } from "node:crypto";
import { escapeHtml } from "../../commands/format.ts";
import { utcTime } from "../../commands/invite-format.ts";
import type { JoinOffer } from "../invite-service.ts";

/** The pages' only style, inline; the Content-Security-Policy allows exactly this text by its hash. */
const STYLE = `
:root{color-scheme:light dark;--fg:#1d1d1f;--bg:#f5f5f7;--card:#fff;--muted:#6e6e73;--accent:#0b6bcb;--bad:#b3261e}
@media (prefers-color-scheme:dark){:root{--fg:#f5f5f7;--bg:#111;--card:#1f1f22;--muted:#a1a1a6;--accent:#5aa9ff;--bad:#ff8a80}}
*{box-sizing:border-box}
body{margin:0;font:17px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
main{max-width:28rem;margin:0 auto;padding:1.5rem 1rem}
.card{background:var(--card);border-radius:1rem;padding:1.5rem;box-shadow:0 1px 3px rgba(0,0,0,.12)}
h1{font-size:1.5rem;line-height:1.25;margin:0 0 .75rem}
p{margin:.5rem 0}
.muted{color:var(--muted);font-size:.95rem}
label{display:block;font-weight:600;margin:1.25rem 0 .4rem}
input[type=text]{width:100%;font:inherit;padding:.75rem;border:1px solid var(--muted);border-radius:.6rem;background:transparent;color:inherit}
button,.button{display:block;width:100%;margin-top:1rem;padding:.85rem;border:0;border-radius:.6rem;background:var(--accent);color:#fff;font:inherit;font-weight:600;text-align:center;text-decoration:none}
.error{color:var(--bad);font-weight:600}
code{font-size:.9em;word-break:break-all}
`;

export const STYLE_HASH = `sha256-${createHash("sha256").update(STYLE).digest("base64")}`;

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="robots" content="noindex">
<title>${escapeHtml(title)}</title><style>${STYLE}</style></head>
<body><main><div class="card">${body}</div></main></body></html>`;
}

function joinUrlLine(joinUrl: string | undefined): string {
  if (!joinUrl) return "";
  const safe = escapeHtml(joinUrl);
  const link = /^(https?|clan):\/\//.test(joinUrl) ? `<a href="${safe}">${safe}</a>` : `<code>${safe}</code>`;
  return `<p class="muted">The clan's machines are set up from ${link}</p>`;
}

/** The form: who invites whom to which clan, until when, and one field for the person's Matrix ID. */
export function joinPage(offer: JoinOffer, action: string, formCheck: string, now: number, problem?: { reason: string; typed: string }): string {
  const error = problem ? `<p class="error" id="problem" role="alert">${escapeHtml(problem.reason)}</p>` : "";
  const valid = offer.validUntil - now < 3600_000 ? "less than an hour" : `until ${utcTime(offer.validUntil)}`;
  return page(
    `Join ${offer.clan.name}`,
    `<h1>Join ${escapeHtml(offer.clan.name)}</h1>
<p>${escapeHtml(offer.invitedBy)} invited you to the clan's Matrix room.</p>
<p class="muted">This invitation is valid ${escapeHtml(valid)}.</p>
<form method="post" action="${escapeHtml(action)}">
<input type="hidden" name="check" value="${escapeHtml(formCheck)}">
<label for="user">Your Matrix ID</label>
<input type="text" id="user" name="user" required maxlength="255" placeholder="@you:matrix.org" value="${escapeHtml(problem?.typed ?? "")}"
 autocomplete="username" autocapitalize="none" autocorrect="off" spellcheck="false" inputmode="email"${problem ? ' aria-describedby="problem"' : ""}>
${error}<button type="submit">Join the room</button>
</form>
<p class="muted">No Matrix account yet? Make one in a Matrix app such as Element, then come back to this page.</p>
${joinUrlLine(offer.clan.joinUrl)}`,
  );
}

/** After the invite into the room was made. */
export function invitedPage(clan: JoinOffer["clan"], userId: string, roomLink: string): string {
  return page(
    `Invited to ${clan.name}`,
    `<h1>You are invited!</h1>
<p>${escapeHtml(userId)} is invited to the Matrix room of ${escapeHtml(clan.name)}.</p>
<p>Open your Matrix app and accept the invitation, or open the room from here:</p>
<a class="button" href="${escapeHtml(roomLink)}">Open the room in your Matrix app</a>
${joinUrlLine(clan.joinUrl)}`,
  );
}

/** The same page for every code that cannot be used: unknown, used up, revoked, expired. */
export function invalidPage(): string {
  return page(
    "Invitation not valid",
    `<h1>This invite is not valid</h1>
<p>Ask the person who invited you for a new one.</p>`,
  );
}

export function messagePage(title: string, text: string): string {
  return page(title, `<h1>${escapeHtml(title)}</h1><p>${escapeHtml(text)}</p>`);
}
