import { MemoryStore, SyncAccumulator, type ISyncResponse } from "matrix-js-sdk";
import type { ISavedSync } from "matrix-js-sdk/lib/store/index.js";
import type { Clock } from "../../commands/types.ts";
import type { Db } from "../../storage/db.ts";
import { loadSyncState, saveSyncState } from "../../storage/matrix-session.ts";

/**
 * The SDK's memory store, plus the accumulated sync kept in SQLite: a restart resumes from the
 * saved position (so commands sent while the bot was down arrive) instead of a fresh initial sync.
 * Saving the whole accumulator is not free (about 0.3 s of main-thread work at 1,000 rooms), so it
 * happens at most every `saveEveryMs` and at stop; after a crash the bot resumes a few minutes earlier
 * and the handled-event ids keep the replay harmless.
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
  private lastSaved = 0;
  private dirty = false;

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
    const data = JSON.parse(saved.data) as ISavedSync;
    this.accumulator.accumulate(
      { next_batch: data.nextBatch, rooms: data.roomsData, account_data: { events: data.accountData } } as ISyncResponse,
      true,
    );
    this.lastSaved = this.clock.now();
    return data;
  }

  override async getSavedSyncToken(): Promise<string | null> {
    return (await loadSyncState(this.db, this.userId))?.nextBatch ?? null;
  }

  override async setSyncData(syncData: ISyncResponse): Promise<void> {
    this.accumulator.accumulate(syncData);
    this.dirty = true;
  }

  override wantsSave(): boolean {
    return this.dirty && this.clock.now() - this.lastSaved >= this.saveEveryMs;
  }

  override async save(force = false): Promise<void> {
    if (!this.dirty || (!force && !this.wantsSave())) return;
    const data = this.accumulator.getJSON(true);
    this.dirty = false;
    this.lastSaved = this.clock.now();
    await saveSyncState(this.db, this.userId, data.nextBatch, JSON.stringify(data), this.lastSaved);
  }

  override async isNewlyCreated(): Promise<boolean> {
    return !(await loadSyncState(this.db, this.userId));
  }
}
