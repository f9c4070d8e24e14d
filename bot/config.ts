import { readFile } from "node:fs/promises";
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
    storage: z.strictObject({ path: z.string().min(1).default("./data/clanbot.sqlite3") }).prefault({}),
    clan: z
      .strictObject({
        command: z.string().min(1).default("clan"),
        /** How long a quick clan command (select, list) may take. */
        timeout: duration("5m"),
        /** How long an inventory read is reused before the flake is evaluated again. */
        inventoryCacheTtl: duration("5m"),
        /** Quick clan processes (inventory reads, backup lists) at once, per clan; more wait in line. */
        parallel: z.number().int().min(1).max(64).default(2),
      })
      .prefault({}),
    nix: z.strictObject({ command: z.string().min(1).default("nix") }).prefault({}),
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
        /** Machines talked to at once, per clan. */
        parallel: z.number().int().min(1).max(100).default(10),
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

export type Config = z.output<typeof configSchema>;
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
  const lines = error.issues.flatMap((issue) => {
    if (issue.code === "unrecognized_keys") {
      const known = knownKeys(configSchema, issue.path);
      return issue.keys.map((key) => {
        const guess = known.length ? closest(key, known) : undefined;
        const hint = guess ? ` (did you mean '${pathText([...issue.path, guess])}'?)` : "";
        return `  ${pathText([...issue.path, key])}: unknown key${hint}`;
      });
    }
    const missing = issue.code === "invalid_type" && issue.message.endsWith("received undefined");
    return [`  ${pathText(issue.path) || "(top level)"}: ${missing ? "required, but missing" : issue.message}`];
  });
  return `${source}: invalid configuration:\n${lines.join("\n")}`;
}

export function parseConfig(source: string, text: string): Config {
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length) {
    throw new ConfigError(`${source}: not valid YAML: ${doc.errors.map((e) => e.message).join("; ")}`);
  }
  const result = configSchema.safeParse(doc.toJS() ?? {});
  if (!result.success) throw new ConfigError(formatIssues(source, result.error));
  return result.data;
}

export async function loadConfig(path: string): Promise<Config> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new ConfigError(`${path}: cannot read the config file (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  return parseConfig(path, text);
}

export function clanThresholds(config: Config, clanConfig: ClanConfig | undefined) {
  return { ...DEFAULT_THRESHOLDS, ...config.permissions, ...clanConfig?.permissions };
}
