import { closest, distance } from "fastest-levenshtein";

/** The option nearest to what was typed, if it is near enough to be a likely typo. */
export function nearest(word: string, options: readonly string[]): string | undefined {
  if (!word || !options.length) return undefined;
  const guess = closest(word, options as string[]);
  return distance(word, guess) <= Math.max(2, Math.floor(word.length / 3)) ? guess : undefined;
}
