import { dirname, resolve } from "node:path";
import { createClient, Filter, type MatrixClient } from "matrix-js-sdk";
import { HANDLED_EVENT_RETENTION_MS, type App } from "../app.ts";
import { ConfigError } from "../config.ts";
import { JoinServer } from "../web/join-server.ts";
import { MatrixFrontEnd } from "./matrix-front-end.ts";
import { Outbox } from "./outbox.ts";
import { recoverCommands } from "./command-recovery.ts";
import { skipUnchangedSyncChanges } from "./unchanged-sync-changes.ts";
import { commandTable } from "../../commands/index.ts";
import { EventClaims, unrecordedClaims } from "../../storage/handled-events.ts";
import { PersistentSyncStore } from "./persistent-sync-store.ts";
import { keepLiveTimelinesShort } from "./short-timelines.ts";
import { routeSdkGlobalLogger, sdkLogger } from "./sdk-logger.ts";
import { establishSession, loginNewDevice, LoginError } from "./session.ts";
import { ensureCrossSigned } from "./cross-signing.ts";
import { CRYPTO_DB_PREFIX, CryptoStateError, deviceHasKeys, openDeviceCrypto, type DeviceCrypto } from "./device-crypto.ts";
import { syncSavedAt, type MatrixSession } from "../../storage/matrix-session.ts";

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
  let started;
  try {
    started = await startDevice(app);
  } catch (err) {
    if (!(err instanceof LoginError) && !(err instanceof CryptoStateError)) throw err;
    const what = err instanceof LoginError ? "cannot log in" : "cannot use end-to-end encryption";
    log.error({ err: err.message }, what);
    process.stderr.write(`clanbot: ${what}: ${err.message}\n`);
    await joinPage?.close();
    await app.close();
    return 1;
  }
  const { session, crypto, client, store } = started;
  keepLiveTimelinesShort(client);
  // Enough timeline per sync that commands sent during an outage arrive with the catch-up sync.
  // Nothing the bot does not read: no presence, typing notices or read receipts (every member's
  // client sends receipts, in every room the bot is in), no per-room account data.
  const filter = Filter.fromJson(session.userId, "clanbot", {
    presence: { types: [] },
    room: { timeline: { limit: 100 }, ephemeral: { types: [] }, account_data: { types: [] } },
  });
  const outbox = new Outbox({ db, client, clock, log });
  const frontEnd = new MatrixFrontEnd({
    client,
    outbox,
    dispatcher: app.dispatcher,
    claims: await EventClaims.load(db, clock.now()),
    clock,
    log,
    clans: app.clans,
    prefix: app.config.commands.prefix,
    ignoreOlderThanMs: HANDLED_EVENT_RETENTION_MS - 3600_000,
    undecryptableGraceMs: m.undecryptableGrace,
    seenUntil: (await syncSavedAt(db, session.userId)) ?? clock.now(),
    onJoined: (clan, userId) => app.invites.joined(clan, userId),
  });
  store.onGap = (roomId, prevBatch) => frontEnd.catchUp(roomId, prevBatch);
  const stopping = stopSignal();
  await frontEnd.start(filter);
  await outbox.resume();
  try {
    await app.announceInterrupted((clan, message, replyTo, once) => frontEnd.post(clan, message, replyTo, once));
  } catch (err) {
    log.error({ err }, "could not tell a room about an interrupted deploy; will try again at the next start");
  }
  await app.announcer.connect((clan, message, replyTo, once) => frontEnd.post(clan, message, replyTo, once));
  try {
    await recoverCommands(app.unfinished, {
      db,
      table: commandTable,
      prefix: app.config.commands.prefix,
      now: () => clock.now(),
      log,
      rerun: (c, line) => frontEnd.rerun(c, line),
      tell: (c, message, once) => frontEnd.post(c.clan, message, c.eventId, once),
    });
    await frontEnd.recoverUnrecorded(await unrecordedClaims(db, clock.now() - m.maxCommandAge));
  } catch (err) {
    log.error({ err }, "could not answer or tell about the commands cut short when the bot last stopped");
  }
  app.invites.connect((clan, userId, reason) => frontEnd.invite(clan, userId, reason));
  const signal = await stopping;
  log.info({ signal }, "stopping");
  app.announcer.disconnect();
  await joinPage?.close();
  await frontEnd.stop();
  // What is stored but not sent yet is sent at the next start; a few seconds to send it now, while the
  // client (and its crypto, which encrypts the posts) still runs.
  await outbox.stop(5000);
  client.stopClient();
  await store.save(true);
  await crypto.close();
  await app.close();
  return 0;
}

interface StartedDevice {
  session: MatrixSession;
  crypto: DeviceCrypto;
  client: MatrixClient;
  store: PersistentSyncStore;
}

/**
 * Logs in, opens the device's crypto store and makes the device one people's clients trust (signed by
 * the bot's cross-signing keys) before anything else happens. A fresh store for a device the homeserver
 * already knows keys of means the store was lost: with a password the bot becomes a new device (signed
 * with the kept keys); with an access token alone it stops and says what to do.
 */
async function startDevice(app: App): Promise<StartedDevice> {
  const m = app.config.matrix;
  if (!m) throw new Error("startDevice needs the matrix config");
  const { log, db, clock } = app;
  const stateDir = dirname(resolve(app.config.storage.path));
  let session = await establishSession(m, db, log, app.secrets);
  for (let attempt = 1; ; attempt++) {
    log.info({ userId: session.userId, deviceId: session.deviceId }, "logged in");
    const crypto = await openDeviceCrypto(stateDir, session, log, app.secrets);
    const store = new PersistentSyncStore(db, session.userId, clock);
    const client = createClient({
      baseUrl: m.homeserver,
      userId: session.userId,
      deviceId: session.deviceId,
      accessToken: session.accessToken,
      store,
      logger: sdkLogger(log),
      fetchFn: crypto.fetchFn,
    });
    if (crypto.fresh && (await deviceHasKeys(client, session.userId, session.deviceId))) {
      await crypto.close();
      if (m.password === undefined || attempt > 1) {
        throw new CryptoStateError(
          `the crypto store of device ${session.deviceId} is gone, and reusing that device would break encryption in every room. ` +
            `Log the bot in again to get an access token for a new device, put it in matrix.accessToken or matrix.accessTokenFile, and start again: ` +
            `the new device is signed with the cross-signing keys kept in ${resolve(stateDir, "crypto", "cross-signing.json.age")}`,
        );
      }
      log.warn({ deviceId: session.deviceId }, "the crypto store of this device is gone; logging in as a new device");
      session = await loginNewDevice(m, db, log, app.secrets, session);
      continue;
    }
    await crypto.claim(session.userId, session.deviceId);
    await client.initRustCrypto({ useIndexedDB: true, cryptoDatabasePrefix: CRYPTO_DB_PREFIX, storageKey: crypto.storageKey });
    skipUnchangedSyncChanges(client.getCrypto(), log);
    await crypto.idb.compact();
    await ensureCrossSigned(client, { userId: session.userId, deviceId: session.deviceId, password: m.password, keysFile: crypto.crossSigningFile, box: app.secrets, log });
    return { session, crypto, client, store };
  }
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
