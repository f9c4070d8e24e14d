import assert from "node:assert/strict";
import { get } from "node:http";
import { connect } from "node:net";
import { join } from "node:path";
import { test } from "node:test";
import { Announcer } from "../bot/announcer.ts";
import { InviteService, RoomInviteError } from "../bot/invite-service.ts";
import { JoinServer } from "../bot/web/join-server.ts";
import type { Message } from "../commands/format.ts";
import type { Log } from "../commands/types.ts";
import { openDatabase } from "../storage/db.ts";
import { migrate } from "../storage/migrations.ts";
import { freePort } from "./support/fake-machine.ts";
import { openJoinPage, submitJoinForm, visibleText } from "./support/join-client.ts";
import { tempDir } from "./support/temp-dir.ts";

const alice = { id: "@alice:example.org", name: "Alice" };
const silent = { info: () => {}, warn: () => {}, error: () => {} };

/** A join page on a free port over a real SQLite file, inviting into a room that records who it was asked for. */
async function joinDesk(opts: { requests?: number; refuse?: (userId: string) => string | undefined; limits?: { headersMs: number; requestMs: number }; log?: Log } = {}) {
  const db = await openDatabase(join(await tempDir(), "state.sqlite3"));
  await migrate(db);
  let now = Date.UTC(2026, 10, 21, 12, 0);
  const clock = { now: () => now };
  const posted: Message[] = [];
  const announcer = new Announcer(silent);
  await announcer.connect(async (_clan, m) => void posted.push(m));
  const port = await freePort();
  const publicUrl = `http://127.0.0.1:${port}`;
  const service = new InviteService({
    db,
    clock,
    log: silent,
    announcer,
    clans: [{ name: "family", room: "#family:example.org", joinUrl: "https://git.example.org/family/clan" }],
    publicUrl,
  });
  const invited: string[] = [];
  service.connect(async (_clan, userId) => {
    await new Promise((r) => setTimeout(r, 20));
    const refusal = opts.refuse?.(userId);
    if (refusal) throw new RoomInviteError(refusal);
    invited.push(userId);
  });
  const server = new JoinServer({
    invites: service,
    clock,
    log: silent,
    host: "127.0.0.1",
    port,
    publicUrl,
    trustProxy: false,
    rateLimit: { requests: opts.requests ?? 1000, windowMs: 60_000 },
    ...(opts.limits ? { limits: opts.limits } : {}),
    ...(opts.log ? { log: opts.log } : {}),
  });
  await server.listen();
  const invites = service.forClan("family");
  const make = (uses = 1, validForMs = 24 * 3600_000) => invites.create({ creator: alice, uses, validForMs, note: "for the new laptop" });
  return {
    db,
    invites,
    make,
    invited,
    posted,
    publicUrl,
    port,
    advance: (ms: number) => void (now += ms),
    async close() {
      await server.close();
      await db.close();
    },
  };
}

