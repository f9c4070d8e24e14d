import { readFile } from "node:fs/promises";
import { userInfo } from "node:os";
import { join } from "node:path";
import { closest } from "fastest-levenshtein";
import { parseDocument } from "yaml";
import { z } from "zod";
import { parseDuration } from "../commands/duration.ts";
import { DEFAULT_THRESHOLDS } from "../commands/levels.ts";

/** A config problem: the message names the file and the key path; the process exits with status 2. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

const duration = (fallback: string) =>
  z
    .union([z.string(), z.number().positive()])
    .default(fallback)
    .transform((v, ctx) => {
      const ms = typeof v === "number" ? v * 1000 : parseDuration(v);
      if (ms === undefined || ms <= 0) {
        ctx.addIssue({ code: "custom", message: `expected a duration such as 30s, 15m or 2h, got '${v}'` });
        return z.NEVER;
      }
      return ms;
    });

const powerLevel = z.number().int().min(-(2 ** 53)).max(2 ** 53);

const thresholds = z
  .strictObject({ viewer: powerLevel.optional(), operator: powerLevel.optional(), admin: powerLevel.optional() })
  .optional();

const clan = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, "letters, digits, '.', '_' or '-'"),
  room: z.string().regex(/^[!#][^:]+:.+$/, "a Matrix room id (!id:server) or alias (#alias:server)"),
  flake: z.string().min(1),
  permissions: thresholds,
  /** Shown on the join page: the clan's `clan://` flake link or its public flake URL. */
  joinUrl: z.string().min(1).max(500).optional(),
});

/** `host:port` for the join page's server; IPv6 hosts in brackets. */
const listenAddress = z
  .string()
  .default("127.0.0.1:8080")
  .transform((v, ctx) => {
    const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:\[\]]+)):([0-9]{1,5})$/.exec(v);
    const port = m ? Number(m[3]) : NaN;
    if (!m || port > 65535) {
      ctx.addIssue({ code: "custom", message: `expected host:port such as 127.0.0.1:8080 or [::1]:8080, got '${v}'` });
      return z.NEVER;
    }
    return { host: (m[1] ?? m[2]) as string, port };
  });

