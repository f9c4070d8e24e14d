// Downloading a photo someone sent (the installer's QR code): authenticated media, and the older
// endpoint on a homeserver without it (Matrix before 1.11).

import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, test } from "node:test";
import { createClient } from "matrix-js-sdk";
import { downloadMedia, MediaDownloadError } from "../bot/matrix/media.ts";

/** A media repository: `authenticated` decides whether /_matrix/client/v1/media exists. */
async function mediaServer(o: { authenticated: boolean; legacyStatus?: number }) {
  const seen: string[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    seen.push(`${req.url ?? ""} ${req.headers.authorization ?? ""}`);
    const authed = req.url?.startsWith("/_matrix/client/v1/media/download/");
    const legacy = req.url?.startsWith("/_matrix/media/v3/download/");
    if ((authed && o.authenticated) || (legacy && (o.legacyStatus ?? 200) === 200)) {
      res.writeHead(200, { "content-type": "image/png" }).end(Buffer.from("PNGDATA"));
      return;
    }
    // What Synapse before 1.11 support answers for an endpoint it does not have.
    res.writeHead(authed ? 404 : (o.legacyStatus ?? 404), { "content-type": "application/json" }).end(JSON.stringify({ errcode: "M_UNRECOGNIZED", error: "Unrecognized request" }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  after(() => server.close());
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const client = createClient({ baseUrl: base, accessToken: "tok", userId: "@bot:x" });
  return { client, seen };
}

const content = { msgtype: "m.image", body: "qr.png", url: "mxc://x/abc" };

test("a photo is downloaded with authenticated media where the homeserver has it", async () => {
  const { client, seen } = await mediaServer({ authenticated: true });
  assert.equal(Buffer.from(await downloadMedia(client, content)).toString(), "PNGDATA");
  assert.deepEqual(seen, ["/_matrix/client/v1/media/download/x/abc?allow_redirect=true Bearer tok"]);
});

test("a homeserver without authenticated media (before Matrix 1.11): the older download endpoint", async () => {
  const { client, seen } = await mediaServer({ authenticated: false });
  assert.equal(Buffer.from(await downloadMedia(client, content)).toString(), "PNGDATA");
  assert.equal(seen.length, 2);
  assert.match(seen[1] ?? "", /^\/_matrix\/media\/v3\/download\/x\/abc/);
});

test("a download that fails is a MediaDownloadError that says why (answered to the person, not an internal error)", async () => {
  const { client } = await mediaServer({ authenticated: false, legacyStatus: 502 });
  await assert.rejects(downloadMedia(client, content), (e: unknown) => e instanceof MediaDownloadError && /the homeserver answered 502/.test(e.message));
});
