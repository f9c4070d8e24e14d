import { BadInput } from "./errors.ts";
import { clip, notInLastRead, unknownMachine, unknownTag } from "./targets-format.ts";
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
 * inventory as last read (within `clan.inventoryCacheTtl`). An unknown name is refused from that
 * read, never by evaluating the flake again: anyone can type names, and each evaluation takes a clan
 * process for seconds. `!refresh` reads a changed flake. Nothing that is not in the inventory comes out of here.
 */
export async function resolveTargets(ctx: CommandContext, words: readonly string[]): Promise<Targets> {
  if (!words.length) throw new BadInput("Name the machines: a machine name, tag:<tag>, or all.");
  const inventory = await ctx.clan.machines(ctx.signal);
  const problems = [...new Set(words.map((w) => unknownWord(w, inventory)).filter((p): p is string => p !== undefined))];
  // 500 unknown names get a readable answer: the first few, and how many more.
  if (problems.length) {
    const more = problems.length > MAX_PROBLEMS ? `\n… and ${problems.length - MAX_PROBLEMS} more names that are not machines or tags here.` : "";
    throw new BadInput([...problems.slice(0, MAX_PROBLEMS), notInLastRead(ctx.prefix)].join("\n").replace(/\n([^\n]*)$/, `${more}\n$1`));
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

/** One machine name, checked against the inventory as last read (see resolveTargets). */
export async function resolveMachine(ctx: CommandContext, word: string): Promise<string> {
  if (word === "all" || word.startsWith(TAG)) throw new BadInput(`Name one machine here, not '${clip(word)}'.`);
  const problem = unknownWord(word, await ctx.clan.machines(ctx.signal));
  if (problem) throw new BadInput(`${problem}\n${notInLastRead(ctx.prefix)}`);
  return word;
}

/** Why a word names no machine, or undefined when it does. */
function unknownWord(word: string, inventory: readonly Machine[]): string | undefined {
  if (word === "all") return inventory.length ? undefined : "This clan has no machines yet.";
  if (word.startsWith(TAG)) {
    const tag = word.slice(TAG.length);
    const tags = [...new Set(inventory.flatMap((m) => m.tags))].sort();
    return tags.includes(tag) ? undefined : unknownTag(tag, tags);
  }
  const names = inventory.map((m) => m.name);
  return names.includes(word) ? undefined : unknownMachine(word, names);
}
