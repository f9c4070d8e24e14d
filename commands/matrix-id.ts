/** A user id as typed by a person (on the join page or after `!invite`), checked against the Matrix grammar. */
export type MatrixIdCheck = { readonly ok: true; readonly userId: string } | { readonly ok: false; readonly reason: string };

const EXAMPLE = "@alex:matrix.org";
/** The spec's user id localpart (lower case since v1.?; historical ids are not made anew by servers). */
const LOCALPART = /^[a-z0-9._=\-/+]+$/;
const HOSTNAME = /^(?=.{1,255}$)[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$/;
const IPV6 = /^\[[0-9A-Fa-f:.]{2,45}\]$/;
const PORT = /^[0-9]{1,5}$/;

function serverNameProblem(server: string): string | undefined {
  const colon = server.startsWith("[") ? server.indexOf(":", server.indexOf("]")) : server.lastIndexOf(":");
  const host = colon < 0 ? server : server.slice(0, colon);
  const port = colon < 0 ? undefined : server.slice(colon + 1);
  if (port !== undefined && (!PORT.test(port) || Number(port) < 1 || Number(port) > 65535)) return `'${port}' is not a port number`;
  if (!HOSTNAME.test(host) && !IPV6.test(host)) return `'${host}' is not a server name`;
  return undefined;
}

/** Trims, adds a missing leading `@`, and says plainly what is wrong with anything that is not a user id. */
export function checkMatrixUserId(input: string): MatrixIdCheck {
  const typed = input.trim();
  if (!typed) return { ok: false, reason: `Please enter your Matrix ID, such as ${EXAMPLE}.` };
  const id = typed.startsWith("@") ? typed : `@${typed}`;
  if (id.length > 255) return { ok: false, reason: "That is too long for a Matrix ID (at most 255 characters)." };
  const colon = id.indexOf(":");
  if (colon < 0) return { ok: false, reason: `A Matrix ID has a name and a server, such as ${EXAMPLE}; '${typed}' has no server part.` };
  const localpart = id.slice(1, colon);
  const server = id.slice(colon + 1);
  if (!localpart) return { ok: false, reason: `A Matrix ID has a name before the server, such as ${EXAMPLE}.` };
  if (!LOCALPART.test(localpart)) {
    const lower = localpart.toLowerCase();
    if (lower !== localpart && LOCALPART.test(lower)) {
      return { ok: false, reason: `Matrix IDs are lower case: did you mean @${lower}:${server}?` };
    }
    return { ok: false, reason: "The name part of a Matrix ID may hold only a-z, 0-9 and . _ = - / +." };
  }
  const problem = serverNameProblem(server);
  if (problem) return { ok: false, reason: `${problem}: a Matrix ID looks like ${EXAMPLE}.` };
  return { ok: true, userId: id };
}
