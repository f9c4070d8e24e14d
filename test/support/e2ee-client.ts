// Helpers for end-to-end encryption tests: matrix-js-sdk clients with Rust crypto (cross-signing bootstrap answering
// interactive auth by password when the server asks, waiting for events to decrypt) and hand-made signed keys.
import { generateKeyPairSync, sign as cryptoSign } from "node:crypto";
import { MatrixError, type MatrixClient, type MatrixEvent } from "matrix-js-sdk";
import { canonicalJson } from "./homeserver-signing.ts";

function cryptoOf(client: MatrixClient): NonNullable<ReturnType<MatrixClient["getCrypto"]>> {
  const crypto = client.getCrypto();
  if (!crypto) throw new Error(`${client.getUserId() ?? "?"}: no crypto (start it with rustCrypto)`);
  return crypto;
}

/**
 * Creates and uploads the client's cross-signing keys and signs its device with them. The upload is tried without
 * auth first (a first upload needs none where the server implements MSC3967); a 401 challenge is answered with the
 * password. Resolves with how the upload got through.
 */
export async function bootstrapCrossSigning(client: MatrixClient, password: string, opts: { reset?: boolean } = {}): Promise<"without-auth" | "password"> {
  let how: "without-auth" | "password" = "without-auth";
  await cryptoOf(client).bootstrapCrossSigning({
    setupNewCrossSigning: opts.reset ?? false,
    authUploadDeviceSigningKeys: async (makeRequest) => {
      try {
        await makeRequest(null);
        return;
      } catch (e) {
        const session = e instanceof MatrixError && e.httpStatus === 401 ? e.data["session"] : undefined;
        if (typeof session !== "string") throw e;
        how = "password";
        await makeRequest({ type: "m.login.password", identifier: { type: "m.id.user", user: client.getSafeUserId() }, password, session });
      }
    },
  });
  return how;
}

export async function isCrossSigned(client: MatrixClient, userId: string, deviceId: string): Promise<boolean> {
  const status = await cryptoOf(client).getDeviceVerificationStatus(userId, deviceId);
  return status?.signedByOwner ?? false;
}

/** Resolves when `test` holds (polled); rejects after `ms`. */
export async function eventually(what: string, test: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await test()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * The event `eventId` in `roomId` as `client` sees it: as soon as it is decrypted, or, if it is still not readable
 * after `ms`, as it is then (a decryption failure). Rejects if the client never saw the event at all.
 */
export async function eventAsSeenBy(client: MatrixClient, roomId: string, eventId: string, ms = 10_000): Promise<MatrixEvent> {
  const deadline = Date.now() + ms;
  for (;;) {
    const event = client.getRoom(roomId)?.findEventById(eventId);
    // A failed decryption also turns the event into an m.room.message (with an "Unable to decrypt" body).
    const readable = event !== undefined && !event.isBeingDecrypted() && !event.isDecryptionFailure() && event.getType() !== "m.room.encrypted";
    if (readable) return event;
    if (Date.now() > deadline) {
      if (event) return event;
      throw new Error(`${client.getUserId() ?? "?"} never saw ${eventId} within ${ms} ms`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** An ed25519 key for hand-made cross-signing keys and signatures in raw HTTP tests. */
export interface SigningKey {
  /** Unpadded base64, as Matrix writes keys. */
  publicKey: string;
  /** Adds this key's signature (as `userId`, key id "ed25519:<keyIdPart>") to a copy of `json`. */
  sign(json: Record<string, unknown>, userId: string, keyIdPart?: string): Record<string, unknown>;
}

export function newSigningKey(): SigningKey {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const raw = publicKey.export({ format: "der", type: "spki" }).subarray(-32);
  const pub = raw.toString("base64").replace(/=+$/, "");
  return {
    publicKey: pub,
    sign(json, userId, keyIdPart = pub) {
      const { signatures, unsigned, ...rest } = json;
      const signature = cryptoSign(null, Buffer.from(canonicalJson(rest)), privateKey).toString("base64").replace(/=+$/, "");
      const all = { ...(signatures as Record<string, Record<string, string>> | undefined) };
      all[userId] = { ...all[userId], [`ed25519:${keyIdPart}`]: signature };
      return unsigned === undefined ? { ...rest, signatures: all } : { ...rest, signatures: all, unsigned };
    },
  };
}

/** A cross-signing key object for `userId` with `usage`, holding `key`'s public half. */
export function crossSigningKey(userId: string, usage: string, key: SigningKey): Record<string, unknown> {
  return { user_id: userId, usage: [usage], keys: { [`ed25519:${key.publicKey}`]: key.publicKey } };
}
