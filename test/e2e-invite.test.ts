// !invite end to end: the real bot posts a QR code, a phone camera (jsQR on the posted PNG) reads it,
// a phone browser (headless Chromium) opens the join page and submits a Matrix ID, the test homeserver
// records the invite, and the invited person's matrix-js-sdk client joins the room.
import assert from "node:assert/strict";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { after, test } from "node:test";
import { KnownMembership, type MatrixClient, type MatrixEvent } from "matrix-js-sdk";
import { chromium, type Browser } from "playwright-core";
import { world, type World } from "./support/e2e.ts";
import { freePort } from "./support/fake-machine.ts";
import { humanClient, stopClient } from "./support/homeserver.ts";
import { openJoinPage, submitJoinForm } from "./support/join-client.ts";
import { isReplyTo, say, waitForEvent, waitForReply } from "./support/matrix-wait.ts";
import { scanQrPng } from "./support/qr-scan.ts";

const ARTIFACTS = new URL("../test-artifacts/", import.meta.url).pathname;
/** A phone: what matters to the page is the narrow viewport and touch. */
const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 3, isMobile: true, hasTouch: true };

// The browser first: without it (Debian's chromium, see the README), nothing else is started.
const browser: Browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
});
after(() => browser.close());
const port = await freePort();
const w: World = await world({
  config: (base) => ({
    ...base,
    web: { listen: `127.0.0.1:${port}`, publicUrl: `http://127.0.0.1:${port}`, rateLimit: { requests: 500, window: "1m" } },
    clans: (base["clans"] as Record<string, unknown>[]).map((c) => ({ ...c, joinUrl: "https://git.example.org/family/clan" })),
  }),
});
await w.bot.waitForLog(/the join page is listening/);

const bodyOf = (e: MatrixEvent): string => String(e.getContent()["body"] ?? "");

/** The QR image the bot posted in answer to `commandId`, read as a phone camera would. */
async function scanPostedQr(commandId: string): Promise<{ link: string; event: MatrixEvent }> {
  const event = await waitForEvent(w.alice, w.roomId, (e) => isReplyTo(e, commandId) && e.getContent()["msgtype"] === "m.image", 15_000, "the QR image");
  const content = event.getContent();
  const mxc = /^mxc:\/\/([^/]+)\/(.+)$/.exec(String(content["url"])) as RegExpExecArray;
  const res = await fetch(`${w.hs.url}/_matrix/client/v1/media/download/${mxc[1]}/${mxc[2]}`, {
    headers: { authorization: `Bearer ${w.alice.getAccessToken()}` },
  });
  const bytes = Buffer.from(await res.arrayBuffer());
  const png = scanQrPng(bytes);
  assert.deepEqual(
    { w: content["info"].w, h: content["info"].h, mimetype: content["info"].mimetype, size: content["info"].size },
    { w: png.width, h: png.height, mimetype: "image/png", size: bytes.length },
    "the image's info matches the picture",
  );
  assert.ok(png.text, "the QR code can be read");
  return { link: png.text, event };
}

async function membershipOf(userId: string): Promise<string | undefined> {
  const events = w.hs.roomEvents(w.roomId).filter((e) => e.type === "m.room.member" && e.state_key === userId);
  return events.at(-1)?.content["membership"] as string | undefined;
}

test("a join code: QR in the room, scanned, join page on a phone, invited, joined, and the room is told", async () => {
  const bob = await humanClient(w.hs, "bob");
  after(() => stopClient(bob));
  const command = await say(w.alice, w.roomId, '!invite --note "for the new laptop"');
  const text = await waitForReply(w.alice, w.roomId, command, 15_000);
  const { link } = await scanPostedQr(command);
  assert.match(link, new RegExp(`^http://127\\.0\\.0\\.1:${port}/join/[A-Za-z0-9_-]{43}$`));
  assert.ok(bodyOf(text).includes(link), "the same link is posted as text");
  assert.match(bodyOf(text), /\*Join code #\d+\* \(_for the new laptop_\): scan the QR code with a phone camera/);
  assert.match(bodyOf(text), /It lets one person join, until .* \(in 24 h\)/);

  const page = await browser.newPage(PHONE);
  try {
    await page.goto(link);
    assert.equal(await page.locator("h1").textContent(), "Join family");
    assert.match((await page.locator("body").textContent()) ?? "", /invited you to the clan's Matrix room/);
    const fits = await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth");
    assert.ok(fits, "nothing runs off the side of a phone screen");
    await page.fill("#user", bob.getSafeUserId());
    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, "join-page.png"), fullPage: true });
    await page.click("button[type=submit]");
    await page.waitForSelector("text=You are invited!");
    await page.screenshot({ path: join(ARTIFACTS, "join-page-invited.png"), fullPage: true });
    const open = await page.locator("a.button").getAttribute("href");
    assert.equal(open, `https://matrix.to/#/${encodeURIComponent(w.roomId)}?via=${encodeURIComponent(w.hs.serverName)}`);
  } finally {
    await page.close();
  }

  assert.equal(await membershipOf(bob.getSafeUserId()), "invite", "the homeserver has the invite");
  await waitForEvent(w.alice, w.roomId, (e) => e.getSender() === w.botUserId && /used join code #\d+ \(_for the new laptop_\) made by/.test(bodyOf(e)), 10_000, "the room to be told");
  await bob.joinRoom(w.roomId);
  await waitForEvent(
    w.alice,
    w.roomId,
    (e) => e.getType() === "m.room.member" && e.getStateKey() === bob.getSafeUserId() && e.getContent()["membership"] === KnownMembership.Join,
    10_000,
    "bob to join",
  );
  await waitForEvent(
    w.alice,
    w.roomId,
    (e) => e.getSender() === w.botUserId && new RegExp(`${bob.getSafeUserId()} joined the room with join code #\\d+ \\(_for the new laptop_\\) from alice`).test(bodyOf(e)),
    10_000,
    "the room to be told bob joined with the code",
  );

  const reopened = await openJoinPage(link);
  assert.equal(reopened.status, 404, "the single-use code is used up");
  const token = link.slice(link.lastIndexOf("/") + 1);
  assert.ok(!w.bot.log.some((l) => l.includes(token)), "the token is in no log line");
});

