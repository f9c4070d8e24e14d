import { access, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join, resolve } from "node:path";
import type { Message } from "../commands/format.ts";
import { checkMatrixUserId } from "../commands/matrix-id.ts";
import { makeDemoClan, type DemoClan } from "../demo/demo-clan.ts";
import { defaultStateDir } from "../ops/state-dir.ts";
import { terminalQr } from "../ops/qr-terminal.ts";
import { unignoredWorkTree } from "../ops/work-tree.ts";
import { createApp, consoleClan } from "./app.ts";
import { parseCliArgs, USAGE, UsageError, type CliArgs } from "./cli-args.ts";
import { ConfigError, loadConfig, parseConfig, type Config } from "./config.ts";
import { runConsole } from "./console-front-end.ts";
import { createLogger } from "./logger.ts";
import { runMatrix } from "./matrix/run-matrix.ts";
import { rekey, secretPaths } from "./secrets.ts";

const CONFIG_FILE = "config.yaml";

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** A clan flake: a flake.nix that uses clan-core (or the demo's simulated clan). */
async function isClanFlake(dir: string): Promise<boolean> {
  const flake = await readFile(join(dir, "flake.nix"), "utf8").catch(() => undefined);
  if (flake === undefined) return false;
  return /clan-core|clan\.lib|clan-fixture/.test(flake) || (await exists(join(dir, "clan-fixture.json")));
}

/** What an errno code means, in the words of a fatal start-up line. */
function reason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  const words: Record<string, string> = {
    ENOENT: "no such file",
    EACCES: "permission denied",
    EISDIR: "it is a directory",
    ENOTDIR: "a part of the path is not a directory",
  };
  return (code && words[code]) ?? (err instanceof Error ? err.message : String(err));
}

interface Resolved {
  config: Config;
  console: boolean;
  /** Set when the console opens on the built-in demo clan. */
  demo?: DemoClan;
  /** The console's flake. */
  flake?: string;
}

/**
 * The config to use, whether to open the console, and on which flake. `here` is where the person
 * started the bot (npm runs scripts in the package's folder; INIT_CWD is where `npm start` was typed).
 */
async function resolveStart(args: CliArgs, here: string, stateDir: string): Promise<Resolved> {
  if (args.as !== undefined) {
    const checked = checkMatrixUserId(args.as);
    if (!checked.ok) throw new UsageError(`--as ${args.as}: ${checked.reason}`);
  }
  if (args.flake !== undefined) {
    const dir = resolve(here, args.flake);
    const info = await stat(dir).catch(() => undefined);
    if (!info?.isDirectory()) throw new UsageError(`--flake ${args.flake}: ${info ? "not a folder" : "no such folder"} (${dir})`);
  }
  const configPath = args.config !== undefined ? resolve(here, args.config) : join(here, CONFIG_FILE);
  if (args.config !== undefined || (await exists(configPath))) {
    const config = await loadConfig(configPath, stateDir);
    if (!args.console && !config.matrix) {
      throw new ConfigError(`${args.config ?? CONFIG_FILE}: matrix: required to run on Matrix (or start with --console)`);
    }
    if (args.flake && !args.console && config.matrix) {
      throw new UsageError("--flake is for the console; clans and their flakes are listed in the config");
    }
    const console = args.console || !config.matrix;
    return { config, console, ...(console ? { flake: resolve(here, args.flake ?? here) } : {}) };
  }
  const config = parseConfig("(defaults)", "", stateDir);
  if (args.flake !== undefined) return { config, console: true, flake: resolve(here, args.flake) };
  if (await isClanFlake(here)) return { config, console: true, flake: here };
  // No config and no clan here: show what the bot does on a clan of its own.
  const demo = await makeDemoClan();
  return {
    console: true,
    demo,
    flake: demo.flake,
    config: {
      ...config,
      storage: { path: join(demo.stateDir, "clanbot.sqlite3") },
      clan: { ...config.clan, command: demo.clanCommand },
      nix: { command: demo.nixCommand },
      ssh: { ...config.ssh, timeout: 2_000 },
      vm: { ...config.vm, backend: "nix", publicHost: "localhost" },
      web: { ...config.web, publicUrl: "http://localhost:8080" },
    },
  };
}

