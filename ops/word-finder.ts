/**
 * Whether a line of output bytes holds any of some words, without decoding it. Lines come in order
 * from the same chunk, so each word is searched once per chunk, not once per line: where it occurs
 * next stays the answer until a line passes it. What was found is trusted only for a line further
 * on in the same buffer (a line never starts where the one before did) before `chunkDone`.
 */
export class WordFinder {
  private readonly words: Buffer[];
  /** The buffer searched last, and where the line last asked about starts in it. */
  private bytes: Buffer | undefined;
  private from = 0;
  /** Where each word occurs next in `bytes` at or after `from`; -1 nowhere, -2 not searched yet. */
  private readonly next: Int32Array;

  constructor(words: readonly string[]) {
    this.words = words.map((w) => Buffer.from(w, "utf8"));
    this.next = new Int32Array(words.length).fill(-2);
  }

  /** Whether `bytes[start, end)` holds one of the words (whole, not cut by `end`). */
  inLine(bytes: Buffer, start: number, end: number): boolean {
    if (bytes !== this.bytes || start <= this.from) {
      this.bytes = bytes;
      this.next.fill(-2);
    }
    this.from = start;
    for (let i = 0; i < this.words.length; i++) {
      const word = this.words[i] as Buffer;
      let at = this.next[i] as number;
      if (at === -2 || (at !== -1 && at < start)) at = this.next[i] = bytes.indexOf(word, start);
      if (at !== -1 && at + word.length <= end) return true;
    }
    return false;
  }

  /** The chunk's bytes are about to change or go: nothing found in it is trusted any more. */
  chunkDone(): void {
    this.bytes = undefined;
  }
}
