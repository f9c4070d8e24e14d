import type { Db } from "./db.ts";

/**
 * Claims an event for handling in SQLite. True only the first time for an event id, so a command
 * replayed by sync after a restart (or delivered twice) never runs twice.
 */
export async function claimEvent(db: Db, eventId: string, clan: string, now: number): Promise<boolean> {
  const { changes } = await db.run("INSERT OR IGNORE INTO handled_events (event_id, clan, handled_at) VALUES (?, ?, ?)", [
    eventId,
    clan,
    now,
  ]);
  return changes === 1;
}

/**
 * Claims since `since` with no audit row: the run that claimed them died before recording them (or
 * they were not commands: replies to the bot's questions, joins). Notices' own claims ("#") are left out.
 */
export async function unrecordedClaims(db: Db, since: number): Promise<Array<{ eventId: string; clan: string }>> {
  const rows = await db.all<{ event_id: string; clan: string }>(
    `SELECT event_id, clan FROM handled_events h WHERE handled_at >= ? AND instr(event_id, '#') = 0
     AND NOT EXISTS (SELECT 1 FROM audit a WHERE a.event_id = h.event_id) ORDER BY handled_at`,
    [since],
  );
  return rows.map((r) => ({ eventId: r.event_id, clan: r.clan }));
}

/** Forgets claims older than `before`; events that old are ignored on sight anyway. */
export async function forgetEventsBefore(db: Db, before: number): Promise<number> {
  const { changes } = await db.run("DELETE FROM handled_events WHERE handled_at < ?", [before]);
  return changes;
}

/** A claim decided at once: the bot may answer (👀) now and run the command once `stored` resolves. */
export type Claim = { readonly fresh: true; readonly stored: Promise<void> } | { readonly fresh: false };

/** How far the homeserver's clock (origin_server_ts) may be ahead of the bot's. */
const CLOCK_SKEW_MS = 3600_000;

/**
 * The handled-event claims of recent hours, kept in memory as well as in SQLite, so that a new
 * command is known to be new without waiting for the disk: its 👀 goes out at once, and the
 * command itself runs once its claim is stored. An event sent before that window (a replay after
 * a long downtime) is looked up in SQLite. Every claim is stored; memory holds only the window.
 */
export class EventClaims {
  private readonly db: Db;
  private readonly windowMs: number;
  /** event id -> when it was claimed (bot clock); every claim made since `since`. */
  private readonly recent = new Map<string, number>();
  private since: number;

  private constructor(db: Db, since: number, windowMs: number) {
    this.db = db;
    this.since = since;
    this.windowMs = windowMs;
  }

  static async load(db: Db, now: number, windowMs = 2 * 3600_000): Promise<EventClaims> {
    const claims = new EventClaims(db, now - windowMs, windowMs);
    const rows = await db.all<{ event_id: string; handled_at: number }>("SELECT event_id, handled_at FROM handled_events WHERE handled_at >= ?", [
      claims.since,
    ]);
    for (const r of rows) claims.recent.set(r.event_id, r.handled_at);
    return claims;
  }

  /**
   * Claims `eventId`, sent at `sentAt` (server time): at once when the window covers it, else
   * after a look in SQLite. A failure to store a fresh claim rejects `stored`.
   */
  claim(eventId: string, clan: string, sentAt: number, now: number): Claim | Promise<Claim> {
    this.forgetBefore(now - this.windowMs);
    if (this.recent.has(eventId)) return { fresh: false };
    // Handled at or after it was sent: a claim made before the window began was for an event sent
    // before it too (give or take the clocks' skew), so an event sent later than that is new if unseen.
    if (sentAt >= this.since + CLOCK_SKEW_MS) {
      this.recent.set(eventId, now);
      const stored = claimEvent(this.db, eventId, clan, now).then(() => undefined);
      // Whoever runs the command awaits it; an answer without a run (unknown command) need not.
      stored.catch(() => undefined);
      return { fresh: true, stored };
    }
    return claimEvent(this.db, eventId, clan, now).then((fresh): Claim => {
      if (!fresh) return { fresh: false };
      if (now >= this.since) this.recent.set(eventId, now);
      return { fresh: true, stored: Promise.resolve() };
    });
  }

  private forgetBefore(before: number): void {
    if (before - this.since < 60_000) return;
    for (const [id, at] of this.recent) if (at < before) this.recent.delete(id);
    this.since = before;
  }
}
