// Every secret the bot keeps is encrypted at rest with age (the age-encryption package) to the
// bot's own identity, kept in a file of its own. A state directory copied without that file
// reveals no secret. Which identity the state belongs to is recorded in the state directory (its
// public recipient), so a missing or wrong identity file stops the start with one line instead of
// a new identity silently orphaning what was encrypted.

import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, mkdir, open, readFile, rename, rm, unlink } from "node:fs/promises";
import { dirname, join } from "node:path";
import { Decrypter, Encrypter, generateX25519Identity, identityToRecipient } from "age-encryption";

/** A problem with the identity or an encrypted secret that a restart will not fix: one line, exit non-zero. */
export class SecretStateError extends Error {
  override readonly name = "SecretStateError";
}

/** Suffix of an encrypted file: `id_ed25519` is kept as `id_ed25519.age`. */
export const AGE_SUFFIX = ".age";
/** The recipient the state is encrypted to, in the state directory (public). */
export const RECIPIENT_FILE = "age-recipient.txt";
/** A new identity staged by `clanbot rekey` until every secret is encrypted to it. */
export const REKEY_SUFFIX = ".rekey";
/** Text secrets in SQLite are stored as this prefix and the age file in base64. */
const TEXT_PREFIX = "age:";

export interface SecretBox {
  /** The public key secrets are encrypted to (`age1...`). */
  readonly recipient: string;
  readonly identityFile: string;
  seal(data: Uint8Array | string): Promise<Uint8Array>;
  unseal(data: Uint8Array): Promise<Uint8Array>;
  /** For a text column: `age:<base64>`. */
  sealText(text: string): Promise<string>;
  /** A sealed text; clear text (a row from before encryption) is returned as it is, with `clear` set. */
  unsealText(text: string): Promise<{ text: string; clear: boolean }>;
}

/** Writes a file atomically (mode 0600, fsynced), through `<path>.new`. */
export async function writePrivateFile(path: string, data: Uint8Array | string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.new`;
  const fh = await open(tmp, "w", 0o600);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await chmod(tmp, 0o600);
  await rename(tmp, path);
}

/** Makes a box from an identity string (`AGE-SECRET-KEY-1...`). */
export async function boxOf(identity: string, identityFile: string, alsoDecryptWith: readonly string[] = []): Promise<SecretBox> {
  const recipient = await identityToRecipient(identity);
  const box: SecretBox = {
    recipient,
    identityFile,
    async seal(data) {
      const e = new Encrypter();
      e.addRecipient(recipient);
      return e.encrypt(data);
    },
    async unseal(data) {
      const d = new Decrypter();
      d.addIdentity(identity);
      for (const other of alsoDecryptWith) d.addIdentity(other);
      try {
        return await d.decrypt(data);
      } catch (err) {
        throw new SecretStateError(`cannot decrypt a secret with the identity in ${identityFile} (${(err as Error).message})`);
      }
    },
    async sealText(text) {
      return `${TEXT_PREFIX}${Buffer.from(await box.seal(text)).toString("base64")}`;
    },
    async unsealText(text) {
      if (!text.startsWith(TEXT_PREFIX)) return { text, clear: true };
      const data = await box.unseal(Buffer.from(text.slice(TEXT_PREFIX.length), "base64"));
      return { text: Buffer.from(data).toString("utf8"), clear: false };
    },
  };
  return box;
}

export async function readIdentity(path: string): Promise<string | undefined> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new SecretStateError(`secrets.identityFile: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  const line = text
    .split("\n")
    .map((l) => l.trim())
    .find((l) => l !== "" && !l.startsWith("#"));
  if (!line || !/^AGE-SECRET-KEY-/.test(line)) throw new SecretStateError(`secrets.identityFile: ${path} holds no age identity (AGE-SECRET-KEY-1...)`);
  try {
    await identityToRecipient(line);
  } catch (err) {
    throw new SecretStateError(`secrets.identityFile: ${path} holds no valid age identity (${(err as Error).message})`);
  }
  return line;
}

/** A new identity file (mode 0600) in age-keygen's format. */
export async function writeIdentity(path: string, identity: string): Promise<void> {
  const recipient = await identityToRecipient(identity);
  await writePrivateFile(path, `# created: ${new Date().toISOString()}\n# public key: ${recipient}\n${identity}\n`);
}

