// Small statistics and table helpers for the benchmark report.

/** Nearest-rank percentile (p in 0..100) of the values; NaN when there are none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] as number;
}

export function mean(values: readonly number[]): number {
  return values.length === 0 ? Number.NaN : values.reduce((a, b) => a + b, 0) / values.length;
}

export function max(values: readonly number[]): number {
  return values.reduce((a, b) => Math.max(a, b), Number.NEGATIVE_INFINITY);
}

export interface Summary {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

export function summarize(values: readonly number[]): Summary {
  return {
    n: values.length,
    p50: percentile(values, 50),
    p90: percentile(values, 90),
    p99: percentile(values, 99),
    max: values.length ? max(values) : Number.NaN,
    mean: mean(values),
  };
}

export const ms = (v: number): string => (Number.isFinite(v) ? `${v.toFixed(2)} ms` : "n/a");
export const mb = (bytes: number): string => (Number.isFinite(bytes) ? `${(bytes / 2 ** 20).toFixed(1)} MB` : "n/a");
export const ratio = (v: number): string => (Number.isFinite(v) ? `${v.toFixed(2)}x` : "n/a");
export const seconds = (v: number): string => (Number.isFinite(v) ? `${(v / 1000).toFixed(2)} s` : "n/a");

export interface Row {
  metric: string;
  value: string;
  /** What it is measured against (the baseline figure), if anything. */
  baseline?: string;
  goal?: string;
  /** undefined: informational, no goal. */
  met?: boolean;
}

/** A plain-text table; the verdict column says PASS, MISS or (for informational rows) "-". */
export function formatTable(rows: readonly Row[]): string {
  const header = ["metric", "value", "baseline", "goal", "verdict"];
  const cells = rows.map((r) => [r.metric, r.value, r.baseline ?? "", r.goal ?? "", r.met === undefined ? "-" : r.met ? "PASS" : "MISS"]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] as string).length)));
  const line = (c: readonly string[]): string => c.map((s, i) => s.padEnd(widths[i] as number)).join(" | ").trimEnd();
  const rule = widths.map((w) => "-".repeat(w)).join("-+-");
  return [line(header), rule, ...cells.map(line)].join("\n");
}

/** A deterministic PRNG (mulberry32), so the scale run's room choices are the same every run. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
