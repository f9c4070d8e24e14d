import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { isIP } from "node:net";
import { prepareZXingModule, readBarcodes } from "zxing-wasm/reader";
import { z } from "zod";
import type { InstallerRead } from "../commands/ssh-types.ts";
import type { ReplyContent } from "../commands/types.ts";

const require = createRequire(import.meta.url);
let prepared = false;

/** ZXing's WebAssembly from the installed package (it would otherwise be fetched from a CDN). */
function prepareReader(): void {
  if (prepared) return;
  const wasm = readFileSync(require.resolve("zxing-wasm/reader/zxing_reader.wasm"));
  prepareZXingModule({ overrides: { wasmBinary: wasm.buffer.slice(wasm.byteOffset, wasm.byteOffset + wasm.byteLength) as ArrayBuffer } });
  prepared = true;
}

const address = z
  .string()
  .max(255)
  .refine((a) => isIP(a) !== 0 || /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$/.test(a), "not an IP address or host name");

const installerSchema = z.object({
  pass: z.string().max(1024).nullable(),
  tor: z
    .string()
    .regex(/^[a-z2-7]{16,56}\.onion$/, "not a Tor onion address")
    .nullable()
    .optional()
    .transform((t) => t ?? null),
  addrs: z.array(address).min(1, "lists no address").max(64),
});

/** The installer's JSON (`{"pass":…,"tor":…,"addrs":[…]}`), checked; never echoes what it was given. */
export function parseInstallerJson(text: string): InstallerRead {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { ok: false, reason: "it is not JSON" };
  }
  const r = installerSchema.safeParse(raw);
  if (!r.success) {
    const first = r.error.issues[0];
    const where = first?.path.length ? `'${first.path.join(".")}' ` : "";
    return { ok: false, reason: `it is not a clan installer's code (${where}${first?.message ?? "unexpected shape"})` };
  }
  return { ok: true, installer: r.data };
}

/**
 * Finds the installer's QR code in a photo (JPEG or PNG, any orientation, a screen photographed
 * at an angle) and reads it. ZXing looks for the code at several scales and rotations.
 */
export async function readInstallerPhoto(image: Uint8Array): Promise<InstallerRead> {
  prepareReader();
  const found = await readBarcodes(image, {
    formats: ["QRCode"],
    tryHarder: true,
    tryRotate: true,
    tryInvert: true,
    tryDownscale: true,
    maxNumberOfSymbols: 4,
  });
  const codes = found.filter((b) => b.isValid);
  if (!codes.length) {
    const why = found.some((b) => b.error) ? "a QR code is there but cannot be read: take the photo closer and sharper" : "I found no QR code in the image";
    return { ok: false, reason: why };
  }
  let last: InstallerRead = { ok: false, reason: "no QR code in it" };
  for (const code of codes) {
    last = parseInstallerJson(code.text);
    if (last.ok) return last;
  }
  return { ok: false, reason: `the QR code in the image: ${last.ok ? "" : last.reason}` };
}

/** A reply to "send me the installer's code": a photo, or the JSON pasted (perhaps inside a code block). */
export async function readInstallerCode(content: ReplyContent): Promise<InstallerRead> {
  if (content.kind === "image") {
    if (!/^image\/(jpeg|png)$/.test(content.mimetype)) return { ok: false, reason: `it is ${content.mimetype}, not a JPEG or PNG photo` };
    return readInstallerPhoto(content.data);
  }
  const text = content.text.trim().replace(/^```(?:json)?\s*/, "").replace(/\s*```$/, "");
  return parseInstallerJson(text);
}
