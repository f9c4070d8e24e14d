/**
 * Backup archives by name. `clan backups list` prints names only (borgbackup: `<dest>::<repo>::<archive>`,
 * where the archive is `<host>-<date>T<time>` by default), sorted by name; when each was made is read
 * from the date and time in its name.
 */

const STAMP = /(\d{4})-(\d{2})-(\d{2})[T_ ](\d{2})[:.-]?(\d{2})[:.-]?(\d{2})(Z|[+-]\d{2}:?\d{2})?/g;

/**
 * When an archive was made, from the last date and time in its name; a time without a zone is
 * taken as UTC (borg writes the machine's local time, which the bot does not know). Undefined
 * when the name holds no date and time.
 */
export function archiveTime(name: string): number | undefined {
  let found: RegExpExecArray | undefined;
  for (const m of name.matchAll(STAMP)) found = m;
  if (!found) return undefined;
  const [, y, mo, d, h, mi, s, zone] = found;
  const iso = `${y}-${mo}-${d}T${h}:${mi}:${s}${zone ? (zone === "Z" ? "Z" : `${zone.slice(0, 3)}:${zone.slice(-2)}`) : "Z"}`;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? undefined : t;
}

/** Newest first: by the time in their names; names without one after those, in reverse name order. */
export function newestFirst(names: readonly string[]): string[] {
  const keyed = [...new Set(names)].map((name) => ({ name, at: archiveTime(name) }));
  return keyed
    .sort((a, b) => {
      if (a.at !== undefined && b.at !== undefined && a.at !== b.at) return b.at - a.at;
      if ((a.at === undefined) !== (b.at === undefined)) return a.at === undefined ? 1 : -1;
      return a.name < b.name ? 1 : a.name > b.name ? -1 : 0;
    })
    .map((k) => k.name);
}
