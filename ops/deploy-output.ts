import type { MachinePhase } from "../commands/deploy-types.ts";

/** The live phases a deploy moves through, in order; output only ever moves it forward. */
const ORDER: readonly MachinePhase[] = ["building", "copying", "activating"];

// clan announces the commands it runs ("[m] $ nix ... copy --to ssh-ng://..."), and nix and
// switch-to-configuration say what they do. Uploading the flake's *source* is also a `nix copy`,
// but it happens before the build, so only a copy of the built system counts as copying.
const COPYING = [/\$ nix\b.* copy --to \S+ .*-nixos-system-/, /copying path '[^']*-nixos-system-[^']*' to '/, /copying \d+ paths?\b/];
const ACTIVATING = [/nix-env -p \/nix\/var\/nix\/profiles\/system --set /, /switch-to-configuration (boot|switch|test)\b/, /^activating the configuration/];

/** Every line that can move a phase has one of these words (plain text, no regex characters). */
const PHASE_WORDS = ["cop", "switch-to-configuration", "nix-env", "activating"];
const HINT = new RegExp(PHASE_WORDS.join("|"));
const STORE_DIR = "/nix/store/";

/** clan's words when switch inhibitors kept a deploy from switching live (clan_lib/machines/update.py). */
export const INHIBITED_MARK = "was blocked by switch inhibitors";

/** nixos-anywhere's last words when an install went through. */
export const INSTALL_DONE_MARK = "### Done! ###";

/**
 * A line without any of these words can move no phase, names no store path and does not end an
 * install: it need not even be decoded.
 */
export const TELLING_WORDS: readonly string[] = [...PHASE_WORDS, STORE_DIR, INSTALL_DONE_MARK, INHIBITED_MARK];

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
  if (!line.includes(STORE_DIR)) return undefined;
  const text = stripMachinePrefix(line).trimEnd();
  const set = SET_PROFILE.exec(text);
  if (set) return set[1];
  return STORE_PATH.test(text) ? text : undefined;
}

/** clan prefixes every log line of a machine with "[machine] ". */
export function stripMachinePrefix(line: string): string {
  return line.startsWith("[") ? line.replace(/^\[[^\]\s]+\] /, "") : line;
}

/**
 * The last lines of output, bounded in count and in line length. Lines of a process's output come
 * as bytes (see LineSink) and most are never read: each is first kept as a view of its chunk, and
 * when the chunk is done, only the lines still among the last `max` are copied, and only as much
 * of each as can be shown. They are decoded when asked for.
 */
export class OutputTail {
  private readonly max: number;
  private readonly maxChars: number;
  /** Bytes kept of a line: enough for maxChars UTF-16 units (at most 3 bytes each) and one more to see there is more. */
  private readonly slotBytes: number;
  /** A ring of the last `max` lines: slot i holds a string, or the bytes `views[i][starts[i], ends[i])`. */
  private readonly texts: (string | undefined)[];
  private readonly views: (Buffer | undefined)[];
  private readonly starts: Int32Array;
  private readonly ends: Int32Array;
  /** Where lines copied out of their chunks live, slot i at i * slotBytes; made when first needed. */
  private store: Buffer | undefined;
  private next = 0;
  private count = 0;

  constructor(max = 25, maxChars = 400) {
    this.max = max;
    this.maxChars = maxChars;
    this.slotBytes = 3 * maxChars + 3;
    this.texts = new Array<string | undefined>(max).fill(undefined);
    this.views = new Array<Buffer | undefined>(max).fill(undefined);
    this.starts = new Int32Array(max);
    this.ends = new Int32Array(max);
  }

  push(line: string): void {
    this.texts[this.take()] = this.cut(line);
  }

  /** A line as bytes: a view until `chunkDone`. */
  pushBytes(bytes: Buffer, start: number, end: number): void {
    const slot = this.take();
    this.views[slot] = bytes;
    this.starts[slot] = start;
    this.ends[slot] = end;
  }

  /** The chunk the last lines came from is about to change: the lines still kept are copied out of it. */
  chunkDone(): void {
    for (let slot = 0; slot < this.max; slot++) {
      const bytes = this.views[slot];
      if (!bytes || bytes === this.store) continue;
      this.store ??= Buffer.allocUnsafe(this.max * this.slotBytes);
      const at = slot * this.slotBytes;
      const start = this.starts[slot] as number;
      const n = bytes.copy(this.store, at, start, Math.min(this.ends[slot] as number, start + this.slotBytes));
      this.views[slot] = this.store;
      this.starts[slot] = at;
      this.ends[slot] = at + n;
    }
  }

  /** Decodes the lines kept as bytes, and lets go of their store (for a tail that gets no more output). */
  settle(): void {
    for (let slot = 0; slot < this.max; slot++) {
      const bytes = this.views[slot];
      if (!bytes) continue;
      const start = this.starts[slot] as number;
      this.texts[slot] = this.cut(bytes.toString("utf8", start, Math.min(this.ends[slot] as number, start + this.slotBytes)));
      this.views[slot] = undefined;
    }
    this.store = undefined;
  }

  /** Without blank lines, which only take room in a message. */
  get(): string[] {
    this.settle();
    const lines: string[] = [];
    for (let i = this.count; i > 0; i--) {
      const line = this.texts[(this.next - i + this.max) % this.max] as string;
      if (line.trim() !== "") lines.push(line);
    }
    return lines;
  }

  private take(): number {
    const slot = this.next;
    this.next = (slot + 1) % this.max;
    this.count = Math.min(this.count + 1, this.max);
    this.views[slot] = undefined;
    return slot;
  }

  private cut(line: string): string {
    return line.length > this.maxChars ? `${line.slice(0, this.maxChars)}…` : line;
  }
}