test("!invites lists active codes without their tokens; !revoke ends one at once", async () => {
  const command = await say(w.alice, w.roomId, "!invite --uses 3 --expires 2h --note kids");
  const { link } = await scanPostedQr(command);
  const token = link.slice(link.lastIndexOf("/") + 1);
  assert.equal((await openJoinPage(link)).status, 200);

  const listing = bodyOf(await waitForReply(w.alice, w.roomId, await say(w.alice, w.roomId, "!invites")));
  const row = listing.split("\n").find((l) => l.includes("kids")) ?? "";
  assert.match(row, /^#(\d+)\s+@alice:\S+\s+kids\s+3 of 3\s+in 2 h$/);
  assert.ok(!listing.includes(token), "never the token");
  const id = /^#(\d+)/.exec(row)?.[1];

  const revoked = await waitForReply(w.alice, w.roomId, await say(w.alice, w.roomId, `!revoke ${id}`));
  assert.match(bodyOf(revoked), new RegExp(`Join code #${id} is revoked`));
  assert.equal((await openJoinPage(link)).status, 404);
  const after = bodyOf(await waitForReply(w.alice, w.roomId, await say(w.alice, w.roomId, "!invites")));
  assert.ok(!after.includes("kids"));
});

test("50 redemptions of a one-use code at once: the homeserver gets exactly one invite", async () => {
  const command = await say(w.alice, w.roomId, "!invite");
  const { link } = await scanPostedQr(command);
  const form = await openJoinPage(link);
  const people = Array.from({ length: 50 }, (_, i) => `@rush${i}:${w.hs.serverName}`);
  const statuses = await Promise.all(people.map((p) => submitJoinForm(link, form, p).then((r) => r.status)));
  assert.equal(statuses.filter((s) => s === 200).length, 1);
  const invited = [];
  for (const p of people) if ((await membershipOf(p)) === "invite") invited.push(p);
  assert.equal(invited.length, 1);
});

test("!invite @user invites directly; a malformed ID gets a clear answer; viewers may not invite", async () => {
  const carol = await humanClient(w.hs, "carol");
  after(() => stopClient(carol));
  const ok = await waitForReply(w.alice, w.roomId, await say(w.alice, w.roomId, `!invite ${carol.getSafeUserId()}`));
  assert.match(bodyOf(ok), new RegExp(`${carol.getSafeUserId()} is invited to this room`));
  assert.equal(await membershipOf(carol.getSafeUserId()), "invite");

  const bad = await waitForReply(w.alice, w.roomId, await say(w.alice, w.roomId, "!invite @Carol:example.org"));
  assert.match(bodyOf(bad), /Matrix IDs are lower case: did you mean @carol:example\.org\?/);
  const mixed = await waitForReply(w.alice, w.roomId, await say(w.alice, w.roomId, `!invite ${carol.getSafeUserId()} --uses 2`));
  assert.match(bodyOf(mixed), /--uses, --expires and --note are for join codes/);
  const long = await waitForReply(w.alice, w.roomId, await say(w.alice, w.roomId, "!invite --expires 31d"));
  assert.match(bodyOf(long), /valid for at most 30 d/);

  const dave: MatrixClient = await w.person("dave");
  const refused = await waitForReply(dave, w.roomId, await say(dave, w.roomId, "!invite"));
  assert.match(bodyOf(refused), /operator/);
});
