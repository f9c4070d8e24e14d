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
  private readonly secrets: readonly Buffer[];

  /** `secrets` (an installer's password) are masked wherever they appear, before anything is kept. */
  constructor(log: LogFile, tail: OutputTail, prefix: string, secrets: readonly string[], onTelling: (line: string, stream: "stdout" | "stderr") => void) {
    this.log = log;
    this.tail = tail;
    this.prefix = Buffer.from(prefix);
    this.secrets = secrets.filter((x) => x !== "").map((x) => Buffer.from(x));
    this.onTelling = onTelling;
  }

  line(bytes: Buffer, start: number, end: number, stream: "stdout" | "stderr"): void {
    if (this.secrets.some((secret) => holds(bytes, start, end, secret))) {
      const masked = Buffer.from(this.secrets.reduce((text, secret) => text.split(secret.toString()).join(MASK), bytes.toString("utf8", start, end)));
      return this.keep(masked, 0, masked.length, stream);
    }
    this.keep(bytes, start, end, stream);
  }

  private keep(bytes: Buffer, start: number, end: number, stream: "stdout" | "stderr"): void {
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

const MASK = "********";

function holds(bytes: Buffer, start: number, end: number, needle: Buffer): boolean {
  const at = bytes.indexOf(needle, start);
  return at !== -1 && at + needle.length <= end;
}
