// The join page alone, as the bot runs it (JoinServer + InviteService over a real SQLite file), for the
// invite benchmark: prints "READY <link of a valid code>" and serves until killed.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Announcer } from "../bot/announcer.ts";
import { InviteService } from "../bot/invite-service.ts";
import { JoinServer } from "../bot/web/join-server.ts";
import { openDatabase } from "../storage/db.ts";
import { migrate } from "../storage/migrations.ts";

const silent = { info: () => {}, warn: () => {}, error: () => {} };
const db = await openDatabase(join(mkdtempSync(join(tmpdir(), "clanbot-bench-join-")), "state.sqlite3"));
await migrate(db);
const port = Number(process.argv[2] ?? "0");
const publicUrl = `http://127.0.0.1:${port}`;
const invites = new InviteService({
  db,
  clock: Date,
  log: silent,
  announcer: new Announcer(silent),
  clans: [{ name: "family", room: "#family:example.org", joinUrl: "https://git.example.org/family/clan" }],
  publicUrl,
});
const server = new JoinServer({
  invites,
  clock: Date,
  log: silent,
  host: "127.0.0.1",
  port,
  publicUrl,
  trustProxy: false,
  // The load comes from one address: the limit is set out of its way (its bookkeeping still runs per request).
  rateLimit: { requests: 1e9, windowMs: 60_000 },
});
await server.listen();
const { link } = await invites.forClan("family").create({ creator: { id: "@alice:example.org", name: "Alice" }, uses: 1, validForMs: 3600_000, note: "bench" });
process.stdout.write(`READY ${link}\n`);