export async function newIdentity(): Promise<string> {
  return generateX25519Identity();
}

export interface OpenBoxOptions {
  identityFile: string;
  stateDir: string;
  /** Encrypted files that exist only if the state was encrypted before (no identity then is an error). */
  sealedFiles: readonly string[];
  /** A systemd credential and the like: never created by the bot. */
  mayCreate: boolean;
}

/**
 * The bot's box: the identity from `identityFile`, checked against the recipient the state records.
 * First start (nothing recorded, nothing encrypted): a new identity is made there. A missing identity
 * for an encrypted state, or another identity, is a SecretStateError naming the file.
 */
export async function openSecretBox(o: OpenBoxOptions): Promise<SecretBox> {
  const recipientFile = join(o.stateDir, RECIPIENT_FILE);
  const recorded = existsSync(recipientFile) ? (await readFile(recipientFile, "utf8")).trim() : undefined;
  let identity = await readIdentity(o.identityFile);
  if (identity === undefined) {
    const sealed = o.sealedFiles.filter((f) => existsSync(f));
    if (recorded !== undefined || sealed.length > 0) {
      throw new SecretStateError(
        `secrets.identityFile: ${o.identityFile} is missing, and the secrets in ${o.stateDir} are encrypted to ` +
          `${recorded ?? "an age identity"}: put that identity file back (a new one would orphan them)`,
      );
    }
    if (!o.mayCreate) throw new SecretStateError(`secrets.identityFile: ${o.identityFile} is missing`);
    identity = await newIdentity();
    await writeIdentity(o.identityFile, identity);
  }
  // A rekey cut short: some secrets may be encrypted to the staged identity already.
  const staged = await readIdentity(`${o.identityFile}${REKEY_SUFFIX}`);
  const box = await boxOf(identity, o.identityFile, staged === undefined ? [] : [staged]);
  const stagedRecipient = staged === undefined ? undefined : await identityToRecipient(staged);
  if (recorded !== undefined && recorded !== box.recipient && recorded !== stagedRecipient) {
    throw new SecretStateError(
      `secrets.identityFile: ${o.identityFile} is another identity (${box.recipient}) than the one the secrets in ${o.stateDir} are encrypted to (${recorded})`,
    );
  }
  if (recorded === undefined) await writePrivateFile(recipientFile, `${box.recipient}\n`);
  return box;
}

/**
 * Reads a secret file kept as `<path>.age`. A clear `<path>` from before encryption is encrypted into
 * `<path>.age` and removed (migrated). Undefined when there is neither.
 */
export async function readSecretFile(box: SecretBox, path: string): Promise<Uint8Array | undefined> {
  const sealed = `${path}${AGE_SUFFIX}`;
  try {
    return await box.unseal(await readFile(sealed));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  let clear: Buffer;
  try {
    clear = await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  await writePrivateFile(sealed, await box.seal(clear));
  await shred(path);
  return new Uint8Array(clear);
}

/** Writes a secret as `<path>.age` (mode 0600, atomically). */
export async function writeSecretFile(box: SecretBox, path: string, data: Uint8Array | string): Promise<void> {
  await writePrivateFile(`${path}${AGE_SUFFIX}`, await box.seal(data));
}

/** Overwrites a clear file before removing it, so its blocks do not keep the secret (on most file systems). */
async function shred(path: string): Promise<void> {
  const fh = await open(path, "r+");
  try {
    const { size } = await fh.stat();
    await fh.write(randomBytes(size), 0, size, 0);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await unlink(path);
}

/** Re-encrypts one sealed file from `from` to `to` (rekey); missing files are skipped. */
export async function resealFile(from: SecretBox, to: SecretBox, path: string): Promise<boolean> {
  const sealed = `${path}${AGE_SUFFIX}`;
  let data: Buffer;
  try {
    data = await readFile(sealed);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw err;
  }
  await writePrivateFile(sealed, await to.seal(await from.unseal(data)));
  return true;
}

export async function removeFile(path: string): Promise<void> {
  await rm(path, { force: true });
}
