import { MemoryStore, SyncAccumulator, type ISyncResponse } from "matrix-js-sdk";
import type { ISavedSync } from "matrix-js-sdk/lib/store/index.js";
import type { Clock } from "../../commands/types.ts";
import type { Db } from "../../storage/db.ts";
import { loadSyncState, loadSyncToken, saveSyncState } from "../../storage/matrix-session.ts";

type Section = "join" | "invite" | "knock" | "leave";
const SECTIONS: readonly Section[] = ["join", "invite", "knock", "leave"];
type RoomsData = Record<Section, Record<string, unknown>>;

/**
 * The SDK's memory store, plus the accumulated sync kept in SQLite: a restart resumes from the
 * saved position (so commands sent while the bot was down arrive) instead of a fresh initial sync.
 * Each room has its own row and a save writes only the rooms a sync touched since the last one:
 * at 1,000 rooms, writing them all as one JSON string cost ~45 MB of memory for a moment at each
 * save. Saves happen at most every `saveEveryMs` and at stop; after a crash the bot resumes a few
 * minutes earlier and the handled-event ids keep the replay harmless.
 */
export class PersistentSyncStore extends MemoryStore {
  private readonly db: Db;
  private readonly userId: string;
  private readonly clock: Clock;
  private readonly saveEveryMs: number;
  // The saved timeline is only a start for the room's timeline after a restart: commands sent while
  // the bot was down come with the sync from the saved position, and the rooms' state is kept apart.
  // The SDK's default (50 events a room) would hold 50,000 events in memory at 1,000 rooms.
  private readonly accumulator = new SyncAccumulator({ maxTimelineEntries: 10 });
  /** Rooms a sync touched since the last save. */
  private readonly changed = new Set<string>();
  private lastSaved = 0;
  private dirty = false;
  /** Whether syncs so far continue an earlier one (resumed from a saved position, or after the first). */
  private continuing = false;
  /**
   * Told of each room whose timeline in a sync has a gap (more events came than one sync brings: the
   * bot was down, or away): `prevBatch` is where to read back from.
   */
  onGap: ((roomId: string, prevBatch: string) => void) | undefined;

  constructor(db: Db, userId: string, clock: Clock, saveEveryMs = 5 * 60_000) {
    super();
    this.db = db;
    this.userId = userId;
    this.clock = clock;
    this.saveEveryMs = saveEveryMs;
  }

  override async getSavedSync(): Promise<ISavedSync | null> {
    const saved = await loadSyncState(this.db, this.userId);
    if (!saved) return null;
    const account = JSON.parse(saved.data) as { accountData: ISavedSync["accountData"]; roomsData?: RoomsData };
    const roomsData: RoomsData = account.roomsData ?? { join: {}, invite: {}, knock: {}, leave: {} };
    // Saved by an older version, all rooms in one string: the next save gives each its row.
    if (account.roomsData) this.touched(roomsData);
    for (const row of saved.rooms) {
      const { section, room } = JSON.parse(row.data) as { section: Section; room: unknown };
      (roomsData[section] ??= {})[row.roomId] = room;
    }
    const data = { nextBatch: saved.nextBatch, roomsData, accountData: account.accountData } as ISavedSync;
    this.accumulator.accumulate(
      { next_batch: data.nextBatch, rooms: data.roomsData, account_data: { events: data.accountData } } as ISyncResponse,
      true,
    );
    this.lastSaved = this.clock.now();
    this.dirty = this.changed.size > 0;
    this.continuing = true;
    return data;
  }

  override async getSavedSyncToken(): Promise<string | null> {
    return (await loadSyncToken(this.db, this.userId)) ?? null;
  }

  override async setSyncData(syncData: ISyncResponse): Promise<void> {
    // The first sync of a new bot has gaps everywhere, and nothing before its joins is meant for it.
    if (this.continuing && this.onGap) {
      for (const [roomId, room] of Object.entries(syncData.rooms?.join ?? {})) {
        if (room.timeline?.limited && room.timeline.prev_batch) this.onGap(roomId, room.timeline.prev_batch);
      }
    }
    this.continuing = true;
    // Not the SDK's object itself: it goes on to process this sync.
    this.accumulator.accumulate(withoutOwnMessages(syncData, this.userId));
    if (syncData.rooms) this.touched(syncData.rooms as unknown as Partial<RoomsData>);
    this.dirty = true;
  }

  override wantsSave(): boolean {
    return this.dirty && this.clock.now() - this.lastSaved >= this.saveEveryMs;
  }

  override async save(force = false): Promise<void> {
    if (!this.dirty || (!force && !this.wantsSave())) return;
    // Taken together, in one go: the rooms' JSON must match the position saved with it.
    const data = this.accumulator.getJSON(true);
    const all = data.roomsData as unknown as RoomsData;
    const changed = [...this.changed];
    const rooms = changed.map((roomId) => {
      const section = SECTIONS.find((s) => all[s]?.[roomId] !== undefined);
      return { roomId, data: section && JSON.stringify({ section, room: all[section][roomId] }) };
    });
    this.changed.clear();
    this.dirty = false;
    this.lastSaved = this.clock.now();
    try {
      await saveSyncState(this.db, this.userId, { nextBatch: data.nextBatch, data: JSON.stringify({ accountData: data.accountData }), rooms }, this.lastSaved);
    } catch (err) {
      for (const roomId of changed) this.changed.add(roomId);
      this.dirty = true;
      throw err;
    }
  }

  override async isNewlyCreated(): Promise<boolean> {
    return (await loadSyncToken(this.db, this.userId)) === undefined;
  }

  private touched(rooms: Partial<RoomsData>): void {
    for (const section of SECTIONS) for (const roomId of Object.keys(rooms[section] ?? {})) this.changed.add(roomId);
  }
}

interface TimelineRoom {
  timeline?: { events?: Array<{ sender?: string; type?: string }> };
}

/**
 * The sync as it is saved: without the bot's own messages. They may hold a full join link (only a
 * hash of a code is kept anywhere else), and the bot never reads its own messages back.
 */
function withoutOwnMessages(sync: ISyncResponse, userId: string): ISyncResponse {
  const rooms = sync.rooms as unknown as Partial<Record<Section, Record<string, TimelineRoom>>> | undefined;
  if (!rooms) return sync;
  const own = (e: { sender?: string; type?: string }): boolean => e.sender === userId && e.type === "m.room.message";
  const filtered: Partial<Record<Section, Record<string, TimelineRoom>>> = { ...rooms };
  for (const section of ["join", "leave"] as const) {
    const byRoom = rooms[section];
    if (!byRoom) continue;
    filtered[section] = Object.fromEntries(
      Object.entries(byRoom).map(([roomId, room]) => {
        const events = room.timeline?.events;
        if (!events?.some(own)) return [roomId, room];
        return [roomId, { ...room, timeline: { ...room.timeline, events: events.filter((e) => !own(e)) } }];
      }),
    );
  }
  return { ...sync, rooms: filtered } as unknown as ISyncResponse;
}
