import { homedir } from "node:os";
import { join } from "node:path";

/**
 * Where the bot keeps its state (the SQLite file, its SSH key, logs) unless `storage.path` says:
 * never in the directory it was started from, which may be a clan's git work tree. Under systemd
 * `StateDirectory=` names it; a service running as root uses /var/lib/clanbot; a person, the XDG
 * state directory.
 */
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env, uid: number = process.getuid?.() ?? -1): string {
  const systemd = env["STATE_DIRECTORY"]?.split(":")[0];
  if (systemd) return systemd;
  if (uid === 0) return "/var/lib/clanbot";
  const xdg = env["XDG_STATE_HOME"];
  // The XDG spec: a relative XDG_STATE_HOME is invalid and is ignored.
  return join(xdg && xdg.startsWith("/") ? xdg : join(env["HOME"] || homedir(), ".local", "state"), "clanbot");
}
