// Helpers for deploy tests: the flake as a git checkout, the status message as people see it
// (the latest edit), attached files, and what the fake clan was asked to do.
import { execFileSync } from "node:child_process";
import { EventType, type MatrixClient, type MatrixEvent } from "matrix-js-sdk";
import { readInvocations, type FakeClanInvocation } from "../../demo/fake-clan-fixture.ts";
import { timeline, waitForEvent } from "./matrix-wait.ts";

/** Makes `dir` a git checkout with everything committed, as a clan's flake is. */
export function commitFlake(dir: string): string {
  const git = (...args: string[]): string =>
    execFileSync("git", args, {
      cwd: dir,
      encoding: "utf8",
      env: { ...process.env, GIT_AUTHOR_NAME: "t", GIT_AUTHOR_EMAIL: "t@example.org", GIT_COMMITTER_NAME: "t", GIT_COMMITTER_EMAIL: "t@example.org" },
    });
  git("init", "-q");
  git("add", "-A");
  git("commit", "-qm", "clan");
  return git("rev-parse", "--short=12", "HEAD").trim();
}

// The SDK shows an edited event with its latest content: what it was sent as is the original content.
const isStatus = (e: MatrixEvent, commandId: string): boolean => {
  const c = e.getOriginalContent();
  const rel = c["m.relates_to"] as { "m.in_reply_to"?: { event_id?: string } } | undefined;
  return e.getType() === EventType.RoomMessage && rel?.["m.in_reply_to"]?.event_id === commandId && /^\*(Deploy|Dry run|Rollback|Install|Restore|Backup|Vars generation) #\d+\*/.test(c.body as string);
};

/** The text of a bot message as shown now: its latest edit's new content, or itself. */
export function shownText(client: MatrixClient, roomId: string, message: MatrixEvent): string {
  const edits = editsOf(client, roomId, message.getId() as string);
  const last = edits.at(-1);
  return ((last?.getContent()["m.new_content"] as { body?: string } | undefined)?.body ?? message.getOriginalContent().body) as string;
}

export function editsOf(client: MatrixClient, roomId: string, eventId: string): MatrixEvent[] {
  return timeline(client, roomId).filter((e) => {
    const rel = e.getContent()["m.relates_to"] as { rel_type?: string; event_id?: string } | undefined;
    return e.getType() === EventType.RoomMessage && rel?.rel_type === "m.replace" && rel.event_id === eventId;
  });
}

/** The deploy (or backup) status message answering a command, once it is there. */
export function waitForStatusMessage(client: MatrixClient, roomId: string, commandId: string, timeoutMs = 10_000): Promise<MatrixEvent> {
  return waitForEvent(client, roomId, (e) => isStatus(e, commandId), timeoutMs, `the status message of ${commandId}`);
}

/** Waits until the status message of a command, as shown, matches `pattern`; returns that text. */
export async function waitForStatus(client: MatrixClient, roomId: string, commandId: string, pattern: RegExp, timeoutMs = 15_000): Promise<string> {
  const status = await waitForStatusMessage(client, roomId, commandId, timeoutMs);
  const matches = (): boolean => pattern.test(shownText(client, roomId, status));
  if (!matches()) {
    await waitForEvent(
      client,
      roomId,
      (e) => (e.getContent()["m.relates_to"] as { event_id?: string } | undefined)?.event_id === status.getId() && matches(),
      timeoutMs,
      `the status of ${commandId} to match ${pattern}; it shows:\n${shownText(client, roomId, status)}`,
    );
  }
  return shownText(client, roomId, status);
}

/** The bytes of a file the bot posted, fetched the way a client downloads it. */
export async function download(client: MatrixClient, homeserver: string, event: MatrixEvent): Promise<Buffer> {
  const [server, id] = (event.getContent().url as string).slice("mxc://".length).split("/");
  const res = await fetch(`${homeserver}/_matrix/client/v1/media/download/${server}/${id}`, {
    headers: { authorization: `Bearer ${client.getAccessToken()}` },
  });
  if (!res.ok) throw new Error(`download failed: ${res.status}`);
  return Buffer.from(await res.arrayBuffer());
}

/** `clan machines update` runs recorded by the fake, oldest first. */
export async function updateRuns(clanLog: string): Promise<FakeClanInvocation[]> {
  return (await readInvocations(clanLog)).filter((i) => i.program === undefined && i.argv[0] === "machines" && i.argv[1] === "update");
}
