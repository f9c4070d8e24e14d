import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { dirname } from "node:path";

/** A host key the bot pinned, under the name ssh looks it up by (`host` or `[host]:port`). */
export interface PinnedLine {
  readonly host: string;
  readonly type: string;
  readonly base64: string;
}

/**
 * The host keys the bot pinned, where clan's own ssh finds them. clan (clan_lib/ssh/remote.py)
 * passes ssh only `-o` options from a target address (`user@host?UserKnownHostsFile=F`) and
 * `--host-key-check`; `clan backups` takes neither, so there ssh reads the known_hosts of the user
 * the bot runs as (ssh finds it through the passwd entry, not $HOME). So the keys go to:
 *  - `clanFile`, the bot's own file for this clan, named in the target address of `machines update`;
 *  - `userFile` (when set), in a block of its own between marker lines, the rest of the file untouched.
 */
export class ClanKnownHosts {
  readonly clanFile: string;
  private readonly userFile: string | undefined;
  private readonly clan: string;
  private readonly pinned: () => Promise<PinnedLine[]>;

  constructor(o: { clan: string; clanFile: string; userFile: string | undefined; pinned: () => Promise<PinnedLine[]> }) {
    this.clan = o.clan;
    this.clanFile = o.clanFile;
    this.userFile = o.userFile;
    this.pinned = o.pinned;
  }

  /** Writes both files from the keys pinned now; called at start and whenever a key is pinned, replaced or forgotten. */
  sync(): Promise<void> {
    return serialized(async () => {
      const keys = await this.pinned();
      const lines = keys.map((k) => `${k.host} ${k.type} ${k.base64}`);
      await atomicWrite(this.clanFile, lines.length ? `${lines.join("\n")}\n` : "");
      if (this.userFile) await writeBlock(this.userFile, this.clan, lines);
    });
  }
}

const BEGIN = (clan: string): string => `# clanbot ${clan}: host keys pinned by clanbot (rewritten by it; edit outside this block)`;
const END = (clan: string): string => `# clanbot ${clan}: end`;

/** Replaces (or adds, or removes when empty) this clan's block in a known_hosts file. */
export async function writeBlock(file: string, clan: string, lines: readonly string[]): Promise<void> {
  let text = "";
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    if (!lines.length) return;
  }
  const kept: string[] = [];
  let inside = false;
  for (const line of text.split("\n")) {
    if (line === BEGIN(clan)) inside = true;
    else if (line === END(clan)) inside = false;
    else if (!inside) kept.push(line);
  }
  while (kept.length && kept[kept.length - 1] === "") kept.pop();
  const block = lines.length ? [BEGIN(clan), ...lines, END(clan)] : [];
  const next = [...kept, ...block].join("\n");
  const out = next ? `${next}\n` : "";
  if (out !== text) await atomicWrite(file, out);
}

async function atomicWrite(file: string, text: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.clanbot-${process.pid}`;
  await writeFile(tmp, text, { mode: 0o600 });
  await rename(tmp, file);
}

/** One write at a time in this process: clans share the user's known_hosts. */
let chain: Promise<void> = Promise.resolve();
function serialized(work: () => Promise<void>): Promise<void> {
  const next = chain.then(work, work);
  chain = next.catch(() => undefined);
  return next;
}