/** Everything checked before anything starts: each problem is one line naming its config key. */
async function checkStartUp(config: Config, demo: boolean): Promise<void> {
  const file = config.matrix?.accessTokenFile;
  if (file !== undefined) {
    try {
      if (!(await readFile(file, "utf8")).trim()) throw new ConfigError(`matrix.accessTokenFile: ${file} is empty`);
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      throw new ConfigError(`matrix.accessTokenFile: cannot read ${file}: ${reason(err)}`);
    }
  }
  if (demo) return;
  // The state holds the bot's private SSH key: never one `git add -A` away from a clan's repository.
  const paths: Array<[string, string | undefined]> = [
    ["storage.path", config.storage.path],
    ["ssh.keyFile", config.ssh.keyFile],
    ["secrets.identityFile", config.secrets.identityFile],
    ["deploy.logDir", config.deploy.logDir],
    ["vm.dir", config.vm.dir],
  ];
  for (const [key, path] of paths) {
    if (path === undefined) continue;
    const tree = await unignoredWorkTree(path);
    if (tree) {
      throw new ConfigError(
        `${key}: ${resolve(path)} is inside the git work tree ${tree}, and git does not ignore it: ` +
          "the bot's database and private SSH key would be one `git add -A` from being committed. " +
          "Put it outside the work tree (the default is the state directory), or add it to .gitignore.",
      );
    }
  }
}

/** Starts the bot as the command line says; resolves with the exit status. */
export async function start(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  const args = parseCliArgs(argv);
  if (args.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const here = env["INIT_CWD"] || process.cwd();
  if (args.command === "rekey") return startRekey(args, here, defaultStateDir(env));
  const { config, console, demo, flake } = await resolveStart(args, here, defaultStateDir(env));
  try {
    await checkStartUp(config, demo !== undefined);
    if (console) return await startConsole(config, args, flake ?? here, demo, env);
    const log = createLogger(config.log.level ?? "info");
    const app = await createApp(config, config.clans, log);
    const code = await runMatrix(app);
    // matrix-js-sdk leaves request timers behind (up to its sync timeout); do not wait for them.
    await new Promise<void>((resolve) => log.flush(() => resolve()));
    return code;
  } finally {
    await demo?.remove();
  }
}

/** `clanbot rekey`: the config file if there is one (else the defaults: the state directory), the bot stopped. */
async function startRekey(args: CliArgs, here: string, stateDir: string): Promise<number> {
  const configPath = args.config !== undefined ? resolve(here, args.config) : join(here, CONFIG_FILE);
  const config = args.config !== undefined || (await exists(configPath)) ? await loadConfig(configPath, stateDir) : parseConfig("(defaults)", "", stateDir);
  const done = await rekey(config);
  process.stdout.write(
    `clanbot: every secret is now encrypted to ${done.recipient} (${done.files} files, ${done.tokens} stored access tokens); ` +
      `the new identity is in ${secretPaths(config).identityFile}\n`,
  );
  return 0;
}

async function startConsole(config: Config, args: CliArgs, flake: string, demo: DemoClan | undefined, env: NodeJS.ProcessEnv): Promise<number> {
  const log = createLogger(config.log.level ?? "warn");
  const clan = demo ? { ...consoleClan(flake), name: "demo" } : consoleClan(flake);
  const app = await createApp(config, [clan], log);
  // The console has nobody to tell about commands a dead bot left running: they are marked interrupted.
  await app.interruptUnfinished();
  const interactive = process.stdin.isTTY === true && process.stdout.isTTY === true;
  // Files a command posts go in one folder for the session, removed when it ends.
  const files = await mkdtemp(join(tmpdir(), "clanbot-files-"));
  try {
    const print = async (_clan: string, message: Message): Promise<void> => {
      process.stdout.write(`${message.text}\n`);
    };
    await app.announceInterrupted(print);
    await app.announcer.connect(print);
    if (demo) {
      process.stdout.write(
        "DEMO: no config.yaml and no clan flake here, so this is a built-in demo clan with four simulated machines\n" +
          "(nothing real is deployed; its join codes lead nowhere). Try !machines, !deploy laptop, !backup nas,\n" +
          "!vm run media --port 8080:80, !invite. For your own clan: npm start -- --flake ~/my-clan\n",
      );
    }
    await runConsole({
      dispatcher: app.dispatcher,
      clan: clan.name,
      prefix: config.commands.prefix,
      user: { id: args.as ?? config.console.user, powerLevel: args.powerLevel ?? config.console.powerLevel },
      input: process.stdin,
      output: process.stdout,
      interactive,
      color: interactive && !env["NO_COLOR"],
      now: () => Date.now(),
      drawQr: terminalQr,
      saveFile: async (file) => {
        const path = join(files, basename(file.name));
        await writeFile(path, file.data, { mode: 0o600 });
        return path;
      },
    });
  } finally {
    await app.close();
    await rm(files, { recursive: true, force: true });
  }
  return 0;
}

