// Where the bot's secrets are, opening its age identity at start, and `clanbot rekey`.

import { existsSync } from "node:fs";
import { mkdtemp, rename, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import {
  AGE_SUFFIX,
  RECIPIENT_FILE,
  REKEY_SUFFIX,
  readIdentity,
  SecretStateError,
  boxOf,
  newIdentity,
  openSecretBox,
  resealFile,
  writeIdentity,
  writePrivateFile,
  type SecretBox,
} from "../ops/secret-box.ts";
import { openCryptoJournal } from "../storage/crypto-journal.ts";
import { DatabaseBusyError, openDatabase } from "../storage/db.ts";
import { resealSessions } from "../storage/matrix-session.ts";
import { migrate } from "../storage/migrations.ts";
import type { Config } from "./config.ts";

/** The identity's default file name, next to the SQLite file. */
export const IDENTITY_FILE = "age-identity.txt";

export interface SecretPaths {
  stateDir: string;
  identityFile: string;
  /** Secret files the bot keeps, each as `<path>.age`. */
  files: string[];
}

export function secretPaths(config: Config): SecretPaths {
  const stateDir = dirname(resolve(config.storage.path));
  const files = [join(stateDir, "crypto", "store.key"), join(stateDir, "crypto", "cross-signing.json")];
  // A key given by ssh.keyFile is the admin's file, read as it is; the bot's own one is encrypted.
  if (config.ssh.keyFile === undefined) files.push(defaultSshKeyFile(config));
  return { stateDir, identityFile: resolve(config.secrets.identityFile ?? join(stateDir, IDENTITY_FILE)), files };
}

export function defaultSshKeyFile(config: Config): string {
  return join(dirname(resolve(config.storage.path)), "ssh", "id_ed25519");
}

/** The bot's age identity; a missing or wrong one stops the start (SecretStateError, one line). */
export async function openBotSecrets(config: Config): Promise<SecretBox> {
  const p = secretPaths(config);
  return openSecretBox({ identityFile: p.identityFile, stateDir: p.stateDir, sealedFiles: p.files.map((f) => `${f}${AGE_SUFFIX}`), mayCreate: true });
}

/**
 * A folder outside the state for what must be a clear file while the bot runs (the SSH key that ssh
 * and clan read): systemd's RuntimeDirectory= (a tmpfs) when there is one, else a private temporary
 * folder. Removed when the bot stops.
 */
export async function makeRuntimeDir(env: NodeJS.ProcessEnv): Promise<{ dir: string; remove(): Promise<void> }> {
  const runtime = env["RUNTIME_DIRECTORY"]?.split(":")[0];
  const dir = runtime ? await mkdtemp(join(runtime, "clanbot-")) : await mkdtemp(join(tmpdir(), "clanbot-run-"));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

export interface RekeyResult {
  recipient: string;
  files: number;
  tokens: number;
}

/**
 * Moves every secret to a new identity: the files and the stored tokens are encrypted to it, then the
 * identity file is replaced. The bot must be stopped (the SQLite file and the crypto store are its).
 */
export async function rekey(config: Config): Promise<RekeyResult> {
  const p = secretPaths(config);
  await refuseWhileRunning(join(p.stateDir, "crypto", "store.sqlite3"));
  // Decrypts with the current identity and, after a rekey that was cut short, with the staged one too.
  const old = await openBotSecrets(config);
  const staged = `${p.identityFile}${REKEY_SUFFIX}`;
  // A rekey cut short is finished with the identity it staged: some secrets may be encrypted to it already.
  let identity = await readIdentity(staged);
  if (identity === undefined) {
    identity = await newIdentity();
    await writeIdentity(staged, identity);
  }
  const fresh = await boxOf(identity, p.identityFile);
  let files = 0;
  for (const f of p.files) if (await resealFile(old, fresh, f)) files++;
  const db = await openDatabase(config.storage.path);
  let tokens: number;
  try {
    await migrate(db);
    tokens = await resealSessions(db, old, fresh);
  } finally {
    await db.close();
  }
  await writePrivateFile(join(p.stateDir, RECIPIENT_FILE), `${fresh.recipient}\n`);
  await rename(staged, p.identityFile);
  return { recipient: fresh.recipient, files, tokens };
}

/** A running bot holds its crypto store exclusively: rekey then stops with one line. */
async function refuseWhileRunning(journalPath: string): Promise<void> {
  if (!existsSync(journalPath)) return;
  try {
    const journal = await openCryptoJournal(journalPath);
    await journal.close();
  } catch (err) {
    if (err instanceof DatabaseBusyError) throw new SecretStateError(`rekey: a clanbot is running on ${dirname(journalPath)}: stop it first`);
    throw err;
  }
}

export function identityExists(config: Config): boolean {
  return existsSync(secretPaths(config).identityFile);
}
