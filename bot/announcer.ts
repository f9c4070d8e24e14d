import type { Message } from "../commands/format.ts";
import type { Log } from "../commands/types.ts";
import type { ClanPoster } from "./deploy-recovery.ts";

/**
 * What the bot says on its own, not in answer to a command: a scheduled backup's result, a VM that
 * stopped. Services get `announce` at start-up, before any front end can post; what they announce
 * meanwhile waits here (bounded) until a front end connects. A post that fails is logged, never thrown
 * back at the service that announced it.
 */
export class Announcer {
  private poster: ClanPoster | undefined;
  private readonly waiting: { clan: string; message: Message }[] = [];

  private readonly log: Log;
  private readonly maxWaiting: number;

  constructor(log: Log, maxWaiting = 200) {
    this.log = log;
    this.maxWaiting = maxWaiting;
  }

  /** A front end can post now: what waited is posted first, in order. */
  async connect(post: ClanPoster): Promise<void> {
    this.poster = post;
    for (const { clan, message } of this.waiting.splice(0)) await this.send(post, clan, message);
  }

  disconnect(): void {
    this.poster = undefined;
  }

  /** Posts `message` in the clan's room; resolves true once it was posted. */
  async announce(clan: string, message: Message): Promise<boolean> {
    if (!this.poster) {
      if (this.waiting.length >= this.maxWaiting) {
        this.log.warn({ clan }, "too many announcements wait for a front end; dropping the oldest");
        this.waiting.shift();
      }
      this.waiting.push({ clan, message });
      return false;
    }
    return this.send(this.poster, clan, message);
  }

  private async send(post: ClanPoster, clan: string, message: Message): Promise<boolean> {
    try {
      await post(clan, message, undefined);
      return true;
    } catch (err) {
      this.log.error({ err, clan }, "could not post an announcement in the clan's room");
      return false;
    }
  }
}
