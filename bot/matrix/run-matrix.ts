import { createClient, Filter } from "matrix-js-sdk";
import { HANDLED_EVENT_RETENTION_MS, type App } from "../app.ts";
import { ConfigError } from "../config.ts";
import { JoinServer } from "../web/join-server.ts";
import { MatrixFrontEnd } from "./matrix-front-end.ts";
import { EventClaims } from "../../storage/handled-events.ts";
import { PersistentSyncStore } from "./persistent-sync-store.ts";
import { keepLiveTimelinesShort } from "./short-timelines.ts";
import { routeSdkGlobalLogger, sdkLogger } from "./sdk-logger.ts";
import { createSendScheduler } from "./send-scheduler.ts";
import { establishSession, LoginError } from "./session.ts";

/** Until SIGINT or SIGTERM. */
function stopSignal(): Promise<string> {
  return new Promise((resolve) => {
    for (const sig of ["SIGINT", "SIGTERM"] as const) process.once(sig, () => resolve(sig));
  });
}

/** Runs the Matrix front end until stopped; returns the process exit status. */
export async function runMatrix(app: App): Promise<number> {
  const m = app.config.matrix;
  if (!m) throw new Error("runMatrix needs the matrix config");
  const { log, db, clock } = app;
  routeSdkGlobalLogger(log);
  // First, so that a port in use stops the bot at once (exit status 2) instead of after logging in.
  const joinPage = await startJoinPage(app);
  let session;
  try {
    session = await establishSession(m, db, log);
  } catch (err) {
    if (!(err instanceof LoginError)) throw err;
    log.error({ err: err.message }, "cannot log in");
    process.stderr.write(`clanbot: cannot log in: ${err.message}\n`);
    await joinPage?.close();
    await app.close();
    return 1;
  }
  log.info({ userId: session.userId, deviceId: session.deviceId }, "logged in");

  const store = new PersistentSyncStore(db, session.userId, clock);
  const client = createClient({
    baseUrl: m.homeserver,
    userId: session.userId,
    deviceId: session.deviceId,
    accessToken: session.accessToken,
    store,
    scheduler: createSendScheduler(),
    logger: sdkLogger(log),
  });
  keepLiveTimelinesShort(client);
  // Enough timeline per sync that commands sent during an outage arrive with the catch-up sync.
  // Nothing the bot does not read: no presence, typing notices or read receipts (every member's
  // client sends receipts, in every room the bot is in), no per-room account data.
  const filter = Filter.fromJson(session.userId, "clanbot", {
    presence: { types: [] },
    room: { timeline: { limit: 100 }, ephemeral: { types: [] }, account_data: { types: [] } },
  });
  const frontEnd = new MatrixFrontEnd({
    client,
    dispatcher: app.dispatcher,
    claims: await EventClaims.load(db, clock.now()),
    clock,
    log,
    clans: app.clans,
    prefix: app.config.commands.prefix,
    ignoreOlderThanMs: HANDLED_EVENT_RETENTION_MS - 3600_000,
    onJoined: (clan, userId) => app.invites.joined(clan, userId),
  });
  const stopping = stopSignal();
  await frontEnd.start(filter);
  try {
    await app.announceInterrupted((clan, message, replyTo) => frontEnd.post(clan, message, replyTo));
  } catch (err) {
    log.error({ err }, "could not tell a room about an interrupted deploy; will try again at the next start");
  }
  await app.announcer.connect((clan, message, replyTo) => frontEnd.post(clan, message, replyTo));
  app.invites.connect((clan, userId, reason) => frontEnd.invite(clan, userId, reason));
  const signal = await stopping;
  log.info({ signal }, "stopping");
  app.announcer.disconnect();
  await joinPage?.close();
  await frontEnd.stop();
  await store.save(true);
  await app.close();
  return 0;
}

/** The join page, when `web.publicUrl` says where people reach it; without it there are no join codes. */
async function startJoinPage(app: App): Promise<JoinServer | undefined> {
  const { web } = app.config;
  if (!web.publicUrl) return undefined;
  const server = new JoinServer({
    invites: app.invites,
    clock: app.clock,
    log: app.log,
    host: web.listen.host,
    port: web.listen.port,
    publicUrl: web.publicUrl,
    trustProxy: web.trustProxy,
    rateLimit: { requests: web.rateLimit.requests, windowMs: web.rateLimit.window },
  });
  try {
    const address = await server.listen();
    app.log.info({ address: address.address, port: address.port, publicUrl: web.publicUrl }, "the join page is listening");
  } catch (err) {
    throw new ConfigError(`web.listen: cannot listen on ${web.listen.host}:${web.listen.port} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  return server;
}
