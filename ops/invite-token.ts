import { createHash, randomBytes } from "node:crypto";

/** A join code's secret: 256 random bits, URL-safe. It is shown once (in the QR code) and never stored. */
export function newInviteToken(): string {
  return randomBytes(32).toString("base64url");
}

/** What is stored and looked up instead of the token. A plain hash suffices: the token is random, not guessable. */
export function inviteTokenHash(token: string): string {
  return createHash("sha256").update(token).digest("base64url");
}

/** Tokens the bot makes look like this; anything else is refused before it reaches the database. */
export const INVITE_TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;
