import type { MatrixEvent } from "matrix-js-sdk";

interface Waiter {
  take: (event: MatrixEvent | undefined) => void;
  /** Any text answers, even one that looks like a command (a secret is never run as one). */
  anyText: boolean;
}

/**
 * Requests waiting for one person's next message in a room (`!install` asking for a photo). Only
 * that person's message answers; one request per person and room at a time.
 */
export class ReplyWaiters {
  private readonly waiting = new Map<string, Waiter>();

  /** The next message `from` sends in `room` within `timeoutMs`, or undefined. */
  wait(room: string, from: string, timeoutMs: number, anyText = false): Promise<MatrixEvent | undefined> {
    const key = keyOf(room, from);
    this.waiting.get(key)?.take(undefined);
    return new Promise((resolve) => {
      const timer = setTimeout(() => waiter.take(undefined), timeoutMs);
      const waiter: Waiter = {
        anyText,
        take: (event) => {
          clearTimeout(timer);
          if (this.waiting.get(key) === waiter) this.waiting.delete(key);
          resolve(event);
        },
      };
      this.waiting.set(key, waiter);
    });
  }

  /** Whether someone waits for a message from `sender` in `room`. */
  wants(room: string, sender: string): boolean {
    return this.waiting.has(keyOf(room, sender));
  }

  /** Whether the request waiting for `sender` in `room` takes any text (a secret). */
  takesAnyText(room: string, sender: string): boolean {
    return this.waiting.get(keyOf(room, sender))?.anyText === true;
  }

  /** A message seen in a room; returns whether it answered a request. */
  offer(room: string, sender: string, event: MatrixEvent): boolean {
    const w = this.waiting.get(keyOf(room, sender));
    if (!w) return false;
    w.take(event);
    return true;
  }

  /** Ends every open request without an answer (the bot is stopping). */
  closeAll(): void {
    for (const w of [...this.waiting.values()]) w.take(undefined);
  }
}

function keyOf(room: string, sender: string): string {
  return `${room}\n${sender}`;
}
