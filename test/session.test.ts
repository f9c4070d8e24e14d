// The bot's Matrix session: what of it is kept in SQLite.

import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { after, test } from "node:test";
import { createLogger } from "../bot/logger.ts";
import { establishSession } from "../bot/matrix/session.ts";
import { boxOf, newIdentity } from "../ops/secret-box.ts";
import { openDatabase } from "../storage/db.ts";
import { migrate } from "../storage/migrations.ts";
import { tempDir } from "./support/temp-dir.ts";

test("a token from accessTokenFile is read from the file at each start and never stored in SQLite (only the device is)", async () => {
  const server = createServer((req, res) => {
    if (req.url?.startsWith("/_matrix/client/v3/account/whoami") && req.headers.authorization === "Bearer syt_secret_token") {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ user_id: "@bot:x", device_id: "DEV1" }));
    } else res.writeHead(401, { "content-type": "application/json" }).end(JSON.stringify({ errcode: "M_UNKNOWN_TOKEN", error: "no" }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  after(() => server.close());
  const dir = await tempDir();
  const tokenFile = join(dir, "token");
  await writeFile(tokenFile, "syt_secret_token\n");
  const db = await openDatabase(join(dir, "db.sqlite3"));
  await migrate(db);
  const m = {
    homeserver: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    userId: "@bot:x",
    accessTokenFile: tokenFile,
    deviceName: "clanbot",
    maxCommandAge: 900_000,
    undecryptableGrace: 30_000,
  };
  const box = await boxOf(await newIdentity(), join(dir, "identity"));
  const session = await establishSession(m, db, createLogger("silent"), box);
  assert.deepEqual(session, { userId: "@bot:x", deviceId: "DEV1", accessToken: "syt_secret_token" });
  const rows = await db.all<Record<string, unknown>>("SELECT * FROM matrix_session");
  assert.equal(rows.length, 1);
  assert.equal(rows[0]?.["device_id"], "DEV1");
  assert.doesNotMatch(JSON.stringify(rows), /syt_secret_token/);
  await db.close();
});
