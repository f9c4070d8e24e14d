const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, min: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Parses "90s", "15m", "2h", "1h30m", "7d" into milliseconds; undefined when it is not a duration.
 * A strict grammar on purpose: "2" or "2 hours ago" are mistakes worth pointing out, not guessing at.
 */
export function parseDuration(input: string): number | undefined {
  const s = input.trim().toLowerCase();
  if (!/^(\d+(\.\d+)?(ms|s|min|m|h|d))+$/.test(s)) return undefined;
  let total = 0;
  for (const [, num, unit] of s.matchAll(/(\d+(?:\.\d+)?)(ms|s|min|m|h|d)/g)) {
    total += Number(num) * (UNITS[unit ?? ""] ?? Number.NaN);
  }
  return Number.isFinite(total) ? Math.round(total) : undefined;
}
