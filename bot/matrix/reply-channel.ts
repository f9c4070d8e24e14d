import { EventType, MsgType, RelationType, type MatrixClient } from "matrix-js-sdk";
import type { Outbox, Post } from "./outbox.ts";
import type { Message } from "../../commands/format.ts";
import type { Attachment, Confirmation, ReceivedReply, SentMessage } from "../../commands/types.ts";
import type { ReplyChannel } from "../dispatcher.ts";
import { UserError } from "../../commands/errors.ts";
import { downloadMedia, encryptAttachment, MediaDownloadError } from "./media.ts";
import type { ReactionWaiters } from "./reaction-waiters.ts";
import type { ReplyWaiters } from "./reply-waiters.ts";

const HTML = "org.matrix.custom.html";

/** A notice (bots must not trigger other bots) with HTML and a readable plain body. */
export function noticeContent(m: Message): Record<string, unknown> {
  return { msgtype: MsgType.Notice, body: m.text, format: HTML, formatted_body: m.html };
}

/** What a reply channel sends through: the outbox for posts, the client for media and redactions. */
export interface Sending {
  outbox: Outbox;
  client: MatrixClient;
}

/**
 * Answers to one command event: replies relate to it (`m.in_reply_to`), reactions annotate it,
 * edits replace a sent answer (`m.replace` with `m.new_content`) so clients show one message that moves.
 * Everything goes through the outbox: a call resolves once its post is stored, so a command never waits
 * for the homeserver's round trip, and what it posted survives a crash. The command's posts keep their
 * order in one lane; its 👀 goes in a lane of its own, so the answer never waits behind it.
 */
export class MatrixReplyChannel implements ReplyChannel {
  private readonly sending: Sending;
  private readonly roomId: string;
  private readonly eventId: string;
  private readonly waiters: ReactionWaiters | undefined;
  private readonly replies: ReplyWaiters | undefined;

  constructor(sending: Sending, roomId: string, eventId: string, waiters?: ReactionWaiters, replies?: ReplyWaiters) {
    this.sending = sending;
    this.roomId = roomId;
    this.eventId = eventId;
    this.waiters = waiters;
    this.replies = replies;
  }

  private get lane(): string {
    return answerLane(this.eventId);
  }

  async reply(message: Message, once?: string): Promise<SentMessage> {
    const post = await this.post(EventType.RoomMessage, { ...noticeContent(message), "m.relates_to": { "m.in_reply_to": { event_id: this.eventId } } }, { once });
    return { edit: (m) => this.edit(post, m) };
  }

  /**
   * Posts the question and puts a ✅ on it, so that confirming is one tap on the existing
   * reaction; waits for the asker's own ✅ (or ❌).
   */
  async ask(message: Message, from: string, timeoutMs: number): Promise<Confirmation> {
    if (!this.waiters) throw new Error("this reply channel cannot ask questions");
    const post = await this.post(EventType.RoomMessage, { ...noticeContent(message), "m.relates_to": { "m.in_reply_to": { event_id: this.eventId } } });
    const eventId = await post.sent;
    if (eventId === undefined) throw new Error("the question could not be posted");
    const answer = this.waiters.wait(eventId, from, timeoutMs);
    await this.post(EventType.Reaction, { "m.relates_to": { rel_type: RelationType.Annotation, event_id: "", key: "✅" } }, { target: post.id });
    return { confirmed: await answer, question: { edit: (m) => this.edit(post, m) } };
  }

