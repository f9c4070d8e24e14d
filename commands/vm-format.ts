import { ago, bold, code, codeBlock, concat, formatDuration, lines, paragraphs, table, type Message, type Piece } from "./format.ts";
import type { VmBackendInfo, VmBackendKind, VmEnd, VmExit, VmPort, VmRefusal, VmState } from "./vm-types.ts";

const BACKEND_NAME: Record<VmBackendKind, string> = { clan: "clan vms run", nix: "NixOS VM runner" };

/** What `!help vm` says about this host: which backend runs the VMs, and why. */
export function describeBackend(b: VmBackendInfo, max: number, publicHost: string): string {
  const how =
    b.kind === "clan"
      ? "VMs run with `clan vms run <machine> -p HOST:GUEST`"
      : "VMs are built with `nix build <flake>#nixosConfigurations.<machine>.config.system.build.vm` and run with its `bin/run-<hostName>-vm` (QEMU; ports forwarded through QEMU_NET_OPTS)";
  const secrets =
    b.kind === "nix"
      ? " What such a VM has: the machine's configuration and packages, and its public clan vars (they are in the Nix store). " +
        "What it has not: its secret clan vars (sops-nix decrypts them with the machine's own age key, which is not in the VM; " +
        "clan's VM vars backend was removed in 26.05), so services needing a password, key or token fail to start there; nor the " +
        "machine's SSH host key, nor its data: it starts from an empty disk."
      : "";
  return `On this bot's host, ${how}: ${b.why}. At most ${max} VMs at once; forwarded ports are reached at ${publicHost}.${secrets}`;
}

/** `http://host:8080 → 80`, or how to log in for SSH. */
export function portLink(p: VmPort, host: string): string {
  return p.guest === 22 ? `ssh -p ${p.host} root@${host} → 22` : `http://${host}:${p.host} → ${p.guest}`;
}

function portList(ports: readonly VmPort[], host: string): Piece {
  return ports.length ? concat(...ports.flatMap((p, i) => [i ? ", " : "", code(portLink(p, host))])) : "no ports forwarded";
}

/** "1.2 GB", "340 MB": memory at a glance. */
export function formatBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)} GB`;
  if (n >= 1e6) return `${Math.round(n / 1e6)} MB`;
  return `${Math.round(n / 1e3)} kB`;
}

export function formatBuilding(machine: string, id: number): Message {
  return concat("🔨 Building ", bold(machine), `'s VM (#${id}) with nix; it starts when the build is done.`);
}

export function formatRunning(vm: VmState, host: string, prefix: string): Message {
  return paragraphs(
    concat("🖥️ ", bold(vm.machine), `'s VM is running (#${vm.id}, ${BACKEND_NAME[vm.backend]}, process ${vm.pid ?? "?"}).`),
    concat("Ports: ", portList(vm.ports, host), "."),
    concat("Stop it with ", code(`${prefix}vm stop ${vm.machine}`), "; ", code(`${prefix}vm logs ${vm.machine}`), " shows its output."),
  );
}

export function formatRefusal(r: VmRefusal, machine: string, prefix: string, now: number): string {
  switch (r.kind) {
    case "machine-running":
      return `${machine} already has a VM (#${r.vm.id} by ${r.vm.sender}, since ${ago(r.vm.startedAt, now)}): one per machine. Stop it first with ${prefix}vm stop ${machine}. Nothing was started.`;
    case "limit": {
      const mine = r.running.length ? ` In this clan: ${r.running.map((v) => `${v.machine} (by ${v.sender})`).join(", ")}.` : "";
      return `The bot's host already runs ${r.max} VM${r.max === 1 ? "" : "s"}, its limit (vm.max).${mine} Stop one first. Nothing was started.`;
    }
    case "port-taken": {
      const who = r.holder === "vm" ? `${r.machine ?? "another"}'s VM` : r.holder === "other-clan" ? "a VM of another clan" : "another program on the bot's host";
      return `Host port ${r.port} is already used by ${who}. Choose another host port (--port OTHER:GUEST). Nothing was started.`;
    }
  }
}

function exitText(exit: VmExit): string {
  if (exit.kind === "code") return `exit status ${exit.code}`;
  if (exit.kind === "signal") return `killed by ${exit.signal}`;
  return "exit status unknown";
}

/** How a VM ended: for `!vm stop`, a failed `!vm run`, and what the room is told on its own. */
export function formatEnd(end: VmEnd, stopTimeoutMs: number, now: number): Message {
  const name = bold(end.machine);
  const ran = formatDuration(Math.max(0, end.endedAt - end.startedAt));
  const who = `#${end.id}, started by ${end.sender} ${ago(end.startedAt, now)}`;
  const head = ((): Message => {
    switch (end.result) {
      case "stopped":
        return concat("⏹️ ", name, `'s VM stopped after ${ran} (${exitText(end.exit)}; stopped by ${end.stoppedBy ?? "?"}).`);
      case "killed":
        return concat("💀 ", name, `'s VM did not end within ${formatDuration(stopTimeoutMs)} of SIGTERM and was killed (after ${ran}; by ${end.stoppedBy ?? "?"}).`);
      case "exited":
        return concat("⏹️ ", name, `'s VM exited by itself after ${ran} (${exitText(end.exit)}; ${who}).`);
      case "crashed":
        return concat("💥 ", name, `'s VM crashed after ${ran}: ${exitText(end.exit)} (${who}).`);
      case "ended":
        return concat("⏹️ ", name, `'s VM ended after ${ran} (${who}); its exit status cannot be known: the bot was restarted since it started it.`);
      case "failed":
        return concat("❌ ", name, `'s VM did not start: ${end.reason ?? exitText(end.exit)}.`);
      case "lost":
        return concat("⚠️ ", name, `'s VM (${who}) ended while the bot was away; its exit status cannot be known.`);
      case "interrupted":
        return concat("⚠️ ", name, `'s VM (${who}) was being built when the bot stopped; it was not started.`);
    }
  })();
  return end.tail.length ? paragraphs(head, lines("Last lines of its log:", codeBlock(end.tail.join("\n")))) : head;
}

/** Ends the room is told about on its own: not the ones a command answers (`!vm stop`, a failed `!vm run`). */
export function isAnnounced(end: VmEnd): boolean {
  return end.stoppedBy === undefined && end.result !== "failed";
}

export function formatVmList(vms: readonly VmState[], host: string, now: number, prefix: string): Message {
  if (!vms.length) return concat("No VM is running in this clan. Start one with ", code(`${prefix}vm run <machine>`), ".");
  return paragraphs(
    bold(`${vms.length} VM${vms.length === 1 ? "" : "s"} running`),
    table(
      ["Machine", "Started by", "Since", "Ports", "Memory", "State"],
      vms.map((v) => [
        code(v.machine),
        v.sender,
        ago(v.startedAt, now),
        portList(v.ports, host),
        v.memoryBytes !== undefined ? formatBytes(v.memoryBytes) : "–",
        `#${v.id} ${v.phase}${v.adopted ? " (found again after a restart)" : ""}`,
      ]),
    ),
  );
}

export function formatLogTail(machine: string, id: number, tail: readonly string[]): Message {
  if (!tail.length) return concat("The log of ", bold(machine), `'s VM (#${id}) is empty so far.`);
  return paragraphs(concat("Last ", String(tail.length), " lines of ", bold(machine), `'s VM (#${id}); the whole log is attached:`), codeBlock(tail.join("\n")));
}
