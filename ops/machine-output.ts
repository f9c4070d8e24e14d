import { TELLING_WORDS, type OutputTail } from "./deploy-output.ts";
import { bytesStartWith } from "./line-splitter.ts";
import type { LogFile } from "./log-file.ts";
import type { OutputSink } from "./process-runner.ts";
import { WordFinder } from "./word-finder.ts";

/**
 * Where one machine's deploy output goes, as bytes, as it comes: every line to the deploy log (with
 * the machine's prefix, unless clan already put it there) and to the machine's tail; only the few
 * lines that may tell something (a phase, the system's store path) are decoded, for `onTelling`.
 */
export class MachineOutput implements OutputSink {
  private readonly log: LogFile;
  private readonly tail: OutputTail;
  private readonly prefix: Buffer;
  private readonly telling = new WordFinder(TELLING_WORDS);
  private readonly onTelling: (line: string, stream: "stdout" | "stderr") => void;

  constructor(log: LogFile, tail: OutputTail, prefix: string, onTelling: (line: string, stream: "stdout" | "stderr") => void) {
    this.log = log;
    this.tail = tail;
    this.prefix = Buffer.from(prefix);
    this.onTelling = onTelling;
  }

  line(bytes: Buffer, start: number, end: number, stream: "stdout" | "stderr"): void {
    this.log.lineBytes(bytes, start, end, bytesStartWith(bytes, start, end, this.prefix) ? undefined : this.prefix);
    this.tail.pushBytes(bytes, start, end);
    if (this.telling.inLine(bytes, start, end)) this.onTelling(bytes.toString("utf8", start, end), stream);
  }

  chunkDone(): void {
    this.log.chunkDone();
    this.tail.chunkDone();
    this.telling.chunkDone();
  }
}