const publicUrl = z
  .url({ protocol: /^https?$/ })
  .refine((v) => !/[?#]/.test(v), "the address of the join page, without ? or #")
  .transform((v) => v.replace(/\/+$/, ""));

const matrix = z
  .strictObject({
    homeserver: z.url({ protocol: /^https?$/ }),
    userId: z.string().regex(/^@[^:]+:.+$/, "a Matrix user id such as @clanbot:example.org"),
    accessToken: z.string().min(1).optional(),
    accessTokenFile: z.string().min(1).optional(),
    password: z.string().min(1).optional(),
    deviceName: z.string().default("clanbot"),
    /** Commands older than this when the bot sees them are answered but not run. */
    maxCommandAge: duration("15m"),
    /** How long an encrypted message may wait for its key before the room is told it could not be read. */
    undecryptableGrace: duration("30s"),
  })
  .superRefine((m, ctx) => {
    const given = [m.accessToken, m.accessTokenFile, m.password].filter((v) => v !== undefined).length;
    if (given !== 1) {
      ctx.addIssue({
        code: "custom",
        message: `set exactly one of accessToken, accessTokenFile or password (${given} given)`,
      });
    }
  });

export const configSchema = z
  .strictObject({
    matrix: matrix.optional(),
    /** Default: `clanbot.sqlite3` in the state directory (outside any clan's work tree), filled in by parseConfig. */
    storage: z.strictObject({ path: z.string().min(1).optional() }).prefault({}),
    clan: z
      .strictObject({
        command: z.string().min(1).default("clan"),
        /** How long a quick clan command (select, list) may take. */
        timeout: duration("5m"),
        /** How long an inventory read is reused before the flake is evaluated again. */
        inventoryCacheTtl: duration("5m"),
        /** Quick clan processes (inventory reads, backup lists) at once, per clan; more wait in line. */
        parallel: z.number().int().min(1).max(64).default(2),
        /**
         * The known_hosts file clan's own ssh reads for `clan backups` (which takes no host key
         * options): the bot keeps the host keys it pinned there, in a block of its own. ssh finds it
         * through the passwd entry, so the default is that user's ~/.ssh/known_hosts; false: leave it alone.
         */
        sshKnownHosts: z.union([z.string().min(1), z.literal(false)]).default(() => join(userInfo().homedir, ".ssh", "known_hosts")),
      })
      .prefault({}),
    nix: z.strictObject({ command: z.string().min(1).default("nix") }).prefault({}),
    secrets: z
      .strictObject({
        /**
         * The bot's age identity, to which every secret it keeps is encrypted (README, Secrets);
         * default: `age-identity.txt` next to the SQLite file, made on first start.
         */
        identityFile: z.string().min(1).optional(),
      })
      .prefault({}),
    deploy: z
      .strictObject({
        /** Machines deployed at once, per clan. */
        parallel: z.number().int().min(1).max(64).default(4),
        /** Deploys of more machines than this, or of `all`, are confirmed first. */
        confirmAbove: z.number().int().min(0).default(3),
        /** How long one machine's deploy may run before it is killed. */
        timeout: duration("60m"),
        /** Where deploy logs are written; default: `logs/` next to the SQLite file. */
        logDir: z.string().min(1).optional(),
        /** Deploy logs older than this are deleted at start. */
        keepLogs: duration("30d"),
      })
      .prefault({}),
    ssh: z
      .strictObject({
        /** The bot's private key; default: `ssh/id_ed25519` next to the SQLite file, made on first start. */
        keyFile: z.string().min(1).optional(),
        /** Check host keys against this known_hosts file instead of pinning them on first contact. */
        knownHosts: z.string().min(1).optional(),
        /** Per machine: connecting, logging in and a status command together. */
        timeout: duration("10s"),
        /**
         * Machines talked to at once, per clan. Talking to a machine is mostly waiting for the network
         * (a status is a handful of round trips), not work: 50 at once keeps a fleet of 50 within 2x one
         * machine's time at 50 ms round trips (bench: npm run bench -- --only distance).
         */
        parallel: z.number().int().min(1).max(200).default(50),
        /** How long a connection stays open after a status for the next one (like OpenSSH's ControlPersist); 0s closes at once. */
        keepOpen: duration("5m"),
        /** How long `!reboot` waits for a machine to answer again. */
        rebootTimeout: duration("10m"),
        /** How often a rebooting machine is tried. */
        rebootPoll: duration("5s"),
      })
      .prefault({}),
    install: z
      .strictObject({
        /** How long `!install` waits for the photo or JSON of the installer's QR code. */
        replyTimeout: duration("5m"),
        /** The port the installer's sshd listens on (22; another when it is behind a port forward). */
        installerPort: z.number().int().min(1).max(65535).default(22),
        /** How long one machine's install may run before it is stopped. */
        timeout: duration("2h"),
      })
      .prefault({}),
    web: z
      .strictObject({
        /** Where the join page's HTTP server listens (put a TLS reverse proxy in front of it). */
        listen: listenAddress,
        /** The address people's phones reach the join page at; without it there are no join codes. */
        publicUrl: publicUrl.optional(),
        /** Take the client's address from X-Forwarded-For (set when a reverse proxy is in front). */
        trustProxy: z.boolean().default(false),
        /** Join page requests per client address: at most `requests` per `window`. */
        rateLimit: z
          .strictObject({ requests: z.number().int().min(1).default(10), window: duration("1m") })
          .prefault({}),
      })
      .prefault({}),
    vm: z
      .strictObject({
        /** VMs at once on the bot's host, all clans together. */
        max: z.number().int().min(1).max(64).default(2),
        /** auto: `clan vms run` when this host's clan has it (up to 25.11), else the NixOS VM runner; or force one. */
        backend: z.enum(["auto", "clan", "nix"]).default("auto"),
        /** The host name in the URLs of forwarded ports; default: this host's name. */
        publicHost: z.string().regex(/^[A-Za-z0-9.:[\]-]+$/, "a host name or address").optional(),
        /** Between SIGTERM and SIGKILL when a VM is stopped. */
        stopTimeout: duration("30s"),
        /** A VM that ends this soon after it started did not start. */
        startGrace: duration("3s"),
        /** How long `nix build` of a VM may take (NixOS VM runner). */
        buildTimeout: duration("60m"),
        /** VM logs, disk images and build links; default: `vms/` next to the SQLite file. */
        dir: z.string().min(1).optional(),
      })
      .prefault({}),
    backup: z
      .strictObject({
        /** How long one machine's backup (or restore) may run before it is stopped. */
        timeout: duration("2h"),
        /** Backups run at once, per clan. */
        parallel: z.number().int().min(1).max(64).default(4),
        /** A machine a schedule backs up without a successful backup for this long is overdue: the room is told once. */
        maxAge: duration("36h"),
        /** How often the bot looks for overdue machines. */
        watchInterval: duration("15m"),
        /** Schedules whose runs would come closer together than this are refused. */
        minInterval: duration("15m"),
      })
      .prefault({}),
    commands: z
      .strictObject({
        prefix: z.string().min(1).max(8).default("!"),
        /** How long a question waits for the asker's ✅. */
        confirmTimeout: duration("60s"),
        /** Commands per person and clan: at most `requests` at once, refilled over `window`. */
        rateLimit: z
          .strictObject({
            requests: z.number().int().min(1).default(10),
            window: duration("1m"),
            /** People at this level or above are not limited; `nobody` limits everyone. */
            exempt: z.enum(["admin", "operator", "nobody"]).default("admin"),
          })
          .prefault({}),
      })
      .prefault({}),
    permissions: thresholds,
    clans: z.array(clan).default([]),
    console: z
      .strictObject({ user: z.string().min(1).default("@console:localhost"), powerLevel: powerLevel.default(100) })
      .prefault({}),
    /** Without a level: info on Matrix, warn in the console (so logs do not drown the answers). */
    log: z.strictObject({ level: z.enum(["trace", "debug", "info", "warn", "error", "silent"]).optional() }).prefault({}),
  })
  .superRefine((c, ctx) => {
    const seen = new Map<string, number>();
    c.clans.forEach((cl, i) => {
      for (const [key, value] of [["name", cl.name], ["room", cl.room]] as const) {
        const k = `${key}:${value}`;
        const first = seen.get(k);
        if (first !== undefined) {
          ctx.addIssue({ code: "custom", path: ["clans", i, key], message: `'${value}' is already used by clans.${first}` });
        } else seen.set(k, i);
      }
    });
  });

type ParsedConfig = z.output<typeof configSchema>;
/** The config as the bot uses it: every default filled in, the SQLite file's path too. */
export type Config = Omit<ParsedConfig, "storage"> & { storage: { path: string } };
export type ClanConfig = Config["clans"][number];

/** Every key the schema knows, by path prefix, for "did you mean" on a misspelled key. */
function knownKeys(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  let s: z.ZodType = schema;
  const unwrap = (t: z.ZodType): z.ZodType => {
    let cur = t;
    for (;;) {
      const def = (cur as { def?: { type?: string; innerType?: z.ZodType; in?: z.ZodType; element?: z.ZodType } }).def;
      if (def?.innerType) cur = def.innerType;
      else if (def?.type === "pipe" && def.in) cur = def.in;
      else return cur;
    }
  };
  for (const seg of path) {
    s = unwrap(s);
    if (s instanceof z.ZodArray && typeof seg === "number") s = s.element as z.ZodType;
    else if (s instanceof z.ZodObject && typeof seg === "string") s = (s.shape as Record<string, z.ZodType>)[seg] as z.ZodType;
    else return [];
    if (!s) return [];
  }
  s = unwrap(s);
  return s instanceof z.ZodObject ? Object.keys(s.shape) : [];
}

function pathText(path: readonly PropertyKey[]): string {
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : `${i ? "." : ""}${String(p)}`)).join("");
}

