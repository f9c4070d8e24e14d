import { PNG } from "pngjs";
import QRCode from "qrcode";

export interface QrPng {
  readonly data: Uint8Array;
  readonly width: number;
  readonly height: number;
}

/** Pixels per QR module: a phone camera reads it from a screen across the room, and it stays small. */
const SCALE = 8;
/** The quiet zone the QR standard asks for, in modules. */
const MARGIN = 4;

/**
 * A PNG of `text` as a QR code, with its size in pixels (Matrix clients lay images out before loading them).
 * qrcode makes the code; the picture is painted as 8-bit grey rather than through qrcode's own RGBA
 * renderer: a quarter of the pixels to filter and compress, about three times faster, and a smaller file.
 */
export function qrPng(text: string): QrPng {
  const { modules } = QRCode.create(text, { errorCorrectionLevel: "M" });
  const side = (modules.size + 2 * MARGIN) * SCALE;
  const pixels = Buffer.alloc(side * side, 0xff);
  for (let y = 0; y < modules.size; y++) {
    const row = (y + MARGIN) * SCALE * side;
    for (let x = 0; x < modules.size; x++) {
      if (!modules.get(y, x)) continue;
      const left = row + (x + MARGIN) * SCALE;
      pixels.fill(0, left, left + SCALE);
    }
    // The module row's first pixel line is done: the other lines of the row are copies of it.
    for (let line = 1; line < SCALE; line++) pixels.copy(pixels, row + line * side, row, row + side);
  }
  const png = new PNG();
  Object.assign(png, { width: side, height: side, data: pixels });
  const data = PNG.sync.write(png, { colorType: 0, inputColorType: 0, inputHasAlpha: false, bitDepth: 8 });
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: side, height: side };
}
