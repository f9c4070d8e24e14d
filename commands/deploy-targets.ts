import { BadInput } from "./errors.ts";
import { nearest } from "./suggest.ts";
import type { CommandContext, Machine } from "./types.ts";

export interface Targets {
  /** Machine names, in inventory order, without repeats. */
  readonly machines: readonly string[];
  /** `all` was asked for. */
  readonly all: boolean;
  /** Machines named one by one (not through a tag or `all`). */
  readonly named: ReadonlySet<string>;
}

const TAG = "tag:";
const MAX_PROBLEMS = 5;

/**
 * Turns `laptop nas`, `tag:servers` or `all` into machine names, checked against the clan's
 * inventory (read again once before refusing a name, in case the machine is new). Nothing that
 * is not in the inventory comes out of here.
 */
export async function resolveTargets(ctx: CommandContext, words: readonly string[]): Promise<Targets> {
  if (!words.length) throw new BadInput("Name the machines: a machine name, tag:<tag>, or all.");
  let inventory = await ctx.clan.machines(ctx.signal);
  if (words.some((w) => unknownWord(w, inventory) !== undefined)) inventory = await ctx.clan.machines(ctx.signal, true);
  const problems = [...new Set(words.map((w) => unknownWord(w, inventory)).filter((p): p is string => p !== undefined))];
  // 500 unknown names get a readable answer: the first few, and how many more.
  if (problems.length) {
    const more = problems.length > MAX_PROBLEMS ? `\n… and ${problems.length - MAX_PROBLEMS} more names that are not machines or tags here.` : "";
    throw new BadInput(problems.slice(0, MAX_PROBLEMS).join("\n") + more);
  }

  const chosen = new Set(words.flatMap((w) => machinesOf(inventory, w)));
  const named = new Set(words.filter((w) => w !== "all" && !w.startsWith(TAG)));
  return { machines: inventory.map((m) => m.name).filter((n) => chosen.has(n)), all: words.includes("all"), named };
}

/** The machines one word picks: a machine's name, `tag:<tag>` or `all`, in inventory order (none when nothing matches now). */
export function machinesOf(inventory: readonly Machine[], word: string): string[] {
  if (word === "all") return inventory.map((m) => m.name);
  if (word.startsWith(TAG)) return inventory.filter((m) => m.tags.includes(word.slice(TAG.length))).map((m) => m.name);
  return inventory.some((m) => m.name === word) ? [word] : [];
}

/** One machine name, checked against the inventory. */
export async function resolveMachine(ctx: CommandContext, word: string): Promise<string> {
  let inventory = await ctx.clan.machines(ctx.signal);
  if (unknownWord(word, inventory) !== undefined) inventory = await ctx.clan.machines(ctx.signal, true);
  if (word === "all" || word.startsWith(TAG)) throw new BadInput(`Name one machine here, not '${word}'.`);
  const problem = unknownWord(word, inventory);
  if (problem) throw new BadInput(problem);
  return word;
}

/** Why a word names no machine, or undefined when it does. */
function unknownWord(word: string, inventory: readonly Machine[]): string | undefined {
  if (word === "all") return inventory.length ? undefined : "This clan has no machines yet.";
  if (word.startsWith(TAG)) {
    const tag = word.slice(TAG.length);
    const tags = [...new Set(inventory.flatMap((m) => m.tags))].sort();
    if (tags.includes(tag)) return undefined;
    return `No machine has the tag '${clip(tag)}'; tags in this clan: ${tags.join(", ") || "none"}.${suggest(tag, tags, TAG)}`;
  }
  const names = inventory.map((m) => m.name);
  if (names.includes(word)) return undefined;
  return `unknown machine '${clip(word)}'; known: ${names.join(", ") || "none"}.${suggest(word, names)}`;
}

function suggest(word: string, options: readonly string[], prefix = ""): string {
  const guess = nearest(word, options);
  return guess !== undefined ? ` Did you mean '${prefix}${guess}'?` : "";
}

/** Chat input is shown back, but never at any length. */
function clip(s: string): string {
  return s.length > 60 ? `${s.slice(0, 60)}…` : s;
}
