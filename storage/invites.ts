import type { InviteSummary } from "../commands/invite-types.ts";
import type { Db } from "./db.ts";

export interface InviteRecord extends InviteSummary {
  readonly clan: string;
}

interface InviteRow {
  id: number;
  clan: string;
  creator: string;
  creator_name: string;
  note: string | null;
  max_uses: number;
  uses_left: number;
  created_at: number;
  expires_at: number;
}

const COLUMNS = "id, clan, creator, creator_name, note, max_uses, uses_left, created_at, expires_at";
/** An invite that can still be used at `?` (the time, in ms). */
const USABLE = "uses_left > 0 AND revoked_at IS NULL AND expires_at > ?";

const toRecord = (r: InviteRow): InviteRecord => ({
  id: r.id,
  clan: r.clan,
  creator: r.creator,
  creatorName: r.creator_name,
  note: r.note ?? undefined,
  maxUses: r.max_uses,
  usesLeft: r.uses_left,
  createdAt: r.created_at,
  expiresAt: r.expires_at,
});

export interface NewInvite {
  readonly clan: string;
  readonly tokenHash: string;
  readonly creator: string;
  readonly creatorName: string;
  readonly note: string | undefined;
  readonly uses: number;
  readonly createdAt: number;
  readonly expiresAt: number;
}

export async function createInvite(db: Db, i: NewInvite): Promise<InviteRecord> {
  const { lastID } = await db.run(
    `INSERT INTO invites (clan, token_hash, creator, creator_name, note, max_uses, uses_left, created_at, expires_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    [i.clan, i.tokenHash, i.creator, i.creatorName, i.note ?? null, i.uses, i.uses, i.createdAt, i.expiresAt],
  );
  return {
    id: lastID,
    clan: i.clan,
    creator: i.creator,
    creatorName: i.creatorName,
    note: i.note,
    maxUses: i.uses,
    usesLeft: i.uses,
    createdAt: i.createdAt,
    expiresAt: i.expiresAt,
  };
}

/** The clan's invites that can still be used, newest first. */
export async function activeInvites(db: Db, clan: string, now: number): Promise<InviteRecord[]> {
  const rows = await db.all<InviteRow>(`SELECT ${COLUMNS} FROM invites WHERE clan = ? AND ${USABLE} ORDER BY id DESC`, [clan, now]);
  return rows.map(toRecord);
}

/** The invite behind a token hash, if it can still be used: for showing the join page. */
export async function usableInvite(db: Db, tokenHash: string, now: number): Promise<InviteRecord | undefined> {
  const row = await db.get<InviteRow>(`SELECT ${COLUMNS} FROM invites WHERE token_hash = ? AND ${USABLE}`, [tokenHash, now]);
  return row ? toRecord(row) : undefined;
}

/**
 * Takes one use of the invite, in one statement: of any number of requests at once, only as many
 * as there are uses left get the invite back; the others get nothing.
 */
export async function takeInviteUse(db: Db, tokenHash: string, now: number): Promise<InviteRecord | undefined> {
  const row = await db.get<InviteRow>(
    `UPDATE invites SET uses_left = uses_left - 1 WHERE token_hash = ? AND ${USABLE} RETURNING ${COLUMNS}`,
    [tokenHash, now],
  );
  return row ? toRecord(row) : undefined;
}

/** Gives a use back when the invite into the room could not be made after all. */
export async function giveBackInviteUse(db: Db, id: number): Promise<void> {
  await db.run("UPDATE invites SET uses_left = uses_left + 1 WHERE id = ?", [id]);
}

export async function recordInviteUse(db: Db, id: number, userId: string, at: number): Promise<void> {
  await db.run("INSERT INTO invite_uses (invite_id, user_id, used_at) VALUES (?, ?, ?)", [id, userId, at]);
}

/**
 * The person joined the clan's room: marks their newest unjoined use of one of the clan's codes, and
 * returns that code; nothing when they did not come through a code (or it was marked already).
 */
export async function markInviteJoined(db: Db, clan: string, userId: string, at: number): Promise<InviteRecord | undefined> {
  return db.transaction(async (q) => {
    const use = await q.get<{ rowid: number; invite_id: number }>(
      `SELECT u.rowid, u.invite_id FROM invite_uses u JOIN invites i ON i.id = u.invite_id
       WHERE u.user_id = ? AND u.joined_at IS NULL AND i.clan = ? ORDER BY u.used_at DESC LIMIT 1`,
      [userId, clan],
    );
    if (!use) return undefined;
    await q.run("UPDATE invite_uses SET joined_at = ? WHERE rowid = ?", [at, use.rowid]);
    const row = await q.get<InviteRow>(`SELECT ${COLUMNS} FROM invites WHERE id = ?`, [use.invite_id]);
    return row ? toRecord(row) : undefined;
  });
}

/** Ends an invite of this clan at once; returns it, or nothing when the clan has no such usable invite. */
export async function revokeInvite(db: Db, clan: string, id: number, by: string, now: number): Promise<InviteRecord | undefined> {
  const row = await db.get<InviteRow>(
    `UPDATE invites SET revoked_by = ?, revoked_at = ? WHERE clan = ? AND id = ? AND ${USABLE} RETURNING ${COLUMNS}`,
    [by, now, clan, id, now],
  );
  return row ? toRecord(row) : undefined;
}
