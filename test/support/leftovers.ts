// Processes a test file started are stopped when it ends, however it ends: also when its set-up
// failed at load (a browser or sshd missing) before any `after` hook was registered.

import type { ChildProcess } from "node:child_process";

/** Each live child, and whether it leads a process group of its own (detached) to kill whole. */
const live = new Map<ChildProcess, boolean>();
let hooked = false;

/** Kills `child` (its process group when detached) when this test process exits, unless it ended before. */
export function stopAtExit(child: ChildProcess, group = false): void {
  live.set(child, group);
  child.once("exit", () => live.delete(child));
  if (hooked) return;
  hooked = true;
  process.once("exit", () => {
    for (const [c, group] of live) {
      try {
        if (group && c.pid !== undefined) process.kill(-c.pid, "SIGKILL");
        else c.kill("SIGKILL");
      } catch {
        // It ended meanwhile: nothing left to stop.
      }
    }
  });
}