test("the join page shows the clan, who invited, until when, and invites the Matrix ID entered", async (t) => {
  const desk = await joinDesk();
  t.after(() => desk.close());
  const { link, invite } = await desk.make();
  assert.match(link, new RegExp(`^${desk.publicUrl}/join/[A-Za-z0-9_-]{43}$`));
  const page = await openJoinPage(link);
  assert.equal(page.status, 200);
  const text = visibleText(page.html);
  assert.match(text, /Join family/);
  assert.match(text, /Alice \(@alice:example\.org\) invited you to the clan's Matrix room/);
  assert.match(text, /valid until 22 Nov 2026, 12:00 UTC/);
  assert.match(text, /Your Matrix ID/);
  assert.match(text, /https:\/\/git\.example\.org\/family\/clan/);
  assert.doesNotMatch(page.html, /<script/i, "the page works without JavaScript");

  const done = await submitJoinForm(link, page, "  @bob:example.org ");
  assert.equal(done.status, 200);
  assert.match(visibleText(done.html), /You are invited! @bob:example\.org is invited to the Matrix room of family/);
  assert.match(done.html, /href="https:\/\/matrix\.to\/#\/%23family%3Aexample\.org"/);
  assert.deepEqual(desk.invited, ["@bob:example.org"]);
  assert.match(desk.posted.map((m) => m.text).join("\n"), new RegExp(`@bob:example\\.org used join code #${invite.id} \\(_for the new laptop_\\) made by Alice`));

  const again = await openJoinPage(link);
  assert.equal(again.status, 404, "a single-use code is used up");
  assert.deepEqual(await desk.invites.active(), []);
});

test("unknown, used-up, revoked and expired codes all get the same plain page, revealing nothing", async (t) => {
  const desk = await joinDesk();
  t.after(() => desk.close());
  const used = await desk.make();
  await submitJoinForm(used.link, await openJoinPage(used.link), "@bob:example.org");
  const revoked = await desk.make();
  assert.ok(await desk.invites.revoke(revoked.invite.id, alice.id));
  const expiring = await desk.make(1, 3600_000);
  const valid = await desk.make();
  desk.advance(3600_001);

  const links = {
    random: `${desk.publicUrl}/join/${"A".repeat(43)}`,
    malformed: `${desk.publicUrl}/join/not-a-code`,
    used: used.link,
    revoked: revoked.link,
    expired: expiring.link,
  };
  const bodies = new Set<string>();
  for (const [what, link] of Object.entries(links)) {
    const page = await openJoinPage(link);
    assert.equal(page.status, 404, what);
    assert.equal(page.cookie, undefined, `${what}: no form, no cookie`);
    bodies.add(page.html);
    const post = await submitJoinForm(link, { cookie: "clanbot_check=x", check: "x" }, "@eve:example.org");
    assert.equal(post.status, 404, `${what} (posted)`);
    bodies.add(post.html);
  }
  assert.equal(bodies.size, 1, "every invalid code gets the very same page");
  assert.match(visibleText([...bodies][0] as string), /^This invite is not valid Ask the person who invited you for a new one\.$/);
  assert.deepEqual(desk.invited, ["@bob:example.org"]);
  assert.equal((await openJoinPage(valid.link)).status, 200, "a code still valid is unaffected");
});

test("a malformed Matrix ID is refused on the page with a clear message, and the code keeps its use", async (t) => {
  const desk = await joinDesk();
  t.after(() => desk.close());
  const { link } = await desk.make();
  const page = await openJoinPage(link);
  const cases: [string, RegExp][] = [
    ["", /Please enter your Matrix ID, such as @alex:matrix\.org/],
    ["bob", /has no server part/],
    ["@Bob:example.org", /Matrix IDs are lower case: did you mean @bob:example\.org\?/],
    ["@bo b:example.org", /may hold only a-z, 0-9/],
    ["@bob:exa_mple.org", /'exa_mple\.org' is not a server name/],
    ["@bob:example.org:99999", /'99999' is not a port number/],
  ];
  for (const [typed, reason] of cases) {
    const res = await submitJoinForm(link, page, typed);
    assert.equal(res.status, 400, typed);
    assert.match(visibleText(res.html), reason, typed);
    assert.match(res.html, /name="user"/, "the form is shown again");
  }
  assert.deepEqual(desk.invited, []);
  const ok = await submitJoinForm(link, page, "bob:example.org");
  assert.equal(ok.status, 200, "a missing @ is added");
  assert.deepEqual(desk.invited, ["@bob:example.org"]);
});

test("a refusal by the homeserver is shown on the page and gives the use back", async (t) => {
  const desk = await joinDesk({ refuse: (u) => (u === "@banned:example.org" ? "the homeserver refused: user is banned" : undefined) });
  t.after(() => desk.close());
  const { link, invite } = await desk.make();
  const page = await openJoinPage(link);
  const refused = await submitJoinForm(link, page, "@banned:example.org");
  assert.equal(refused.status, 400);
  assert.match(visibleText(refused.html), /the homeserver refused: user is banned/);
  assert.equal((await desk.invites.active()).find((i) => i.id === invite.id)?.usesLeft, 1);
  assert.equal((await submitJoinForm(link, page, "@bob:example.org")).status, 200);
});

test("form posts without the page's check, or from another site, are refused", async (t) => {
  const desk = await joinDesk();
  t.after(() => desk.close());
  const { link } = await desk.make();
  const page = await openJoinPage(link);
  assert.match(page.headers.get("set-cookie") ?? "", /HttpOnly; SameSite=Strict/);
  const forged: { form: { cookie: string | undefined; check: string | undefined }; headers: Record<string, string> }[] = [
    { form: { cookie: undefined, check: page.check }, headers: {} },
    { form: { cookie: page.cookie, check: undefined }, headers: {} },
    { form: { cookie: page.cookie, check: "x".repeat(24) }, headers: {} },
    { form: page, headers: { origin: "https://evil.example" } },
    { form: page, headers: { "sec-fetch-site": "cross-site" } },
  ];
  for (const { form, headers } of forged) {
    const res = await submitJoinForm(link, form, "@eve:example.org", headers);
    assert.equal(res.status, 403);
    assert.match(visibleText(res.html), /This form was not sent from the join page/);
  }
  assert.deepEqual(desk.invited, []);
  const same = await submitJoinForm(link, page, "@bob:example.org", { origin: desk.publicUrl, "sec-fetch-site": "same-origin" });
  assert.equal(same.status, 200);
});

test("the page sets security headers: a strict content policy, no framing, no referrer to other sites, no caching", async (t) => {
  const desk = await joinDesk();
  t.after(() => desk.close());
  const { link } = await desk.make();
  for (const url of [link, `${desk.publicUrl}/join/${"B".repeat(43)}`, `${desk.publicUrl}/elsewhere`]) {
    const { headers } = await openJoinPage(url);
    assert.match(headers.get("content-security-policy") ?? "", /default-src 'none'; style-src 'sha256-[^']+'; form-action 'self'; frame-ancestors 'none'/);
    assert.equal(headers.get("x-frame-options"), "DENY");
    assert.equal(headers.get("x-content-type-options"), "nosniff");
    assert.equal(headers.get("referrer-policy"), "same-origin");
    assert.equal(headers.get("cache-control"), "no-store");
  }
});

test("a flood of guesses from one address is throttled; other addresses are not", async (t) => {
  const desk = await joinDesk({ requests: 10 });
  t.after(() => desk.close());
  const { link } = await desk.make();
  const statuses: number[] = [];
  for (let i = 0; i < 40; i++) {
    statuses.push((await openJoinPage(`${desk.publicUrl}/join/${String(i).padStart(43, "G")}`)).status);
  }
  assert.deepEqual(statuses.slice(0, 10), Array(10).fill(404));
  assert.deepEqual(statuses.slice(10), Array(30).fill(429));
  const throttled = await fetch(link);
  assert.equal(throttled.status, 429, "the real code too, from the flooding address");
  assert.ok(Number(throttled.headers.get("retry-after")) >= 1);
  assert.match(visibleText(await throttled.text()), /Too many attempts/);
  // Another client (another loopback address) still gets the page.
  const other = await new Promise<number>((resolve, reject) => {
    get(link, { localAddress: "127.0.0.2" }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on("error", reject);
  });
  assert.equal(other, 200);
});

test("50 redemptions of a one-use code at once invite exactly one person", async (t) => {
  const desk = await joinDesk();
  t.after(() => desk.close());
  const { link } = await desk.make();
  const page = await openJoinPage(link);
  const results = await Promise.all(
    Array.from({ length: 50 }, (_, i) => submitJoinForm(link, page, `@person${i}:example.org`).then((r) => r.status)),
  );
  assert.equal(results.filter((s) => s === 200).length, 1);
  assert.equal(results.filter((s) => s === 404).length, 49);
  assert.equal(desk.invited.length, 1);
});

/** Opens a connection, writes `first`, and resolves with how long the server took to close it. */
function heldFor(port: number, first: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket = connect(port, "127.0.0.1", () => socket.write(first));
    socket.on("data", () => undefined);
    socket.on("error", () => undefined);
    socket.on("close", () => resolve(Date.now() - started));
    setTimeout(() => reject(new Error("the server held a slow client for 20 s")), 20_000).unref();
  });
}

test("slow clients are cut at the limits (not ~30 s later), and a cut is logged as noise, not as an error", async (t) => {
  const logged: Array<[string, string]> = [];
  const log = {
    info: (_f: Record<string, unknown>, m: string) => void logged.push(["info", m]),
    warn: (_f: Record<string, unknown>, m: string) => void logged.push(["warn", m]),
    error: (_f: Record<string, unknown>, m: string) => void logged.push(["error", m]),
  };
  const desk = await joinDesk({ limits: { headersMs: 1_000, requestMs: 2_000 }, log });
  t.after(() => desk.close());
  const { link } = await desk.make();
  const path = new URL(link).pathname;
  const [headers, body] = await Promise.all([
    heldFor(desk.port, `GET ${path} HTTP/1.1\r\nHost: x\r\n`),
    heldFor(desk.port, `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nuser=`),
  ]);
  assert.ok(headers < 3_000, `headers: cut after ${headers} ms`);
  assert.ok(body < 4_000, `body: cut after ${body} ms`);
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(logged.filter(([level]) => level !== "info"), []);
});
