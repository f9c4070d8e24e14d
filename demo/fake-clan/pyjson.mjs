// json.dumps(value, indent=4) as Python prints it: ensure_ascii escapes, ", " and
// ": " separators, floats in repr() form, empty containers as {} and [].

function pyString(s) {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const ch = s[i];
    if (ch === '"') out += '\\"';
    else if (ch === "\\") out += "\\\\";
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (ch === "\b") out += "\\b";
    else if (ch === "\f") out += "\\f";
    else if (c < 0x20 || c > 0x7e) out += `\\u${c.toString(16).padStart(4, "0")}`;
    else out += ch;
  }
  return `${out}"`;
}

function pyNumber(n) {
  if (Number.isInteger(n)) return String(n);
  if (!Number.isFinite(n)) return Number.isNaN(n) ? "NaN" : n > 0 ? "Infinity" : "-Infinity";
  return String(n).replace(/e([+-])(\d)$/, "e$10$2");
}

export function pyJsonDumps(value, indent = 4, level = 0) {
  if (value === null || value === undefined) return "null";
  if (value === true) return "true";
  if (value === false) return "false";
  if (typeof value === "number") return pyNumber(value);
  if (typeof value === "string") return pyString(value);
  const pad = " ".repeat(indent * (level + 1));
  const end = " ".repeat(indent * level);
  if (Array.isArray(value)) {
    if (value.length === 0) return "[]";
    return `[\n${value.map((v) => pad + pyJsonDumps(v, indent, level + 1)).join(",\n")}\n${end}]`;
  }
  // values come from nix, whose attribute sets are always sorted by name
  const keys = Object.keys(value).sort();
  if (keys.length === 0) return "{}";
  return `{\n${keys.map((k) => `${pad}${pyString(k)}: ${pyJsonDumps(value[k], indent, level + 1)}`).join(",\n")}\n${end}}`;
}

// ---- json.loads() -------------------------------------------------------------------------

/** A json.loads() failure: Python's message and the offset it reports. */
export class PyJsonError extends Error {
  constructor(kind, text, pos) {
    const line = text.slice(0, pos).split("\n").length;
    const col = pos - (pos === 0 ? -1 : text.lastIndexOf("\n", pos - 1));
    super(`${kind}: line ${line} column ${col} (char ${pos})`);
    this.kind = kind;
    this.pos = pos;
  }
}

const NUMBER = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?/y;
const WS = /[ \t\n\r]*/y;

/**
 * json.loads(text) as Python 3.13 reads it (json/decoder.py, json/scanner.py): the same
 * values (NaN, Infinity and -Infinity included) and the same error messages and offsets.
 */
export function pyJsonLoads(text) {
  const s = text;
  if (s.startsWith("\ufeff")) throw new PyJsonError("Unexpected UTF-8 BOM (decode using utf-8-sig)", s, 0);
  const fail = (kind, pos) => {
    throw new PyJsonError(kind, s, pos);
  };
  const ws = (i) => {
    WS.lastIndex = i;
    WS.exec(s);
    return WS.lastIndex;
  };
  const NO_VALUE = Symbol("StopIteration");
  const scanString = (end) => {
    const begin = end - 1;
    let out = "";
    for (;;) {
      let j = end;
      while (j < s.length && s[j] !== '"' && s[j] !== "\\" && s.charCodeAt(j) >= 0x20) j++;
      if (j >= s.length) fail("Unterminated string starting at", begin);
      out += s.slice(end, j);
      const t = s[j];
      end = j + 1;
      if (t === '"') return [out, end];
      if (t !== "\\") fail("Invalid control character at", j);
      const esc = s[end];
      if (esc === undefined) fail("Unterminated string starting at", begin);
      if (esc !== "u") {
        const map = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };
        if (!(esc in map)) fail("Invalid \\escape", end - 1);
        out += map[esc];
        end += 1;
      } else {
        const hex = s.slice(end + 1, end + 5);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail("Invalid \\uXXXX escape", end - 1);
        out += String.fromCharCode(Number.parseInt(hex, 16));
        end += 5;
      }
    }
  };
  const scanOnce = (idx) => {
    const c = s[idx];
    if (c === '"') return scanString(idx + 1);
    if (c === "{") return scanObject(idx + 1);
    if (c === "[") return scanArray(idx + 1);
    if (c === "n" && s.startsWith("null", idx)) return [null, idx + 4];
    if (c === "t" && s.startsWith("true", idx)) return [true, idx + 4];
    if (c === "f" && s.startsWith("false", idx)) return [false, idx + 5];
    NUMBER.lastIndex = idx;
    const m = NUMBER.exec(s);
    if (m) return [Number(m[0]), NUMBER.lastIndex];
    if (c === "N" && s.startsWith("NaN", idx)) return [Number.NaN, idx + 3];
    if (c === "I" && s.startsWith("Infinity", idx)) return [Number.POSITIVE_INFINITY, idx + 8];
    if (c === "-" && s.startsWith("-Infinity", idx)) return [Number.NEGATIVE_INFINITY, idx + 9];
    return [NO_VALUE, idx];
  };
  const value = (idx) => {
    const [v, end] = scanOnce(idx);
    if (v === NO_VALUE) fail("Expecting value", idx);
    return [v, end];
  };
  const scanObject = (end) => {
    const obj = {};
    end = ws(end);
    let next = s[end];
    if (next !== '"') {
      if (next === "}") return [obj, end + 1];
      fail("Expecting property name enclosed in double quotes", end);
    }
    end += 1;
    for (;;) {
      let key;
      [key, end] = scanString(end);
      if (s[end] !== ":") {
        end = ws(end);
        if (s[end] !== ":") fail("Expecting ':' delimiter", end);
      }
      end = ws(end + 1);
      let v;
      [v, end] = value(end);
      obj[key] = v;
      end = ws(end);
      next = s[end];
      end += 1;
      if (next === "}") return [obj, end];
      if (next !== ",") fail("Expecting ',' delimiter", end - 1);
      const comma = end - 1;
      end = ws(end);
      next = s[end];
      end += 1;
      if (next !== '"') {
        if (next === "}") fail("Illegal trailing comma before end of object", comma);
        fail("Expecting property name enclosed in double quotes", end - 1);
      }
    }
  };
  const scanArray = (end) => {
    const arr = [];
    end = ws(end);
    if (s[end] === "]") return [arr, end + 1];
    for (;;) {
      let v;
      [v, end] = value(end);
      arr.push(v);
      end = ws(end);
      const next = s[end];
      end += 1;
      if (next === "]") return [arr, end];
      if (next !== ",") fail("Expecting ',' delimiter", end - 1);
      const comma = end - 1;
      end = ws(end);
      if (s[end] === "]") fail("Illegal trailing comma before end of array", comma);
    }
  };
  const [v, end] = value(ws(0));
  const rest = ws(end);
  if (rest !== s.length) fail("Extra data", rest);
  return v;
}
