// What a stand-in for a command clan runs below itself (nix build, nix copy, ssh ...) prints,
// and when: shared by nix-child.mjs (the stand-in as its own process, the default) and by
// proc.mjs when the stand-ins run inside the fake (the `inlineStandIns` knob). See
// nix-child.mjs for the fields of `spec`.

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Plays `spec` through `write(stream, line)`; resolves with the exit status, or never, for
 * `hang` and `repeat` (the process that plays it is killed).
 */
export async function playStandIn(spec, write) {
  for (const [s, l] of spec.before ?? []) write(s, l);

  const during = [...(spec.during ?? [])];
  const count = spec.progress?.count ?? 0;
  const total = during.length + count;
  const delay = spec.delayMs ?? 0;
  const started = Date.now();
  for (let k = 0; k < total; k++) {
    const due = started + (delay * (k + 1)) / (total + 1);
    const wait = due - Date.now();
    if (wait > 0) await sleep(wait);
    if (k < during.length) write(during[k][0], during[k][1]);
    else {
      const i = k - during.length + 1;
      write(spec.progress.stream ?? "stderr", spec.progress.template.replaceAll("{i}", String(i)).replaceAll("{n}", String(count)));
    }
  }
  const rest = started + delay - Date.now();
  if (rest > 0) await sleep(rest);

  if (spec.repeat) {
    setInterval(() => {
      for (const [s, l] of spec.repeat.lines) write(s, l);
    }, spec.repeat.everyMs ?? 3000);
    return new Promise(() => {});
  }
  if (spec.hang) {
    setInterval(() => {}, 1 << 30);
    return new Promise(() => {});
  }
  for (const [s, l] of spec.after ?? []) write(s, l);
  return spec.exitCode ?? 0;
}
