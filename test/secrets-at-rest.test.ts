// Every secret the bot keeps is encrypted at rest with age to its own identity: the access token of
// its password login, its SSH key, the crypto store's key and its cross-signing keys. After a run in
// an encrypted room, no byte of them is in clear under the state directory; without the identity the
// bot does not start (one line, exit non-zero); `clanbot rekey` moves them to a new identity.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile, readdir, rm, stat, writeFile, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { MAIN } from "./support/bot-process.ts";
import { world, type World } from "./support/e2e.ts";
import { say, waitForReply } from "./support/matrix-wait.ts";
import { tempDir } from "./support/temp-dir.ts";
import { boxOf, newIdentity, openSecretBox, readIdentity, readSecretFile, writeIdentity, type SecretBox } from "../ops/secret-box.ts";
import { openDatabase } from "../storage/db.ts";
import { migrate } from "../storage/migrations.ts";
import { loadSession, saveSession } from "../storage/matrix-session.ts";

const w: World = await world({ encrypted: true });
const state = join(w.dir, "state");
const identityFile = join(state, "age-identity.txt");

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await filesUnder(p)));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

/** Each needle, as bytes, in any file under the state directory but the identity file. */
async function foundInState(needles: Array<{ what: string; bytes: Buffer }>): Promise<string[]> {
  const found: string[] = [];
  for (const f of await filesUnder(state)) {
    if (f === identityFile) continue;
    const data = await readFile(f);
    for (const n of needles) if (data.includes(n.bytes)) found.push(`${n.what} in ${f}`);
  }
  return found;
}

/** The secrets as the bot's identity decrypts them, in every form they could be written in. */
async function secretsOf(box: SecretBox): Promise<Array<{ what: string; bytes: Buffer }>> {
  const needles: Array<{ what: string; bytes: Buffer }> = [];
  const add = (what: string, b: Buffer): void => {
    needles.push({ what, bytes: b });
    needles.push({ what: `${what} (base64)`, bytes: Buffer.from(b.toString("base64").replace(/=+$/, "")) });
    needles.push({ what: `${what} (hex)`, bytes: Buffer.from(b.toString("hex")) });
  };
  const sshKey = await readSecretFile(box, join(state, "ssh", "id_ed25519"));
  assert.ok(sshKey, "the SSH key is kept (encrypted)");
  // The private key's PEM body: its lines, each long enough to be only this key's.
  for (const line of Buffer.from(sshKey).toString("utf8").split("\n").filter((l) => /^[A-Za-z0-9+/=]{40,}$/.test(l))) {
    needles.push({ what: "the SSH private key", bytes: Buffer.from(line) });
  }
  const storeKey = await readSecretFile(box, join(state, "crypto", "store.key"));
  assert.equal(storeKey?.byteLength, 32, "the crypto store key is kept (encrypted)");
  add("the crypto store key", Buffer.from(storeKey as Uint8Array));
  const cross = await readSecretFile(box, join(state, "crypto", "cross-signing.json"));
  assert.ok(cross, "the cross-signing keys are kept (encrypted)");
  const bundle = JSON.parse(Buffer.from(cross).toString("utf8")) as { cross_signing: Record<string, string> };
  for (const [name, key] of Object.entries(bundle.cross_signing)) {
    needles.push({ what: `the cross-signing ${name} key`, bytes: Buffer.from(key.replace(/=+$/, "")) });
    add(`the cross-signing ${name} key (raw)`, Buffer.from(key, "base64"));
  }
  const db = await openDatabase(join(state, "clanbot.sqlite3"));
  try {
    const session = await loadSession(db, w.hs.url, w.botUserId, box);
    assert.ok(session && session.accessToken.length > 10, "the password login's token is stored");
    needles.push({ what: "the access token", bytes: Buffer.from(session.accessToken) });
  } finally {
    await db.close();
  }
  return needles;
}

