import QRCode from "qrcode";

/** A QR code drawn with block characters, two modules a line, for a terminal (dark on light, as phones expect). */
export function terminalQr(text: string): Promise<string> {
  return QRCode.toString(text, { type: "terminal", small: true, errorCorrectionLevel: "M" });
}
