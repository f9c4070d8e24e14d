/** Where the bot reaches a machine over SSH, parsed from clan's `user@host:port?OPTION=VALUE`. */
export interface SshTarget {
  readonly user: string;
  readonly host: string;
  readonly port: number;
  /** The address as written, for messages. */
  readonly text: string;
}

/** The SSH options of a target address the bot can honour; others are refused, not ignored. */
const SUPPORTED_OPTIONS = new Set(["Port", "User"]);

/**
 * Parses a clan target address: `[user@]host[:port][?Option=Value&...]`, IPv6 in brackets.
 * The user defaults to root, as clan's does. Returns a reason when it is not one the bot can use.
 */
export function parseTarget(text: string): SshTarget | { error: string } {
  const trimmed = text.trim();
  const [address = "", query] = splitOnce(trimmed, "?");
  let user = "root";
  let rest = address;
  const at = address.lastIndexOf("@");
  if (at >= 0) {
    user = address.slice(0, at);
    rest = address.slice(at + 1);
  }
  let host: string;
  let portText: string | undefined;
  if (rest.startsWith("[")) {
    const close = rest.indexOf("]");
    if (close < 0) return { error: `'${text}' has an unclosed '[' around its address` };
    host = rest.slice(1, close);
    const after = rest.slice(close + 1);
    if (after && !after.startsWith(":")) return { error: `'${text}' has something after its address that is not a port` };
    portText = after ? after.slice(1) : undefined;
  } else {
    const colon = rest.lastIndexOf(":");
    // More than one colon without brackets is a bare IPv6 address.
    if (colon >= 0 && rest.indexOf(":") === colon) {
      host = rest.slice(0, colon);
      portText = rest.slice(colon + 1);
    } else host = rest;
  }
  const options = new Map<string, string>();
  for (const pair of query ? query.split("&") : []) {
    const [name = "", value = ""] = splitOnce(pair, "=");
    if (!SUPPORTED_OPTIONS.has(name)) return { error: `'${text}' sets the SSH option ${name}, which the bot does not support` };
    options.set(name, value);
  }
  portText = options.get("Port") ?? portText;
  user = options.get("User") ?? user;
  // Neither may start with '-': the address goes into clan's argv, where it must never pass for an option.
  if (!/^[A-Za-z0-9_][A-Za-z0-9._-]*$/.test(user)) return { error: `'${text}' has no valid user name` };
  if (!host || !/^[A-Za-z0-9.:%_][A-Za-z0-9.:%_-]*$/.test(host)) return { error: `'${text}' has no valid host name` };
  const port = portText === undefined || portText === "" ? 22 : Number(portText);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return { error: `'${text}' has no valid port` };
  return { user, host, port, text: trimmed };
}

function splitOnce(s: string, sep: string): [string, string | undefined] {
  const i = s.indexOf(sep);
  return i < 0 ? [s, undefined] : [s.slice(0, i), s.slice(i + 1)];
}

/** `host` or `[host]:port`, the way known_hosts names a host. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}
