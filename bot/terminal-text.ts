/**
 * A message's HTML (the bot's own small set of tags, see commands/format.ts) as terminal text: bold,
 * italic and code in ANSI when `color`, and no Matrix markup either way (no `*`, `_` or backticks),
 * tables as aligned columns, lists with bullets, links with their address.
 */
export function terminalText(html: string, color: boolean): string {
  const style = (code: string, text: string): string => (color && text ? `\x1b[${code}m${text}\x1b[0m` : text);
  let out = "";
  let table: string[][] | undefined;
  let row: string[] | undefined;
  let cell: string | undefined;
  let href: string | undefined;
  const open: string[] = [];
  const emit = (text: string): void => {
    if (cell !== undefined) cell += text;
    else out += text;
  };
  const styled = (text: string): string => {
    if (open.includes("pre")) return style("36", text);
    if (open.includes("code")) return style("36", text);
    if (open.includes("strong") || open.includes("b") || open.includes("th")) return style("1", text);
    if (open.includes("em") || open.includes("i")) return style("3", text);
    return text;
  };
  for (const [, text, slash, tag, attrs] of html.matchAll(/([^<]+)|<(\/?)([a-zA-Z0-9]+)([^>]*)>/g)) {
    if (text !== undefined) {
      emit(styled(unescapeHtml(text)));
      continue;
    }
    const name = (tag ?? "").toLowerCase();
    if (slash) {
      const at = open.lastIndexOf(name);
      if (at >= 0) open.splice(at, 1);
    } else if (!["br", "img", "hr"].includes(name)) open.push(name);
    switch (name + (slash ? "/" : "")) {
      case "br":
        emit("\n");
        break;
      case "p/":
      case "pre/":
      case "ul/":
      case "ol/":
        out = out.replace(/\n*$/, "\n\n");
        break;
      case "pre":
      case "ul":
      case "ol":
        if (out && !out.endsWith("\n")) out += "\n";
        break;
      case "li":
        if (out && !out.endsWith("\n")) out += "\n";
        out += "• ";
        break;
      case "li/":
        out += "\n";
        break;
      case "a":
        href = /href="([^"]*)"/.exec(attrs ?? "")?.[1];
        break;
      case "a/":
        if (href) emit(` (${unescapeHtml(href)})`);
        href = undefined;
        break;
      case "table":
        table = [];
        break;
      case "tr":
        row = [];
        break;
      case "td":
      case "th":
        cell = "";
        break;
      case "td/":
      case "th/":
        row?.push(cell ?? "");
        cell = undefined;
        break;
      case "tr/":
        if (row) table?.push(row);
        row = undefined;
        break;
      case "table/":
        if (out && !out.endsWith("\n")) out += "\n";
        out += alignTable(table ?? []) + "\n";
        table = undefined;
        break;
    }
  }
  return out.replace(/\n{3,}/g, "\n\n").replace(/\s+$/, "");
}

/** Columns padded to their widest cell, measured without ANSI codes. */
function alignTable(rows: string[][]): string {
  const visible = (s: string): number => [...s.replace(/\x1b\[[0-9;]*m/g, "")].length;
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, visible(c))));
  return rows
    .map((r) => r.map((c, i) => (i === r.length - 1 ? c : c + " ".repeat((widths[i] ?? 0) - visible(c)))).join("  ").trimEnd())
    .join("\n");
}

const ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', "#39": "'", nbsp: " " };

function unescapeHtml(s: string): string {
  return s.replace(/&(amp|lt|gt|quot|#39|nbsp);/g, (_, e: string) => ENTITIES[e] ?? _);
}
