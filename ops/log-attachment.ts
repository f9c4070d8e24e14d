import { createReadStream } from "node:fs";
import { open, stat } from "node:fs/promises";
import { basename } from "node:path";
import { createGzip } from "node:zlib";
import type { LogAttachment } from "../commands/deploy-types.ts";

export interface PackOptions {
  /** Logs up to this size are attached as plain text; larger ones are gzipped. */
  plainMax?: number;
  /** The most that is sent: when even the compressed log is larger, only its last part is sent. */
  sendMax?: number;
}

/**
 * A log file as an attachment: plain text when small, gzip when large; when it is huge, only its
 * last part, so an upload never holds more than about `sendMax` bytes in memory.
 */
export async function packLog(path: string, opts: PackOptions = {}): Promise<LogAttachment> {
  const plainMax = opts.plainMax ?? 256 * 1024;
  const sendMax = opts.sendMax ?? 16 * 1024 * 1024;
  const { size } = await stat(path);
  const name = basename(path);
  if (size <= plainMax) {
    return { name, mimetype: "text/plain", data: await readRange(path, 0, size) };
  }
  const whole = await gzipRange(path, 0, sendMax);
  if (whole) return { name: `${name}.gz`, mimetype: "application/gzip", data: whole };
  // Incompressible enough that it does not fit: the end of it (where failures are) compressed.
  let start = Math.max(0, size - sendMax);
  for (;;) {
    const tail = await gzipRange(path, start, sendMax);
    if (tail) return { name: `${name}.end.gz`, mimetype: "application/gzip", data: tail, truncatedFrom: size };
    start += Math.ceil((size - start) / 2);
  }
}

async function readRange(path: string, start: number, size: number): Promise<Uint8Array> {
  // createReadStream refuses an empty range (end = start - 1), as in an empty log.
  if (size === 0) return new Uint8Array(0);
  const chunks: Buffer[] = [];
  for await (const c of createReadStream(path, { start, end: start + size - 1 })) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/**
 * The gzip of the file from `start`, or undefined as soon as it grows past `max`. The file is read
 * through one reused buffer, so packing a gigabyte leaves no gigabyte of garbage behind.
 */
async function gzipRange(path: string, start: number, max: number): Promise<Uint8Array | undefined> {
  const gzip = createGzip({ level: 6 });
  const chunks: Buffer[] = [];
  let total = 0;
  gzip.on("data", (c: Buffer) => {
    total += c.length;
    if (total <= max) chunks.push(c);
  });
  const ended = new Promise<void>((resolve, reject) => {
    gzip.once("end", resolve);
    gzip.once("error", reject);
  });
  const file = await open(path, "r");
  try {
    const buf = Buffer.allocUnsafe(256 * 1024);
    for (let pos = start; total <= max; ) {
      const { bytesRead } = await file.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) break;
      pos += bytesRead;
      // zlib takes the chunk in later: the buffer is reused only once the write is done.
      await new Promise<void>((resolve, reject) => gzip.write(buf.subarray(0, bytesRead), (err) => (err ? reject(err) : resolve())));
    }
  } finally {
    await file.close();
  }
  if (total > max) {
    gzip.destroy();
    return undefined;
  }
  gzip.end();
  await ended;
  return total > max ? undefined : Buffer.concat(chunks);
}