export function formatIssues(source: string, error: z.ZodError): string {
  // A misspelled key is one mistake: the key it should have been is not also reported missing.
  const guessed = new Set<string>();
  const unknown = error.issues.flatMap((issue) => {
    if (issue.code !== "unrecognized_keys") return [];
    const known = knownKeys(configSchema, issue.path);
    return issue.keys.map((key) => {
      const guess = known.length ? closest(key, known) : undefined;
      if (guess) guessed.add(pathText([...issue.path, guess]));
      const hint = guess ? ` (did you mean '${pathText([...issue.path, guess])}'?)` : "";
      return `  ${pathText([...issue.path, key])}: unknown key${hint}`;
    });
  });
  const others = error.issues.flatMap((issue) => {
    if (issue.code === "unrecognized_keys") return [];
    const path = pathText(issue.path);
    if (isMissing(issue) && guessed.has(path)) return [];
    return [`  ${path || "(top level)"}: ${describeIssue(issue)}`];
  });
  return `${source}: invalid configuration:\n${[...others, ...unknown].join("\n")}`;
}

function isMissing(issue: z.core.$ZodIssue): boolean {
  return issue.code === "invalid_type" && (issue.input === undefined || issue.message.endsWith("received undefined"));
}

const EXPECTED: Record<string, string> = {
  number: "a number",
  int: "a whole number",
  string: "a text",
  boolean: "true or false",
  array: "a list (lines starting with '- ')",
  object: "a mapping of keys to values",
};

