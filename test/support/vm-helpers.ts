// Helpers for !vm tests: free ports, what the fake QEMU was started with, and the answers as shown.
import { createServer } from "node:net";
import { after } from "node:test";
import type { MatrixClient, MatrixEvent } from "matrix-js-sdk";
import { shownText } from "./deploy-helpers.ts";
import { readInvocations, type FakeClanInvocation } from "../../demo/fake-clan-fixture.ts";
import { timeline, waitForEvent } from "./matrix-wait.ts";

/** A port nothing listens on right now (the kernel's pick). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** The fake QEMU runs of a machine, oldest first. */
export async function qemuRuns(clanLog: string, machine: string): Promise<(FakeClanInvocation & { machine?: string })[]> {
  return (await readInvocations(clanLog)).filter((i) => i.program === "qemu" && (i as { machine?: string }).machine === machine);
}

/** The bot's answer to a command as shown now (its latest edit), once it matches `pattern`. */
export async function answerMatching(client: MatrixClient, roomId: string, commandId: string, pattern: RegExp, timeoutMs = 20_000): Promise<string> {
  const shown = (): string | undefined =>
    timeline(client, roomId)
      // An edited answer shows its new content: whether it replies to the command is in what it was sent as.
      .filter((e) => (e.getOriginalContent()["m.relates_to"] as { "m.in_reply_to"?: { event_id?: string } } | undefined)?.["m.in_reply_to"]?.event_id === commandId)
      .map((e) => shownText(client, roomId, e))
      .find((t) => pattern.test(t));
  await waitForEvent(client, roomId, () => shown() !== undefined, timeoutMs, `an answer to ${commandId} matching ${pattern}`);
  return shown() as string;
}

/** What the bot said on its own (not a reply) matching `pattern`. */
export function announcement(client: MatrixClient, roomId: string, botUserId: string, pattern: RegExp, timeoutMs = 20_000): Promise<MatrixEvent> {
  return waitForEvent(
    client,
    roomId,
    (e) => e.getSender() === botUserId && e.replyEventId === undefined && pattern.test((e.getContent().body as string | undefined) ?? ""),
    timeoutMs,
    `an announcement matching ${pattern}`,
  );
}

/** Whether anything of a process group still lives, within `timeoutMs`. */
export async function groupGone(pgid: number, timeoutMs: number, members: (pgid: number) => number[]): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (members(pgid).length === 0) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

/** A test that fails half-way must not leave its VMs running: every VM process group it started is killed. */
export function killVmsAfter(clanLog: string): void {
  after(async () => {
    for (const i of await readInvocations(clanLog)) {
      if (i.program !== "qemu" || i.pgid === undefined) continue;
      try {
        process.kill(-i.pgid, "SIGKILL");
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
      }
    }
  });
}
