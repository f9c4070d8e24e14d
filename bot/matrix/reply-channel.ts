import { EventType, MsgType, RelationType, type MatrixClient } from "matrix-js-sdk";
import type { Message } from "../../commands/format.ts";
import type { Attachment, Confirmation, ReceivedReply, SentMessage } from "../../commands/types.ts";
import type { ReplyChannel } from "../dispatcher.ts";
import { UserError } from "../../commands/errors.ts";
import { downloadMedia, MediaDownloadError } from "./media.ts";
import type { ReactionWaiters } from "./reaction-waiters.ts";
import type { ReplyWaiters } from "./reply-waiters.ts";

const HTML = "org.matrix.custom.html";

/** A notice (bots must not trigger other bots) with HTML and a readable plain body. */
export function noticeContent(m: Message): Record<string, unknown> {
  return { msgtype: MsgType.Notice, body: m.text, format: HTML, formatted_body: m.html };
}

/**
 * Answers to one command event: replies relate to it (`m.in_reply_to`), reactions annotate it,
 * edits replace a sent answer (`m.replace` with `m.new_content`) so clients show one message that moves.
 */
export class MatrixReplyChannel implements ReplyChannel {
  private readonly client: MatrixClient;
  private readonly roomId: string;
  private readonly eventId: string;
  private readonly waiters: ReactionWaiters | undefined;
  private readonly replies: ReplyWaiters | undefined;

  constructor(client: MatrixClient, roomId: string, eventId: string, waiters?: ReactionWaiters, replies?: ReplyWaiters) {
    this.client = client;
    this.roomId = roomId;
    this.eventId = eventId;
    this.waiters = waiters;
    this.replies = replies;
  }

  async reply(message: Message): Promise<SentMessage> {
    const eventId = await this.send(message);
    return { edit: (m) => this.edit(eventId, m) };
  }

  /**
   * Posts the question and puts a ✅ on it, so that confirming is one tap on the existing
   * reaction; waits for the asker's own ✅ (or ❌).
   */
  async ask(message: Message, from: string, timeoutMs: number): Promise<Confirmation> {
    if (!this.waiters) throw new Error("this reply channel cannot ask questions");
    const eventId = await this.send(message);
    const answer = this.waiters.wait(eventId, from, timeoutMs);
    await this.reactTo(eventId, "✅");
    return { confirmed: await answer, question: { edit: (m) => this.edit(eventId, m) } };
  }

  async askFor(message: Message, from: string, timeoutMs: number): Promise<ReceivedReply | undefined> {
    if (!this.replies) throw new Error("this reply channel cannot ask for replies");
    const answer = this.replies.wait(this.roomId, from, timeoutMs);
    await this.send(message);
    const event = await answer;
    if (!event) return undefined;
    const content = event.getOriginalContent();
    const remove = async (reason: string): Promise<boolean> => {
      try {
        await this.client.redactEvent(this.roomId, event.getId() as string, undefined, { reason });
        return true;
      } catch {
        return false;
      }
    };
    if (content.msgtype === MsgType.Image || content.msgtype === MsgType.File) {
      const info = content["info"] as { mimetype?: string } | undefined;
      try {
        return { content: { kind: "image", data: await downloadMedia(this.client, content), mimetype: info?.mimetype ?? "application/octet-stream" }, remove };
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

  private async send(message: Message): Promise<string> {
    const content = { ...noticeContent(message), "m.relates_to": { "m.in_reply_to": { event_id: this.eventId } } };
    const { event_id } = await this.client.sendEvent(this.roomId, EventType.RoomMessage, content as never);
    return event_id;
  }

  /** Uploads to the homeserver's media repository, then posts it as m.image or m.file in reply. */
  async replyFile(file: Attachment): Promise<void> {
    const { content_uri } = await this.client.uploadContent(uploadable(file.data), { name: file.name, type: file.mimetype });
    const info = {
      mimetype: file.mimetype,
      size: file.data.byteLength,
      ...(file.image ? { w: file.image.width, h: file.image.height } : {}),
    };
    await this.client.sendEvent(this.roomId, EventType.RoomMessage, {
      msgtype: file.image ? MsgType.Image : MsgType.File,
      body: file.name,
      filename: file.name,
      url: content_uri,
      info,
      "m.relates_to": { "m.in_reply_to": { event_id: this.eventId } },
    } as never);
  }

  async react(key: string): Promise<void> {
    await this.reactTo(this.eventId, key);
  }

  private async reactTo(eventId: string, key: string): Promise<void> {
    await this.client.sendEvent(this.roomId, EventType.Reaction, {
      "m.relates_to": { rel_type: RelationType.Annotation, event_id: eventId, key },
    });
  }

  private async edit(target: string, message: Message): Promise<void> {
    const content = {
      ...noticeContent({ text: `* ${message.text}`, html: `* ${message.html}` }),
      "m.new_content": noticeContent(message),
      "m.relates_to": { rel_type: RelationType.Replace, event_id: target },
    };
    await this.client.sendEvent(this.roomId, EventType.RoomMessage, content as never);
  }
}

/**
 * The bytes as the upload takes them (backed by an ArrayBuffer): a view of the same memory when
 * they are, which saves a copy of what can be megabytes (a gzipped deploy log).
 */
function uploadable(data: Uint8Array): Uint8Array<ArrayBuffer> {
  return data.buffer instanceof ArrayBuffer ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : Uint8Array.from(data);
}
