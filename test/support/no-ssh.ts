// For tests of things that never reach a machine over SSH: every use fails loudly.

import type { SshMachines } from "../../commands/ssh-types.ts";

const unused = (): never => {
  throw new Error("this test does not expect SSH to be used");
};

export const noSsh: SshMachines = {
  publicKey: "ssh-ed25519 AAAA-not-a-real-key clanbot@test",
  keyFingerprint: "SHA256:not-a-real-key",
  trustAdvice: undefined,
  status: unused,
  reboot: unused,
  trust: unused,
  firstAnswering: unused,
  installerLogin: unused,
  forgetHostKey: unused,
  readInstallerCode: unused,
  parseTarget: unused,
  // Deploys ask which machines have no target host; these tests' machines all have one.
};
