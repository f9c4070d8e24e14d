import { createHmac } from "node:crypto";
import { readFile } from "node:fs/promises";
import { fingerprintOf } from "./ssh-key.ts";
import { knownHostsName, type SshTarget } from "./ssh-target.ts";

/** A host key as a machine offered it. */
export interface HostKey {
  readonly type: string;
  readonly base64: string;
  readonly fingerprint: string;
}

export type HostKeyVerdict =
  | { readonly ok: true; /** Pinned just now: the first contact with this machine. */ readonly pinned?: boolean }
  | { readonly ok: false; readonly reason: "changed"; readonly expected: string; readonly offered: HostKey }
  | { readonly ok: false; readonly reason: "unknown"; readonly offered: HostKey; readonly source: string };

/** Decides whether a machine's host key is the one it should be. */
export interface HostKeyPolicy {
  check(machine: string, target: SshTarget, key: HostKey): Promise<HostKeyVerdict>;
  /** How `!trust` works under this policy: undefined when it can pin, else what to do instead. */
  readonly trustAdvice?: string;
}

/** The key type and fingerprint of a raw public key blob (SSH wire format: string type, ...). */
export function hostKeyOf(blob: Buffer): HostKey {
  const len = blob.length >= 4 ? blob.readUInt32BE(0) : 0;
  const type = len > 0 && len < 64 && blob.length >= 4 + len ? blob.subarray(4, 4 + len).toString("latin1") : "unknown";
  return { type, base64: blob.toString("base64"), fingerprint: fingerprintOf(blob) };
}

/** The records a pinning policy keeps (SQLite, per clan). */
export interface PinStore {
  pinned(machine: string): Promise<HostKey | undefined>;
  /** Pins `key` unless a key is pinned already; returns the key that is pinned afterwards. */
  pinIfNone(machine: string, key: HostKey, host: string): Promise<HostKey>;
}

/** Trust on first contact, then only that key: a changed key stops the connection until `!trust`. */
export class PinnedHostKeys implements HostKeyPolicy {
  private readonly store: PinStore;
  constructor(store: PinStore) {
    this.store = store;
  }

  async check(machine: string, target: SshTarget, key: HostKey): Promise<HostKeyVerdict> {
    const known = await this.store.pinned(machine);
    if (!known) {
      const now = await this.store.pinIfNone(machine, key, knownHostsName(target.host, target.port));
      if (sameKey(now, key)) return { ok: true, pinned: true };
      return { ok: false, reason: "changed", expected: now.fingerprint, offered: key };
    }
    return sameKey(known, key) ? { ok: true } : { ok: false, reason: "changed", expected: known.fingerprint, offered: key };
  }
}

/** Only the keys of an OpenSSH known_hosts file (plain or hashed host names, `[host]:port`). */
export class KnownHostsFile implements HostKeyPolicy {
  readonly path: string;
  readonly trustAdvice: string;
  constructor(path: string) {
    this.path = path;
    this.trustAdvice = `host keys come from ${path}: add or replace the machine's key there (ssh-keyscan shows it).`;
  }

  async check(_machine: string, target: SshTarget, key: HostKey): Promise<HostKeyVerdict> {
    const name = knownHostsName(target.host, target.port);
    const entries = parseKnownHosts(await readFile(this.path, "utf8")).filter((e) => e.matches(name));
    if (entries.some((e) => e.revoked && e.base64 === key.base64)) {
      return { ok: false, reason: "changed", expected: "a key not marked @revoked", offered: key };
    }
    const usable = entries.filter((e) => !e.revoked);
    if (usable.some((e) => e.type === key.type && e.base64 === key.base64)) return { ok: true };
    const sameType = usable.find((e) => e.type === key.type);
    if (sameType) return { ok: false, reason: "changed", expected: fingerprintOf(Buffer.from(sameType.base64, "base64")), offered: key };
    return { ok: false, reason: "unknown", offered: key, source: this.path };
  }
}

interface KnownHostsEntry {
  readonly type: string;
  readonly base64: string;
  readonly revoked: boolean;
  matches(name: string): boolean;
}

/** The lines of a known_hosts file that the bot understands (markers @revoked; @cert-authority is skipped). */
export function parseKnownHosts(text: string): KnownHostsEntry[] {
  const entries: KnownHostsEntry[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const fields = line.split(/\s+/);
    let marker: string | undefined;
    if (fields[0]?.startsWith("@")) marker = fields.shift();
    if (marker === "@cert-authority") continue;
    const [hosts, type, base64] = fields;
    if (!hosts || !type || !base64) continue;
    const patterns = hosts.split(",");
    entries.push({ type, base64, revoked: marker === "@revoked", matches: (name) => matchesHost(patterns, name) });
  }
  return entries;
}

function matchesHost(patterns: readonly string[], name: string): boolean {
  let matched = false;
  for (const p of patterns) {
    if (p.startsWith("|1|")) {
      const [, , salt = "", hash = ""] = p.split("|");
      if (createHmac("sha1", Buffer.from(salt, "base64")).update(name).digest("base64") === hash) matched = true;
      continue;
    }
    const negated = p.startsWith("!");
    if (globMatch(negated ? p.slice(1) : p, name)) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

/** known_hosts wildcards: `*` and `?`. */
function globMatch(pattern: string, name: string): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`, "i");
  return re.test(name);
}

function sameKey(a: HostKey, b: HostKey): boolean {
  return a.type === b.type && a.base64 === b.base64;
}
