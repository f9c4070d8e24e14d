// For tests of things that never back up or schedule anything: every use fails loudly.

import type { Backups, Schedules } from "../../commands/backup-types.ts";

const unused = (): never => {
  throw new Error("this test does not expect backups or schedules to be used");
};

export const noBackups: Backups = { start: unused, active: () => [], cancel: unused, archives: unused, summary: unused };

export const noSchedules: Schedules = { defaultTimeZone: "UTC", check: unused, add: unused, list: unused, remove: unused };
