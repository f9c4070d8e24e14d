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

/** A PNG of `text` as a QR code, with its size in pixels (Matrix clients lay images out before loading them). */
export async function qrPng(text: string): Promise<QrPng> {
  const options = { errorCorrectionLevel: "M", margin: MARGIN, scale: SCALE } as const;
  const modules = QRCode.create(text, options).modules.size;
  const data = await QRCode.toBuffer(text, { ...options, type: "png" });
  const side = (modules + 2 * MARGIN) * SCALE;
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: side, height: side };
}
