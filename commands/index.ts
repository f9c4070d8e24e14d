import { cancelCommand } from "./cancel.ts";
import { deployCommand } from "./deploy.ts";
import { deploysCommand } from "./deploys.ts";
import { makeHelpCommand } from "./help.ts";
import { historyCommand } from "./history.ts";
import { lockCommand, locksCommand, unlockCommand } from "./locks.ts";
import { machinesCommand } from "./machines.ts";
import { refreshCommand } from "./refresh.ts";
import type { CommandSpec } from "./types.ts";
import { whoamiCommand } from "./whoami.ts";

/** The one command table: dispatch, help and permission checks all read it. */
export const commandTable: readonly CommandSpec[] = [
  makeHelpCommand(() => commandTable),
  machinesCommand,
  deployCommand,
  deploysCommand,
  cancelCommand,
  lockCommand,
  unlockCommand,
  locksCommand,
  historyCommand,
  refreshCommand,
  whoamiCommand,
];
