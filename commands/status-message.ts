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
 * ended; the job is cancelled when the bot shuts down meanwhile. The command's ✅ or ❌ does not wait
 * for that last edit: it may have to wait for its gap, and goes on afterwards (`ctx.later`).
 */
export function statusMessage<S>(ctx: CommandContext, format: (s: S, now: number) => Message) {
  const now = (): number => ctx.clock.now();
  let edits: ThrottledEdits | undefined;
  return {
    onChange: (s: S): void => edits?.show(format(s, now())),
    /** Resolves with the job's end; the last edit, and `meanwhile` beside it, go on afterwards. */
    async follow(job: FollowedJob<S>, cancel: () => void, meanwhile?: (final: S) => Promise<void>): Promise<S> {
      ctx.signal.addEventListener("abort", cancel, { once: true });
      try {
        const first = format(job.current(), now());
        edits = new ThrottledEdits(await ctx.reply(first), first, { gapMs: STATUS_EDIT_GAP_MS, now, log: ctx.log });
        edits.show(format(job.current(), now()));
        const final = await job.done;
        ctx.later(edits.finish(format(final, now())));
        if (meanwhile) ctx.later(meanwhile(final));
        return final;
      } finally {
        ctx.signal.removeEventListener("abort", cancel);
      }
    },
  };
}
