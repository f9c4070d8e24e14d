import { MatrixScheduler, safeGetRetryAfterMs, type MatrixEvent } from "matrix-js-sdk";

const MAX_ATTEMPTS = 30;
const MAX_BACKOFF_MS = 30_000;

/**
 * How long to wait before sending an event again. Unlike the SDK's default (which gives up on a
 * connection error at once, and on anything after 4 tries), an answer is worth waiting for: the
 * homeserver may be restarting. Each retry reuses the event's transaction id, so the server never
 * stores it twice. Errors the server means (4xx other than rate limits) are final.
 */
export function sendRetryDelay(_event: MatrixEvent, attempts: number, err: unknown): number {
  if (attempts > MAX_ATTEMPTS) return -1;
  const e = err as { httpStatus?: number; name?: string };
  if (e.name === "M_TOO_LARGE") return -1;
  if (e.httpStatus !== undefined && e.httpStatus >= 400 && e.httpStatus < 500 && e.httpStatus !== 429) return -1;
  return safeGetRetryAfterMs(err, Math.min(1000 * 2 ** (attempts - 1), MAX_BACKOFF_MS));
}

/** One queue per room: a room's answers keep their order, rooms do not wait for each other. */
export function queuePerRoom(event: MatrixEvent): string | null {
  return event.getRoomId() ?? null;
}

export function createSendScheduler(): MatrixScheduler {
  return new MatrixScheduler(sendRetryDelay, queuePerRoom);
}
