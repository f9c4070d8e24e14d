import type { Attachment } from "./types.ts";

/** An invite as people may see it: never its token. */
export interface InviteSummary {
  readonly id: number;
  readonly creator: string;
  readonly creatorName: string;
  readonly note: string | undefined;
  readonly maxUses: number;
  readonly usesLeft: number;
  readonly createdAt: number;
  readonly expiresAt: number;
}

export interface InviteRequest {
  readonly creator: { readonly id: string; readonly name: string };
  readonly uses: number;
  readonly validForMs: number;
  readonly note: string | undefined;
}

/** A new join code: the link it opens and the QR code that holds it, shown once. */
export interface CreatedInvite {
  readonly invite: InviteSummary;
  readonly link: string;
  readonly qr: Attachment;
}

/** The clan's join codes and invites into its room, as commands see them. */
export interface Invites {
  /** Where join links point (`web.publicUrl`); without it there are no join codes. */
  readonly publicUrl: string | undefined;
  create(request: InviteRequest): Promise<CreatedInvite>;
  active(): Promise<InviteSummary[]>;
  /** Ends a usable invite of this clan; nothing when there is none with that id. */
  revoke(id: number, by: string): Promise<InviteSummary | undefined>;
  /** Invites a Matrix user into the clan's room; a refusal comes back as a UserError naming the reason. */
  inviteUser(userId: string, by: { readonly id: string; readonly name: string }): Promise<void>;
}

/** Longest a join code may stay valid. */
export const MAX_INVITE_VALIDITY_MS = 30 * 24 * 3600_000;
export const DEFAULT_INVITE_VALIDITY_MS = 24 * 3600_000;
