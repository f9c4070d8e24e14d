// Finding and "evaluating" the clan flake. The fixture file clan-fixture.json stands
// in for the nix evaluation; flake.nix only has to exist. Errors follow clan's
// Flake.prefetch() / Flake.select() (clan_lib/flake/flake.py).

import { createHash } from "node:crypto";
import { appendFileSync, existsSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { ClanCmdError, ClanError, ClanSelectError, FakeSetupError, PythonCrash, nixCommand } from "./errors.mjs";
import { exportsOf } from "./network.mjs";

export const FIXTURE_FILE = "clan-fixture.json";

/** str(pathlib.Path(p)): collapse "//" and "/./", drop a trailing "/", keep "..". */
export function pyPath(p) {
  if (p === "") return ".";
  const abs = p.startsWith("/");
  const parts = p.split("/").filter((s) => s !== "" && s !== ".");
  const body = parts.join("/");
  if (abs) return `${p.startsWith("//") && !p.startsWith("///") ? "//" : "/"}${body}`;
  return body === "" ? "." : body;
}

/** clan_lib.dirs.find_toplevel(): first marker wins, searched from cwd upwards (never "/" itself). */
function findToplevel(cwd) {
  for (const marker of [".clan-flake", ".git", ".hg", ".svn", "flake.nix"]) {
    let dir = cwd;
    while (path.dirname(dir) !== dir) {
      if (existsSync(path.join(dir, marker))) return dir;
      dir = path.dirname(dir);
    }
  }
  return null;
}

/** The flake identifier clan would use: --flake, else $CLAN_DIR, else the enclosing project. */
export function flakeIdentifier(flakeArg) {
  if (flakeArg !== null && flakeArg !== undefined) return flakeArg;
  const clanDir = process.env.CLAN_DIR;
  if (clanDir) return pyPath(clanDir);
  return findToplevel(process.cwd());
}

/** clan_lib.flake.require_flake() */
export function requireFlake(identifier) {
  if (identifier === null) {
    throw new ClanError("No clan flake found in the current directory or its parents", {
      description: "Use the --flake flag to specify a clan flake path or URL",
    });
  }
  return identifier;
}

function nixBase32(bytes, length = 32) {
  const alphabet = "0123456789abcdfghijklmnpqrsvwxyz";
  let out = "";
  for (let n = length - 1; n >= 0; n--) {
    const b = n * 5;
    const i = Math.floor(b / 8);
    const j = b % 8;
    const c = (bytes[i] >> j) | (i + 1 < bytes.length ? bytes[i + 1] << (8 - j) : 0);
    out += alphabet[c & 0x1f];
  }
  return out;
}

export function storePath(name, salt = "") {
  const digest = createHash("sha256").update(`${salt}\0${name}`).digest();
  return `/nix/store/${nixBase32(digest)}-${name}`;
}

/**
 * Emulates `nix flake prefetch` as clan runs it: returns { identifier, root, nixOptions }
 * or throws what clan throws.
 */
export function prefetch(identifier, nixOptions = []) {
  const cmd = nixCommand(["flake", "prefetch", "--json", ...nixOptions, "--option", "flake-registry", "", identifier]);
  const cmdError = (stderr) => new ClanCmdError({ command: cmd, stderr, returnCode: 1 });
  let local = identifier;
  for (const scheme of ["path:", "git+file://", "file://", "git+file:"]) {
    if (local.startsWith(scheme)) local = local.slice(scheme.length);
  }
  local = local.split(/[?#]/)[0];
  if (/^[a-z][a-z0-9+.-]*:/i.test(local)) {
    throw new FakeSetupError(`fake-clan only emulates local flakes, not '${identifier}'`);
  }
  const abs = path.resolve(process.cwd(), local);
  if (!existsSync(abs)) {
    if (identifier === abs) {
      throw new ClanError(`Flake '${identifier}' does not exist or is not a valid flake.`, { location: identifier });
    }
    throw cmdError(`error: getting status of '${abs}': No such file or directory\n`);
  }
  let dir = abs;
  let notice = "";
  if (!statSync(abs).isDirectory()) {
    if (path.basename(abs) !== "flake.nix") throw cmdError(`error: path '${abs}' is not a flake (because it's not a directory)\n`);
    dir = path.dirname(abs);
    notice = `warning: Path '${abs}' should point at the directory containing the 'flake.nix' file, not the file itself. Pretending that you meant '${dir}'\n`;
  }
  if (!existsSync(path.join(dir, "flake.nix"))) {
    notice += `path '${dir}' does not contain a 'flake.nix', searching up\n`;
    let p = dir;
    let found = null;
    while (p !== "/") {
      if (existsSync(path.join(p, "flake.nix"))) {
        found = p;
        break;
      }
      if (existsSync(path.join(p, ".git"))) {
        throw cmdError(`${notice}error: path '${p}' is not part of a flake (neither it nor its parent directories contain a 'flake.nix' file)\n`);
      }
      p = path.dirname(p);
    }
    if (found === null) {
      throw new ClanError(`Flake is invalid. Could not find a flake.nix file in '${identifier}'.`, { location: identifier });
    }
    dir = found;
  }
  return { identifier, root: dir, nixOptions };
}

export function loadFixture(root) {
  const file = path.join(root, FIXTURE_FILE);
  if (!existsSync(file)) return null;
  try {
    return JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new FakeSetupError(`cannot read ${file}: ${e.message}`);
  }
}

// ---- the evaluated clan --------------------------------------------------------

export const DEFAULT_SYSTEM = "x86_64-linux";

export function systemOf(fixture) {
  return fixture.system ?? DEFAULT_SYSTEM;
}

function isObject(v) {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function deepMerge(a, b) {
  if (!isObject(a) || !isObject(b)) return b;
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = k in a ? deepMerge(a[k], v) : v;
  return out;
}

export function machineNames(fixture) {
  return Object.keys(fixture.machines ?? {}).sort();
}

/** inventory.machines.<name> with the module defaults filled in, keys sorted like nix. */
export function inventoryMachine(fixture, name) {
  const m = fixture.machines[name] ?? {};
  return {
    deploy: {
      buildHost: m.deploy?.buildHost ?? null,
      forwardAgent: m.deploy?.forwardAgent ?? null,
      targetHost: m.deploy?.targetHost ?? null,
    },
    description: m.description ?? null,
    icon: m.icon ?? null,
    installedAt: m.installedAt ?? null,
    machineClass: m.machineClass ?? "nixos",
    name: m.name ?? name,
    tags: [...new Set(m.tags ?? [])],
  };
}

export function nixosVersion(fixture) {
  return fixture.nixosVersion ?? "25.11.20260815.5e2a59a";
}

export function toplevelPath(fixture, name) {
  const m = fixture.machines[name] ?? {};
  const hostName = m.hostName ?? name;
  const kind = (m.machineClass ?? "nixos") === "darwin" ? "darwin-system" : "nixos-system";
  return storePath(`${kind}-${hostName}-${nixosVersion(fixture)}`, JSON.stringify([name, m, fixture.revision ?? 0]));
}

/** Backup providers of a machine: fixture.backups.<m> is a list (borgbackup) or { provider: [names] }. */
export function backupArchives(fixture, name) {
  const b = fixture.backups?.[name];
  if (b === undefined) return {};
  if (Array.isArray(b)) return { borgbackup: b };
  return b;
}

// Archives made by `backups create` are kept next to the fixture, one JSON line each, so that a
// later `backups list` shows them and `backups restore` finds them.
export const ARCHIVES_FILE = ".fake-clan-archives.jsonl";

/** The archives of a machine's provider: the fixture's and those `backups create` made, sorted by name. */
export function archivesOf(flake, name, provider) {
  const fixed = backupArchives(flake.fixture ?? {}, name)[provider] ?? [];
  const file = path.join(flake.root, ARCHIVES_FILE);
  const made = existsSync(file)
    ? readFileSync(file, "utf8")
        .split("\n")
        .filter((l) => l.trim() !== "")
        .map((l) => JSON.parse(l))
        .filter((a) => a.machine === name && a.provider === provider)
        .map((a) => a.name)
    : [];
  return [...new Set([...fixed, ...made])].sort();
}

const STAMP = /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(-\d+)?$/;

/**
 * Records a new archive of a machine's provider, named like its newest one with the time now
 * (UTC, to the second). borgbackup names are "<dest>::<repo>::<archive>" (clanServices/borgbackup's
 * list script), the repo like "borg@server:." and the archive "<hostName>-<dest>-<time>" (the NixOS
 * module's archiveBaseName and dateFormat): "nas-backup::borg@backup:.::nas-nas-backup-2026-11-20T01:00:00"
 * for the first; "<provider>::<machine>::<time>" for the first of another provider.
 */
export function addArchive(flake, name, provider, now = new Date()) {
  const existing = archivesOf(flake, name, provider);
  const last = existing.at(-1);
  const stamp = now.toISOString().slice(0, 19);
  const host = flake.fixture?.machines?.[name]?.hostName ?? name;
  let base;
  if (last !== undefined && last.includes("::")) {
    const cut = last.lastIndexOf("::") + 2;
    const archive = last.slice(cut);
    base = `${last.slice(0, cut)}${STAMP.test(archive) ? archive.replace(STAMP, "") : ""}`;
  } else if (provider === "borgbackup") base = `${name}-backup::borg@backup:.::${host}-${name}-backup-`;
  else base = `${provider}::${name}::`;
  let archive = `${base}${stamp}`;
  for (let n = 2; existing.includes(archive); n++) archive = `${base}${stamp}-${n}`;
  appendFileSync(path.join(flake.root, ARCHIVES_FILE), `${JSON.stringify({ machine: name, provider, name: archive })}\n`);
  return archive;
}

export function backupProviders(fixture, name) {
  const providers = {};
  for (const p of Object.keys(backupArchives(fixture, name)).sort()) {
    providers[p] = {
      create: storePath(`${p}-create`, name),
      list: storePath(`${p}-list`, name),
      restore: storePath(`${p}-restore`, name),
    };
  }
  return providers;
}

export function backupState(fixture, name) {
  const m = fixture.machines[name] ?? {};
  if (m.state) return m.state;
  if (Object.keys(backupArchives(fixture, name)).length === 0) return {};
  return { data: { folders: ["/var/lib/data"], preRestoreCommand: null, postRestoreCommand: null } };
}

/**
 * The vars generators of a machine as nix evaluates them (files with secret/deploy, prompts, share),
 * from fixture.vars.<m>; a machine the fixture gives no vars has clan's openssh generator.
 */
export function varGenerators(fixture, name) {
  const defined = fixture.vars?.[name] ?? defaultVars(name);
  const gens = {};
  for (const g of Object.keys(defined).sort()) {
    const files = {};
    for (const f of Object.keys(defined[g].files ?? {}).sort()) {
      const spec = defined[g].files[f];
      files[f] = { deploy: spec.deploy ?? true, name: f, secret: spec.secret ?? true };
    }
    gens[g] = { files, name: g, prompts: Object.fromEntries((defined[g].prompts ?? []).map((p) => [p, { name: p, type: "hidden" }])), share: defined[g].share ?? false };
  }
  return gens;
}

/** The openssh generator every clan machine has (its values as the fake's update reports them). */
export function defaultVars(name) {
  const key = Buffer.from(storePath(`ssh-key-${name}`)).toString("base64").slice(0, 43);
  return {
    openssh: {
      files: {
        "ssh.id_ed25519": { secret: true, value: `-----BEGIN OPENSSH PRIVATE KEY-----\nfake-${name}\n-----END OPENSSH PRIVATE KEY-----\n` },
        "ssh.id_ed25519.pub": { secret: false, value: `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI${key} nixbld` },
      },
    },
  };
}

function machineEval(fixture, name) {
  const m = fixture.machines[name] ?? {};
  const system = m.system ?? systemOf(fixture);
  const requireExplicitUpdate = m.requireExplicitUpdate ?? false;
  const config = {
    clan: {
      core: {
        backups: { providers: backupProviders(fixture, name) },
        deployment: { requireExplicitUpdate },
        networking: {
          buildHost: m.networking?.buildHost ?? null,
          targetHost: m.networking?.targetHost ?? null,
        },
        state: backupState(fixture, name),
        vars: { generators: varGenerators(fixture, name) },
      },
      deployment: { requireExplicitUpdate },
    },
    networking: { hostName: m.hostName ?? name },
    nixpkgs: { hostPlatform: { system } },
    system: { build: { toplevel: toplevelPath(fixture, name) }, nixos: { version: nixosVersion(fixture) }, stateVersion: m.stateVersion ?? "25.11" },
  };
  return { config: deepMerge(config, m.config ?? {}), pkgs: { stdenv: { hostPlatform: { system } } } };
}

function tagsOf(fixture) {
  const tags = { all: machineNames(fixture) };
  for (const name of machineNames(fixture))
    for (const t of inventoryMachine(fixture, name).tags) (tags[t] ??= []).push(name);
  return tags;
}

/** The attribute tree `clan select` walks; built lazily enough for small fixtures. */
export function evalTree(fixture) {
  const names = machineNames(fixture);
  const machines = Object.fromEntries(names.map((n) => [n, inventoryMachine(fixture, n)]));
  const meta = { description: null, domain: "clan", icon: null, name: "clan", ...(fixture.meta ?? {}) };
  const inventory = { instances: fixture.instances ?? {}, machines, meta, tags: tagsOf(fixture) };
  const evals = Object.fromEntries(names.map((n) => [n, machineEval(fixture, n)]));
  const byClass = (cls) => Object.fromEntries(names.filter((n) => machines[n].machineClass === cls).map((n) => [n, evals[n]]));
  return {
    clan: { exports: exportsOf(fixture) },
    clanInternals: {
      inventoryClass: {
        inventory,
        inventorySerialization: inventory,
        relativeDirectory: "",
      },
      machines: { [systemOf(fixture)]: evals },
      vars: { settings: { publicModule: "clan_lib.vars.public_modules.in_repo", secretModule: "clan_lib.vars.secret_modules.sops" } },
    },
    darwinConfigurations: byClass("darwin"),
    nixosConfigurations: byClass("nixos"),
  };
}

// ---- selectors (clan_lib.flake.flake.parse_selector and nix-select semantics) ----

/** Returns [{type:'all'|'str'|'maybe'|'set', value}], or throws the ValueError clan raises. */
export function parseSelector(selector) {
  const stack = [];
  const selectors = [];
  let acc = "";
  let submode = "";
  let accSet = [];
  const valueError = (text) =>
    new PythonCrash("ValueError", text, [
      ["clan_lib/flake/flake.py", 1172, "select", "self.get_from_nix([selector])"],
      ["clan_lib/flake/flake.py", 1040, "get_from_nix", "selectors_as_json(parse_selector(selector)) for selector in selectors"],
    ]);
  for (const c of selector) {
    const mode = stack.length === 0 ? "start" : stack[stack.length - 1];
    if (mode === "end") {
      if (c === ".") {
        stack.pop();
        if (stack.length !== 0) throw valueError("expected empty stack, but got {stack}");
      } else throw valueError("expected ., but got {c}");
    } else if (mode === "start") {
      if (c === "*") {
        stack.push("end");
        selectors.push({ type: "all" });
      } else if (c === "?") stack.push("maybe");
      else if (c === '"') stack.push("str", "quote");
      else if (c === "{") stack.push("set");
      else if (c === ".") selectors.push({ type: "str", value: acc });
      else {
        stack.push("str");
        acc += c;
      }
    } else if (mode === "set") {
      if (submode === "" && c === "?") submode = "maybe";
      else if (c === "\\") {
        stack.push("escape");
        if (submode === "") submode = "str";
      } else if (c === '"') {
        stack.push("quote");
        if (submode === "") submode = "str";
      } else if (c === ",") {
        accSet.push({ type: submode === "maybe" ? "maybe" : "str", value: acc });
        submode = "";
        acc = "";
      } else if (c === "}") {
        if (acc !== "" || submode !== "") accSet.push({ type: submode === "maybe" ? "maybe" : "str", value: acc });
        if (accSet.some((s) => s.value === "outPath")) {
          throw valueError(
            "Cannot use 'outPath' in multiselect {...}. When nix evaluates attrsets with outPath in a multiselect, it collapses the entire attrset to just the outPath string, breaking further selection. Use individual selectors instead.",
          );
        }
        selectors.push({ type: "set", value: accSet });
        submode = "";
        accSet = [];
        acc = "";
        stack.pop();
        stack.push("end");
      } else {
        acc += c;
        if (submode === "") submode = "str";
      }
    } else if (mode === "quote") {
      if (c === '"') stack.pop();
      else if (c === "\\") stack.push("escape");
      else acc += c;
    } else if (mode === "escape") {
      stack.pop();
      acc += c;
    } else if (mode === "str" || mode === "maybe") {
      if (c === ".") {
        stack.pop();
        selectors.push({ type: mode, value: acc });
        acc = "";
      } else if (c === "\\") stack.push("escape");
      else acc += c;
    }
  }
  if (stack.length !== 0) {
    const top = stack[stack.length - 1];
    if (top === "str" || top === "maybe") selectors.push({ type: top, value: acc });
    else if (top !== "end") throw valueError(`expected empty stack, but got [${stack.map((s) => `'${s}'`).join(", ")}]`);
  }
  return selectors;
}

export class NixEvalError extends Error {}

function nixShow(v) {
  if (v === null) return "null";
  if (typeof v === "string") return `a string: ${JSON.stringify(v)}`;
  if (typeof v === "boolean") return `a Boolean: ${v}`;
  if (typeof v === "number") return Number.isInteger(v) ? `an integer: ${v}` : `a float: ${v}`;
  if (Array.isArray(v)) return `a list: [ ${v.length ? "… " : ""}]`;
  return "a set";
}

function applySelectors(value, sels, i = 0) {
  if (i === sels.length) return value;
  const s = sels[i];
  if (s.type === "all") {
    if (Array.isArray(value)) return value.map((v) => applySelectors(v, sels, i + 1));
    if (!isObject(value)) throw new NixEvalError(`expected a set but found ${nixShow(value)}`);
    return Object.fromEntries(Object.keys(value).sort().map((k) => [k, applySelectors(value[k], sels, i + 1)]));
  }
  if (s.type === "set") {
    const out = {};
    for (const sub of s.value) {
      const has = isObject(value) && sub.value in value;
      if (!has && sub.type === "maybe") continue;
      out[sub.value] = selectOne(value, sub.value, sels, i);
    }
    return out;
  }
  if (s.type === "maybe") {
    if (isObject(value) && s.value in value) return { [s.value]: applySelectors(value[s.value], sels, i + 1) };
    return {};
  }
  return selectOne(value, s.value, sels, i);
}

function selectOne(value, key, sels, i) {
  if (Array.isArray(value) && /^\d+$/.test(key)) {
    const idx = Number(key);
    if (idx >= value.length) throw new NixEvalError(`list index ${idx} is out of bounds`);
    return applySelectors(value[idx], sels, i + 1);
  }
  if (!isObject(value)) throw new NixEvalError(`expected a set but found ${nixShow(value)}`);
  if (!(key in value)) throw new NixEvalError(`attribute '${key}' missing`);
  return applySelectors(value[key], sels, i + 1);
}

/**
 * Flake.select(): evaluates one selector against the fixture, or throws ClanSelectError
 * the way clan reports a failing `nix build` of its select expression.
 * `failure` (string, optional) injects an evaluation error for this command.
 */
export function select(flake, selector, failure = null) {
  const sels = parseSelector(selector);
  const nixError = (text) => new ClanSelectError(flake.identifier, [selector], `${text}\n`);
  if (flake.fixture === null) {
    throw new ClanSelectError(
      flake.identifier,
      [selector],
      null,
      "This flake does not export the 'clan' attribute. \nPlease write 'clan = clan.config;' into the outputs of your flake.nix.",
    );
  }
  if (typeof flake.fixture.broken === "string") throw nixError(flake.fixture.broken);
  if (failure !== null) throw nixError(failure);
  try {
    return applySelectors(flake.tree, sels);
  } catch (e) {
    if (e instanceof NixEvalError) throw nixError(`error:\n       … while evaluating the selector\n\n       (stack trace truncated; use '--show-trace' to show the full, detailed trace)\n\n       error: ${e.message}`);
    throw e;
  }
}

/** Opens the flake for a command: prefetch, then the fixture and its attribute tree. */
export function openFlake(identifier, nixOptions) {
  const pre = prefetch(identifier, nixOptions);
  const fixture = loadFixture(pre.root);
  if (fixture !== null && typeof fixture.machines !== "object") fixture.machines = {};
  return { ...pre, fixture, tree: fixture ? evalTree(fixture) : null };
}
