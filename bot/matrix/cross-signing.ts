import { readSecretFile, writeSecretFile, type SecretBox } from "../../ops/secret-box.ts";
import type { AuthDict, MatrixClient, MatrixError, UIAuthCallback } from "matrix-js-sdk";
import type { Logger } from "../logger.ts";
import { CryptoStateError, deviceHasKeys, publishedDevice } from "./device-crypto.ts";

type SecretsBundle = Awaited<ReturnType<NonNullable<NonNullable<ReturnType<MatrixClient["getCrypto"]>>["exportSecretsBundle"]>>>;

export interface CrossSigningOptions {
  userId: string;
  deviceId: string;
  /** The account's password, for the interactive auth a homeserver asks before keys are (re)published. */
  password: string | undefined;
  /** Where the private cross-signing keys are kept apart from the crypto store (mode 0600). */
  keysFile: string;
  /** What the kept keys are encrypted with. */
  box: SecretBox;
  log: Logger;
}

async function readKept(box: SecretBox, path: string): Promise<SecretsBundle | undefined> {
  try {
    const data = await readSecretFile(box, path);
    return data === undefined ? undefined : (JSON.parse(Buffer.from(data).toString("utf8")) as SecretsBundle);
  } catch (err) {
    throw new CryptoStateError(`${path}: cannot read the kept cross-signing keys (${(err as Error).message})`);
  }
}

/** Kept age-encrypted (`<path>.age`, mode 0600): the private keys are never on disk in clear. */
async function keep(box: SecretBox, path: string, bundle: SecretsBundle): Promise<void> {
  await writeSecretFile(box, path, JSON.stringify(bundle));
}

/** Answers the homeserver's interactive auth with the password; without one, says what the admin must do. */
function authWith(userId: string, password: string | undefined): UIAuthCallback<void> {
  return async (makeRequest) => {
    try {
      // Servers that implement MSC3967 take the first upload of an account's keys without auth.
      await makeRequest(null);
      return;
    } catch (err) {
      const e = err as MatrixError;
      const session = (e.data as { session?: string } | undefined)?.session;
      if (e.httpStatus !== 401 || !session) throw err;
      if (password === undefined) {
        throw new CryptoStateError(
          `the homeserver wants the bot's password to publish its cross-signing keys: set matrix.password once (or publish them from the bot's account in a client), then start again`,
        );
      }
      const auth: AuthDict = { type: "m.login.password", identifier: { type: "m.id.user", user: userId }, password, session };
      await makeRequest(auth);
    }
  };
}

/**
 * Makes sure the bot's device is signed by its own account's cross-signing keys before it joins a
 * room or answers anything: clients that exclude insecure devices (MSC4153) give an unsigned device
 * no room keys. First start: new cross-signing keys, published and kept in `keysFile`. A new device
 * of an account whose keys the bot kept (the crypto store was lost, or a new access token names a new
 * device): the kept keys sign it, so people see the same bot identity.
 */
export async function ensureCrossSigned(client: MatrixClient, o: CrossSigningOptions): Promise<void> {
  const crypto = client.getCrypto();
  if (!crypto?.exportSecretsBundle || !crypto.importSecretsBundle) throw new Error("the Rust crypto is not initialised");
  const signed = (): Promise<boolean> => signedOnServer(client, o.userId, o.deviceId);
  const status = await crypto.getCrossSigningStatus();
  const haveKeys = status.privateKeysCachedLocally.masterKey && status.privateKeysCachedLocally.selfSigningKey;
  if (haveKeys && (await signed())) {
    if ((await readKept(o.box, o.keysFile)) === undefined) await keep(o.box, o.keysFile, await crypto.exportSecretsBundle());
    return;
  }
  const kept = await readKept(o.box, o.keysFile);
  const published = await crypto.userHasCrossSigningKeys(o.userId, true);
  if (kept && published) {
    await crypto.importSecretsBundle(kept);
    if ((await crypto.getCrossSigningStatus()).privateKeysCachedLocally.selfSigningKey) {
      await publishDeviceKeys(client, o);
      await crypto.crossSignDevice(o.deviceId);
      if (await signed()) {
        o.log.info({ deviceId: o.deviceId }, "signed this device with the kept cross-signing keys");
        return;
      }
    }
    o.log.warn("the kept cross-signing keys do not match the account's published ones; making new ones");
  } else if (published) {
    o.log.warn("the account has cross-signing keys this bot does not hold; making new ones (people who verified the bot will be asked again)");
  }
  await crypto.bootstrapCrossSigning({ setupNewCrossSigning: true, authUploadDeviceSigningKeys: authWith(o.userId, o.password) });
  if (!(await signed())) throw new CryptoStateError(`the bot's device ${o.deviceId} is still not signed by its cross-signing keys after publishing them`);
  await keep(o.box, o.keysFile, await crypto.exportSecretsBundle());
  o.log.info({ deviceId: o.deviceId }, "published new cross-signing keys and signed this device");
}

/**
 * A new device's identity keys go out with the crypto's next outgoing requests, which the sync loop
 * starts; before the first sync they are started here, and the homeserver is asked until it has them.
 */
async function publishDeviceKeys(client: MatrixClient, o: CrossSigningOptions, timeoutMs = 30_000): Promise<void> {
  const crypto = client.getCrypto() as unknown as { onSyncCompleted(data: object): void };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    crypto.onSyncCompleted({});
    if (await deviceHasKeys(client, o.userId, o.deviceId)) return;
    if (Date.now() > deadline) throw new CryptoStateError(`the homeserver did not take the identity keys of device ${o.deviceId}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Whether the homeserver shows the device signed by the account's self-signing key: what other
 * people's clients check (the crypto's own view of its device lags until it queries its keys again).
 */
async function signedOnServer(client: MatrixClient, userId: string, deviceId: string): Promise<boolean> {
  const { keys, selfSigningKeyIds } = await publishedDevice(client, userId, deviceId);
  const signatures = Object.keys(keys?.signatures?.[userId] ?? {});
  return selfSigningKeyIds.length > 0 && selfSigningKeyIds.every((k) => signatures.includes(k));
}
