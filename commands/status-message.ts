import type { Message } from "./format.ts";
import { ThrottledEdits } from "./throttled-edits.ts";
import type { CommandContext } from "./types.ts";

/** A status message is edited at most this often. */
export const STATUS_EDIT_GAP_MS = 2000;

/** A long job as its status message follows it: deploys, backups. */
export interface FollowedJob<S> {
  current(): S;
  readonly done: Promise<S>;
}

/**
 * One status message for a long job: pass `onChange` to the job as it starts, then `follow` it. The
 * message is posted, edited as the job moves (at most every STATUS_EDIT_GAP_MS) and shows how it
 * ended; the job is cancelled when the bot shuts down meanwhile.
 */
export function statusMessage<S>(ctx: CommandContext, format: (s: S, now: number) => Message) {
  const now = (): number => ctx.clock.now();
  let edits: ThrottledEdits | undefined;
  return {
    onChange: (s: S): void => edits?.show(format(s, now())),
    /** Resolves with the job's end once the message shows it; `meanwhile` runs while the last edit waits for its gap. */
    async follow(job: FollowedJob<S>, cancel: () => void, meanwhile?: (final: S) => Promise<void>): Promise<S> {
      ctx.signal.addEventListener("abort", cancel, { once: true });
      try {
        const first = format(job.current(), now());
        edits = new ThrottledEdits(await ctx.reply(first), first, { gapMs: STATUS_EDIT_GAP_MS, now, log: ctx.log });
        edits.show(format(job.current(), now()));
        const final = await job.done;
        await Promise.all([edits.finish(format(final, now())), meanwhile?.(final)]);
        return final;
      } finally {
        ctx.signal.removeEventListener("abort", cancel);
      }
    },
  };
}
