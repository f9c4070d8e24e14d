import { readFile } from "node:fs/promises";
import { createClient, type MatrixError } from "matrix-js-sdk";
import type { Db } from "../../storage/db.ts";
import { clearSyncState, loadSession, saveSession, type MatrixSession, type TokenSeal } from "../../storage/matrix-session.ts";
import type { Config } from "../config.ts";
import type { Logger } from "../logger.ts";
import { sdkLogger } from "./sdk-logger.ts";

type MatrixConfig = NonNullable<Config["matrix"]>;

/** A login problem no retry will fix (wrong password, revoked token, wrong user). */
export class LoginError extends Error {
  override readonly name = "LoginError";
}

function isUnknownToken(err: unknown): boolean {
  const e = err as MatrixError;
  return e.errcode === "M_UNKNOWN_TOKEN" || e.httpStatus === 401;
}

/** Retries while the homeserver is unreachable (it may be booting with us); fails at once on an answer that says no. */
async function retrying<T>(what: string, log: Logger, fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const status = (err as MatrixError).httpStatus;
      if (err instanceof LoginError || (status !== undefined && status >= 400 && status < 500 && status !== 429)) throw err;
      const delay = Math.min(1000 * 2 ** (attempt - 1), 60_000);
      log.warn({ attempt, delayMs: delay, err: (err as Error).message }, `${what}: homeserver not reachable, retrying`);
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

async function whoami(m: MatrixConfig, accessToken: string, log: Logger): Promise<{ userId: string; deviceId: string | undefined }> {
  const probe = createClient({ baseUrl: m.homeserver, accessToken, logger: sdkLogger(log) });
  const r = await probe.whoami();
  return { userId: r.user_id, deviceId: r.device_id };
}

/**
 * The bot's Matrix identity: with an access token, the device it belongs to; with a password, the
 * device saved from the first login (logging in again onto the same device when the token expired),
 * so that restarts never pile up devices and a later crypto store stays valid.
 */
export async function establishSession(m: MatrixConfig, db: Db, log: Logger, seal: TokenSeal): Promise<MatrixSession> {
  if (m.accessToken !== undefined || m.accessTokenFile !== undefined) {
    const token = m.accessToken ?? (await readFile(m.accessTokenFile as string, "utf8")).trim();
    const who = await retrying("whoami", log, () =>
      whoami(m, token, log).catch((err: unknown) => {
        if (isUnknownToken(err)) throw new LoginError("the homeserver rejected matrix.accessToken (M_UNKNOWN_TOKEN)");
        throw err;
      }),
    );
    if (who.userId !== m.userId) throw new LoginError(`the access token belongs to ${who.userId}, not matrix.userId ${m.userId}`);
    if (!who.deviceId) throw new LoginError("the homeserver did not say which device the access token belongs to");
    const session = { userId: who.userId, deviceId: who.deviceId, accessToken: token };
    const saved = await loadSession(db, m.homeserver, m.userId, seal);
    if (saved && saved.deviceId !== session.deviceId) await clearSyncState(db, m.userId);
    // Only the device is kept: a token given in the config (or its file) is read from there at each start, never copied.
    await saveSession(db, m.homeserver, { ...session, accessToken: "" }, seal);
    return session;
  }

  const saved = await loadSession(db, m.homeserver, m.userId, seal);
  if (saved) {
    const valid = await retrying("whoami", log, () =>
      whoami(m, saved.accessToken, log).then(
        () => true,
        (err: unknown) => {
          if (isUnknownToken(err)) return false;
          throw err;
        },
      ),
    );
    if (valid) return saved;
    log.info({ deviceId: saved.deviceId }, "saved access token expired; logging in again on the same device");
  }
  return passwordLogin(m, db, log, seal, saved, saved?.deviceId);
}

/**
 * A new device for the bot (its crypto store was lost): logs in without a device id, and logs the
 * old device out, so the account does not keep a device that can no longer read anything.
 */
export async function loginNewDevice(m: MatrixConfig, db: Db, log: Logger, seal: TokenSeal, old: MatrixSession): Promise<MatrixSession> {
  const session = await passwordLogin(m, db, log, seal, old, undefined);
  const oldClient = createClient({ baseUrl: m.homeserver, accessToken: old.accessToken, logger: sdkLogger(log) });
  await oldClient.logout(true).catch((err: unknown) => log.warn({ deviceId: old.deviceId, err: (err as Error).message }, "could not log the old device out"));
  return session;
}

async function passwordLogin(m: MatrixConfig, db: Db, log: Logger, seal: TokenSeal, saved: MatrixSession | undefined, deviceId: string | undefined): Promise<MatrixSession> {
  const localpart = m.userId.slice(1, m.userId.indexOf(":"));
  const anon = createClient({ baseUrl: m.homeserver, logger: sdkLogger(log) });
  const res = await retrying("login", log, () =>
    anon
      .loginRequest({
        type: "m.login.password",
        identifier: { type: "m.id.user", user: localpart },
        password: m.password as string,
        ...(deviceId !== undefined ? { device_id: deviceId } : { initial_device_display_name: m.deviceName }),
      })
      .catch((err: unknown) => {
        const e = err as MatrixError;
        if (e.errcode === "M_FORBIDDEN") throw new LoginError(`the homeserver refused the login for ${m.userId}: ${e.message}`);
        throw err;
      }),
  );
  if (res.user_id !== m.userId) throw new LoginError(`logged in as ${res.user_id}, not matrix.userId ${m.userId}`);
  const session = { userId: res.user_id, deviceId: res.device_id, accessToken: res.access_token };
  if (!saved || saved.deviceId !== session.deviceId) await clearSyncState(db, m.userId);
  await saveSession(db, m.homeserver, session, seal);
  return session;
}
