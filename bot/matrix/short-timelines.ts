import { ClientEvent, RoomEvent, type MatrixClient, type Room } from "matrix-js-sdk";

/** A room's live timeline is started afresh once it holds more events than this. */
export const LIVE_TIMELINE_MAX = 30;

/**
 * Keeps every room's live timeline in the SDK short. The bot acts on events as they arrive and
 * never looks back in a timeline (room state, members and power levels are kept apart from it),
 * while the SDK keeps every event of a session and searches them one by one for each reaction,
 * read receipt and message sent: a busy room would cost more time and memory with every command.
 * After each sync, rooms that received events and passed the limit start a new live timeline,
 * which keeps the current room state.
 */
export function keepLiveTimelinesShort(client: MatrixClient, max = LIVE_TIMELINE_MAX): void {
  const grown = new Set<Room>();
  client.on(RoomEvent.Timeline, (_event, room, toStartOfTimeline) => {
    if (room && !toStartOfTimeline) grown.add(room);
  });
  client.on(ClientEvent.Sync, () => {
    for (const room of grown) {
      if (room.getLiveTimeline().getEvents().length > max) room.resetLiveTimeline();
    }
    grown.clear();
  });
}
