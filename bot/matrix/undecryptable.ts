import { DecryptionFailureCode } from "matrix-js-sdk/lib/crypto-api/index.js";
import { escapeHtml, type Message } from "../../commands/format.ts";

/** What to tell a room when a person's encrypted message could not be read: why, and what to check. */
export function undecryptableNotice(name: string, userId: string, reason: DecryptionFailureCode | null): Message {
  const why =
    reason === DecryptionFailureCode.MEGOLM_KEY_WITHHELD_FOR_UNVERIFIED_DEVICE || reason === DecryptionFailureCode.MEGOLM_KEY_WITHHELD
      ? "their app withheld the message's key from me"
      : "the message's key never reached me";
  const check =
    "If it was a command: check that your app has not blocked my device (it is verified by my own account), " +
    "that your own device is verified, and send the command again.";
  const who = name === userId ? userId : `${name} (${userId})`;
  return {
    text: `⚠️ I could not read an encrypted message from ${who}: ${why}. ${check}`,
    html: `⚠️ I could not read an encrypted message from <strong>${escapeHtml(who)}</strong>: ${why}. ${check}`,
  };
}
