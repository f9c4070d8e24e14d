import { EventType, MatrixEventEvent, MsgType, RelationType, RoomEvent, type MatrixClient, type MatrixEvent } from "matrix-js-sdk";

/** What a person sees in the room: events of the live timeline. */
export function timeline(client: MatrixClient, roomId: string): MatrixEvent[] {
  return client.getRoom(roomId)?.getLiveTimeline().getEvents() ?? [];
}

/**
 * Waits until an event matching `match` is in the room (already there, or arriving). In an encrypted
 * room an event is matched as the person's client shows it: once decrypted.
 */
export function waitForEvent(
  client: MatrixClient,
  roomId: string,
  match: (e: MatrixEvent) => boolean,
  timeoutMs = 10_000,
  what = "a matching event",
): Promise<MatrixEvent> {
  const existing = timeline(client, roomId).find(match);
  if (existing) return Promise.resolve(existing);
  return new Promise((resolve, reject) => {
    const onEvent = (e: MatrixEvent): void => {
      if (e.getRoomId() === roomId && match(e)) {
        cleanup();
        resolve(e);
      }
    };
    const timer = setTimeout(() => {
      cleanup();
      const seen = timeline(client, roomId)
        .map((e) => `${e.getSender()} ${e.getType()} ${JSON.stringify(e.getContent()).slice(0, 200)}`)
        .join("\n");
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; the room has:\n${seen}`));
    }, timeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      client.off(RoomEvent.Timeline, onEvent);
      client.off(MatrixEventEvent.Decrypted, onEvent);
    };
    client.on(RoomEvent.Timeline, onEvent);
    client.on(MatrixEventEvent.Decrypted, onEvent);
  });
}

/** The bot's reply to a command event (a notice whose m.in_reply_to points at it). */
export function waitForReply(client: MatrixClient, roomId: string, commandEventId: string, timeoutMs = 10_000): Promise<MatrixEvent> {
  return waitForEvent(client, roomId, (e) => isReplyTo(e, commandEventId), timeoutMs, `a reply to ${commandEventId}`);
}

export function isReplyTo(e: MatrixEvent, commandEventId: string): boolean {
  const rel = e.getContent()["m.relates_to"] as { "m.in_reply_to"?: { event_id?: string } } | undefined;
  return e.getType() === EventType.RoomMessage && rel?.["m.in_reply_to"]?.event_id === commandEventId;
}

/** Reaction keys on an event, in the order they arrived. */
export function reactionsOn(client: MatrixClient, roomId: string, eventId: string): string[] {
  return timeline(client, roomId)
    .filter((e) => e.getType() === EventType.Reaction)
    .map((e) => e.getContent()["m.relates_to"] as { rel_type?: string; event_id?: string; key?: string })
    .filter((r) => r.rel_type === RelationType.Annotation && r.event_id === eventId)
    .map((r) => r.key ?? "");
}

export function waitForReaction(client: MatrixClient, roomId: string, eventId: string, key: string, timeoutMs = 10_000): Promise<MatrixEvent> {
  return waitForEvent(
    client,
    roomId,
    (e) => {
      const r = e.getContent()["m.relates_to"] as { rel_type?: string; event_id?: string; key?: string } | undefined;
      return e.getType() === EventType.Reaction && r?.event_id === eventId && r.key === key;
    },
    timeoutMs,
    `reaction ${key} on ${eventId}`,
  );
}

/** Sends a plain text message as a person would, returning its event id. */
export async function say(client: MatrixClient, roomId: string, body: string): Promise<string> {
  const { event_id } = await client.sendEvent(roomId, EventType.RoomMessage, { msgtype: MsgType.Text, body });
  return event_id;
}

/** The ✅, ❌, ⛔ or ❓ that ends a command, as the person sees it on their message. */
export async function waitForOutcome(client: MatrixClient, roomId: string, commandId: string, timeoutMs = 20_000): Promise<string> {
  const e = await waitForEvent(
    client,
    roomId,
    (ev) => {
      const r = ev.getContent()["m.relates_to"] as { event_id?: string; key?: string } | undefined;
      return ev.getType() === EventType.Reaction && r?.event_id === commandId && ["✅", "❌", "⛔", "❓"].includes(r.key ?? "");
    },
    timeoutMs,
    `the outcome of ${commandId}`,
  );
  return (e.getContent()["m.relates_to"] as { key: string }).key;
}
