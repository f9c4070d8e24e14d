import type { Message } from "./format.ts";
import type { Log, SentMessage } from "./types.ts";

/**
 * Edits one status message as a job moves, at most once every `gapMs` (counted from the message
 * itself): changes in between are folded into the next edit, and an unchanged text is not sent.
 * A failed edit is logged and the next one tries again; the job never waits on it except at `finish`.
 */
export class ThrottledEdits {
  private readonly message: SentMessage;
  private readonly gapMs: number;
  private readonly now: () => number;
  private readonly log: Log;
  private last: number;
  private shown: string;
  private pending: Message | undefined;
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private edits = 0;

  constructor(message: SentMessage, first: Message, opts: { gapMs: number; now: () => number; log: Log }) {
    this.message = message;
    this.gapMs = opts.gapMs;
    this.now = opts.now;
    this.log = opts.log;
    this.last = opts.now();
    this.shown = first.html;
  }

  /** How many edits were sent. */
  get count(): number {
    return this.edits;
  }

  show(m: Message): void {
    this.pending = m;
    this.schedule();
  }

  /** Sends the final text (after the gap, like any edit) and resolves once it is sent. */
  async finish(m: Message): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.pending = undefined;
    await this.inFlight;
    if (m.html === this.shown) return;
    // Timers may fire a millisecond early by the clock: wait until the gap has really passed.
    for (let wait = this.remaining(); wait > 0; wait = this.remaining()) await new Promise((r) => setTimeout(r, wait));
    await this.send(m);
  }

  private remaining(): number {
    return this.last + this.gapMs - this.now();
  }

  private schedule(): void {
    if (this.timer || this.inFlight) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.remaining() > 0) return this.schedule();
      const m = this.pending;
      this.pending = undefined;
      if (m && m.html !== this.shown) {
        this.inFlight = this.send(m).finally(() => {
          this.inFlight = undefined;
          if (this.pending) this.schedule();
        });
      }
    }, Math.max(0, this.remaining()));
  }

  private async send(m: Message): Promise<void> {
    this.last = this.now();
    this.shown = m.html;
    this.edits++;
    try {
      await this.message.edit(m);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, "could not edit a status message");
    }
    // The gap counts from when the edit was stored, not from when it was sent.
    this.last = this.now();
  }
}
