import { nearest } from "./suggest.ts";

/** Chat input is shown back, but never at any length. */
export function clip(s: string): string {
  return s.length > 60 ? `${s.slice(0, 60)}…` : s;
}

export function unknownMachine(word: string, names: readonly string[]): string {
  return `unknown machine '${clip(word)}'; known: ${names.join(", ") || "none"}.${suggest(word, names)}`;
}

export function unknownTag(tag: string, tags: readonly string[]): string {
  return `No machine has the tag '${clip(tag)}'; tags in this clan: ${tags.join(", ") || "none"}.${suggest(tag, tags, "tag:")}`;
}

/** Unknown names are answered from the last read of the flake, not by evaluating it again: say how to. */
export function notInLastRead(prefix: string): string {
  return `Machines are as last read from the flake; if one was just added, ${prefix}refresh (operator) reads it again.`;
}

function suggest(word: string, options: readonly string[], prefix = ""): string {
  const guess = nearest(word, options);
  return guess !== undefined ? ` Did you mean '${prefix}${guess}'?` : "";
}
