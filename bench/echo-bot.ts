// The baseline: about the least a matrix-js-sdk bot can do per command. It answers every new text
// message starting with "!" from someone else with an m.notice reply: one send per command.
// Run as a child process: ECHO_HOMESERVER, ECHO_USER_ID, ECHO_ACCESS_TOKEN, ECHO_DEVICE_ID.
// Prints "ready" on stdout once its first sync is processed.
import { ClientEvent, createClient, EventType, MsgType, RoomEvent, SyncState, type ICreateClientOpts } from "matrix-js-sdk";
import { logger as sdkGlobalLogger } from "matrix-js-sdk/lib/logger.js";

function env(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`echo-bot: ${name} is not set`);
  return v;
}

type SdkLogger = NonNullable<ICreateClientOpts["logger"]>;
const noop = (): void => {};
const silent: SdkLogger = { trace: noop, debug: noop, info: noop, warn: noop, error: noop, getChild: () => silent };
// Some SDK modules log through the global loglevel logger whatever the client is given.
const root: object = sdkGlobalLogger;
if ("rebuild" in root && typeof root.rebuild === "function") {
  Object.assign(root, { methodFactory: () => noop });
  root.rebuild();
}

const userId = env("ECHO_USER_ID");
const client = createClient({
  baseUrl: env("ECHO_HOMESERVER"),
  userId,
  deviceId: env("ECHO_DEVICE_ID"),
  accessToken: env("ECHO_ACCESS_TOKEN"),
  logger: silent,
});

let ready = false;
client.on(RoomEvent.Timeline, (event, room, toStartOfTimeline, removed, data) => {
  if (!ready || toStartOfTimeline || removed || !room || !data.liveEvent) return;
  if (event.getType() !== EventType.RoomMessage || event.getSender() === userId) return;
  const content = event.getContent();
  const eventId = event.getId();
  if (content.msgtype !== MsgType.Text || typeof content.body !== "string" || !content.body.startsWith("!") || !eventId) return;
  const roomId = room.roomId;
  void (async () => {
    await client.sendEvent(roomId, EventType.RoomMessage, {
      msgtype: MsgType.Notice,
      body: `echo: ${content.body}`,
      format: "org.matrix.custom.html",
      formatted_body: `echo: <code>${content.body}</code>`,
      "m.relates_to": { "m.in_reply_to": { event_id: eventId } },
    } as never);
  })().catch((err: unknown) => process.stderr.write(`echo-bot: ${String(err)}\n`));
});

client.on(ClientEvent.Sync, (state) => {
  if (state === SyncState.Prepared && !ready) {
    ready = true;
    process.stdout.write("ready\n");
  }
});

for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.once(sig, () => {
    client.stopClient();
    process.exit(0);
  });
}

await client.startClient({ initialSyncLimit: 1 });