/** A value as the config's author wrote it, cut short. */
function shown(value: unknown): string {
  if (value === null) return "nothing (null)";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  const text = typeof value === "string" ? `'${value}'` : String(value);
  return text.length > 60 ? `${text.slice(0, 60)}…` : text;
}

/** The validator's findings in the words of someone fixing a config file. */
function describeIssue(issue: z.core.$ZodIssue): string {
  const got = "input" in issue && issue.input !== undefined ? `, got ${shown(issue.input)}` : "";
  switch (issue.code) {
    case "invalid_type":
      if (isMissing(issue)) return "required, but missing";
      return `expected ${EXPECTED[issue.expected] ?? issue.expected}${got}`;
    case "too_small":
      return `must be at least ${String(issue.minimum)}${got}`;
    case "too_big":
      return `must be at most ${String(issue.maximum)}${got}`;
    case "invalid_value":
      return `expected one of ${issue.values.map((v) => String(v)).join(", ")}${got}`;
    case "invalid_format":
      if (issue.format === "url") return `expected an http(s) URL such as https://matrix.example.org${got}`;
      return `${issue.message}${got}`;
    default:
      return issue.message;
  }
}

/**
 * Where a YAML mistake is: the parser notices an unclosed quote or bracket only where the file (or
 * the block) ends, so the line that opened it is the one to show.
 */
function yamlProblem(text: string, e: { code: string; message: string; pos: [number, number] }): string {
  const what = (e.message.split("\n")[0] ?? "").replace(/ at line \d+, column \d+:?$/, "");
  let at = e.pos[0];
  const opener = e.code === "MISSING_CHAR" ? /closing (["'])quote/.exec(e.message)?.[1] : /^Flow (sequence|map)/.exec(what) ? (what.includes("sequence") ? "[" : "{") : undefined;
  if (opener !== undefined) {
    const found = text.lastIndexOf(opener, Math.max(0, at - 1));
    if (found >= 0) at = found;
  }
  const line = text.slice(0, at).split("\n").length;
  const shownLine = (text.split("\n")[line - 1] ?? "").slice(0, 100);
  return `line ${line}: ${what}${opener !== undefined ? ` (opened here with ${opener})` : ""}\n    ${shownLine}`;
}

/** The SQLite file when `storage.path` is not set: in the state directory (see ops/state-dir.ts). */
export const DATABASE_FILE = "clanbot.sqlite3";

export function parseConfig(source: string, text: string, stateDir: string): Config {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length) {
    throw new ConfigError(`${source}: not valid YAML, ${yamlProblem(text, doc.errors[0] as (typeof doc.errors)[number])}`);
  }
  const result = configSchema.safeParse(doc.toJS() ?? {}, { reportInput: true });
  if (!result.success) throw new ConfigError(formatIssues(source, result.error));
  return { ...result.data, storage: { path: result.data.storage.path ?? join(stateDir, DATABASE_FILE) } };
}

export async function loadConfig(path: string, stateDir: string): Promise<Config> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new ConfigError(`${path}: cannot read the config file (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  return parseConfig(path, text, stateDir);
}

export function clanThresholds(config: Config, clanConfig: ClanConfig | undefined) {
  return { ...DEFAULT_THRESHOLDS, ...config.permissions, ...clanConfig?.permissions };
}
