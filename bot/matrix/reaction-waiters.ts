/** Reactions that confirm or decline a question; emoji variation selectors do not matter. */
const YES = new Set(["✅", "✔", "☑"]);
const NO = new Set(["❌", "✖", "🚫"]);

interface Waiter {
  from: string;
  answer: (yes: boolean) => void;
}

/**
 * Questions waiting for one person's reaction. Only that person's ✅ confirms and their ❌
 * declines; anyone else's reaction is ignored, so nobody can confirm for someone else.
 */
export class ReactionWaiters {
  private readonly waiting = new Map<string, Waiter>();

  /** True when `from` confirms the question `eventId` within `timeoutMs`; false when they decline or time runs out. */
  wait(eventId: string, from: string, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => answer(false), timeoutMs);
      const answer = (yes: boolean): void => {
        clearTimeout(timer);
        this.waiting.delete(eventId);
        resolve(yes);
      };
      this.waiting.set(eventId, { from, answer });
    });
  }

  /** A reaction seen in a room; returns whether it answered a question. */
  offer(targetEventId: string, sender: string, key: string): boolean {
    const w = this.waiting.get(targetEventId);
    if (!w || w.from !== sender) return false;
    const k = key.replace(/\uFE0F/g, "");
    if (YES.has(k)) w.answer(true);
    else if (NO.has(k)) w.answer(false);
    else return false;
    return true;
  }

  /** Declines every open question (the bot is stopping). */
  closeAll(): void {
    for (const w of [...this.waiting.values()]) w.answer(false);
  }
}
