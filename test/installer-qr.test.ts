// The installer's QR code read from photo-like images, as a phone camera takes them of the
// installer's screen, and from pasted JSON: what is read, and what a wrong picture gets.

import assert from "node:assert/strict";
import { test } from "node:test";
import QRCode from "qrcode";
import { parseInstallerJson, readInstallerCode, readInstallerPhoto } from "../ops/installer-qr.ts";
import { qrPhoto } from "./support/photo.ts";

const installer = {
  pass: "scabbed-defender-headlock",
  tor: "qjeerqk4cmdqbqbvebgtfjdgqdozchgokvvn36lmz2mlnzzzc2nhsbid.onion",
  addrs: ["192.168.122.86", "fe80::5054:ff:fe12:3456", "installer.lan"],
};
const json = JSON.stringify(installer);

const photos: Record<string, Parameters<typeof qrPhoto>[1]> = {
  "straight, sharp": { moduleSize: 9, blur: 0, quality: 90 },
  "tilted 17°, blurred, JPEG 45": { angleDeg: 17, blur: 2, quality: 45 },
  "upside down, small in the frame": { angleDeg: 183, moduleSize: 4, blur: 1, quality: 60, centre: [0.3, 0.65] },
  "sideways (portrait photo), noisy": { angleDeg: 90, noise: 40, blur: 1, quality: 55 },
  "12 megapixels, tilted, blurred": { width: 4000, height: 3000, moduleSize: 16, angleDeg: -8, blur: 3, quality: 80 },
};

for (const [name, options] of Object.entries(photos)) {
  test(`a photo of the installer's QR code is read: ${name}`, async () => {
    const photo = qrPhoto(json, options);
    const read = await readInstallerPhoto(new Uint8Array(photo.jpeg));
    assert.deepEqual(read, { ok: true, installer });
  });
}

test("a PNG screenshot of the code is read as well", async () => {
  const png = await QRCode.toBuffer(json, { type: "png", margin: 2, scale: 6 });
  assert.deepEqual(await readInstallerCode({ kind: "image", data: new Uint8Array(png), mimetype: "image/png" }), { ok: true, installer });
});

test("a photo without a QR code gets a clear answer", async () => {
  const blank = qrPhoto(json, { moduleSize: 9, centre: [4, 4] });
  const read = await readInstallerPhoto(new Uint8Array(blank.jpeg));
  assert.deepEqual(read, { ok: false, reason: "I found no QR code in the image" });
});

test("a QR code with something else in it (a link, or foreign JSON) is refused without echoing it", async () => {
  const link = qrPhoto("https://example.org/wifi?password=hunter2", { moduleSize: 8 });
  const a = await readInstallerPhoto(new Uint8Array(link.jpeg));
  assert.equal(a.ok, false);
  assert.match(a.ok ? "" : a.reason, /not JSON/);
  assert.ok(!JSON.stringify(a).includes("hunter2"));
  const foreign = qrPhoto(JSON.stringify({ ssid: "home", password: "hunter2" }), { moduleSize: 8 });
  const b = await readInstallerPhoto(new Uint8Array(foreign.jpeg));
  assert.equal(b.ok, false);
  assert.match(b.ok ? "" : b.reason, /not a clan installer's code/);
  assert.ok(!JSON.stringify(b).includes("hunter2"));
});

test("pasted JSON, also inside a code block; a null password is allowed (the key is used then)", async () => {
  assert.deepEqual(await readInstallerCode({ kind: "text", text: `  ${json}\n` }), { ok: true, installer });
  assert.deepEqual(await readInstallerCode({ kind: "text", text: "```json\n" + json + "\n```" }), { ok: true, installer });
  assert.deepEqual(parseInstallerJson(JSON.stringify({ pass: null, addrs: ["10.0.0.2"] })), {
    ok: true,
    installer: { pass: null, tor: null, addrs: ["10.0.0.2"] },
  });
});

test("installer JSON that would be dangerous or useless is refused, naming the field", () => {
  const cases: [unknown, RegExp][] = [
    [{ pass: "x", addrs: [] }, /'addrs' lists no address/],
    [{ pass: "x", addrs: ["10.0.0.1; rm -rf /"] }, /'addrs.0' not an IP address or host name/],
    [{ pass: "x", addrs: ["-oProxyCommand=sh"] }, /'addrs.0' not an IP address or host name/],
    [{ pass: "x", tor: "evil.example.org", addrs: ["10.0.0.1"] }, /'tor' not a Tor onion address/],
    [{ addrs: ["10.0.0.1"] }, /'pass'/],
  ];
  for (const [value, reason] of cases) {
    const r = parseInstallerJson(JSON.stringify(value));
    assert.equal(r.ok, false, JSON.stringify(value));
    assert.match(r.ok ? "" : r.reason, reason);
  }
  assert.deepEqual(parseInstallerJson("{not json"), { ok: false, reason: "it is not JSON" });
});

test("an image that is neither JPEG nor PNG is refused by its type", async () => {
  const r = await readInstallerCode({ kind: "image", data: new Uint8Array([1, 2, 3]), mimetype: "image/heic" });
  assert.deepEqual(r, { ok: false, reason: "it is image/heic, not a JPEG or PNG photo" });
});
