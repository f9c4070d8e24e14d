// The demo clan `npm start` opens when it finds no config and no clan flake: a small inventory
// driven by the same simulated `clan` the tests use (demo/fake-clan), with deploys that take a few
// seconds and show their phases, backups, VMs (a simulated QEMU) and join codes.

import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fakeClanPath, fakeNixPath, writeFixture, type FakeClanFixture } from "./fake-clan-fixture.ts";

export const DEMO_FIXTURE: FakeClanFixture = {
  meta: { name: "demo" },
  machines: {
    laptop: { description: "Dad's laptop", tags: ["family"], deploy: { targetHost: "root@laptop.lan" } },
    nas: { description: "Storage in the basement", tags: ["servers", "storage"], deploy: { targetHost: "root@nas.lan:2222" } },
    media: { description: "Living-room media player", tags: ["servers"], deploy: { targetHost: "root@media.lan" } },
    garden: { description: "Weather station, not set up yet (no target host)", tags: ["sensors"] },
  },
  backups: { nas: ["borg::nas::2026-11-30T01:00:00"], laptop: ["borg::laptop::2026-11-30T01:00:00"] },
  behaviour: {
    "machines update": { delayMs: 3_000, outputLines: 6 },
    "backups create": { delayMs: 2_000, outputLines: 3 },
    "nix build": { delayMs: 1_500 },
    vm: { bootMs: 1_000 },
  },
};

export interface DemoClan {
  /** The demo's flake (a temporary directory). */
  readonly flake: string;
  /** Where the demo keeps its state: a temporary directory, so that trying it leaves nothing behind. */
  readonly stateDir: string;
  /** The simulated `clan` and `nix` to run instead of the real ones. */
  readonly clanCommand: string;
  readonly nixCommand: string;
  /** Removes the demo's flake and state. */
  remove(): Promise<void>;
}

/** Makes a fresh demo clan in a temporary directory. */
export async function makeDemoClan(): Promise<DemoClan> {
  const root = await mkdtemp(join(tmpdir(), "clanbot-demo-"));
  const flake = join(root, "demo");
  const stateDir = join(root, "state");
  await mkdir(flake, { recursive: true });
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  await writeFixture(flake, DEMO_FIXTURE);
  return {
    flake,
    stateDir,
    clanCommand: fakeClanPath,
    nixCommand: fakeNixPath,
    remove: () => rm(root, { recursive: true, force: true }),
  };
}
