// !vm end to end where the host's clan still has `clan vms run` (the fake plays release 25.11):
// detected at start, said in !help vm, run with -p forwards; a VM whose QEMU ignores SIGTERM is
// killed although clan itself ended at once; a build that fails is answered with the log.

import assert from "node:assert/strict";
import { test } from "node:test";
import { world, type World } from "./support/e2e.ts";
import { processesInGroup, readInvocations, type FakeClanFixture } from "../demo/fake-clan-fixture.ts";
import { say, waitForEvent, waitForOutcome } from "./support/matrix-wait.ts";
import { answerMatching, freePort, killVmsAfter, qemuRuns } from "./support/vm-helpers.ts";

const FIXTURE: FakeClanFixture = {
  machines: { media: { hostName: "mediabox" }, nas: {} },
  behaviour: {
    "vms run": { delayMs: 200, perMachine: { nas: { fail: true } } },
    vm: { ignoreSigterm: true },
  },
};

const w: World = await world({
  fixture: FIXTURE,
  env: { FAKE_CLAN_RELEASE: "25.11" },
  config: (base) => ({ ...base, vm: { stopTimeout: "2s", startGrace: "1s", publicHost: "vm.test" } }),
});
killVmsAfter(w.clanLog);
const port = await freePort();
const run = async (line: string, pattern: RegExp, outcome = "✅"): Promise<{ id: string; text: string }> => {
  const id = await say(w.alice, w.roomId, line);
  const text = await answerMatching(w.alice, w.roomId, id, pattern);
  assert.equal(await waitForOutcome(w.alice, w.roomId, id), outcome, `${line}: ${text}`);
  return { id, text };
};

test("with clan 25.11, VMs run with `clan vms run -p`; a QEMU that ignores SIGTERM is killed after the stop timeout", async () => {
  assert.match((await run("!help vm", /vm run/)).text, /VMs run with `clan vms run <machine> -p HOST:GUEST`: this host's clan has `clan vms` \(releases up to 25\.11\)/);

  const { text } = await run(`!vm run media --port ${port}:80`, /is running/);
  assert.match(text, new RegExp(`🖥️ \\*media\\*'s VM is running \\(#\\d+, clan vms run, process \\d+\\)\\.[\\s\\S]*\`http://vm\\.test:${port} → 80\``));
  assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), "fake VM mediabox: guest port 80\n");
  const clanRun = (await readInvocations(w.clanLog)).find((i) => i.program === undefined && i.argv[0] === "vms" && i.argv[1] === "run");
  assert.deepEqual(clanRun?.argv, ["vms", "run", "media", "-p", `${port}:80`, "--flake", w.flake]);
  assert.equal(clanRun?.pgid, clanRun?.pid, "clan vms run leads its own process group");
  const [qemu] = await qemuRuns(w.clanLog, "media");
  assert.equal(qemu?.pgid, clanRun?.pid, "QEMU runs in clan's process group");

  const stopped = await run("!vm stop media", /was killed/);
  assert.match(stopped.text, /💀 \*media\*'s VM did not end within 2 s of SIGTERM and was killed/);
  assert.deepEqual(processesInGroup(clanRun?.pgid as number), []);
  await assert.rejects(fetch(`http://127.0.0.1:${port}/`));
});

test("a VM whose build fails is answered with clan's error and the log, and holds nothing", async () => {
  const { id, text } = await run("!vm run nas", /did not start/, "❌");
  assert.match(text, /❌ \*nas\*'s VM did not start: exit status 1\.[\s\S]*nix build failed for the VM of 'nas'/);
  const file = await waitForEvent(w.alice, w.roomId, (e) => e.replyEventId === id && e.getContent().msgtype === "m.file", 10_000, "the log file");
  assert.match(file.getContent().body as string, /^vm-\d+-nas\.log$/);
  assert.match((await run("!vm list", /No VM is running/)).text, /No VM is running/);
});
