// Output lines as byte ranges of the chunks they arrived in. A process may print a gigabyte; making
// a string of every line (and of every joined or prefixed line) churns V8's young generation, whose
// pages then stay resident. Lines handed on as (bytes, start, end) cost no allocation at all, and
// only the few lines somebody reads are ever decoded.

/** Longer lines are cut into pieces of at most this size, so a process printing without newlines cannot grow memory. */
export const MAX_LINE_BYTES = 64 * 1024;

const LF = 0x0a;
const CR = 0x0d;

/** Where lines go. */
export interface LineSink {
  /**
   * One line: `bytes[start, end)`, without its line end. The bytes stay as they are until the next
   * `chunkDone`, no longer: copy what is kept. `bytes[end]` is LF only if that LF ended this line.
   */
  line(bytes: Buffer, start: number, end: number): void;
  /** The lines of a chunk have all been given; their bytes are reused or freed after this returns. */
  chunkDone(): void;
}

/** Splits chunks of a stream into lines (LF or CRLF), as they come; a line may span chunks. */
export class LineSplitter {
  private readonly sink: LineSink;
  private readonly maxLineBytes: number;
  /** The start of a line whose end has not come yet, copied out of its chunk (made when first needed). */
  private carry: Buffer | undefined;
  private carried = 0;

  constructor(sink: LineSink, maxLineBytes = MAX_LINE_BYTES) {
    this.sink = sink;
    this.maxLineBytes = maxLineBytes;
  }

  push(chunk: Buffer): void {
    let start = 0;
    if (this.carried > 0) {
      const nl = chunk.indexOf(LF);
      this.append(chunk, 0, nl === -1 ? chunk.length : nl);
      if (nl === -1) return this.sink.chunkDone();
      this.endCarried();
      start = nl + 1;
    }
    for (let nl = chunk.indexOf(LF, start); nl !== -1; nl = chunk.indexOf(LF, start)) {
      this.line(chunk, start, nl);
      start = nl + 1;
    }
    // The sink is done with the chunk's views before the carry (which it may also be viewing) changes.
    this.sink.chunkDone();
    if (start < chunk.length) this.append(chunk, start, chunk.length);
  }

  /** The stream has ended: its last line, if it had no line end. */
  end(): void {
    if (this.carried > 0) this.endCarried();
    this.sink.chunkDone();
  }

  /** Adds to the unfinished line; past the limit, its start goes out in pieces now. */
  private append(bytes: Buffer, start: number, end: number): void {
    // Room for a limit's worth and the next character, to see where the cut falls.
    this.carry ??= Buffer.allocUnsafe(this.maxLineBytes + 4);
    while (start < end) {
      const n = Math.min(end - start, this.carry.length - this.carried);
      bytes.copy(this.carry, this.carried, start, start + n);
      this.carried += n;
      start += n;
      if (this.carried > this.maxLineBytes) {
        const cut = charBoundary(this.carry, 0, this.maxLineBytes);
        this.sink.line(this.carry, 0, cut);
        this.sink.chunkDone();
        this.carry.copyWithin(0, cut, this.carried);
        this.carried -= cut;
      }
    }
  }

  private endCarried(): void {
    // A view of exactly the line, so that stale bytes after it are not taken for its LF.
    const line = (this.carry as Buffer).subarray(0, this.carried);
    this.carried = 0;
    this.line(line, 0, line.length);
  }

  private line(bytes: Buffer, start: number, end: number): void {
    if (end > start && bytes[end - 1] === CR) end--;
    while (end - start > this.maxLineBytes) {
      const cut = charBoundary(bytes, start, start + this.maxLineBytes);
      this.sink.line(bytes, start, cut);
      start = cut;
    }
    this.sink.line(bytes, start, end);
  }
}

/** `at`, moved back to the start of the UTF-8 character it falls in, so that no cut splits one. */
function charBoundary(bytes: Buffer, start: number, at: number): number {
  let cut = at;
  // Continuation bytes are 10xxxxxx; a character has at most three of them.
  while (cut > start && at - cut < 3 && ((bytes[cut] as number) & 0xc0) === 0x80) cut--;
  return cut > start ? cut : at;
}

/** Whether `bytes[start, end)` begins with `prefix`. */
export function bytesStartWith(bytes: Buffer, start: number, end: number, prefix: Buffer): boolean {
  if (end - start < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[start + i] !== prefix[i]) return false;
  return true;
}

/**
 * Gives every line of a stream (LF or CRLF) to `sink`, as it arrives; resolves at its end.
 * `releaseChunks`: the caller is the stream's only reader, so each chunk's memory is given back
 * as soon as its lines are handled (see releaseChunk).
 */
export function eachLine(stream: NodeJS.ReadableStream, sink: LineSink, opts: { releaseChunks?: boolean } = {}): Promise<void> {
  const splitter = new LineSplitter(sink);
  const onData = (chunk: Buffer | string): void => {
    if (typeof chunk === "string") return splitter.push(Buffer.from(chunk));
    splitter.push(chunk);
    // Only while nobody else listens: another reader may still want the chunk.
    if (opts.releaseChunks && stream.listenerCount("data") === 1) releaseChunk(chunk);
  };
  stream.on("data", onData);
  return new Promise((resolve) => {
    const end = (): void => {
      stream.off("data", onData);
      splitter.end();
      resolve();
    };
    stream.once("end", end);
    stream.once("close", end);
    stream.once("error", end);
  });
}

/**
 * Frees a chunk's memory now rather than at V8's next garbage collection. Node reads a pipe into a
 * new 64 KB buffer each time, and V8 collects dead buffers only once 64 MB of them have piled up
 * (or once the young generation is full, which output handled without allocating never makes it):
 * a gigabyte of output would keep ~64 MB of them resident. Detaching (`transfer(0)`) gives the
 * memory back at once; only a buffer that is the whole of its memory (not a slice of a shared
 * pool) is detached, and it reads as empty afterwards.
 */
export function releaseChunk(chunk: Buffer): void {
  const memory = chunk.buffer as ArrayBuffer & { transfer?: (length: number) => ArrayBuffer };
  if (chunk.byteOffset !== 0 || chunk.byteLength !== memory.byteLength || typeof memory.transfer !== "function") return;
  memory.transfer(0);
}
