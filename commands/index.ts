import { backupCommand, backupsCommand } from "./backup.ts";
import { cancelCommand } from "./cancel.ts";
import { deployCommand } from "./deploy.ts";
import { deploysCommand } from "./deploys.ts";
import { makeHelpCommand } from "./help.ts";
import { generationsCommand } from "./generations.ts";
import { historyCommand } from "./history.ts";
import { installCommand } from "./install.ts";
import { inviteCommand, invitesCommand, revokeCommand } from "./invite.ts";
import { lockCommand, locksCommand, unlockCommand } from "./locks.ts";
import { machinesCommand } from "./machines.ts";
import { rebootCommand } from "./reboot.ts";
import { refreshCommand } from "./refresh.ts";
import { restoreCommand } from "./restore.ts";
import { rollbackCommand } from "./rollback.ts";
import { scheduleCommand, schedulesCommand, unscheduleCommand } from "./schedule.ts";
import { secretCommand } from "./secret.ts";
import { sshkeyCommand } from "./sshkey.ts";
import { statusCommand } from "./status.ts";
import { trustCommand } from "./trust.ts";
import type { CommandSpec } from "./types.ts";
import { varsCommand } from "./vars.ts";
import { vmCommand } from "./vm.ts";
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
  statusCommand,
  rebootCommand,
  rollbackCommand,
  generationsCommand,
  installCommand,
  backupCommand,
  backupsCommand,
  restoreCommand,
  varsCommand,
  secretCommand,
  scheduleCommand,
  schedulesCommand,
  unscheduleCommand,
  sshkeyCommand,
  trustCommand,
  inviteCommand,
  invitesCommand,
  revokeCommand,
  vmCommand,
  historyCommand,
  refreshCommand,
  whoamiCommand,
];
