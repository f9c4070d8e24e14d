import { BadInput } from "./errors.ts";
import type { VmPort } from "./vm-types.ts";

/** More forwards than this is a typo, not a VM to try something in. */
export const MAX_FORWARDS = 16;
/** Lower host ports need root on the bot's host; QEMU would fail late and obscurely. */
export const LOWEST_HOST_PORT = 1024;

/**
 * `--port 8080:80` values as forwards, checked before anything starts: the form, the ranges, and
 * no host port twice. Whether another VM or program holds a port is checked by the VM service.
 */
export function parsePorts(values: readonly string[]): VmPort[] {
  if (values.length > MAX_FORWARDS) throw new BadInput(`At most ${MAX_FORWARDS} ports can be forwarded to one VM; ${values.length} were given.`);
  const ports: VmPort[] = [];
  for (const raw of values) {
    const shown = raw.length > 30 ? `${raw.slice(0, 30)}…` : raw;
    const m = /^(\d{1,5}):(\d{1,5})$/.exec(raw.trim());
    if (!m) throw new BadInput(`\`--port\` takes HOST:GUEST, two port numbers such as 8080:80, not '${shown}'.`);
    const host = Number(m[1]);
    const guest = Number(m[2]);
    if (guest < 1 || guest > 65535) throw new BadInput(`The guest port in '${shown}' must be between 1 and 65535.`);
    if (host < LOWEST_HOST_PORT || host > 65535) {
      throw new BadInput(
        `The host port in '${shown}' must be between ${LOWEST_HOST_PORT} and 65535 (lower ones need root on the bot's host), e.g. 8080:${guest}.`,
      );
    }
    if (ports.some((p) => p.host === host)) throw new BadInput(`Host port ${host} is given twice: each host port can forward to one guest port.`);
    ports.push({ host, guest });
  }
  return ports;
}