function runMain(args: string[]): Promise<{ code: number | null; out: string }> {
  const p = spawn(process.execPath, [MAIN, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  p.stdout.on("data", (d: Buffer) => (out += d.toString()));
  p.stderr.on("data", (d: Buffer) => (out += d.toString()));
  return new Promise((resolve) => p.on("exit", (code) => resolve({ code, out })));
}

let needles: Array<{ what: string; bytes: Buffer }> = [];

test("after a run in an encrypted room, the state directory holds none of the bot's secrets in clear", async () => {
  const id = await say(w.alice, w.roomId, "!sshkey");
  await waitForReply(w.alice, w.roomId, id, 20_000);
  await w.bot.stop("SIGTERM");
  const info = await stat(identityFile);
  assert.equal(info.mode & 0o777, 0o600, "the identity file is mode 0600");
  const identity = await readIdentity(identityFile);
  assert.match(identity ?? "", /^AGE-SECRET-KEY-1/);
  const box = await boxOf(identity as string, identityFile);
  needles = await secretsOf(box);
  for (const clear of ["ssh/id_ed25519", "crypto/store.key", "crypto/cross-signing.json"]) {
    assert.ok(!existsSync(join(state, clear)), `${clear} is not kept in clear`);
  }
  assert.deepEqual(await foundInState(needles), []);
});

test("with the identity file gone, the bot does not start: one clear line, exit non-zero, no new identity", async () => {
  const saved = await readFile(identityFile);
  await rm(identityFile);
  const bot = await w.startBot();
  const line = await bot.waitForLog(/age-identity\.txt is missing/, 20_000);
  assert.notEqual(await bot.stop(), 0);
  assert.match(line, /^clanbot: secrets\.identityFile: .*age-identity\.txt is missing, and the secrets in .* are encrypted to age1\w+: put that identity file back/);
  assert.ok(!existsSync(identityFile), "no new identity was made");
  // Another identity is refused as well.
  await writeIdentity(identityFile, await newIdentity());
  const wrong = await runMain(["--config", w.configPath]);
  assert.notEqual(wrong.code, 0);
  assert.match(wrong.out, /is another identity \(age1\w+\) than the one the secrets in .* are encrypted to/);
  await writeFile(identityFile, saved, { mode: 0o600 });
});

test("clanbot rekey moves every secret to a new identity; the bot starts on it", async () => {
  const before = await readIdentity(identityFile);
  const r = await runMain(["rekey", "--config", w.configPath]);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /every secret is now encrypted to age1\w+ \(3 files, 1 stored access tokens\)/);
  const after = await readIdentity(identityFile);
  assert.notEqual(after, before);
  const oldBox = await boxOf(before as string, identityFile);
  await assert.rejects(readSecretFile(oldBox, join(state, "crypto", "store.key")), /cannot decrypt/);
  const newBox = await boxOf(after as string, identityFile);
  const again = await secretsOf(newBox);
  assert.deepEqual(
    again.map((n) => n.bytes.toString("hex")),
    needles.map((n) => n.bytes.toString("hex")),
    "the same secrets, now under the new identity",
  );
  assert.deepEqual(await foundInState(again), []);
  const bot = await w.startBot();
  const id = await say(w.alice, w.roomId, "!whoami");
  const reply = await waitForReply(w.alice, w.roomId, id, 30_000);
  assert.match(reply.getContent().body as string, /power level 100/);
  await bot.stop();
});

test("a state from before encryption is migrated at first start: clear files and tokens encrypted, then removed", async () => {
  const dir = await tempDir();
  const st = join(dir, "state");
  await mkdir(join(st, "crypto"), { recursive: true });
  await writeFile(join(st, "crypto", "store.key"), Buffer.alloc(32, 7), { mode: 0o600 });
  const db = await openDatabase(join(st, "clanbot.sqlite3"));
  await migrate(db);
  const clear = { sealText: async (t: string) => t, unsealText: async (t: string) => ({ text: t, clear: true }) };
  await saveSession(db, "https://hs", { userId: "@bot:hs", deviceId: "D", accessToken: "syt_old_clear_token" }, clear);
  const box = await openSecretBox({ identityFile: join(st, "age-identity.txt"), stateDir: st, sealedFiles: [join(st, "crypto", "store.key.age")], mayCreate: true });
  assert.deepEqual(Buffer.from((await readSecretFile(box, join(st, "crypto", "store.key"))) as Uint8Array), Buffer.alloc(32, 7));
  assert.ok(!existsSync(join(st, "crypto", "store.key")) && existsSync(join(st, "crypto", "store.key.age")));
  assert.equal((await loadSession(db, "https://hs", "@bot:hs", box))?.accessToken, "syt_old_clear_token");
  const row = await db.get<{ access_token: string }>("SELECT access_token FROM matrix_session");
  assert.match(row?.access_token ?? "", /^age:/);
  await db.close();
  const bytes = await readFile(join(st, "clanbot.sqlite3"));
  assert.ok(!bytes.includes(Buffer.from("syt_old_clear_token")), "the clear token is gone from the file (secure_delete)");
  await rm(dir, { recursive: true, force: true });
});
