// Run before the tests (`npm test`'s pretest): says what the machine lacks, instead of test files
// failing at load. `.ci/run` installs all of it on Debian.

import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";

const onPath = (name: string): boolean =>
  (process.env["PATH"] ?? "").split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, name), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
const executable = (path: string): boolean => {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

const needs: Array<[ok: boolean, what: string, pkg: string]> = [
  [executable("/usr/sbin/sshd") && onPath("ssh-keygen"), "sshd and ssh-keygen (a real sshd on 127.0.0.1 stands in for each clan machine)", "openssh-server"],
  [executable("/usr/bin/chromium"), "/usr/bin/chromium (opens the join page as a phone would, headless)", "chromium"],
  [onPath("git"), "git (the fixture flakes are git repositories)", "git"],
  [onPath("pkill"), "pkill (cuts a rebooting machine's sessions)", "procps"],
];
const missing = needs.filter(([ok]) => !ok);
if (missing.length) {
  process.stderr.write(
    `The tests need:\n${missing.map(([, what]) => `  - ${what}`).join("\n")}\n` +
      `On Debian: apt-get install --no-install-recommends ${missing.map(([, , pkg]) => pkg).join(" ")}  (or run .ci/run as root)\n`,
  );
  process.exit(1);
}
