import type { Generation } from "../commands/types.ts";

/**
 * `clan machines generations <m>` prints one table per machine (clan_cli/machines/generations.py):
 *   Generation   | Date                | NixOS Version | Kernel Version
 *   -------------+---------------------+---------------+---------------
 *   42 ← current | 2026-11-20 01:00:00 | 26.05.2026... | 6.12.41
 * read from `nixos-rebuild list-generations --json` on the machine. Rows that do not parse are skipped.
 */
export function parseGenerations(stdout: string): Generation[] {
  const found: Generation[] = [];
  for (const line of stdout.split("\n")) {
    const cells = line.split(" | ").map((c) => c.trim());
    if (cells.length < 4) continue;
    const m = /^(\d+)( ← current)?$/.exec(cells[0] ?? "");
    if (!m) continue;
    found.push({ generation: Number(m[1]), current: m[2] !== undefined, date: cells[1] ?? "", nixosVersion: cells[2] ?? "", kernelVersion: cells[3] ?? "" });
  }
  return found.sort((a, b) => a.generation - b.generation);
}
