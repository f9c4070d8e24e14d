import { ReportedFailure } from "./errors.ts";
import { concat, formatDuration, paragraphs, type Piece } from "./format.ts";
import type { CommandContext } from "./types.ts";

export interface ConfirmFirst {
  /** The question itself: "Reboot laptop?" with what it means. */
  readonly ask: Piece;
  /** What is being confirmed, in the answer on the question: "Reboot of laptop". */
  readonly subject: string;
  /** The same once confirmed, when it should say more ("Install of newpc to root@host"). */
  readonly confirmedSubject?: string;
  /** What did not happen when nobody confirmed: default "nothing was done". */
  readonly otherwise?: string;
  /** Checked again once confirmed, before the question says so: things may have changed meanwhile. */
  readonly recheck?: () => Promise<void>;
}

/**
 * Asks the sender to confirm with ✅ within the confirmation time. Without it, the question says
 * so and the command stops (❌, no other message); with it, the question says who confirmed.
 */
export async function confirmFirst(ctx: CommandContext, o: ConfirmFirst): Promise<void> {
  const wait = formatDuration(ctx.confirmTimeoutMs);
  const { confirmed, question } = await ctx.confirm(
    paragraphs(o.ask, concat(`${ctx.sender.name}, react with ✅ to this message within ${wait} to go ahead. Otherwise nothing happens.`)),
  );
  if (!confirmed) {
    await question.edit(concat(`${o.subject} not confirmed within ${wait}: ${o.otherwise ?? "nothing was done"}.`));
    throw new ReportedFailure("not confirmed");
  }
  await o.recheck?.();
  await question.edit(concat(`${o.confirmedSubject ?? o.subject} confirmed by ${ctx.sender.name}.`));
}
