import type { VarEntry } from "../commands/types.ts";

const LINE = /^([A-Za-z0-9_.@+-]+)\/([^:\s][^:]*): (.*)$/;

/**
 * `clan vars list <m>` (clan_cli/vars/list.py): `gen/file: <value>`, sorted; `********` for a set
 * secret, `<not set>` for a missing var. A public value may span lines: those without a `gen/file: `
 * head belong to the var before them.
 */
export function parseVarsList(stdout: string): VarEntry[] {
  const out: Array<{ id: string; generator: string; file: string; raw: string }> = [];
  for (const line of stdout.split("\n")) {
    const m = LINE.exec(line);
    if (m) out.push({ id: `${m[1]}/${m[2]}`, generator: m[1] as string, file: m[2] as string, raw: m[3] as string });
    else if (out.length > 0 && line !== "") (out[out.length - 1] as { raw: string }).raw += `\n${line}`;
  }
  return out.map((v) => {
    if (v.raw === "********") return { id: v.id, generator: v.generator, file: v.file, state: "secret" };
    if (v.raw === "<not set>" || v.raw === "<not initialized>") return { id: v.id, generator: v.generator, file: v.file, state: "missing" };
    return { id: v.id, generator: v.generator, file: v.file, state: "public", value: v.raw };
  });
}