  async askFor(message: Message, from: string, timeoutMs: number, opts: { anyText?: boolean } = {}): Promise<ReceivedReply | undefined> {
    if (!this.replies) throw new Error("this reply channel cannot ask for replies");
    const { client } = this.sending;
    const answer = this.replies.wait(this.roomId, from, timeoutMs, opts.anyText === true);
    await this.reply(message);
    const event = await answer;
    if (!event) return undefined;
    const content = event.getOriginalContent();
    const remove = async (reason: string): Promise<boolean> => {
      try {
        await client.redactEvent(this.roomId, event.getId() as string, undefined, { reason });
        return true;
      } catch {
        return false;
      }
    };
    if (content.msgtype === MsgType.Image || content.msgtype === MsgType.File) {
      const info = content["info"] as { mimetype?: string } | undefined;
      try {
        return { content: { kind: "image", data: await downloadMedia(client, content), mimetype: info?.mimetype ?? "application/octet-stream" }, remove };
      } catch (err) {
        // The message may still show a secret: it is removed even when it cannot be read.
        await remove("unreadable answer to a request of the bot");
        if (err instanceof MediaDownloadError) {
          throw new UserError(`I could not download the image you sent: ${err.message}. Nothing was done; send it again, or paste the text instead.`);
        }
        throw err;
      }
    }
    return { content: { kind: "text", text: typeof content.body === "string" ? content.body : "" }, remove };
  }

  /**
   * Uploads to the homeserver's media repository (tried again while it is away), then posts it as
   * m.image or m.file in reply; in an encrypted room the upload is encrypted and the event carries its
   * key (`file`, not `url`).
   */
  async replyFile(file: Attachment): Promise<void> {
    const { outbox, client } = this.sending;
    const encrypted = client.getRoom(this.roomId)?.hasEncryptionStateEvent() ? encryptAttachment(file.data) : undefined;
    const contentUri = encrypted
      ? await outbox.upload(uploadable(encrypted.data), { type: "application/octet-stream", includeFilename: false })
      : await outbox.upload(uploadable(file.data), { name: file.name, type: file.mimetype });
    const info = {
      mimetype: file.mimetype,
      size: file.data.byteLength,
      ...(file.image ? { w: file.image.width, h: file.image.height } : {}),
    };
    await this.post(EventType.RoomMessage, {
      msgtype: file.image ? MsgType.Image : MsgType.File,
      body: file.name,
      filename: file.name,
      ...(encrypted ? { file: { ...encrypted.file, url: contentUri } } : { url: contentUri }),
      info,
      "m.relates_to": { "m.in_reply_to": { event_id: this.eventId } },
    });
  }

  /** Redacts the command's own message (a secret typed into it by mistake); false when the bot may not. */
  async removeCommand(reason: string): Promise<boolean> {
    try {
      await this.sending.client.redactEvent(this.roomId, this.eventId, undefined, { reason });
      return true;
    } catch {
      return false;
    }
  }

  async react(key: string, once?: string): Promise<void> {
    const content = { "m.relates_to": { rel_type: RelationType.Annotation, event_id: this.eventId, key } };
    await this.post(EventType.Reaction, content, { once, lane: key === TAKEN ? `taken:${this.eventId}` : this.lane });
  }

  private async edit(target: Post, message: Message): Promise<void> {
    const content = {
      ...noticeContent({ text: `* ${message.text}`, html: `* ${message.html}` }),
      "m.new_content": noticeContent(message),
      "m.relates_to": { rel_type: RelationType.Replace, event_id: "" },
    };
    await this.post(EventType.RoomMessage, content, { target: target.id });
  }

  private async post(eventType: string, content: Record<string, unknown>, opts: { target?: number; once?: string; lane?: string } = {}): Promise<Post> {
    const post = await this.sending.outbox.add({
      roomId: this.roomId,
      lane: opts.lane ?? this.lane,
      eventType,
      content,
      ...(opts.target !== undefined ? { target: opts.target } : {}),
      ...(opts.once !== undefined ? { once: opts.once } : {}),
    });
    // A post with a once key that exists already: it was posted (or is on its way) before.
    return post ?? { id: 0, sent: Promise.resolve(undefined) };
  }
}

/** The outbox lane of a command's answers (its 👀 goes apart). */
export function answerLane(commandEventId: string): string {
  return `answer:${commandEventId}`;
}

/** The reaction that says a command was taken: it has a lane of its own. */
const TAKEN = "👀";

/**
 * The bytes as the upload takes them (backed by an ArrayBuffer): a view of the same memory when
 * they are, which saves a copy of what can be megabytes (a gzipped deploy log).
 */
function uploadable(data: Uint8Array): Uint8Array<ArrayBuffer> {
  return data.buffer instanceof ArrayBuffer ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : Uint8Array.from(data);
}
