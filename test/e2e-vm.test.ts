// !vm end to end with the NixOS VM runner (the fake clan plays 26.05, without `clan vms`): the fake
// `nix build ...config.system.build.vm` makes a runner whose fake QEMU really listens on the
// forwarded ports. Start, list, refusals, stop (graceful and forced), crash notice, logs, and a
// bot restart while a VM keeps running.

import assert from "node:assert/strict";
import { createServer } from "node:net";
import { test } from "node:test";
import { EventType } from "matrix-js-sdk";
import { world, type World } from "./support/e2e.ts";
import { fakeNixPath, processesInGroup, writeFixture, type FakeClanFixture } from "../demo/fake-clan-fixture.ts";
import { say, timeline, waitForEvent, waitForOutcome, waitForReply } from "./support/matrix-wait.ts";
import { announcement, answerMatching, freePort, groupGone, killVmsAfter, qemuRuns } from "./support/vm-helpers.ts";

const FIXTURE: FakeClanFixture = {
  machines: {
    media: { tags: ["servers"], hostName: "mediabox" },
    nas: { tags: ["servers"] },
    laptop: { tags: ["family"] },
    mac: { machineClass: "darwin" },
  },
  behaviour: { "nix build": { delayMs: 300 }, vm: { memoryMiB: 48, perMachine: { laptop: { ignoreSigterm: true } } } },
};

const w: World = await world({
  fixture: FIXTURE,
  config: (base) => ({
    ...base,
    nix: { command: fakeNixPath },
    vm: { max: 2, publicHost: "vm.test", stopTimeout: "2s", startGrace: "1s" },
  }),
});
killVmsAfter(w.clanLog);
const [p1, p2, p3] = [await freePort(), await freePort(), await freePort()];
const run = async (line: string, pattern: RegExp, outcome = "✅", client = w.alice): Promise<string> => {
  const id = await say(client, w.roomId, line);
  const text = await answerMatching(client, w.roomId, id, pattern);
  assert.equal(await waitForOutcome(client, w.roomId, id), outcome, `${line}: ${text}`);
  return text;
};
const httpGet = async (port: number): Promise<string> => (await fetch(`http://127.0.0.1:${port}/`)).text();

