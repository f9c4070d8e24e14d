import jsQR from "jsqr";
import { PNG } from "pngjs";

/** Reads a QR code from PNG bytes the way a phone camera app does: the decoded text, or nothing. */
export function scanQrPng(bytes: Uint8Array): { text: string | undefined; width: number; height: number } {
  const png = PNG.sync.read(Buffer.from(bytes));
  // jsqr is CommonJS; its types describe the function as the default export.
  const read = jsQR.default(new Uint8ClampedArray(png.data), png.width, png.height);
  return { text: read?.data, width: png.width, height: png.height };
}
