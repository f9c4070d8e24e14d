import { UserError } from "./errors.ts";
import type { CommandContext } from "./types.ts";

/**
 * An SSH failure (ops' SshError: unreachable, timeout, changed host key, key refused) as an answer
 * for the room, with what to do next; anything else is rethrown as it is.
 */
export function explainSshFailure(err: unknown, ctx: CommandContext, machine: string): never {
  if (err instanceof Error && err.name === "SshError") {
    const kind = (err as Error & { kind?: string }).kind;
    const hint =
      kind === "host-key-changed"
        ? ` I did not log in. If the machine was reinstalled, an admin accepts the new key with ${ctx.prefix}trust ${machine}.`
        : kind === "auth"
          ? ` ${ctx.prefix}sshkey shows my key and how to add it.`
          : "";
    throw new UserError(`${machine}: ${err.message}.${hint}`);
  }
  throw err;
}
