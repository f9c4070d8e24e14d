/**
 * The clan's networks, as clan itself finds machines (clan_lib/network/network.py): its services
 * export `clan.exports`, where `<service>:<instance>::` holds `{ networking: { module, priority } }`
 * and `<service>:<instance>:<role>:<machine>` holds `{ peer: { hosts, port?, user? } }`. A machine
 * without an inventory `deploy.targetHost` is reached over the highest-priority network that answers
 * (p2p-ssh-iroh 3000, internet and yggdrasil 2000, wireguard 1000, zerotier 900, mycelium 800, tor 10).
 */

/** One way to a machine over a network: the peer's addresses there, best network first. */
export interface NetworkRoute {
  readonly network: string;
  readonly priority: number;
  readonly module: string;
  readonly hosts: readonly string[];
  readonly port: number;
  readonly user: string;
}

/** A peer address clan keeps in a var (zerotier's IP since 26.05): `<machine>` `<generator>/<file>`. */
export interface VarHost {
  readonly machine: string;
  readonly var: string;
}

interface PeerHost {
  plain?: unknown;
  var?: { machine?: unknown; generator?: unknown; file?: unknown };
}

/** Modules the bot can follow itself: ones that are plain SSH to an address. tor needs SOCKS, iroh its own tunnel. */
const DIRECT_MODULES = new Set(["clan_lib.network.direct", "clan_lib.network.zerotier"]);

/**
 * Routes per machine, best first, from the JSON `clan select 'clan.?exports'` prints. Peer hosts
 * held in vars are read with `varValue` (undefined: not generated yet, left out). Networks whose
 * module is not plain SSH (tor, iroh) are left out: the bot cannot follow them.
 */
export async function routesFromExports(raw: unknown, varValue: (h: VarHost) => Promise<string | undefined>): Promise<Map<string, NetworkRoute[]>> {
  const routes = new Map<string, NetworkRoute[]>();
  const exports = (raw as { exports?: unknown } | null)?.exports;
  if (exports === null || typeof exports !== "object") return routes;
  const entries = Object.entries(exports as Record<string, { networking?: { module?: unknown; priority?: unknown }; peer?: { hosts?: unknown; port?: unknown; user?: unknown } }>);
  for (const [key, value] of entries) {
    const net = value?.networking;
    if (!net) continue;
    const [service = "", instance = ""] = key.split(":");
    if (!instance) continue;
    const module = typeof net.module === "string" ? net.module : "";
    if (!DIRECT_MODULES.has(module)) continue;
    const priority = typeof net.priority === "number" ? net.priority : 1000;
    for (const [peerKey, peerValue] of entries) {
      const [s, i, , machine] = peerKey.split(":");
      const peer = peerValue?.peer;
      if (!peer || !machine || s !== service || i !== instance) continue;
      const hosts: string[] = [];
      for (const h of Array.isArray(peer.hosts) ? (peer.hosts as PeerHost[]) : []) {
        if (typeof h?.plain === "string" && h.plain) hosts.push(h.plain);
        else if (h?.var && typeof h.var.machine === "string" && typeof h.var.generator === "string" && typeof h.var.file === "string") {
          const value = await varValue({ machine: h.var.machine, var: `${h.var.generator}/${h.var.file}` });
          if (value?.trim()) hosts.push(value.trim());
        }
      }
      if (!hosts.length) continue;
      const route: NetworkRoute = {
        network: instance,
        priority,
        module,
        hosts,
        port: typeof peer.port === "number" ? peer.port : 22,
        user: typeof peer.user === "string" && peer.user ? peer.user : "root",
      };
      routes.set(machine, [...(routes.get(machine) ?? []), route]);
    }
  }
  for (const list of routes.values()) list.sort((a, b) => b.priority - a.priority || a.network.localeCompare(b.network));
  return routes;
}

/** A route's addresses as clan target addresses (`user@host:port`, IPv6 in brackets). */
export function routeTargets(route: NetworkRoute): string[] {
  return route.hosts.map((h) => {
    const host = h.includes(":") && !h.startsWith("[") ? `[${h}]` : h;
    return `${route.user}@${host}${route.port === 22 ? "" : `:${route.port}`}`;
  });
}
