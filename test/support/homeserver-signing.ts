// Signed JSON (spec "Signing JSON"): canonical JSON and ed25519 checks, so the test homeserver refuses
// cross-signing keys and signatures that do not verify, as Synapse does.
import { createPublicKey, verify, type KeyObject } from "node:crypto";
import type { Json } from "./homeserver-store.ts";

/** Canonical JSON: keys sorted by code point, no insignificant whitespace, UTF-8. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const entries = Object.entries(value as Json)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
}

// The DER prefix of an ed25519 SubjectPublicKeyInfo; the 32-byte raw key follows it.
const ED25519_SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex");

function ed25519Key(unpaddedBase64: string): KeyObject | undefined {
  const raw = Buffer.from(unpaddedBase64, "base64");
  if (raw.length !== 32) return undefined;
  try {
    return createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, raw]), format: "der", type: "spki" });
  } catch {
    return undefined; // not a point on the curve: it verifies nothing
  }
}

/** Whether `signed.signatures[userId][keyId]` is a valid ed25519 signature by `publicKey` over the object. */
export function verifySignature(signed: Json, userId: string, keyId: string, publicKey: string): boolean {
  const signatures = signed["signatures"];
  const byUser = signatures !== null && typeof signatures === "object" ? (signatures as Json)[userId] : undefined;
  const signature = byUser !== null && typeof byUser === "object" ? (byUser as Json)[keyId] : undefined;
  const key = ed25519Key(publicKey);
  if (typeof signature !== "string" || !key) return false;
  const { signatures: _s, unsigned: _u, ...rest } = signed;
  return verify(null, Buffer.from(canonicalJson(rest)), key, Buffer.from(signature, "base64"));
}

/** The single "ed25519:<public key>" entry of a cross-signing key, as [keyId, publicKey]. */
export function crossSigningKeyOf(key: Json): [string, string] | undefined {
  const keys = key["keys"];
  if (keys === null || typeof keys !== "object" || Array.isArray(keys)) return undefined;
  const entries = Object.entries(keys as Json);
  const [first] = entries;
  if (entries.length !== 1 || !first || typeof first[1] !== "string" || !first[0].startsWith("ed25519:")) return undefined;
  return [first[0], first[1]];
}
