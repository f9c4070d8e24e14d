import { closeSync, mkdirSync, openSync, writeSync } from "node:fs";
import { dirname } from "node:path";

/**
 * An append-only log on disk, written in chunks: memory stays bounded however much is logged
 * (a full chunk is written at once, synchronously), and what is logged reaches the disk within
 * `flushMs`. Created with mode 0600: deploy output can hold things only admins should read.
 */
export class LogFile {
  readonly path: string;
  private fd: number | undefined;
  private chunk: string[] = [];
  private size = 0;
  private bytes = 0;
  private readonly chunkChars: number;
  private readonly timer: NodeJS.Timeout;

  constructor(path: string, opts: { chunkChars?: number; flushMs?: number } = {}) {
    this.path = path;
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    this.fd = openSync(path, "a", 0o600);
    this.chunkChars = opts.chunkChars ?? 64 * 1024;
    this.timer = setInterval(() => this.flush(), opts.flushMs ?? 1000);
    this.timer.unref();
  }

  /** Bytes written so far, flushed or not. */
  get length(): number {
    return this.bytes + this.size;
  }

  line(text: string): void {
    if (this.fd === undefined) return;
    this.chunk.push(text, "\n");
    this.size += text.length + 1;
    if (this.size >= this.chunkChars) this.flush();
  }

  flush(): void {
    if (this.fd === undefined || this.size === 0) return;
    const data = this.chunk.join("");
    this.chunk = [];
    this.size = 0;
    this.bytes += writeSync(this.fd, data);
  }

  close(): void {
    if (this.fd === undefined) return;
    this.flush();
    clearInterval(this.timer);
    closeSync(this.fd);
    this.fd = undefined;
  }
}
