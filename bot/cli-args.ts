import { parseArgs } from "node:util";

export const USAGE = `Usage: clanbot [--config FILE] [--console] [--flake DIR] [--as USER] [--power-level N]
       clanbot rekey [--config FILE]

Runs the clanbot Matrix bot for the clans in its config file. \`clanbot rekey\` (with the bot
stopped) encrypts every secret the bot keeps to a new age identity, written to secrets.identityFile.

  --config FILE       the YAML config (default ./config.yaml; see config.example.yaml)
  --console           no homeserver: type commands in this terminal (also what happens
                      when there is no config file)
  --flake DIR         the clan flake for the console (default: the current directory)
  --as USER           the Matrix user the console acts as (default console.user)
  --power-level N     that user's power level (default console.powerLevel, 100)
  --help              this text

Exit status: 0 when stopped, 1 on a runtime failure, 2 on a bad config or command line.`;

export interface CliArgs {
  /** A command of the program rather than a start of the bot. */
  command: "run" | "rekey";
  config: string | undefined;
  console: boolean;
  flake: string | undefined;
  as: string | undefined;
  powerLevel: number | undefined;
  help: boolean;
}

export class UsageError extends Error {
  override readonly name = "UsageError";
}

export function parseCliArgs(argv: readonly string[]): CliArgs {
  let values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: [...argv],
      options: {
        config: { type: "string" },
        console: { type: "boolean", default: false },
        flake: { type: "string" },
        as: { type: "string" },
        "power-level": { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
      allowPositionals: true,
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (positionals.length > 1 || (positionals[0] !== undefined && positionals[0] !== "rekey")) {
    throw new UsageError(`unexpected argument '${positionals.find((p) => p !== "rekey") ?? positionals[1]}'`);
  }
  const command = positionals[0] === "rekey" ? "rekey" : "run";
  if (command === "rekey" && (values.console || values.flake !== undefined || values.as !== undefined || values["power-level"] !== undefined)) {
    throw new UsageError("rekey takes only --config");
  }
  const pl = values["power-level"];
  if (pl !== undefined && !/^-?\d+$/.test(pl)) throw new UsageError(`--power-level takes a whole number, not '${pl}'`);
  return {
    command,
    config: values.config,
    console: values.console,
    flake: values.flake,
    as: values.as,
    powerLevel: pl === undefined ? undefined : Number(pl),
    help: values.help,
  };
}
