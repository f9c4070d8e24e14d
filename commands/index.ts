import { makeHelpCommand } from "./help.ts";
import { historyCommand } from "./history.ts";
import { machinesCommand } from "./machines.ts";
import { refreshCommand } from "./refresh.ts";
import type { CommandSpec } from "./types.ts";
import { whoamiCommand } from "./whoami.ts";

/** The one command table: dispatch, help and permission checks all read it. */
export const commandTable: readonly CommandSpec[] = [
  makeHelpCommand(() => commandTable),
  machinesCommand,
  historyCommand,
  refreshCommand,
  whoamiCommand,
];
