// Photo-like images of a QR code, as a phone camera takes them of an installer's screen: the code
// scaled and rotated on a larger, unevenly lit and noisy background, blurred, JPEG-compressed.

import jpeg from "jpeg-js";
import QRCode from "qrcode";

export interface PhotoOptions {
  width?: number;
  height?: number;
  /** Side of one QR module in pixels. */
  moduleSize?: number;
  angleDeg?: number;
  /** Box blur radius in pixels (applied twice: close to a Gaussian). */
  blur?: number;
  /** JPEG quality 1..100. */
  quality?: number;
  /** Noise amplitude (0..255). */
  noise?: number;
  /** Where the code's centre is, as a fraction of the image. */
  centre?: [number, number];
  seed?: number;
}

/** A JPEG of `text` as a QR code in a photo. */
export function qrPhoto(text: string, o: PhotoOptions = {}): { jpeg: Buffer; width: number; height: number } {
  const width = o.width ?? 1600;
  const height = o.height ?? 1200;
  const qr = QRCode.create(text, { errorCorrectionLevel: "M" });
  const n = qr.modules.size;
  const quiet = 4;
  const module = o.moduleSize ?? 8;
  const angle = ((o.angleDeg ?? 0) * Math.PI) / 180;
  const cos = Math.cos(angle);
  const sin = Math.sin(angle);
  const [fx, fy] = o.centre ?? [0.5, 0.5];
  const cx = width * fx;
  const cy = height * fy;
  let seed = o.seed ?? 1;
  const random = (): number => {
    // xorshift: the same photo for the same options.
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return ((seed >>> 0) % 10_000) / 10_000;
  };
  const gray = new Float32Array(width * height);
  const noise = o.noise ?? 12;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      // Background: a desk lit from one side; the screen's black and white are not pure either.
      let v = 90 + 60 * (x / width) + 30 * (y / height);
      const dx = x - cx;
      const dy = y - cy;
      const u = (cos * dx + sin * dy) / module + (n + 2 * quiet) / 2;
      const w = (-sin * dx + cos * dy) / module + (n + 2 * quiet) / 2;
      if (u >= 0 && w >= 0 && u < n + 2 * quiet && w < n + 2 * quiet) {
        const c = Math.floor(u) - quiet;
        const r = Math.floor(w) - quiet;
        const dark = c >= 0 && r >= 0 && c < n && r < n && qr.modules.get(r, c) === 1;
        v = dark ? 40 : 215;
      }
      gray[y * width + x] = v + (random() - 0.5) * noise;
    }
  }
  const r = o.blur ?? 1;
  if (r > 0) for (let pass = 0; pass < 2; pass++) boxBlur(gray, width, height, r);
  const rgba = Buffer.alloc(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    const v = Math.max(0, Math.min(255, gray[i] as number));
    // A slightly warm white balance, as phone photos of screens have.
    rgba[i * 4] = Math.min(255, v * 1.03);
    rgba[i * 4 + 1] = v;
    rgba[i * 4 + 2] = v * 0.94;
    rgba[i * 4 + 3] = 255;
  }
  const encoded = jpeg.encode({ data: rgba, width, height }, o.quality ?? 70);
  return { jpeg: encoded.data, width, height };
}

function boxBlur(a: Float32Array, width: number, height: number, r: number): void {
  const line = new Float32Array(Math.max(width, height));
  const size = 2 * r + 1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) line[x] = a[y * width + x] as number;
    let sum = 0;
    for (let k = -r; k <= r; k++) sum += line[clamp(k, width)] as number;
    for (let x = 0; x < width; x++) {
      a[y * width + x] = sum / size;
      sum += (line[clamp(x + r + 1, width)] as number) - (line[clamp(x - r, width)] as number);
    }
  }
  for (let x = 0; x < width; x++) {
    for (let y = 0; y < height; y++) line[y] = a[y * width + x] as number;
    let sum = 0;
    for (let k = -r; k <= r; k++) sum += line[clamp(k, height)] as number;
    for (let y = 0; y < height; y++) {
      a[y * width + x] = sum / size;
      sum += (line[clamp(y + r + 1, height)] as number) - (line[clamp(y - r, height)] as number);
    }
  }
}

function clamp(i: number, n: number): number {
  return i < 0 ? 0 : i >= n ? n - 1 : i;
}
