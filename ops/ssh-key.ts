import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { dirname, join } from "node:path";
import ssh2 from "ssh2";
import { readSecretFile, writePrivateFile, writeSecretFile, type SecretBox } from "./secret-box.ts";

/** The key the bot logs in to machines with. The private part never leaves this object. */
export interface BotKey {
  readonly privateKey: string;
  /** One authorized_keys line: `ssh-ed25519 AAAA... clanbot@host`. */
  readonly publicLine: string;
  readonly fingerprint: string;
  readonly path: string;
}

/**
 * Reads the bot's SSH private key from `path`; when `create` is set and there is no file yet, makes
 * a new ed25519 key there (mode 0600, its directory 0700) and the `.pub` beside it.
 */
export function loadBotKey(path: string, create: boolean): BotKey {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "ENOENT" || !create) throw new Error(`cannot read the SSH key ${path} (${code ?? String(err)})`);
    const pair = newKeyPair();
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    // "wx": two bots starting at once must not overwrite each other's key.
    writeFileSync(path, pair.private, { mode: 0o600, flag: "wx" });
    writeFileSync(`${path}.pub`, `${pair.public}\n`, { mode: 0o644 });
    text = pair.private;
  }
  return botKeyOf(text, path);
}

/**
 * The bot's own key, kept encrypted as `<path>.age` (a clear `<path>` from an older bot is encrypted
 * and removed); made on first start. ssh and clan need a key file: a clear copy goes to `runtimeDir`
 * (systemd's RuntimeDirectory=, a tmpfs, outside the state), and that copy is the key's `path`.
 */
export async function loadSealedBotKey(box: SecretBox, path: string, runtimeDir: string): Promise<BotKey> {
  let data = await readSecretFile(box, path);
  if (data === undefined) {
    const pair = newKeyPair();
    await writeSecretFile(box, path, pair.private);
    await writeFile(`${path}.pub`, `${pair.public}\n`, { mode: 0o644 });
    data = Buffer.from(pair.private);
  }
  const text = Buffer.from(data).toString("utf8");
  const copy = join(runtimeDir, "id_ed25519");
  await writePrivateFile(copy, text);
  return botKeyOf(text, copy);
}

function botKeyOf(text: string, path: string): BotKey {
  const parsed = ssh2.utils.parseKey(text);
  if (parsed instanceof Error) throw new Error(`the SSH key ${path} cannot be used: ${parsed.message}`);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key || !key.isPrivateKey()) throw new Error(`the SSH key ${path} holds no private key`);
  const blob = key.getPublicSSH();
  const comment = key.comment || `clanbot@${hostname()}`;
  return {
    privateKey: text,
    publicLine: `${key.type} ${blob.toString("base64")} ${comment}`,
    fingerprint: fingerprintOf(blob),
    path,
  };
}

/**
 * A new ed25519 key pair that ssh2 can read back: about 1 in 300 keys ssh2 generates, it then
 * refuses as "Malformed OpenSSH private key" (seen with ssh2 1.17), so such a key is made again.
 */
function newKeyPair(): { private: string; public: string } {
  for (let attempt = 0; attempt < 20; attempt++) {
    const pair = ssh2.utils.generateKeyPairSync("ed25519", { comment: `clanbot@${hostname()}` });
    if (!(ssh2.utils.parseKey(pair.private) instanceof Error)) return pair;
  }
  throw new Error("could not make an SSH key that ssh2 reads back");
}

/** OpenSSH's fingerprint of a public key blob: `SHA256:` and unpadded base64. */
export function fingerprintOf(blob: Buffer): string {
  return `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}
