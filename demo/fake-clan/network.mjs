// Networks and routes: clan_lib/network/network.py (networks_from_flake, BestRemoteContext).
// A clan's networks are exports of its services, selected with `clan.?exports`:
//   "<service>:<instance>::"          { networking: { module, priority } }
//   "<service>:<instance>:<role>:<m>"  { peer: { hosts: [{ plain: "10.0.0.2" }], port?, user? } }
// Per machine clan uses, in this order: the inventory's deploy.targetHost; the
// highest-priority network that has the machine as a peer and answers (a ping
// through the network's module); the machine's clan.core.networking.targetHost.

import { ClanError, log } from "./errors.mjs";
import { select, systemOf } from "./flake.mjs";
import { parseAddress } from "./remote.mjs";

/** Module and priority of each network technology, as clan's services export them. */
export const NETWORK_KINDS = {
  "p2p-ssh-iroh": { module: "clan_lib.network.p2p_ssh_iroh", priority: 3000 },
  internet: { module: "clan_lib.network.direct", priority: 2000 },
  yggdrasil: { module: "clan_lib.network.direct", priority: 2000 },
  wireguard: { module: "clan_lib.network.direct", priority: 1000 },
  zerotier: { module: "clan_lib.network.zerotier", priority: 900 },
  mycelium: { module: "clan_lib.network.direct", priority: 800 },
  tor: { module: "clan_lib.network.tor", priority: 10 },
};

/**
 * The `clan.exports` attribute set from the fixture's "networks":
 * { "<instance>": { service?, priority?, peers: { "<m>": { hosts: [...], port?, user? } } } }.
 * service defaults to the instance name; priority to the service's (NETWORK_KINDS).
 */
export function exportsOf(fixture) {
  const exports = {};
  for (const [instance, net] of Object.entries(fixture.networks ?? {})) {
    const service = net.service ?? instance;
    const kind = NETWORK_KINDS[service] ?? NETWORK_KINDS.internet;
    exports[`${service}:${instance}::`] = { networking: { module: kind.module, priority: net.priority ?? kind.priority } };
    for (const [machine, peer] of Object.entries(net.peers ?? {})) {
      const value = { hosts: (peer.hosts ?? []).map((h) => ({ plain: h })), port: peer.port ?? 22 };
      if (peer.user) value.user = peer.user;
      exports[`${service}:${instance}:peer:${machine}`] = { peer: value };
    }
  }
  return exports;
}

/** networks_from_flake(): { instance: { priority, module, peers: { m: { hosts, port, user } } } } */
function networksFromFlake(flake) {
  const defined = select(flake, "clan.?exports");
  if (!("exports" in defined)) return {};
  const networks = {};
  for (const [key, value] of Object.entries(defined.exports)) {
    if (!value.networking) continue;
    const [service, instance] = key.split(":");
    if (!instance) continue;
    const peers = {};
    for (const [peerKey, peerValue] of Object.entries(defined.exports)) {
      const [s, i, , m] = peerKey.split(":");
      if (!peerValue.peer || !m || s !== service || i !== instance) continue;
      peers[m] = { hosts: peerValue.peer.hosts.map((h) => h.plain), port: peerValue.peer.port ?? 22, user: peerValue.peer.user ?? "root" };
    }
    networks[instance] = { ...value.networking, peers };
  }
  return networks;
}

/** Whether a peer address answers: fixture.networks.<net>.peers.<m>.down (true) says it does not. */
function answers(flake, network, machine) {
  return flake.fixture.networks?.[network]?.peers?.[machine]?.down !== true;
}

/** Machine.target_host() through get_best_remote(): a Remote, with the network it came by. */
export function bestRemote(flake, name, prefix = null) {
  const inventory = select(flake, "clanInternals.inventoryClass.inventorySerialization.machines");
  if (!(name in inventory)) throw new ClanError(`Machine ${name} does not exist`);
  const address = inventory[name].deploy?.targetHost;
  if (address) return { ...parseAddress(address, name), network: null };
  const sorted = Object.entries(networksFromFlake(flake)).sort((a, b) => b[1].priority - a[1].priority);
  for (const [netName, net] of sorted) {
    const peer = net.peers[name];
    if (!peer || !answers(flake, netName, name)) continue;
    for (const host of peer.hosts) {
      log(`Machine ${name} reachable via ${netName} network`, prefix);
      return { user: peer.user, host, port: peer.port === 22 ? null : peer.port, options: {}, machine: name, network: netName };
    }
  }
  const configured = select(flake, `clanInternals.machines.${systemOf(flake.fixture)}."${name}".config.clan.core.networking.targetHost`);
  if (configured) return { ...parseAddress(configured, name), network: null };
  throw new ClanError(
    `Could not find any way to connect to machine '${name}'. No targetHost configured and machine not reachable via any network.`,
    { pyType: "clan_lib.network.network.NoRemoteError" },
  );
}
