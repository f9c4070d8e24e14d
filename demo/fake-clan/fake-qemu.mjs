// A fake QEMU VM runner: what `result/bin/run-<hostName>-vm` (the NixOS VM runner) and `clan vms run`
// start. Run as: node fake-qemu.mjs <flakeDir> <machine> <hostName>.
//
// It honours QEMU_NET_OPTS as QEMU's user network does (`hostfwd=tcp::HOST-:GUEST`, comma-separated):
// each host port really listens (all interfaces) and answers any request with an HTTP 200 whose body
// is "fake VM <hostName>: guest port <GUEST>". A host port that cannot be bound ends it at once, as
// QEMU ends: "Could not set up host forwarding rule 'tcp::HOST-:GUEST'", exit 1.
// It prints boot lines (SeaBIOS ... "<hostName> login:") on stdout, ends on SIGTERM with QEMU's
// "terminating on signal 15" and exit 0, and crashes on demand (SIGUSR1, or the crashAfterMs knob):
// a guest kernel panic line, then exit 1.
//
// Knobs ("behaviour": { "vm": { ..., "perMachine": { "<m>": { ... } } } } in clan-fixture.json, read at start):
//   bootMs          time before the login prompt and the port forwards answer (default 0)
//   ignoreSigterm   true: SIGTERM does nothing (so a stop has to kill it)
//   crashAfterMs    crash this long after start
//   exitAfterMs     the guest powers off this long after start: exit 0
//   outputLines     extra console lines while booting
//   memoryMiB       allocate and touch this much memory (so its RSS shows)
// With $FAKE_CLAN_LOG set, it appends { program: "qemu", argv, pid, pgid, env: { QEMU_NET_OPTS, NIX_DISK_IMAGE }, ... }.

import { appendFileSync, mkdirSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import path from "node:path";
import { loadFixture } from "./flake.mjs";
import { knobsFor } from "./knobs.mjs";

const [flakeDir, machine, hostName] = process.argv.slice(2);
const QEMU = "qemu-system-x86_64";
const say = (line) => process.stdout.write(`${line}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function record() {
  const file = process.env.FAKE_CLAN_LOG;
  if (!file) return;
  const stat = readFileSync("/proc/self/stat", "utf8");
  const pgid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]);
  const env = {};
  for (const name of ["QEMU_NET_OPTS", "NIX_DISK_IMAGE", "NO_COLOR"]) if (process.env[name] !== undefined) env[name] = process.env[name];
  const entry = { program: "qemu", argv: process.argv.slice(2), machine, hostName, cwd: process.cwd(), pid: process.pid, ppid: process.ppid, pgid, env, time: new Date().toISOString() };
  mkdirSync(path.dirname(file), { recursive: true });
  appendFileSync(file, `${JSON.stringify(entry)}\n`);
}

/** QEMU_NET_OPTS forwards: [{ rule, host, guest }]. */
function forwards(opts) {
  const out = [];
  for (const part of (opts ?? "").split(",").filter(Boolean)) {
    const m = /^hostfwd=tcp:[^:]*:(\d+)-[^:]*:(\d+)$/.exec(part);
    if (!m) {
      process.stderr.write(`${QEMU}: -netdev user,id=user.0,${opts}: Invalid parameter '${part}'\n`);
      process.exit(1);
    }
    out.push({ rule: part.slice("hostfwd=".length), host: Number(m[1]), guest: Number(m[2]) });
  }
  return out;
}

function listen(fwd) {
  return new Promise((resolve) => {
    const server = createServer((socket) => {
      socket.once("data", () => {
        const body = `fake VM ${hostName}: guest port ${fwd.guest}\n`;
        socket.end(`HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      });
      socket.on("error", () => {});
    });
    server.once("error", () => resolve(null));
    server.listen({ port: fwd.host, exclusive: true }, () => resolve(server));
  });
}

function crash(why) {
  say(`[   42.000000] Kernel panic - not syncing: ${why}`);
  process.stderr.write(`${QEMU}: guest crashed\n`);
  process.exit(1);
}

record();
const k = knobsFor(loadFixture(flakeDir) ?? {}, "vm", machine);
const fwds = forwards(process.env.QEMU_NET_OPTS);
// QEMU sets up its network before the guest runs: a taken port fails at once.
const servers = [];
for (const f of fwds) {
  const s = await listen(f);
  if (!s) {
    process.stderr.write(`${QEMU}: -netdev user,id=user.0,${process.env.QEMU_NET_OPTS}: Could not set up host forwarding rule '${f.rule}'\n`);
    process.exit(1);
  }
  servers.push(s);
}
process.on("SIGTERM", () => {
  if (k.ignoreSigterm) return;
  process.stderr.write(`${QEMU}: terminating on signal 15 from pid ${process.ppid}\n`);
  process.exit(0);
});
process.on("SIGUSR1", () => crash("fake crash on demand (SIGUSR1)"));
if (k.crashAfterMs !== undefined) setTimeout(() => crash("fake crash (crashAfterMs)"), k.crashAfterMs);
if (k.exitAfterMs !== undefined) {
  setTimeout(() => {
    say("reboot: Power down");
    process.exit(0);
  }, k.exitAfterMs);
}
const hold = k.memoryMiB ? Buffer.alloc(k.memoryMiB * 1024 * 1024, 1) : null;
setInterval(() => hold?.[0], 1 << 30);

say("SeaBIOS (version rel-1.16.3-0-ga6ed6b701f0a-prebuilt.qemu.org)");
say("Booting from ROM...");
const lines = k.outputLines ?? 0;
const boot = k.bootMs ?? 0;
for (let i = 1; i <= lines; i++) {
  await sleep(boot / (lines + 1));
  say(`[    ${i}.000000] fake boot message ${i}/${lines}`);
}
await sleep(lines ? boot / (lines + 1) : boot);
say(`<<< Welcome to NixOS (x86_64) - ttyS0 >>>`);
say("");
say(`${hostName} login:`);
