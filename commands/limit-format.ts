import { concat, formatDuration, type Message } from "./format.ts";

export interface SlowDown {
  /** Commands a person may send at once, refilled over `windowMs`. */
  readonly requests: number;
  readonly windowMs: number;
  /** Until the person's next command can run. */
  readonly retryAfterMs: number;
}

/** The one answer a person over the command limit gets per window; the commands after it get none. */
export function formatSlowDown(s: SlowDown): Message {
  // Rounded up: "try again in 0 s" would be a lie.
  const wait = formatDuration(Math.max(1000, Math.ceil(s.retryAfterMs / 1000) * 1000));
  return concat(
    `Slow down: at most ${s.requests} commands per person in ${formatDuration(s.windowMs)} here. ` +
      `I did not run this one; try again in ${wait}. ` +
      "Until then I skip your commands without answering each of them.",
  );
}
