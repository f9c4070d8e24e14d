import { closeSync, mkdirSync, openSync, writeSync } from "node:fs";
import { dirname } from "node:path";

const LF = 0x0a;
const NEWLINE = Buffer.from("\n");

/**
 * An append-only log on disk, written in chunks: memory stays bounded however much is logged
 * (a full chunk is written at once, synchronously), and what is logged reaches the disk within
 * `flushMs`. Created with mode 0600: deploy output can hold things only admins should read.
 *
 * Nothing is allocated per line: lines are copied into one reused buffer, and consecutive lines
 * that go to the log as they are (already prefixed, ending in LF) are not copied one by one: they
 * are kept as one run of the chunk they arrived in, copied or written at once when it is done.
 */
export class LogFile {
  readonly path: string;
  private fd: number | undefined;
  private readonly pending: Buffer;
  private size = 0;
  /** Whole lines with their LF, still in the chunk they came in (until `chunkDone`); they follow `pending`. */
  private run: Buffer | undefined;
  private runStart = 0;
  private runEnd = 0;
  private written = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(path: string, opts: { chunkBytes?: number; flushMs?: number } = {}) {
    this.path = path;
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    this.fd = openSync(path, "a", 0o600);
    this.pending = Buffer.allocUnsafe(opts.chunkBytes ?? 64 * 1024);
    this.timer = setInterval(() => this.flush(), opts.flushMs ?? 1000);
    this.timer.unref();
  }

  /** Bytes written so far, flushed or not. */
  get length(): number {
    return this.written + this.size + (this.runEnd - this.runStart);
  }

  line(text: string): void {
    if (this.fd === undefined) return;
    this.settleRun();
    this.appendText(text);
    this.append(NEWLINE, 0, 1);
    this.flushIfFull();
  }

  /**
   * The line `bytes[start, end)`, after `prefix` if given (see LineSink: `bytes` stays as it is
   * until `chunkDone`, and `bytes[end]` is LF only if that LF ended the line).
   */
  lineBytes(bytes: Buffer, start: number, end: number, prefix?: Buffer): void {
    if (this.fd === undefined) return;
    // A line that goes to the log as it is, its LF right after it: it joins (or starts) the run.
    if (prefix === undefined && bytes[end] === LF) {
      if (bytes === this.run && start === this.runEnd) {
        this.runEnd = end + 1;
      } else {
        this.settleRun();
        this.run = bytes;
        this.runStart = start;
        this.runEnd = end + 1;
      }
    } else {
      this.settleRun();
      if (prefix) this.append(prefix, 0, prefix.length);
      this.append(bytes, start, end);
      this.append(NEWLINE, 0, 1);
    }
    this.flushIfFull();
  }

  /** The chunk the last lines came from is about to change: what is still kept of it is copied or written. */
  chunkDone(): void {
    this.settleRun();
  }

  flush(): void {
    if (this.fd === undefined) return;
    if (this.size > 0) this.write(this.pending, 0, this.size);
    this.size = 0;
    if (this.run) this.write(this.run, this.runStart, this.runEnd);
    this.run = undefined;
    this.runStart = this.runEnd = 0;
  }

  close(): void {
    if (this.fd === undefined) return;
    this.flush();
    clearInterval(this.timer);
    closeSync(this.fd);
    this.fd = undefined;
  }

  private flushIfFull(): void {
    if (this.size + (this.runEnd - this.runStart) >= this.pending.length) this.flush();
  }

  /** A run must reach the file before anything logged after it. */
  private settleRun(): void {
    if (!this.run) return;
    if (this.size + (this.runEnd - this.runStart) > this.pending.length) return this.flush();
    this.size += this.run.copy(this.pending, this.size, this.runStart, this.runEnd);
    this.run = undefined;
    this.runStart = this.runEnd = 0;
  }

  private append(bytes: Buffer, start: number, end: number): void {
    if (this.size + (end - start) > this.pending.length) {
      this.flush();
      // Larger than the whole buffer: straight to the file.
      if (end - start > this.pending.length) return this.write(bytes, start, end);
    }
    this.size += bytes.copy(this.pending, this.size, start, end);
  }

  private appendText(text: string): void {
    const bytes = Buffer.byteLength(text);
    if (this.size + bytes > this.pending.length) this.flush();
    if (bytes > this.pending.length) {
      this.written += writeSync(this.fd as number, text);
      return;
    }
    this.size += this.pending.write(text, this.size);
  }

  private write(bytes: Buffer, start: number, end: number): void {
    // A regular file takes a write whole unless the disk is full; keep going rather than drop the rest.
    for (let at = start; at < end; ) {
      const n = writeSync(this.fd as number, bytes, at, end - at);
      if (n === 0) throw new Error(`${this.path}: nothing could be written`);
      at += n;
      this.written += n;
    }
  }
}
