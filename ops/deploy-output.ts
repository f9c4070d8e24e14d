import type { MachinePhase } from "../commands/deploy-types.ts";

/** The live phases a deploy moves through, in order; output only ever moves it forward. */
const ORDER: readonly MachinePhase[] = ["building", "copying", "activating"];

// clan announces the commands it runs ("[m] $ nix ... copy --to ssh-ng://..."), and nix and
// switch-to-configuration say what they do. Uploading the flake's *source* is also a `nix copy`,
// but it happens before the build, so only a copy of the built system counts as copying.
const COPYING = [/\$ nix\b.* copy --to \S+ .*-nixos-system-/, /copying path '[^']*-nixos-system-[^']*' to '/, /copying \d+ paths?\b/];
const ACTIVATING = [/nix-env -p \/nix\/var\/nix\/profiles\/system --set /, /switch-to-configuration (boot|switch|test)\b/, /^activating the configuration/];

const HINT = /cop|switch-to-configuration|nix-env|activating/;

/** The phase after `line`, given the phase before it. */
export function phaseAfter(current: MachinePhase, line: string): MachinePhase {
  const at = ORDER.indexOf(current);
  // Most lines are build output: only lines with these words can move a phase.
  if (at === -1 || !HINT.test(line)) return current;
  const text = stripMachinePrefix(line);
  let seen = current;
  if (COPYING.some((r) => r.test(text))) seen = "copying";
  if (ACTIVATING.some((r) => r.test(text))) seen = "activating";
  return ORDER.indexOf(seen) > at ? seen : current;
}

const STORE_PATH = /^\/nix\/store\/[0-9a-z]{32}-[^\s/]+(?<!\.drv)$/;
const SET_PROFILE = /nix-env -p \/nix\/var\/nix\/profiles\/system --set (\/nix\/store\/[0-9a-z]{32}-[^\s/]+)/;

/** The system store path a line names: the profile being set (deploy), or a bare store path (build output). */
export function systemPathIn(line: string): string | undefined {
  if (!line.includes("/nix/store/")) return undefined;
  const text = stripMachinePrefix(line).trimEnd();
  const set = SET_PROFILE.exec(text);
  if (set) return set[1];
  return STORE_PATH.test(text) ? text : undefined;
}

/** clan prefixes every log line of a machine with "[machine] ". */
export function stripMachinePrefix(line: string): string {
  return line.startsWith("[") ? line.replace(/^\[[^\]\s]+\] /, "") : line;
}

/** The last lines of output, bounded in count and in line length. */
export class OutputTail {
  private readonly lines: string[] = [];
  private readonly max: number;
  private readonly maxChars: number;
  constructor(max = 25, maxChars = 400) {
    this.max = max;
    this.maxChars = maxChars;
  }

  push(line: string): void {
    this.lines.push(line.length > this.maxChars ? `${line.slice(0, this.maxChars)}…` : line);
    if (this.lines.length > this.max) this.lines.shift();
  }

  /** Without blank lines, which only take room in a message. */
  get(): string[] {
    return this.lines.filter((l) => l.trim() !== "");
  }
}
