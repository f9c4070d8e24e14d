import { isReply, type EventTap } from "./event-tap.ts";
import type { Human } from "./human.ts";

/**
 * Sends `body` until the bot answers one (a command sent in the instant before the bot's join is
 * visible to it is ignored by design, so one unanswered probe is not a failure); resolves with
 * performance.now() of the answer, or undefined after `tries` unanswered probes.
 */
export async function probe(tap: EventTap, human: Human, roomId: string, body: string, timeoutMs = 3000, tries = 10): Promise<number | undefined> {
  for (let i = 0; i < tries; i++) {
    const id = await human.say(roomId, body);
    const answer = await tap.waitRelated(id, isReply, timeoutMs);
    if (answer) return answer.at;
  }
  return undefined;
}
