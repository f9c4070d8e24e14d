import { UsageError, USAGE } from "./cli-args.ts";
import { ConfigError } from "./config.ts";
import { start } from "./start.ts";

/**
 * Runs the bot and ends the process with its exit status. A fatal error at start ends it at once
 * (whatever is still listening), with one line that says what to fix and no stack trace: 2 for a
 * bad config or command line, 1 for anything else.
 */
export async function runMain(argv: readonly string[]): Promise<void> {
  let code: number;
  // Held until the bot stops: a command may wait only on an unreferenced child (a VM's detached build),
  // and an empty event loop would end the process in the middle of it.
  const alive = setInterval(() => undefined, 3_600_000);
  try {
    code = await start(argv, process.env);
  } catch (err) {
    if (err instanceof ConfigError || err instanceof UsageError) {
      process.stderr.write(`clanbot: ${err.message}\n`);
      if (err instanceof UsageError) process.stderr.write(`${USAGE}\n`);
      code = 2;
    } else {
      process.stderr.write(`clanbot: ${err instanceof Error ? err.message : String(err)}\n`);
      code = 1;
    }
  }
  clearInterval(alive);
  // Not exitCode: matrix-js-sdk leaves request timers behind, and a listening join page would keep a failed start alive.
  process.exit(code);
}
