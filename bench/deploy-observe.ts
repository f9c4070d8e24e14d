// What a `!deploy` looked like in the room, read from the homeserver's own record of events: the
// command, the bot's status message and its edits (m.replace), the attached log, the closing reaction.
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as NodeReadableStream } from "node:stream/web";
import { createGunzip } from "node:zlib";
import { isReply, type EventTap, type TappedEvent } from "./event-tap.ts";
import type { Human } from "./human.ts";

const OUTCOMES = ["✅", "❌", "⛔"];
const STATUS = /^\*(?:Deploy|Dry run) #(\d+)\*/;
const RESULT_LINE = /^(?:✅ Done|❌ Failed|🚫 Cancelled|⏱️ Timed out|⚠️ Interrupted)\b.*$/m;

export interface Attached {
  name: string;
  mimetype: string;
  size: number;
  url: string;
  ts: number;
}

export interface ObservedDeploy {
  commandTs: number;
  /** The deploy's number, from the status message ("*Deploy #12*"). */
  deployId: number | undefined;
  /** The bot's closing reaction on the command (✅, ❌ or ⛔), undefined if none came in time. */
  outcome: string | undefined;
  outcomeTs: number;
  /** origin_server_ts of the status message, then of each of its edits, in the order stored. */
  messageTs: number[];
  /** origin_server_ts of the edit that shows the result (it may follow the reaction by up to the edit gap); NaN if none came. */
  finalTs: number;
  edits: number;
  /** Edits stored after the one showing the result (within the settle time): there should be none. */
  editsAfterFinal: number;
  /** Gaps between consecutive status messages (status, edit, edit, ...), by origin_server_ts. */
  gapsMs: number[];
  minGapMs: number;
  /** The status as last shown: its result line ("✅ Done after 7 s (50 done)."). */
  resultLine: string;
  file: Attached | undefined;
  /** Other replies of the bot to the command (besides the status and the file). */
  otherReplies: string[];
}

const relation = (e: TappedEvent): { rel_type?: unknown } | undefined => e.content["m.relates_to"] as { rel_type?: unknown } | undefined;
const isEdit = (e: TappedEvent): boolean => e.type === "m.room.message" && relation(e)?.rel_type === "m.replace";
const bodyOf = (content: Record<string, unknown>): string => (typeof content["body"] === "string" ? content["body"] : "");

/**
 * Sends `body` in `roomId` and follows the deploy it starts until the bot's closing reaction, the
 * status edit that shows the result (it waits for its 2 s gap, so it may come after the reaction)
 * and the attached log, then `settleMs` more (so that an edit sent after that would be seen).
 */
export async function observeDeploy(
  tap: EventTap,
  human: Human,
  roomId: string,
  botId: string,
  body: string,
  timeoutMs: number,
  settleMs = 2500,
): Promise<ObservedDeploy> {
  const id = await human.say(roomId, body);
  const command = tap.get(id);
  if (!command) throw new Error(`the homeserver did not store the command ${JSON.stringify(body)}`);
  const outcome = await tap.waitRelated(
    id,
    (e) => e.type === "m.reaction" && e.sender === botId && OUTCOMES.includes(String((e.content["m.relates_to"] as { key?: unknown }).key)),
    timeoutMs,
  );
  const newBody = (e: TappedEvent): string => bodyOf((e.content["m.new_content"] ?? {}) as Record<string, unknown>);
  const statusOf = (): TappedEvent | undefined => tap.relatedTo(id).find((e) => e.sender === botId && isReply(e) && STATUS.test(bodyOf(e.content)));
  const first = statusOf();
  const final = first ? await tap.waitRelated(first.id, (e) => e.sender === botId && isEdit(e) && RESULT_LINE.test(newBody(e)), 10_000) : undefined;
  // The log is packed (gzip of a big one takes seconds) and posted after ✅ too: the run ends with it.
  if (outcome) await tap.waitRelated(id, (e) => e.sender === botId && isReply(e) && e.content["msgtype"] === "m.file", timeoutMs);
  await new Promise((r) => setTimeout(r, settleMs));
  const replies = tap.relatedTo(id).filter((e) => e.sender === botId && isReply(e));
  const status = statusOf();
  const edits = status ? tap.relatedTo(status.id).filter((e) => e.sender === botId && isEdit(e)) : [];
  const messageTs = status ? [status.ts, ...edits.map((e) => e.ts)] : [];
  const gapsMs = messageTs.slice(1).map((ts, i) => ts - (messageTs[i] as number));
  const last = edits.at(-1);
  const shown = last ? newBody(last) : status ? bodyOf(status.content) : "";
  const fileEvent = replies.find((e) => e.content["msgtype"] === "m.file");
  const info = (fileEvent?.content["info"] ?? {}) as { size?: unknown; mimetype?: unknown };
  return {
    commandTs: command.ts,
    deployId: status ? Number(STATUS.exec(bodyOf(status.content))?.[1]) : undefined,
    outcome: outcome ? String((outcome.content["m.relates_to"] as { key?: unknown }).key) : undefined,
    outcomeTs: outcome?.ts ?? Number.NaN,
    messageTs,
    finalTs: final?.ts ?? Number.NaN,
    edits: edits.length,
    editsAfterFinal: final ? edits.filter((e) => e.at > final.at).length : 0,
    gapsMs,
    minGapMs: Math.min(...gapsMs),
    resultLine: RESULT_LINE.exec(shown)?.[0] ?? `(no result line; status shows: ${shown.split("\n")[0] ?? ""})`,
    file: fileEvent
      ? {
          name: bodyOf(fileEvent.content),
          mimetype: String(info.mimetype),
          size: Number(info.size),
          url: String(fileEvent.content["url"]),
          ts: fileEvent.ts,
        }
      : undefined,
    otherReplies: replies.filter((e) => e !== status && e !== fileEvent).map((e) => bodyOf(e.content)),
  };
}

/** Downloads an attachment as a client would and returns its size once unpacked (gunzipped when it is gzip). */
export async function unpackedSize(homeserver: string, accessToken: string, file: Attached): Promise<number> {
  const m = /^mxc:\/\/([^/]+)\/(.+)$/.exec(file.url);
  if (!m) throw new Error(`not an mxc URL: ${file.url}`);
  const res = await fetch(`${homeserver}/_matrix/client/v1/media/download/${m[1]}/${m[2]}`, {
    headers: { authorization: `Bearer ${accessToken}` },
  });
  if (!res.ok || !res.body) throw new Error(`download of ${file.url}: ${res.status}`);
  const body = Readable.fromWeb(res.body as unknown as NodeReadableStream<Uint8Array>);
  let n = 0;
  const count = async (source: AsyncIterable<Buffer>): Promise<void> => {
    for await (const c of source) n += c.length;
  };
  if (file.mimetype === "application/gzip") await pipeline(body, createGunzip(), count);
  else await pipeline(body, count);
  return n;
}
