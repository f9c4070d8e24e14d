import { createClient, Filter } from "matrix-js-sdk";
import { HANDLED_EVENT_RETENTION_MS, type App } from "../app.ts";
import { MatrixFrontEnd } from "./matrix-front-end.ts";
import { PersistentSyncStore } from "./persistent-sync-store.ts";
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
  let session;
  try {
    session = await establishSession(m, db, log);
  } catch (err) {
    if (!(err instanceof LoginError)) throw err;
    log.error({ err: err.message }, "cannot log in");
    process.stderr.write(`clanbot: cannot log in: ${err.message}\n`);
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
  // Enough timeline per sync that commands sent during an outage arrive with the catch-up sync.
  const filter = Filter.fromJson(session.userId, "clanbot", { room: { timeline: { limit: 100 } } });
  const frontEnd = new MatrixFrontEnd({
    client,
    dispatcher: app.dispatcher,
    db,
    clock,
    log,
    clans: app.clans,
    prefix: app.config.commands.prefix,
    ignoreOlderThanMs: HANDLED_EVENT_RETENTION_MS - 3600_000,
  });
  const stopping = stopSignal();
  await frontEnd.start(filter);
  try {
    await app.announceInterrupted((clan, message, replyTo) => frontEnd.post(clan, message, replyTo));
  } catch (err) {
    log.error({ err }, "could not tell a room about an interrupted deploy; will try again at the next start");
  }
  await app.announcer.connect((clan, message, replyTo) => frontEnd.post(clan, message, replyTo));
  const signal = await stopping;
  log.info({ signal }, "stopping");
  app.announcer.disconnect();
  await frontEnd.stop();
  await store.save(true);
  await app.close();
  return 0;
}
