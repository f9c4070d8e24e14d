/**
 * Whether a message is meant for the bot, and the command line it carries: `!deploy laptop`,
 * or addressed by name as people do in Matrix clients: `clanbot: deploy laptop`, `clanbot, help`.
 */
export interface Addressing {
  prefix: string;
  /** Names the bot answers to: its localpart, display name, full user id. */
  names: readonly string[];
}

export function commandLineOf(body: string, a: Addressing): string | undefined {
  const text = body.trim();
  if (text.startsWith(a.prefix)) {
    const rest = text.slice(a.prefix.length);
    // "!" alone or "! something" is punctuation, not a command.
    return rest && !/^\s/.test(rest) ? rest : undefined;
  }
  const lower = text.toLowerCase();
  for (const name of a.names) {
    const n = name.toLowerCase();
    if (!n || !lower.startsWith(n)) continue;
    const rest = text.slice(n.length);
    // Only "name:" or "name," address the bot; "clanbot is great" is talk about it.
    const m = /^\s*[:,]\s*/.exec(rest);
    if (!m) continue;
    const line = rest.slice(m[0].length).replace(new RegExp(`^${escapeRegExp(a.prefix)}`), "");
    return line.trim() ? line.trim() : "help";
  }
  return undefined;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
