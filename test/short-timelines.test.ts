import assert from "node:assert/strict";
import { test } from "node:test";
import { ClientEvent, EventType, KnownMembership, RelationType } from "matrix-js-sdk";
import { keepLiveTimelinesShort } from "../bot/matrix/short-timelines.ts";
import { humanClient, startHomeserver, stopClient } from "./support/homeserver.ts";
import { say, waitForEvent } from "./support/matrix-wait.ts";

test("a busy room's live timeline stays short, and the room's state, members and sending are kept", async () => {
  const hs = await startHomeserver();
  const alice = await humanClient(hs, "alice");
  const bot = await humanClient(hs, "bot");
  try {
    keepLiveTimelinesShort(bot, 10);
    const { room_id: roomId } = await alice.createRoom({ name: "Busy", invite: [bot.getSafeUserId()] });
    for (let i = 0; i < 200 && bot.getRoom(roomId)?.getMyMembership() !== KnownMembership.Invite; i++) await new Promise((r) => setTimeout(r, 25));
    await bot.joinRoom(roomId);
    let last = "";
    for (let i = 0; i < 60; i++) last = await say(alice, roomId, `message ${i}`);
    const room = bot.getRoom(roomId);
    assert.ok(room);
    // Wait until the bot's client has the last message and has finished that sync.
    await waitForEvent(bot, roomId, (e) => e.getId() === last, 10_000, "the last message");
    await new Promise((resolve) => bot.once(ClientEvent.Sync, resolve));

    assert.ok(room.getLiveTimeline().getEvents().length <= 10, `${room.getLiveTimeline().getEvents().length} events in the live timeline`);
    assert.equal(room.getMember(alice.getSafeUserId())?.membership, KnownMembership.Join);
    assert.equal(room.getMember(alice.getSafeUserId())?.powerLevel, 100);
    assert.equal(room.getMyMembership(), KnownMembership.Join);
    assert.equal(room.name, "Busy");
    // Answering an event the timeline no longer holds still works.
    await bot.sendEvent(roomId, EventType.Reaction, { "m.relates_to": { rel_type: RelationType.Annotation, event_id: last, key: "👀" } });
    const seen = await waitForEvent(alice, roomId, (e) => e.getType() === EventType.Reaction && e.getSender() === bot.getSafeUserId(), 10_000, "the reaction");
    assert.equal(seen.getContent()["m.relates_to"]?.event_id, last);
  } finally {
    await stopClient(alice);
    await stopClient(bot);
    await hs.close();
  }
});
