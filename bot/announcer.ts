import type { Message } from "../commands/format.ts";
import type { Log } from "../commands/types.ts";
import type { ClanPoster } from "./deploy-recovery.ts";

interface Waiting {
  clan: string;
  message: Message;
  replyTo: string | undefined;
  /** Set by `deliver`: told whether the message was posted in the end. */
  settle?: (posted: boolean) => void;
}

/**
 * What the bot says on its own, not in answer to a command: a scheduled backup's result, a VM that
 * stopped. Services get `announce` at start-up, before any front end can post; what they announce
 * meanwhile waits here (bounded) until a front end connects. A post that fails is logged, never thrown
 * back at the service that announced it.
 */
export class Announcer {
  private poster: ClanPoster | undefined;
  private readonly waiting: Waiting[] = [];
  /** Disconnected for good: the bot is stopping. */
  private stopped = false;

  private readonly log: Log;
  private readonly maxWaiting: number;

  constructor(log: Log, maxWaiting = 200) {
    this.log = log;
    this.maxWaiting = maxWaiting;
  }

  /** A front end can post now: what waited is posted first, in order. */
  async connect(post: ClanPoster): Promise<void> {
    this.poster = post;
    this.stopped = false;
    for (const w of this.waiting.splice(0)) {
      const posted = await this.send(post, w);
      w.settle?.(posted);
    }
  }

  /** The front end is going away (the bot stops): deliveries still waiting are given up, as not posted. */
  disconnect(): void {
    this.poster = undefined;
    this.stopped = true;
    for (let i = this.waiting.length - 1; i >= 0; i--) {
      const w = this.waiting[i] as Waiting;
      if (!w.settle) continue;
      this.waiting.splice(i, 1);
      w.settle(false);
    }
  }

  /** Posts `message` in the clan's room; resolves true if it was posted now (false: it waits, or failed). */
  async announce(clan: string, message: Message): Promise<boolean> {
    if (!this.poster) {
      this.enqueue({ clan, message, replyTo: undefined });
      return false;
    }
    return this.send(this.poster, { clan, message, replyTo: undefined });
  }

  /**
   * Posts `message` in the clan's room (as a reply to the event `replyTo`, when given), waiting for a
   * front end if none is connected yet. Resolves true once it was posted, false when it could not be:
   * the post failed, it was dropped to keep the queue bounded, or the bot stopped first. Callers
   * that must tell the room exactly once record it as told only on true.
   */
  deliver(clan: string, message: Message, replyTo?: string): Promise<boolean> {
    if (this.poster) return this.send(this.poster, { clan, message, replyTo });
    if (this.stopped) return Promise.resolve(false);
    return new Promise((settle) => this.enqueue({ clan, message, replyTo, settle }));
  }

  private enqueue(w: Waiting): void {
    if (this.waiting.length >= this.maxWaiting) {
      this.log.warn({ clan: w.clan }, "too many announcements wait for a front end; dropping the oldest");
      this.waiting.shift()?.settle?.(false);
    }
    this.waiting.push(w);
  }

  private async send(post: ClanPoster, w: Waiting): Promise<boolean> {
    try {
      await post(w.clan, w.message, w.replyTo);
      return true;
    } catch (err) {
      this.log.error({ err, clan: w.clan }, "could not post an announcement in the clan's room");
      return false;
    }
  }
}
