// Behaviour knobs from clan-fixture.json ("behaviour"), resolved for one command and,
// optionally, one machine: default <- "<command>" <- "<command>".perMachine.<machine>.

export const COMMAND_KEYS = [
  "machines list",
  "machines update",
  "machines install",
  "machines build",
  "machines generations",
  "select",
  "backups create",
  "backups list",
  "backups restore",
  "vars list",
  "vars get",
  "vars set",
  "vars generate",
  "vars check",
  "nix build",
  "vms run",
  "vm",
];

export function knobsFor(fixture, command, machine = null) {
  const b = fixture?.behaviour ?? {};
  const { perMachine: defaultPer, ...base } = b.default ?? {};
  const { perMachine: commandPer, ...cmd } = b[command] ?? {};
  const k = { ...base, ...cmd };
  if (machine !== null) Object.assign(k, defaultPer?.[machine] ?? {}, commandPer?.[machine] ?? {});
  return k;
}

/** A switch that is true, false, or a list of the machines it applies to. */
export function applies(value, machine = null) {
  if (value === true) return true;
  if (Array.isArray(value)) return machine !== null && value.includes(machine);
  return false;
}

export function orphanGrace(k) {
  return k.orphanGraceMs ?? 5000;
}

/** Where the `bytes` knob's output goes. */
export function bytesStream(k) {
  return k.bytesStream === "stdout" ? process.stdout : process.stderr;
}
