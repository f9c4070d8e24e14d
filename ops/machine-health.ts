import type { MachineHealth } from "../commands/ssh-types.ts";

/**
 * What `!status` reads from a machine, in one fixed command (nothing from a chat message is ever
 * put into it), and how its answer is read. Every line is `<key> <value>`; a missing tool leaves
 * its value empty instead of failing the whole probe.
 */
export const HEALTH_COMMAND = [
  // Few processes on purpose (a status of fifty machines runs this fifty times): shell builtins
  // for /proc, one find for the three links, df and systemctl; the rest is parsed by the bot.
  "read -r up rest < /proc/uptime && printf 'uptime %s\\n' \"$up\"",
  "printf 'version %s\\n' \"$(nixos-version 2>/dev/null)\"",
  "find /run/current-system /run/booted-system /nix/var/nix/profiles/system -maxdepth 0 -printf 'link %p %l\\n' 2>/dev/null",
  // The system the next boot starts: after a deploy that switch inhibitors kept from switching
  // live, it is the new one while /run/current-system (and the booted system) are still the old.
  "printf 'profile %s\\n' \"$(readlink -f /nix/var/nix/profiles/system 2>/dev/null)\"",
  "read -r id < /proc/sys/kernel/random/boot_id && printf 'bootid %s\\n' \"$id\"",
  "df -Pk / 2>/dev/null | { read -r header; read -r fs size used avail rest; printf 'disk %s %s %s\\n' \"$size\" \"$used\" \"$avail\"; }",
  "systemctl --failed --no-legend --plain 2>/dev/null | while read -r unit rest; do printf 'failed %s\\n' \"$unit\"; done",
  "true",
].join("\n");

/** The links `find` reports, by what they mean. */
const LINKS: Record<string, "current" | "booted" | "generation"> = {
  "/run/current-system": "current",
  "/run/booted-system": "booted",
  "/nix/var/nix/profiles/system": "generation",
};

/** The boot id alone: how a reboot is told apart from a machine that merely answers again. */
export const BOOT_ID_COMMAND = "cat /proc/sys/kernel/random/boot_id";

export function parseHealth(stdout: string): MachineHealth {
  const values = new Map<string, string>();
  const failedUnits: string[] = [];
  for (const line of stdout.split("\n")) {
    const space = line.indexOf(" ");
    const key = space < 0 ? line : line.slice(0, space);
    const value = space < 0 ? "" : line.slice(space + 1).trim();
    if (key === "failed") {
      if (value) failedUnits.push(value);
    } else if (key === "link") {
      const [path = "", target = ""] = value.split(" ");
      const name = LINKS[path];
      if (name) values.set(name, target);
    } else if (key) values.set(key, value);
  }
  const text = (k: string): string | undefined => values.get(k) || undefined;
  const uptime = Number.parseFloat(values.get("uptime") ?? "");
  const current = text("current");
  const booted = text("booted");
  const next = text("profile");
  const [size, used, avail] = (values.get("disk") ?? "").split(" ").map((n) => Number.parseInt(n, 10));
  return {
    uptimeSeconds: Number.isFinite(uptime) ? uptime : undefined,
    nixosVersion: text("version"),
    currentSystem: current,
    bootedSystem: booted,
    generation: generationOf(text("generation")),
    bootId: text("bootid"),
    rebootPending: (current !== undefined && booted !== undefined && current !== booted) || (current !== undefined && next !== undefined && next.startsWith("/nix/store/") && next !== current),
    nextBootSystem: next,
    failedUnits,
    rootDisk:
      size !== undefined && used !== undefined && avail !== undefined && [size, used, avail].every(Number.isFinite) && size > 0
        ? { sizeKiB: size, usedKiB: used, availKiB: avail }
        : undefined,
  };
}

/** The generation number of a profile link: `system-42-link` → 42. */
export function generationOf(link: string | undefined): number | undefined {
  const m = link ? /-(\d+)-link$/.exec(link) : null;
  return m ? Number(m[1]) : undefined;
}

/**
 * `nixos-rebuild switch --rollback`, spelled out: the system profile back one generation, then that
 * generation's activation; at the end, the generation and system it is on now.
 */
export const ROLLBACK_COMMAND = rollbackCommand();

/** The rollback, to the previous generation or to generation `n` (a number, checked: nothing else goes in). */
export function rollbackCommand(n?: number): string {
  if (n !== undefined && !(Number.isSafeInteger(n) && n > 0)) throw new Error(`not a generation number: ${String(n)}`);
  return [
    "set -e",
    n === undefined ? "nix-env --profile /nix/var/nix/profiles/system --rollback" : `nix-env --profile /nix/var/nix/profiles/system --switch-generation ${n}`,
    "/nix/var/nix/profiles/system/bin/switch-to-configuration switch",
    "printf 'clanbot-generation %s\\n' \"$(readlink /nix/var/nix/profiles/system)\"",
    "printf 'clanbot-system %s\\n' \"$(readlink /run/current-system)\"",
  ].join("\n");
}

export const REBOOT_COMMAND = "systemctl reboot";

/** A fixed command run as root: as it is for root, through `sudo -n` (no password prompt) otherwise. */
export function asRoot(user: string, command: string): string {
  if (user === "root") return command;
  return `sudo -n sh -c '${command.replace(/'/g, `'"'"'`)}'`;
}
