import type { Log } from "../commands/types.ts";
import { isWriteFailure } from "../storage/db.ts";

/**
 * A record that must land even when the database cannot be written right now (a full disk): the
 * first try is awaited; if the database refuses it, the write is tried again every `everyMs` in the
 * background until it lands, and the caller goes on (what people see does not wait for the disk).
 * Any other error is thrown as usual.
 */
export async function writeSoon(write: () => Promise<unknown>, log: Log, what: string, everyMs = 5000): Promise<void> {
  try {
    await write();
    return;
  } catch (err) {
    if (!isWriteFailure(err)) throw err;
    log.error({ err }, `cannot write ${what} now; trying again until the database takes it`);
  }
  const retry = (): void => {
    setTimeout(() => {
      write().then(
        () => log.info({}, `wrote ${what} after all`),
        (err: unknown) => {
          if (isWriteFailure(err)) retry();
          else log.error({ err }, `cannot write ${what}`);
        },
      );
    }, everyMs).unref();
  };
  retry();
}
