import type { ClanConfig } from "../config.ts";

/**
 * Which room belongs to which clan. Config may name a room by alias; aliases are resolved to
 * room ids when the homeserver answers, and again later for those that could not be resolved yet.
 */
export class RoomBindings {
  private readonly byRoomId = new Map<string, string>();
  private readonly unresolved = new Map<string, string>();
  private readonly resolve: (alias: string) => Promise<string>;

  constructor(clans: readonly ClanConfig[], resolve: (alias: string) => Promise<string>) {
    this.resolve = resolve;
    for (const c of clans) {
      if (c.room.startsWith("!")) this.byRoomId.set(c.room, c.name);
      else this.unresolved.set(c.room, c.name);
    }
  }

  /** Tries the aliases not resolved yet; returns those that still fail, with why. */
  async resolvePending(): Promise<Array<{ alias: string; error: string }>> {
    const failures: Array<{ alias: string; error: string }> = [];
    await Promise.all(
      [...this.unresolved].map(async ([alias, clan]) => {
        try {
          this.byRoomId.set(await this.resolve(alias), clan);
          this.unresolved.delete(alias);
        } catch (err) {
          failures.push({ alias, error: (err as Error).message });
        }
      }),
    );
    return failures;
  }

  clanOf(roomId: string): string | undefined {
    return this.byRoomId.get(roomId);
  }

  get hasUnresolved(): boolean {
    return this.unresolved.size > 0;
  }

  roomIds(): string[] {
    return [...this.byRoomId.keys()];
  }

  /** The room a clan is bound to, once its id is known. */
  roomOf(clan: string): string | undefined {
    for (const [room, c] of this.byRoomId) if (c === clan) return room;
    return undefined;
  }
}
