import { DEFAULT_INVITE_VALIDITY_MS, type CreatedInvite, type Invites } from "../commands/invite-types.ts";
import { checkMatrixUserId } from "../commands/matrix-id.ts";
import { formatInviteUsed, formatJoinedWithCode } from "../commands/invite-format.ts";
import { UserError } from "../commands/errors.ts";
import type { Clock, Log } from "../commands/types.ts";
import { INVITE_TOKEN_SHAPE, inviteTokenHash, newInviteToken } from "../ops/invite-token.ts";
import { qrPng } from "../ops/qr-png.ts";
import type { Db } from "../storage/db.ts";
import {
  activeInvites,
  createInvite,
  giveBackInviteUse,
  markInviteJoined,
  recordInviteUse,
  revokeInvite,
  takeInviteUse,
  usableInvite,
  type InviteRecord,
} from "../storage/invites.ts";
import type { Announcer } from "./announcer.ts";

/** Invites a user into a clan's room; throws RoomInviteError with the homeserver's reason when refused. */
export type InviteIntoRoom = (clan: string, userId: string, reason: string) => Promise<void>;

/** The homeserver would not invite that user (already in the room, banned, unknown server...). */
export class RoomInviteError extends Error {
  override readonly name = "RoomInviteError";
}

export interface JoinClan {
  readonly name: string;
  /** The room as configured (id or alias), for the matrix.to link. */
  readonly room: string;
  /** Shown on the join page when set: the clan's flake link or public flake URL. */
  readonly joinUrl: string | undefined;
}

/** What the join page shows about a usable code. */
export interface JoinOffer {
  readonly clan: JoinClan;
  readonly invitedBy: string;
  readonly validUntil: number;
}

export type Redemption =
  | { readonly kind: "invited"; readonly clan: JoinClan; readonly userId: string; readonly roomLink: string }
  | { readonly kind: "invalid" }
  | { readonly kind: "bad-user-id"; readonly reason: string; readonly offer: JoinOffer }
  | { readonly kind: "refused"; readonly reason: string; readonly offer: JoinOffer };

export interface InviteServiceDeps {
  readonly db: Db;
  readonly clock: Clock;
  readonly log: Log;
  readonly announcer: Announcer;
  readonly clans: readonly JoinClan[];
  /** `web.publicUrl` without a trailing slash; undefined when join codes are not served. */
  readonly publicUrl: string | undefined;
}

/** A matrix.to link that opens the room in the person's own Matrix app. */
export function matrixToLink(room: string): string {
  const server = room.slice(room.indexOf(":") + 1);
  const via = room.startsWith("!") ? `?via=${encodeURIComponent(server)}` : "";
  return `https://matrix.to/#/${encodeURIComponent(room)}${via}`;
}

/**
 * Join codes for every clan: made by `!invite`, shown and redeemed by the join page. Tokens exist only in
 * the QR code and the link; the database and the logs see their hash at most.
 */
export class InviteService {
  private readonly d: InviteServiceDeps;
  private inviteIntoRoom: InviteIntoRoom | undefined;

  constructor(deps: InviteServiceDeps) {
    this.d = deps;
  }

  /** The Matrix front end can invite now. */
  connect(invite: InviteIntoRoom): void {
    this.inviteIntoRoom = invite;
  }

  disconnect(): void {
    this.inviteIntoRoom = undefined;
  }

  forClan(clan: string): Invites {
    const { db, clock, publicUrl } = this.d;
    return {
      publicUrl,
      create: async (request): Promise<CreatedInvite> => {
        if (!publicUrl) throw new Error("join codes need web.publicUrl");
        const token = newInviteToken();
        const now = clock.now();
        const record = await createInvite(db, {
          clan,
          tokenHash: inviteTokenHash(token),
          creator: request.creator.id,
          creatorName: request.creator.name,
          note: request.note,
          uses: request.uses,
          createdAt: now,
          expiresAt: now + (request.validForMs || DEFAULT_INVITE_VALIDITY_MS),
        });
        const link = `${publicUrl}/join/${token}`;
        const png = qrPng(link);
        return {
          invite: record,
          link,
          qr: { name: `invite-${record.id}.png`, mimetype: "image/png", data: png.data, image: { width: png.width, height: png.height }, qr: link },
        };
      },
      active: () => activeInvites(db, clan, clock.now()),
      revoke: (id, by) => revokeInvite(db, clan, id, by, clock.now()),
      inviteUser: async (userId, by) => {
        try {
          await this.invite(clan, userId, `Invited by ${by.name} (${by.id}) with clanbot`);
        } catch (err) {
          if (err instanceof RoomInviteError) throw new UserError(`Could not invite ${userId}: ${err.message}`);
          throw err;
        }
      },
    };
  }

  /** The join page's view of a token: nothing for a token that is unknown, used up, revoked or expired. */
  async offer(token: string): Promise<JoinOffer | undefined> {
    if (!INVITE_TOKEN_SHAPE.test(token)) return undefined;
    const record = await usableInvite(this.d.db, inviteTokenHash(token), this.d.clock.now());
    return record && this.offerOf(record);
  }

  /** Takes one use of the code and invites `typedUserId` into the clan's room; the use is given back if that fails. */
  async redeem(token: string, typedUserId: string): Promise<Redemption> {
    const { db, clock, log, announcer } = this.d;
    const offer = await this.offer(token);
    if (!offer) return { kind: "invalid" };
    const checked = checkMatrixUserId(typedUserId);
    if (!checked.ok) return { kind: "bad-user-id", reason: checked.reason, offer };
    const taken = await takeInviteUse(db, inviteTokenHash(token), clock.now());
    if (!taken) return { kind: "invalid" };
    try {
      await this.invite(taken.clan, checked.userId, `Joined with join code ${taken.id} from ${taken.creatorName}`);
    } catch (err) {
      await giveBackInviteUse(db, taken.id);
      if (err instanceof RoomInviteError) return { kind: "refused", reason: err.message, offer };
      log.error({ err, invite: taken.id, clan: taken.clan }, "could not invite through a join code");
      return { kind: "refused", reason: "The bot could not reach its homeserver. Please try again in a few minutes.", offer };
    }
    await recordInviteUse(db, taken.id, checked.userId, clock.now());
    log.info({ invite: taken.id, clan: taken.clan, user: checked.userId }, "invited through a join code");
    await announcer.announce(taken.clan, formatInviteUsed(taken, checked.userId));
    return { kind: "invited", clan: offer.clan, userId: checked.userId, roomLink: matrixToLink(offer.clan.room) };
  }

  /** Someone joined the clan's room: if a join code brought them, the room is told which. */
  async joined(clan: string, userId: string): Promise<void> {
    const code = await markInviteJoined(this.d.db, clan, userId, this.d.clock.now());
    if (code) await this.d.announcer.announce(clan, formatJoinedWithCode(code, userId));
  }

  private async invite(clan: string, userId: string, reason: string): Promise<void> {
    if (!this.inviteIntoRoom) throw new RoomInviteError("the bot is not connected to Matrix here (the console has no room)");
    await this.inviteIntoRoom(clan, userId, reason);
  }

  /** Nothing for a code of a clan this bot no longer serves. */
  private offerOf(record: InviteRecord): JoinOffer | undefined {
    const clan = this.d.clans.find((c) => c.name === record.clan);
    const invitedBy = record.creatorName === record.creator ? record.creator : `${record.creatorName} (${record.creator})`;
    return clan && { clan, invitedBy, validUntil: record.expiresAt };
  }
}
