import { EventType, type Room } from "matrix-js-sdk";

interface PowerLevelsContent {
  users?: Record<string, unknown>;
  users_default?: unknown;
}

interface CreateContent {
  room_version?: unknown;
  additional_creators?: unknown;
}

/** Room versions from 12 on give creators unlimited power, outside m.room.power_levels. */
function creatorsArePrivileged(version: unknown): boolean {
  const n = typeof version === "string" ? Number.parseInt(version, 10) : Number.NaN;
  return Number.isFinite(n) && n >= 12;
}

/**
 * A user's power level as the spec defines it, read from room state (never guessed):
 * `users[id]`, else `users_default`, else 0; with no power levels event the creator has 100.
 */
export function powerLevelOf(room: Room, userId: string): number {
  const state = room.currentState;
  const create = state.getStateEvents(EventType.RoomCreate, "");
  const createContent = (create?.getContent() ?? {}) as CreateContent;
  if (create && creatorsArePrivileged(createContent.room_version)) {
    const extra = Array.isArray(createContent.additional_creators) ? createContent.additional_creators : [];
    if (create.getSender() === userId || extra.includes(userId)) return Number.MAX_SAFE_INTEGER;
  }
  const pl = state.getStateEvents(EventType.RoomPowerLevels, "");
  if (!pl) return create?.getSender() === userId ? 100 : 0;
  const content = pl.getContent() as PowerLevelsContent;
  const own = content.users?.[userId];
  if (typeof own === "number" && Number.isFinite(own)) return own;
  return typeof content.users_default === "number" ? content.users_default : 0;
}
