import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";
import type { MatrixClient } from "matrix-js-sdk";

/** The largest image the bot downloads when asked for one. */
export const MAX_DOWNLOAD_BYTES = 32 * 1024 * 1024;

interface EncryptedFile {
  url: string;
  key: { k: string };
  iv: string;
  hashes: { sha256: string };
}

/** Why an image could not be had: said to the person who sent it, not an internal error. */
export class MediaDownloadError extends Error {
  override readonly name = "MediaDownloadError";
}

/** Answers of a homeserver that has no authenticated media (Matrix before 1.11): try the older endpoint. */
const NO_AUTHENTICATED_MEDIA = new Set([400, 404, 405, 501]);

/**
 * The bytes of an image or file message: from the media repository with the bot's token
 * (authenticated media, falling back to the older /_matrix/media/v3 download on a homeserver
 * without it), decrypted when the room is encrypted (`file` instead of `url`).
 */
export async function downloadMedia(client: MatrixClient, content: Record<string, unknown>): Promise<Uint8Array> {
  const file = content["file"] as EncryptedFile | undefined;
  const mxc = file?.url ?? (content["url"] as string | undefined);
  if (typeof mxc !== "string" || !mxc.startsWith("mxc://")) throw new MediaDownloadError("the message has no media link");
  const get = async (authenticated: boolean): Promise<Response> => {
    const url = client.mxcUrlToHttp(mxc, undefined, undefined, undefined, false, true, authenticated);
    if (!url) throw new MediaDownloadError("its media link cannot be resolved");
    return fetch(url, { headers: { Authorization: `Bearer ${client.getAccessToken() ?? ""}` }, signal: AbortSignal.timeout(60_000) }).catch((err: unknown) => {
      throw new MediaDownloadError(`the homeserver did not answer (${err instanceof Error ? err.message : String(err)})`);
    });
  };
  let response = await get(true);
  if (NO_AUTHENTICATED_MEDIA.has(response.status)) response = await get(false);
  if (!response.ok) throw new MediaDownloadError(`the homeserver answered ${response.status} ${response.statusText}`.trim());
  const length = Number(response.headers.get("content-length") ?? "0");
  if (length > MAX_DOWNLOAD_BYTES) throw new MediaDownloadError(`the image is larger than ${MAX_DOWNLOAD_BYTES / 1024 / 1024} MB`);
  const data = new Uint8Array(await response.arrayBuffer());
  if (data.byteLength > MAX_DOWNLOAD_BYTES) throw new MediaDownloadError(`the image is larger than ${MAX_DOWNLOAD_BYTES / 1024 / 1024} MB`);
  return file ? decryptAttachment(data, file) : data;
}

/** Matrix's encrypted attachments: AES-256-CTR with the key and IV from the event, SHA-256 of the ciphertext. */
export function decryptAttachment(data: Uint8Array, file: EncryptedFile): Uint8Array {
  const digest = createHash("sha256").update(data).digest("base64").replace(/=+$/, "");
  if (digest !== file.hashes.sha256.replace(/=+$/, "")) throw new MediaDownloadError("the encrypted image does not match its hash");
  const key = Buffer.from(file.key.k, "base64url");
  const iv = Buffer.from(file.iv.replace(/=+$/, ""), "base64");
  const decipher = createDecipheriv("aes-256-ctr", key, iv);
  return Buffer.concat([decipher.update(data), decipher.final()]);
}

const unpadded = (b: Buffer): string => b.toString("base64").replace(/=+$/, "");

/**
 * Encrypts a file for an encrypted room (spec: "Sending encrypted attachments"): AES-256-CTR with a new
 * key, a 128-bit counter block whose low 64 bits start at zero, and the SHA-256 of the ciphertext. The
 * ciphertext is uploaded; `file` (with the upload's mxc URL added) goes in the event instead of `url`.
 */
export function encryptAttachment(data: Uint8Array): { data: Buffer; file: Record<string, unknown> } {
  const key = randomBytes(32);
  const iv = Buffer.concat([randomBytes(8), Buffer.alloc(8)]);
  const cipher = createCipheriv("aes-256-ctr", key, iv);
  const ciphertext = Buffer.concat([cipher.update(data), cipher.final()]);
  return {
    data: ciphertext,
    file: {
      v: "v2",
      key: { kty: "oct", alg: "A256CTR", ext: true, key_ops: ["encrypt", "decrypt"], k: key.toString("base64url") },
      iv: unpadded(iv),
      hashes: { sha256: unpadded(createHash("sha256").update(ciphertext).digest()) },
    },
  };
}