test("!help vm shows each subcommand and says the NixOS VM runner is used, and why", async () => {
  const help = await run("!help vm", /!vm <run\|list\|stop\|logs>/);
  assert.match(help, /`!vm run <machine> \[--port <host:guest>\]\.\.\.` Starts the machine's VM.*operator/);
  assert.match(help, /`!vm list` .*viewer/);
  assert.match(help, /`!vm stop <machine>` .*operator/);
  assert.match(help, /`!vm logs <machine>` .*viewer/);
  assert.match(help, /nix build <flake>#nixosConfigurations\.<machine>\.config\.system\.build\.vm.*: this host's clan has no `clan vms` \(removed in 26\.05\)\. At most 2 VMs at once/);
});

test("!vm run builds and starts the VM; its forwarded port answers; !vm list shows who, since when, ports and memory", async () => {
  const text = await run(`!vm run media --port ${p1}:80 --port ${p2}:22`, /is running/);
  assert.match(text, new RegExp(`🖥️ \\*media\\*'s VM is running \\(#\\d+, NixOS VM runner, process \\d+\\)`));
  assert.match(text, new RegExp(`\`http://vm\\.test:${p1} → 80\`, \`ssh -p ${p2} root@vm\\.test → 22\``));
  assert.equal(await httpGet(p1), "fake VM mediabox: guest port 80\n");
  const [qemu] = await qemuRuns(w.clanLog, "media");
  assert.ok(qemu);
  assert.equal(qemu.env.QEMU_NET_OPTS, `hostfwd=tcp::${p1}-:80,hostfwd=tcp::${p2}-:22`);
  assert.match(qemu.env.NIX_DISK_IMAGE ?? "", /vms\/family\/media\/disk\.qcow2$/);
  assert.equal(qemu.pgid, qemu.pid, "the VM runs in its own process group");

  const list = await run("!vm list", /VM running/);
  assert.match(list, new RegExp(`\`media\`\\s+@alice:\\S+\\s+\\d+ s ago\\s+\`http://vm\\.test:${p1} → 80\`, \`ssh -p ${p2} root@vm\\.test → 22\`\\s+\\d+ MB\\s+#\\d+ running`));
  const mb = Number(/(\d+) MB/.exec(list)?.[1]);
  assert.ok(mb >= 48, `memory ${mb} MB should include the 48 MiB the fake VM holds`);
});

test("refused before anything starts: a second VM of a machine, a taken port, bad ports, unknown or darwin machines, the limit, viewers", async () => {
  assert.match(await run("!vm run media", /already has a VM/, "⛔"), /media already has a VM \(#\d+ by @alice:\S+, since \d+ s ago\): one per machine/);
  assert.match(await run(`!vm run nas --port ${p1}:8080`, /Host port/, "⛔"), new RegExp(`Host port ${p1} is already used by media's VM\\. Choose another host port`));
  assert.match(await run("!vm run nas --port 80:80", /host port/, "❓"), /must be between 1024 and 65535 \(lower ones need root/);
  assert.match(await run("!vm run nas --port web", /HOST:GUEST/, "❓"), /`--port` takes HOST:GUEST, two port numbers such as 8080:80, not 'web'/);
  assert.match(await run(`!vm run nas --port ${p3}:80 --port ${p3}:81`, /twice/, "❓"), new RegExp(`Host port ${p3} is given twice`));
  assert.match(await run("!vm run medai", /unknown machine/, "❓"), /unknown machine 'medai'; known: .* Did you mean 'media'\?/);
  assert.match(await run("!vm run mac", /darwin/, "❌"), /mac is a darwin machine: only NixOS machines have a VM/);
  assert.match(await run("!vm stpo nas", /no subcommand/, "❓"), /!vm has no subcommand 'stpo'; it has run, list, stop, logs\. Did you mean `!vm stop`\?/);

  // Something else on the host holds a port.
  const squatter = createServer();
  await new Promise<void>((r) => squatter.listen(p3, r));
  try {
    assert.match(await run(`!vm run nas --port ${p3}:80`, /Host port/, "⛔"), new RegExp(`Host port ${p3} is already used by another program on the bot's host`));
  } finally {
    await new Promise((r) => squatter.close(r));
  }

  const bob = await w.person("bob");
  assert.match(await run("!vm run nas", /needs the operator level/, "⛔", bob), /`!vm run` needs the operator level \(power level 50/);
  assert.match(await run("!vm list", /VM running/, "✅", bob), /`media`/);

  await run("!vm run nas", /nas\*'s VM is running/);
  assert.match(
    await run("!vm run laptop", /limit/, "⛔"),
    /The bot's host already runs 2 VMs, its limit \(vm\.max\)\. In this clan: media \(by @alice:\S+\), nas \(by @alice:\S+\)\. Stop one first\. Nothing was started\./,
  );
  assert.equal((await qemuRuns(w.clanLog, "laptop")).length, 0, "a refused VM was started");
});

test("!vm stop ends a VM with SIGTERM; one that ignores it is killed after vm.stopTimeout", async () => {
  const [nas] = await qemuRuns(w.clanLog, "nas");
  const stopped = await run("!vm stop nas", /stopped after/);
  assert.match(stopped, /⏹️ \*nas\*'s VM stopped after \d+ s \(exit status 0; stopped by @alice:\S+\)\./);
  assert.match(stopped, /terminating on signal 15/);
  assert.deepEqual(processesInGroup(nas?.pgid as number), []);

  await run("!vm run laptop", /laptop\*'s VM is running/);
  const [laptop] = await qemuRuns(w.clanLog, "laptop");
  const started = Date.now();
  const killed = await run("!vm stop laptop", /was killed/);
  assert.ok(Date.now() - started >= 1900, "killed before the stop timeout");
  assert.match(killed, /💀 \*laptop\*'s VM did not end within 2 s of SIGTERM and was killed \(after \d+ s; by @alice:\S+\)\./);
  assert.deepEqual(processesInGroup(laptop?.pgid as number), []);
  assert.match(await run("!vm stop laptop", /no VM running/, "❌"), /laptop has no VM running\. !vm list shows the running ones\./);
});

test("a VM that crashes is told to the room with its exit status and last lines; !vm logs shows them and attaches the log", async () => {
  const [media] = await qemuRuns(w.clanLog, "media");
  process.kill(media?.pid as number, "SIGUSR1");
  const notice = await announcement(w.alice, w.roomId, w.botUserId, /crashed/);
  const body = notice.getContent().body as string;
  assert.match(body, /💥 \*media\*'s VM crashed after \d+ s: exit status 1 \(#\d+, started by @alice:\S+ \d+ s ago\)\./);
  assert.match(body, /Last lines of its log:\n```[\s\S]*mediabox login:[\s\S]*Kernel panic - not syncing: fake crash on demand/);
  assert.equal(notice.getContent().msgtype, "m.notice");
  await assert.rejects(fetch(`http://127.0.0.1:${p1}/`), "the crashed VM's port still answers");

  const id = await say(w.alice, w.roomId, "!vm logs media");
  const logs = await answerMatching(w.alice, w.roomId, id, /Last \d+ lines/);
  assert.match(logs, /Last \d+ lines of \*media\*'s VM \(#\d+\); the whole log is attached:[\s\S]*Kernel panic/);
  const file = await waitForEvent(w.alice, w.roomId, (e) => e.replyEventId === id && e.getContent().msgtype === "m.file", 10_000, "the log file");
  assert.match(file.getContent().body as string, /^vm-\d+-media\.log$/);
  assert.equal(await waitForOutcome(w.alice, w.roomId, id), "✅");
  assert.match(await run("!vm list", /No VM is running/), /No VM is running in this clan\. Start one with `!vm run <machine>`\./);
});

test("VMs outlive a bot restart: found again and watched; one that ended while the bot was away is told", async () => {
  await run(`!vm run media --port ${p1}:80`, /is running/);
  const media = (await qemuRuns(w.clanLog, "media")).at(-1);
  await w.bot.stop("SIGTERM");
  assert.equal(await httpGet(p1), "fake VM mediabox: guest port 80\n", "the VM did not outlive a clean stop of the bot");

  w.bot = await w.startBot();
  await w.bot.waitForLog(/watching a VM started before this restart/, 20_000);
  const list = await run("!vm list", /VM running/);
  assert.match(list, new RegExp(`\`media\`\\s+@alice:\\S+\\s+\\d+ s ago\\s+\`http://vm\\.test:${p1} → 80\`\\s+\\d+ MB\\s+#\\d+ running \\(found again after a restart\\)`));
  assert.match(await run(`!vm run nas --port ${p1}:80`, /Host port/, "⛔"), new RegExp(`Host port ${p1} is already used by media's VM`));

  // Killed by something else while the bot watches: ended, and how cannot be known.
  process.kill(media?.pid as number, "SIGUSR1");
  const ended = await announcement(w.alice, w.roomId, w.botUserId, /ended after/);
  assert.match(ended.getContent().body as string, /⏹️ \*media\*'s VM ended after \d+ s \(#\d+, started by @alice:\S+ \d+ s ago\); its exit status cannot be known: the bot was restarted since it started it\.[\s\S]*Kernel panic/);

  // Ends while the bot is down (killed outright): told once the bot is back.
  await run("!vm run nas", /nas\*'s VM is running/);
  const nas = (await qemuRuns(w.clanLog, "nas")).at(-1);
  assert.equal(await w.bot.stop("SIGKILL"), "SIGKILL");
  process.kill(-(nas?.pgid as number), "SIGKILL");
  assert.ok(await groupGone(nas?.pgid as number, 5000, processesInGroup));
  w.bot = await w.startBot();
  const lost = await announcement(w.alice, w.roomId, w.botUserId, /while the bot was away/, 30_000);
  assert.match(lost.getContent().body as string, /⚠️ \*nas\*'s VM \(#\d+, started by @alice:\S+ \d+ s ago\) ended while the bot was away; its exit status cannot be known\./);
  assert.match(await run("!vm list", /No VM is running/), /No VM is running/);
  const told = timeline(w.alice, w.roomId).filter((e) => e.getType() === EventType.RoomMessage && /while the bot was away/.test((e.getContent().body as string | undefined) ?? ""));
  assert.equal(told.length, 1);
});
